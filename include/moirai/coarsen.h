// Coarsening: contracts the operator groups an inference backend fuses at run time (rules as data, one table
// per backend), then optionally merges further down to a node budget for the solver.
#pragma once

#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/error.h"
#include "moirai/graph.h"

namespace moirai {

struct CoarsenOptions {
  std::string fusion = "onnxruntime";  ///< backend rule set: onnxruntime, tensorrt, tvm, none
  int max_nodes = 0;                   ///< 0 = no budget step
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

/// Coarsens `graph`. The cluster is used only by the --max-nodes step (transfer/compute ratios).
Expected<CoarsenResult> coarsen(const Graph& graph, const Cluster& cluster, const CoarsenOptions& options);

}  // namespace moirai
