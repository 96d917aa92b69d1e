// Pipeline: the whole job from files to a validated plan, shared by the CLI and the bench:
// import -> coarsen -> cost (-> profile) -> place -> simulate -> validate.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/graph.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"

namespace moirai {

struct ProblemOptions {
  std::string input;         ///< an ONNX model or a profiled instance (.json)
  std::string cluster_path;  ///< required for a model; ignored for an instance
  std::map<std::string, int64_t> dims;
  CoarsenOptions coarsen;
  std::string profile_path;  ///< optional measured profile
};

/// Everything the later stages need about one (model or instance, cluster) pair.
struct Problem {
  CostTable table;
  std::optional<Graph> graph;        ///< the imported graph (models only)
  std::optional<Graph> coarse;       ///< the coarsened graph the table was built from (models only)
  std::optional<Cluster> cluster;
  std::vector<CoarsenStep> steps;
};

/// Loads a model + cluster (or an instance) into a cost table. Errors name the file and the problem.
Expected<Problem> load_problem(const ProblemOptions& options);

}  // namespace moirai
