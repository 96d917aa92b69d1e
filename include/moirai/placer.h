// Placer: one interface for every placement method, and a registry from name to method that the CLI and the
// bench loop over. A placer returns a Placement; the simulator judges it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/placement.h"
#include "moirai/progress.h"
#include "moirai/simulate.h"

namespace moirai {

struct PlaceOptions {
  SimOptions sim;             ///< the model the plan is judged under (contention on or off)
  double time_limit_s = 60;   ///< wall-clock budget for search-based methods
  double gap = 1e-4;          ///< relative optimality gap at which the MILP stops
  int threads = 2;
  uint64_t seed = 1;
  int episodes = 200;     ///< Placeto training episodes
  int generations = 60;   ///< GenEFlow
  int population = 32;    ///< GenEFlow
  std::string export_mps;       ///< MILP: write the model to this MPS file
  std::string import_solution;  ///< MILP: read a solution (column values) instead of solving
  /// Progress lines for long work (incumbent, bound, episode...). May be empty.
  ProgressFn progress;
  /// Polled by the list heuristics whose time grows with the ready set (the ETF family): true = give up with an
  /// error (a caller out of time, e.g. the MILP's warm start). May be empty.
  std::function<bool()> stop;
};

/// Where a method's plan stands: `ok` for the heuristics; what the MILP proved (optimal, feasible) or why it
/// stopped (time limit, infeasible, no solution, solver crashed), or that it kept its warm start (heuristic kept)
/// or read a solution (imported).
enum class PlanStatus { ok, optimal, feasible, time_limit, infeasible, no_solution, crashed, heuristic_kept, imported };

/// The name plans, tables and reports show: "ok", "optimal", "feasible", "time limit", "infeasible",
/// "no solution", "solver crashed", "heuristic kept", "imported".
const char* plan_status_name(PlanStatus status);
/// The inverse of plan_status_name; none for a name it never gives.
std::optional<PlanStatus> plan_status_from_name(std::string_view name);

struct PlaceResult {
  Placement placement;
  PlanStatus status = PlanStatus::ok;
  double objective_ms = 0;    ///< the method's own estimate (MILP objective); 0 when none
  double lower_bound_ms = 0;  ///< a proven lower bound on the makespan, 0 when none
  std::string lower_bound_source;  ///< which bound gave it (see moirai/bounds.h)
  std::string mode;           ///< e.g. "exact" or "lns" for the MILP
  double train_time_s = 0;    ///< Placeto: training time (reported apart from inference)
  /// MILP ablation: where the plan came from and what each step gave (0 when not applicable).
  std::string warm_start_method;  ///< the heuristic whose plan seeded the MILP
  double warm_start_ms = 0;       ///< its makespan in the MILP's schedule model
  double polished_ms = 0;         ///< after the local search, before CBC
  /// MILP multilevel solve, for each V-cycle run, coarsest level first: the level's operator
  /// count, the makespan reached there (that level's MILP model) and how ("optimal", "time limit"... at the
  /// coarsest level, "local search" below).
  struct Level {
    int ops = 0;
    double makespan_ms = 0;
    std::string status;
  };
  std::vector<Level> levels;
  int in_flight = 0;  ///< throughput plans: the requests in flight whose memory the plan holds (0 = not one)
};

class Placer {
 public:
  virtual ~Placer() = default;
  virtual std::string name() const = 0;
  /// A one-line description for --help and reports.
  virtual std::string summary() const = 0;
  virtual Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const = 0;
};

/// Every registered method name, in the order they are listed to users.
std::vector<std::string> placer_names();
/// The registered methods that build their plan in one pass (all but the searches, Placeto and the MILP), in
/// the same order: the MILP's warm starts and GenEFlow's "heuristics" seeds.
std::vector<std::string> heuristic_placer_names();
/// The placer with this name, or an error listing the known names.
Expected<std::unique_ptr<Placer>> make_placer(const std::string& name);

}  // namespace moirai
