// Coarsening read back from ONNX Runtime: the model (with seeded random weights when it is weight-stripped) is
// loaded by tools/ort_optimize.mjs (Node, onnxruntime-node, CPU execution provider) at one graph optimisation
// level, which writes the graph ONNX Runtime would run; every node of that graph is mapped back to the original
// nodes it replaced, by the tensors at its boundary. The result partitions the original nodes into the groups
// the runtime really fuses, and `--fusion onnxruntime-runtime[:LEVEL]` coarsens along exactly those groups.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/error.h"
#include "moirai/graph.h"

namespace moirai {

/// ONNX Runtime's graph optimisation levels, in order: basic, extended, all.
std::vector<std::string> runtime_levels();

struct RuntimeGroup {
  std::string node;                 ///< the runtime node's name
  std::string type;                 ///< its op type, "domain:type" outside the default domain
  std::vector<std::string> origin;  ///< the original nodes it replaced (importer names, file order)
};

struct RuntimeGroups {
  std::string ort_version;
  std::string level;
  std::string model_hash;  ///< FNV-1a 64 of the model file, hex
  int original_nodes = 0;
  int optimized_nodes = 0;           ///< nodes of ONNX Runtime's optimised graph
  std::vector<RuntimeGroup> groups;  ///< one per runtime node that replaced original nodes, in runtime order
  /// Runtime nodes that replace no original node (layout changes it inserts: ReorderInput, ReorderOutput...),
  /// as "name (type)".
  std::vector<std::string> added;
  /// Original nodes no runtime node accounts for (dead code ONNX Runtime removed); each joined the group of a
  /// neighbour in the data flow.
  std::vector<std::string> removed;
  std::string cache_path;  ///< where the groups are cached ("" when no cache could be written)
  bool from_cache = false;
};

struct RuntimeFusionOptions {
  std::string level = "extended";
  bool use_cache = true;
  uint64_t seed = 1;  ///< random weights for a weight-stripped model (they do not change the groups)
};

/// The groups ONNX Runtime fuses in `model` at `options.level`, from the cache when its key (model hash, ORT
/// version, level) matches, else computed (Node and onnxruntime-node needed) and cached next to the model when
/// that directory is writable, else under $XDG_CACHE_HOME/moirai (or ~/.cache/moirai).
Expected<RuntimeGroups> runtime_groups(const std::string& model, const RuntimeFusionOptions& options = {});

/// Maps an optimised graph back onto the original: both ONNX files already on disk. Exposed for tests.
Expected<RuntimeGroups> map_optimized_graph(const std::string& original, const std::string& optimized);

/// True for the fusion names that read the groups from the runtime: "onnxruntime-runtime" (level extended) and
/// "onnxruntime-runtime:LEVEL".
bool is_runtime_fusion(const std::string& fusion);
/// The level a runtime fusion name asks for, or an error naming the known levels.
Expected<std::string> runtime_fusion_level(const std::string& fusion);

/// coarsen() for a graph imported from `model_path`: a runtime fusion name coarsens along runtime_groups(),
/// any other name along the rule set of that name.
Expected<CoarsenResult> coarsen_model(const Graph& graph, const std::string& model_path, const Cluster& cluster,
                                      const CoarsenOptions& options);

}  // namespace moirai
