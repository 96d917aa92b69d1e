// The original ONNX model as the exporter sees it (private to src/export): nodes named as the importer names
// them, who produces each value, what each node reads (including outer-scope reads of subgraphs), static types,
// and initializers with their weights resolved (inline, external and readable, or external and absent).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "moirai/error.h"
#include "moirai/graph.h"
#include "onnx/onnx_pb.h"

namespace moirai::export_detail {

struct OnnxModel {
  std::string path;
  onnx::ModelProto proto;                       ///< graph inputs with dynamic dims fixed
  std::vector<std::string> names;               ///< per node, as the importer names them
  std::unordered_map<std::string, int> node_by_name;
  std::unordered_map<std::string, int> producer;     ///< value -> node
  std::unordered_map<std::string, int> initializer;  ///< name -> index in graph().initializer()
  std::unordered_set<std::string> graph_inputs;
  std::vector<int> order;                        ///< topological node order (ties by file order)
  std::vector<int> position;                     ///< per node: index in `order`
  std::vector<std::vector<std::string>> reads;   ///< per node: values read (non-empty names, once each)
  std::unordered_map<std::string, onnx::TypeProto> types;  ///< static types where known
};

/// Node names as the importer gives them: the node's name, or TYPE_INDEX when empty or taken.
std::vector<std::string> importer_node_names(const onnx::GraphProto& graph);

/// Loads `path`: parses it, fixes the dynamic input dims like the importer, names nodes, orders them, and
/// collects static types (from the imported `graph`, whose shapes are static, then from ONNX shape inference).
Expected<OnnxModel> load_onnx_model(const std::string& path, const std::map<std::string, int64_t>& dims,
                                    const Graph& graph);

/// Where an external initializer's data stands after inline_external_data.
enum class ExternalData { Inlined, Stripped, Missing };
/// Reads the external data of `t` from beside `model` into `t` (inline raw data): Inlined, or Stripped when
/// the weights file is there but holds no data for it (a weight-stripped model), or Missing when there is no
/// such file. Non-external tensors are left as they are (Inlined).
Expected<ExternalData> inline_external_data(onnx::TensorProto& t, const std::string& model);

/// An initializer ready to copy into a sub-model: data inline when the model has it; a reference to an empty
/// `weights.absent` beside the sub-model when the model is weight-stripped. `absent` says which.
struct ResolvedInitializer {
  onnx::TensorProto tensor;
  bool absent = false;
};
Expected<ResolvedInitializer> resolve_initializer(const OnnxModel& model, int index);

/// ONNX element type <-> names used in the manifest ("float32", "int64", ...).
std::string elem_type_name(int32_t elem_type);
int32_t elem_type_of(DType type);

}  // namespace moirai::export_detail
