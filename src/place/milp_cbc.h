// Solves a MilpModel with CBC (COIN-OR branch and cut) the way the `cbc` program does (CbcMain0/CbcMain1, so
// preprocessing, cuts and heuristics are on), with a named warm start and progress reports.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "place/milp_model.h"

namespace moirai {

struct MilpSolveOptions {
  double time_limit_s = 60;  ///< wall clock
  double gap = 1e-4;         ///< relative gap at which to stop
  int threads = 2;
  std::vector<double> start;  ///< full warm start (one value per column), empty = none
  std::function<void(const std::string&)> progress;  ///< a line every progress_every_s seconds; may be empty
  double progress_every_s = 3;
  bool preprocess = true;  ///< CglPreProcess; LNS windows turn it off (it crashed once on their fixed columns)
};

struct MilpSolveResult {
  std::string status = "no solution";  ///< "optimal", "feasible", "time limit", "infeasible", "no solution"
  bool has_solution = false;
  std::vector<double> values;  ///< per column when has_solution
  double objective = 0;
  double bound = 0;  ///< best proven lower bound (minimisation)
  double gap = 0;    ///< (objective - bound) / objective
  long nodes = 0;
  double seconds = 0;
};

/// Solves with CBC. Never throws on solver trouble: the status says what happened.
MilpSolveResult solve_with_cbc(const MilpModel& model, const MilpSolveOptions& options);

}  // namespace moirai
