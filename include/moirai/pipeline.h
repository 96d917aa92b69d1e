// Pipeline: the whole job from files to a validated plan, shared by the CLI and the bench:
// import -> coarsen -> cost (-> profile) -> place -> simulate -> validate.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/graph.h"
#include "moirai/partition.h"
#include "moirai/placer.h"
#include "moirai/progress.h"
#include "moirai/report.h"
#include "moirai/simulate.h"

namespace moirai {

struct ProblemOptions {
  std::string input;         ///< an ONNX model or a profiled instance (.json)
  std::string cluster_path;  ///< required for a model (unless `cluster` is set); ignored for an instance
  std::optional<Cluster> cluster;  ///< a cluster made in memory, used instead of cluster_path
  std::map<std::string, int64_t> dims;
  bool optional_dims = false;  ///< ImportOptions::optional_dims
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

/// One method run on one problem: placed, re-simulated and validated.
struct MethodRun {
  std::string method;
  std::string error;  ///< empty on success; otherwise why the method produced no plan
  std::string error_setting;  ///< the setting `error` is about (Error::setting), if any
  PlaceResult result;
  Schedule schedule;
  double placement_time_s = 0;
  std::vector<std::string> violations;  ///< validator findings (empty = valid plan)
  bool fits = true;                     ///< every device within capacity
  bool memory_ordered = false;          ///< the method's own order overflowed; BTSearch's per-device order fits
  /// Set when operators were split (GenEFlow): `schedule` and `result.placement` are then the partition's view
  /// in the original table's terms, and the validator ran on the expanded problem.
  std::shared_ptr<const PartitionResult> partition;

  bool ok() const { return error.empty() && violations.empty(); }
};

/// Every method name run_method accepts: the registered placers, then "geneflow".
std::vector<std::string> method_names();

/// Places with `method`, simulates the placement and validates the schedule. Never throws on a method failure:
/// the error is recorded in the run (the bench needs a row for every method).
/// "geneflow" = GenEFlow seeded with the plan of `seed_method` (one of seed_method_names(); empty = "best": the
/// best whole-operator plan of heuristic_placer_names() and the MILP); `refine_with_geneflow` (--partition) lets
/// GenEFlow refine any method's plan. A refined plan answers the split problem: its lower bound is the split
/// relaxation's and its status is "optimal" only when it meets that bound.
MethodRun run_method(const Problem& problem, const std::string& method, const PlaceOptions& options,
                     bool refine_with_geneflow = false, const std::string& seed_method = {});

/// GenEFlow's seeds: "best" (the one-pass heuristics and the MILP), "heuristics" (those heuristics only), or any
/// registered placer.
std::vector<std::string> seed_method_names();

/// GenEFlow on top of a finished whole-operator run of any method (`--method all` seeds it with the best plan
/// of every other method): method "geneflow", never slower than the seed; the time includes the seed's.
MethodRun geneflow_from(const Problem& problem, MethodRun seed, const PlaceOptions& options);

/// `--partition` on a finished run: GenEFlow refines its plan (a run that failed or does not fit is returned as
/// it is); the method's name is kept.
MethodRun refine_run(const Problem& problem, MethodRun run, const PlaceOptions& options);

/// Places with one placer object (also one outside the registry, e.g. make_throughput_placer), simulates the
/// placement and validates the schedule, as run_method does for a whole-operator method.
MethodRun run_placer(const Problem& problem, const Placer& placer, const PlaceOptions& options);

/// Re-simulates a plan file on its problem (`moirai simulate`): whole operators through the simulator, split
/// operators (plan `parts` + `split`) through the partition stage. Errors name the file and the mismatch.
Expected<MethodRun> resimulate(const Problem& problem, const PlanFile& plan, const SimOptions& sim);

/// Validates a plan file exactly as written (its operators' and transfers' times and devices, makespan and peak
/// memory) against the problem's cost table; each message names the file's field. Empty = valid. A split
/// operator's parts are checked one by one on the expanded problem (fields "ops[i].parts[k]").
Expected<std::vector<std::string>> validate_as_written(const Problem& problem, const PlanFile& plan,
                                                       const SimOptions& sim);

/// The name of the cache-length dimension of decode models (`--context N` sets it).
inline constexpr const char* kContextDim = "context";

/// Decode models: the largest cache length (the `context` dim) at which `placement` (operators of `problem`,
/// matched by name) fits every device's usable memory, found by rebuilding the problem at other lengths
/// (`options` as `problem` was loaded). A linear guess from two lengths is checked at the guess and one above, and
/// widened by doubling or bisection when memory is not linear in the length. Errors when the model has no KV
/// cache or the operators change with the length.
Expected<int64_t> largest_context(const ProblemOptions& options, const Problem& problem, const Placement& placement,
                                  const SimOptions& sim);

/// `place --context max`: the largest cache length at which `method` finds a plan that fits, by bisection between
/// 1 and the length whose cache fills all usable memory left by the weights (each probe rebuilds the problem and
/// places it). `progress` (may be empty) hears one line per probe. Errors when the model has no KV cache or no
/// plan fits even at context 1.
struct ContextSearch {
  int64_t context = 0;      ///< the largest length found
  ProblemOptions options;   ///< `options` with that length
  Problem problem;          ///< the problem at that length
  MethodRun run;            ///< the method's plan there
};
Expected<ContextSearch> place_at_largest_context(const ProblemOptions& options, const std::string& method,
                                                 const PlaceOptions& place, bool refine_with_geneflow,
                                                 const ProgressFn& progress);

/// The Plan (report stage) of a finished run, with split operators' parts when GenEFlow split any.
Plan plan_of(const Problem& problem, const MethodRun& run, const SimOptions& sim, PlanInputs inputs = {});

}  // namespace moirai
