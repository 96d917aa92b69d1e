// Coarsening: contracts the operator groups an inference backend fuses at run time (rules as data, one table
// per backend), then optionally merges further down to a node budget for the solver.
#pragma once

#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/graph.h"

namespace moirai {

struct CoarsenOptions {
  std::string fusion = "onnxruntime";  ///< backend rule set: onnxruntime, tensorrt, tvm, none
  int max_nodes = 0;                   ///< 0 = no budget step
  /// Explicit groups of original ONNX node names (what a runtime really fused, see runtime_fusion.h). When
  /// non-empty they replace the rule set: each group with more than one operator of the graph becomes one node,
  /// names the graph does not have are skipped, and `fusion` only names the step.
  std::vector<std::vector<std::string>> groups;
};

struct CoarsenStep {
  std::string name;  ///< e.g. "fusion:onnxruntime", "max-nodes:60"
  int nodes_before = 0;
  int nodes_after = 0;
};

struct CoarsenResult {
  Graph graph;  ///< coarse graph; every operator's origin lists the original ONNX node names
  std::vector<CoarsenStep> steps;
};

/// Names of the available fusion rule sets.
std::vector<std::string> fusion_backends();
/// The backend, version and level a rule set describes ("ONNX Runtime 1.30, CPU execution provider, graph
/// optimisation level all"), or "" for an unknown name.
std::string fusion_description(const std::string& fusion);

/// Coarsens `graph`. The cluster is used only by the --max-nodes step (transfer/compute ratios).
Expected<CoarsenResult> coarsen(const Graph& graph, const Cluster& cluster, const CoarsenOptions& options);

/// A coarser cost table: group[i] is the coarse operator that operator i of the finer table belongs to.
struct Contraction {
  CostTable table;
  std::vector<OpId> group;
};

/// Contracts a cost table (no graph needed: profiled instances, the MILP's multilevel solve): merges operators
/// along edges (chains first, then the lightest pairs, one matching per round) until at most `target` remain or no
/// merge is safe. Never closes a cycle; a merged operator's time is the sum of its members' on each device, its
/// parameters their sum; tensors inside a group vanish, and those leaving a group for the same reader groups
/// travel as one bundle (bytes and transfer times add up).
Contraction contract_table(const CostTable& table, int target);

}  // namespace moirai
