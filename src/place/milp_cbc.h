// Solves a MilpModel with CBC (COIN-OR branch and cut) the way the `cbc` program does (CbcMain0/CbcMain1, so
// preprocessing, cuts and heuristics are on), with a named warm start and progress reports. By default the
// solve runs in a forked child process, so a crash inside CBC/Cgl (seen once: a segfault in libCgl during LNS)
// or a solver that overruns its time limit cannot take the caller down: a crash gives status "solver crashed",
// an overrun (CBC checks its clock only between steps, and one strong-branching step can take several seconds
// on a loaded machine) gives "time limit" with the last incumbent the child streamed before it was killed.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "milp_model.h"
#include "moirai/placer.h"
#include "moirai/progress.h"

namespace moirai {

struct MilpSolveOptions {
  double time_limit_s = 60;  ///< wall clock
  double gap = 1e-4;         ///< relative gap at which to stop
  int threads = 2;
  std::vector<double> start;  ///< full warm start (one value per column), empty = none
  ProgressFn progress;  ///< a line every progress_every_s seconds; may be empty
  /// Each improving solution CBC finds (objective, one value per column), from CBC's threads (serialised); the
  /// forked solve streams them to the caller so that a killed child still returns its best. May be empty.
  std::function<void(double, const std::vector<double>&)> incumbent;
  double progress_every_s = 3;
  bool preprocess = true;  ///< CglPreProcess; LNS windows turn it off (it crashed once on their fixed columns)
  /// Extra CBC command-line options inserted before `-solve` (e.g. {"-cuts", "off"}); for tuning experiments.
  std::vector<std::string> cbc_args;
  /// Solve in a forked child (crash isolation). Off only for debugging CBC itself in one process.
  bool isolate = true;
  /// The child is killed when it has not answered after time_limit_s + kill_margin_s (wall clock); negative =
  /// 1 s. CBC overruns its limit in the root LP and in preprocessing, and the caller's time limit is a promise:
  /// an overrun costs that solve's answer, never the caller's incumbent.
  double kill_margin_s = -1;
};

/// Test hook read by the solver child only: when the environment variable MOIRAI_MILP_INJECT_FAULT is "abort",
/// "segv", "exit" or "hang", the child sends one progress line and then fails that way instead of solving;
/// "hang after solve" solves and then hangs instead of answering (an overrun after incumbents were found).
inline constexpr const char* kMilpFaultEnv = "MOIRAI_MILP_INJECT_FAULT";

/// How a solve ended. time_limit also when the child overran and was killed (see diagnostic; then the values are
/// its last streamed incumbent, or else the start, when they satisfy the model, and the bound is 0); crashed when
/// the child died without a result (see diagnostic).
enum class SolveStatus { optimal, feasible, time_limit, infeasible, no_solution, crashed };

/// The plan status a solve gives (the same name: "optimal", "time limit", "solver crashed", ...).
PlanStatus plan_status(SolveStatus status);
/// The status as plans, reports and progress lines name it: plan_status_name(plan_status(status)).
const char* status_name(SolveStatus status);
/// The status named `name` (status_name's inverse), nullopt for any other text.
std::optional<SolveStatus> status_named(const std::string& name);

struct MilpSolveResult {
  SolveStatus status = SolveStatus::no_solution;
  bool has_solution = false;
  std::vector<double> values;  ///< per column when has_solution
  double objective = 0;
  double bound = 0;  ///< best proven lower bound (minimisation)
  double gap = 0;    ///< (objective - bound) / objective
  long nodes = 0;
  double seconds = 0;
  std::string diagnostic;  ///< why the solver crashed or was killed (signal, exit code, overrun), else empty
};

/// Solves with CBC. Never throws on solver trouble, never crashes with the solver: the status says what happened.
/// Progress lines are delivered on the calling thread.
MilpSolveResult solve_with_cbc(const MilpModel& model, const MilpSolveOptions& options);

/// The solve itself, in this process (what the child runs); progress goes straight to options.progress from
/// CBC's threads (serialised). Prefer solve_with_cbc.
MilpSolveResult solve_in_process(const MilpModel& model, const MilpSolveOptions& options);

}  // namespace moirai
