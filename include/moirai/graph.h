// Graph IR: operators and tensors in plain vectors with dense integer ids. Ids are stable (insertion order) so
// every output is byte-identical from run to run. No ONNX types here: src/onnx translates into this IR.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai {

using OpId = int32_t;
using TensorId = int32_t;
inline constexpr int32_t kNone = -1;

enum class DType : uint8_t { Float32, Float16, BFloat16, Float64, Int8, UInt8, Int16, Int32, Int64, Bool, Unknown };

/// Bytes per element (0 for Unknown).
int64_t dtype_size(DType type);
const char* dtype_name(DType type);

enum class TensorKind : uint8_t {
  Activation,  ///< produced by an operator
  Input,       ///< graph input (fed by the user); has no producer
  Parameter,   ///< initializer (weights); resident on every device that runs a consumer
};

struct Tensor {
  std::string name;
  DType dtype = DType::Float32;
  std::vector<int64_t> shape;  ///< fully static after import (dynamic dims fixed by --dim)
  TensorKind kind = TensorKind::Activation;
  OpId producer = kNone;        ///< kNone for inputs and parameters
  std::vector<OpId> consumers;  ///< in operator id order
  bool graph_output = false;

  int64_t elements() const;  ///< product of shape (1 for a scalar)
  int64_t bytes() const;     ///< elements() * dtype_size(dtype)
};

/// Integer attributes that later stages need (kernel_shape, strides, pads, dilations, group, axis, perm...).
using IntAttrs = std::map<std::string, std::vector<int64_t>>;

class Graph;

struct Operator {
  std::string name;  ///< unique; for a fused operator, a name derived from its members
  std::string type;  ///< ONNX op_type, or "Fused" for a coarse node
  std::vector<TensorId> inputs;   ///< activations, graph inputs and parameters
  std::vector<TensorId> outputs;
  IntAttrs attrs;
  double flops = 0;          ///< floating-point operations (a multiply-add counts 2)
  double bytes_read = 0;     ///< bytes of all inputs read, parameters included
  double bytes_written = 0;  ///< bytes of all outputs
  int64_t param_bytes = 0;   ///< bytes of the parameters this operator owns (a shared parameter counts once, at its first consumer)
  bool known = true;         ///< false: no FLOP formula for this type; flops = bytes moved
  std::vector<std::string> origin;  ///< original ONNX node names (one for an imported operator, several when fused)
  /// A fused operator's members (the original operators, in topological order) as a graph of their own: the
  /// tensors entering the group are its inputs, the ones leaving it its outputs, names and shapes kept. What a
  /// fused node allows (e.g. how it splits) follows from all its members, not from the anchor alone. Null when
  /// not fused.
  std::shared_ptr<const Graph> members;
};

/// One data dependency: `tensor` produced by `src` is read by `dst`.
struct Edge {
  OpId src;
  OpId dst;
  TensorId tensor;
};

class Graph {
 public:
  std::string name;

  /// Adds a tensor; names must be unique.
  TensorId add_tensor(Tensor tensor);
  /// Adds an operator and links it as producer of its outputs and consumer of its inputs.
  OpId add_op(Operator op);

  const std::vector<Operator>& ops() const { return ops_; }
  const std::vector<Tensor>& tensors() const { return tensors_; }
  Operator& op(OpId id) { return ops_[static_cast<size_t>(id)]; }
  const Operator& op(OpId id) const { return ops_[static_cast<size_t>(id)]; }
  Tensor& tensor(TensorId id) { return tensors_[static_cast<size_t>(id)]; }
  const Tensor& tensor(TensorId id) const { return tensors_[static_cast<size_t>(id)]; }
  int num_ops() const { return static_cast<int>(ops_.size()); }
  int num_tensors() const { return static_cast<int>(tensors_.size()); }

  /// Tensor id by name, or kNone.
  TensorId find_tensor(const std::string& name) const;

  /// Operator-to-operator data dependencies through activation tensors, ordered by (src, dst, tensor).
  std::vector<Edge> edges() const;
  /// Distinct producer operators of op's inputs, ascending.
  std::vector<OpId> predecessors(OpId op) const;
  /// Distinct consumer operators of op's outputs, ascending.
  std::vector<OpId> successors(OpId op) const;

  /// Kahn's algorithm, ties broken by smallest id; the error names an operator on a cycle.
  Expected<std::vector<OpId>> topological_order() const;

  /// Structural checks: every activation input has a producer, ids in range, acyclic. The error names the
  /// first offending operator or tensor.
  Status validate() const;

  int64_t parameter_bytes() const;  ///< sum over parameter tensors
  double total_flops() const;

 private:
  std::vector<Operator> ops_;
  std::vector<Tensor> tensors_;
  std::map<std::string, TensorId, std::less<>> tensor_index_;
};

/// FLOP and byte accounting for one operator from its type, attributes and tensor shapes; sets flops,
/// bytes_read, bytes_written and known. Unknown types get flops = bytes moved and known = false.
void annotate_work(const Graph& graph, Operator& op);
/// annotate_work for every operator, then assigns param_bytes (each parameter to its first consumer).
void annotate_work(Graph& graph);

/// A decoder's key or value cache as real exporters write it: a graph input (`past_key.L`) read by one operator
/// that also writes a graph output (`present_key.L`) of the same type and shape except one axis, which is longer
/// (the new tokens appended). A runtime keeps the cache resident between steps and appends in place, so the cache
/// is state of that operator's device for the whole run and `present` reuses its buffer.
struct KvCache {
  TensorId past = kNone;
  TensorId present = kNone;
  OpId op = kNone;    ///< the operator that reads `past` and writes `present`
  int axis = 0;       ///< the sequence axis
  int layer = -1;     ///< layer index from the tensor name (`past_key.12`, `past_key_values.12.key`), -1 if none
  int64_t bytes = 0;  ///< past.bytes(): what stays resident
};

/// Every KV cache of the graph, in input order.
std::vector<KvCache> find_kv_caches(const Graph& graph);

/// The layer index a name carries ("layers.12/wq", "model.layers.12.self_attn", "h.3", "past_key.12"), or -1.
int layer_index(const std::string& name);

/// Graphviz text of the graph (operators as nodes, activation tensors as edges).
std::string to_dot(const Graph& graph);

}  // namespace moirai
