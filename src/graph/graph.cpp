// Graph IR: tensor/operator storage, dependency queries, topological order and structural validation.
#include "moirai/graph.h"

#include <algorithm>
#include <queue>

#include <fmt/format.h>

namespace moirai {

int64_t dtype_size(DType type) {
  switch (type) {
    case DType::Float32: return 4;
    case DType::Float16: return 2;
    case DType::BFloat16: return 2;
    case DType::Float64: return 8;
    case DType::Int8: return 1;
    case DType::UInt8: return 1;
    case DType::Int16: return 2;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
    case DType::Unknown: return 0;
  }
  return 0;
}

const char* dtype_name(DType type) {
  switch (type) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
    case DType::Float64: return "float64";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
    case DType::Unknown: return "unknown";
  }
  return "unknown";
}

int64_t Tensor::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t Tensor::bytes() const { return elements() * dtype_size(dtype); }

TensorId Graph::add_tensor(Tensor tensor) {
  const auto id = static_cast<TensorId>(tensors_.size());
  auto [it, inserted] = tensor_index_.emplace(tensor.name, id);
  MOIRAI_CHECK(inserted, "duplicate tensor name '" + tensor.name + "'");
  tensors_.push_back(std::move(tensor));
  return id;
}

OpId Graph::add_op(Operator op) {
  const auto id = static_cast<OpId>(ops_.size());
  for (TensorId t : op.outputs) {
    MOIRAI_CHECK(t >= 0 && t < num_tensors(), "operator '" + op.name + "' has an output id out of range");
    Tensor& out = tensor(t);
    MOIRAI_CHECK(out.producer == kNone, "tensor '" + out.name + "' has two producers");
    out.producer = id;
    out.kind = TensorKind::Activation;
  }
  for (TensorId t : op.inputs) {
    MOIRAI_CHECK(t >= 0 && t < num_tensors(), "operator '" + op.name + "' has an input id out of range");
    auto& cons = tensor(t).consumers;
    // An operator may read the same tensor twice (x*x); list it once. Ops are appended in id order.
    if (cons.empty() || cons.back() != id) cons.push_back(id);
  }
  ops_.push_back(std::move(op));
  return id;
}

TensorId Graph::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? kNone : it->second;
}

std::vector<Edge> Graph::edges() const {
  std::vector<Edge> result;
  for (OpId dst = 0; dst < num_ops(); ++dst) {
    for (TensorId t : op(dst).inputs) {
      const OpId src = tensor(t).producer;
      if (src != kNone) result.push_back({src, dst, t});
    }
  }
  std::sort(result.begin(), result.end(), [](const Edge& a, const Edge& b) {
    return std::tie(a.src, a.dst, a.tensor) < std::tie(b.src, b.dst, b.tensor);
  });
  result.erase(std::unique(result.begin(), result.end(),
                           [](const Edge& a, const Edge& b) {
                             return a.src == b.src && a.dst == b.dst && a.tensor == b.tensor;
                           }),
               result.end());
  return result;
}

std::vector<OpId> Graph::predecessors(OpId id) const {
  std::vector<OpId> result;
  for (TensorId t : op(id).inputs) {
    if (tensor(t).producer != kNone) result.push_back(tensor(t).producer);
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

std::vector<OpId> Graph::successors(OpId id) const {
  std::vector<OpId> result;
  for (TensorId t : op(id).outputs) {
    result.insert(result.end(), tensor(t).consumers.begin(), tensor(t).consumers.end());
  }
  std::sort(result.begin(), result.end());
  result.erase(std::unique(result.begin(), result.end()), result.end());
  return result;
}

Expected<std::vector<OpId>> Graph::topological_order() const {
  const int n = num_ops();
  std::vector<int> indegree(static_cast<size_t>(n), 0);
  for (OpId id = 0; id < n; ++id) indegree[static_cast<size_t>(id)] = static_cast<int>(predecessors(id).size());
  // Min-heap on id: ties go to the smallest id, so the order is unique.
  std::priority_queue<OpId, std::vector<OpId>, std::greater<>> ready;
  for (OpId id = 0; id < n; ++id)
    if (indegree[static_cast<size_t>(id)] == 0) ready.push(id);
  std::vector<OpId> order;
  order.reserve(static_cast<size_t>(n));
  while (!ready.empty()) {
    const OpId id = ready.top();
    ready.pop();
    order.push_back(id);
    for (OpId s : successors(id))
      if (--indegree[static_cast<size_t>(s)] == 0) ready.push(s);
  }
  if (static_cast<int>(order.size()) != n) {
    for (OpId id = 0; id < n; ++id) {
      if (indegree[static_cast<size_t>(id)] > 0) {
        return Error{fmt::format("graph '{}': cycle through operator '{}' ({})", name, op(id).name, op(id).type)};
      }
    }
  }
  return order;
}

Status Graph::validate() const {
  for (OpId id = 0; id < num_ops(); ++id) {
    const Operator& o = op(id);
    for (TensorId t : o.inputs) {
      if (t < 0 || t >= num_tensors())
        return Error{fmt::format("graph '{}': operator '{}' reads tensor id {} out of range", name, o.name, t)};
      const Tensor& in = tensor(t);
      if (in.kind == TensorKind::Activation && in.producer == kNone)
        return Error{fmt::format("graph '{}': operator '{}' reads '{}', which has no producer and is not a graph "
                                 "input or parameter", name, o.name, in.name)};
    }
    for (TensorId t : o.outputs) {
      if (t < 0 || t >= num_tensors())
        return Error{fmt::format("graph '{}': operator '{}' writes tensor id {} out of range", name, o.name, t)};
      if (tensor(t).producer != id)
        return Error{fmt::format("graph '{}': tensor '{}' written by operator '{}' names another producer", name,
                                 tensor(t).name, o.name)};
    }
  }
  MOIRAI_TRY(topological_order());
  return Ok{};
}

int64_t Graph::parameter_bytes() const {
  int64_t sum = 0;
  for (const Tensor& t : tensors_)
    if (t.kind == TensorKind::Parameter) sum += t.bytes();
  return sum;
}

double Graph::total_flops() const {
  double sum = 0;
  for (const Operator& o : ops_) sum += o.flops;
  return sum;
}

}  // namespace moirai
