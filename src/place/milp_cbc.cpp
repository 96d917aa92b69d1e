// CBC back end for MilpModel: translate to OsiClp (names kept so the MIP start can be given by name), run
// CbcMain1 with `-threads N -timeMode elapsed -sec S -ratioGap G`, report progress through a CbcEventHandler,
// and map CBC's status to ours. The solve runs in a forked child (milp_cbc_child.cpp holds the process
// plumbing); this file is what the child (or, with isolate off, the caller) runs.
#include "milp_cbc.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>

#include <coin/CbcEventHandler.hpp>
#include <coin/CbcModel.hpp>
#include <coin/CoinPackedMatrix.hpp>
#include <coin/OsiClpSolverInterface.hpp>
#include <fmt/format.h>

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;

struct ProgressState {
  std::mutex mutex;
  Clock::time_point t0 = Clock::now();
  double last = -1e9;
  double every = 3;
  ProgressFn sink;
  std::function<void(double, const std::vector<double>&)> incumbent;
  int num_cols = 0;
  double streamed = 1e300;  // objective of the last incumbent passed on
};

// Cloned into every thread's model by CBC; the shared state keeps one clock and one rate limit.
class ProgressHandler : public CbcEventHandler {
 public:
  explicit ProgressHandler(std::shared_ptr<ProgressState> state) : state_(std::move(state)) {}
  CbcEventHandler* clone() const override { return new ProgressHandler(*this); }
  CbcAction event(CbcEvent which) override {
    if (!model_) return noAction;
    if (which != node && which != solution && which != heuristicSolution && which != treeStatus) return noAction;
    std::lock_guard<std::mutex> lock(state_->mutex);
    if ((which == solution || which == heuristicSolution) && state_->incumbent) {
      // Only solutions in the model's own columns (preprocessing renumbers them; the placer turns it off).
      const double* best = model_->bestSolution();
      const double obj = model_->getMinimizationObjValue();
      if (best && model_->getNumCols() == state_->num_cols && obj < state_->streamed) {
        state_->streamed = obj;
        state_->incumbent(obj, std::vector<double>(best, best + state_->num_cols));
      }
    }
    if (!state_->sink) return noAction;
    const double now = std::chrono::duration<double>(Clock::now() - state_->t0).count();
    if (now - state_->last < state_->every) return noAction;
    state_->last = now;
    const double inc = model_->getMinimizationObjValue();
    const double bound = model_->getBestPossibleObjValue();
    if (inc < 1e40)
      state_->sink(fmt::format("milp: {:.1f} s, incumbent {:.6g}, bound {:.6g}, gap {:.2f}%", now, inc, bound,
                               inc > 0 ? 100 * (inc - bound) / inc : 0.0));
    else
      state_->sink(fmt::format("milp: {:.1f} s, no incumbent yet, bound {:.6g}", now, bound));
    return noAction;
  }

 private:
  std::shared_ptr<ProgressState> state_;
};

int no_callback(CbcModel*, int) { return 0; }

}  // namespace

PlanStatus plan_status(SolveStatus status) {
  switch (status) {
    case SolveStatus::optimal: return PlanStatus::optimal;
    case SolveStatus::feasible: return PlanStatus::feasible;
    case SolveStatus::time_limit: return PlanStatus::time_limit;
    case SolveStatus::infeasible: return PlanStatus::infeasible;
    case SolveStatus::no_solution: return PlanStatus::no_solution;
    case SolveStatus::crashed: return PlanStatus::crashed;
  }
  return PlanStatus::no_solution;
}

const char* status_name(SolveStatus status) { return plan_status_name(plan_status(status)); }

std::optional<SolveStatus> status_named(const std::string& name) {
  for (SolveStatus s : {SolveStatus::optimal, SolveStatus::feasible, SolveStatus::time_limit, SolveStatus::infeasible,
                        SolveStatus::no_solution, SolveStatus::crashed})
    if (name == status_name(s)) return s;
  return std::nullopt;
}

MilpSolveResult solve_in_process(const MilpModel& m, const MilpSolveOptions& opt) {
  const auto t0 = Clock::now();
  MilpSolveResult result;
  OsiClpSolverInterface solver;
  const double inf = solver.getInfinity();
  auto bound = [&](double v) { return v >= kMilpInf ? inf : v <= -kMilpInf ? -inf : v; };
  // Row-major matrix.
  std::vector<CoinBigIndex> starts;
  std::vector<int> index, lengths;
  std::vector<double> elems, row_lb, row_ub, col_lb, col_ub, obj;
  for (const auto& r : m.rows) {
    starts.push_back(static_cast<CoinBigIndex>(index.size()));
    lengths.push_back(static_cast<int>(r.index.size()));
    index.insert(index.end(), r.index.begin(), r.index.end());
    elems.insert(elems.end(), r.coef.begin(), r.coef.end());
    row_lb.push_back(bound(r.lb));
    row_ub.push_back(bound(r.ub));
  }
  for (const auto& c : m.cols) col_lb.push_back(bound(c.lb)), col_ub.push_back(bound(c.ub)), obj.push_back(c.obj);
  CoinPackedMatrix matrix(false, m.num_cols(), m.num_rows(), static_cast<CoinBigIndex>(elems.size()), elems.data(),
                          index.data(), starts.data(), lengths.data());
  solver.loadProblem(matrix, col_lb.data(), col_ub.data(), obj.data(), row_lb.data(), row_ub.data());
  solver.setIntParam(OsiNameDiscipline, 2);
  for (int c = 0; c < m.num_cols(); ++c) {
    if (m.cols[static_cast<size_t>(c)].integer) solver.setInteger(c);
    solver.setColName(c, m.cols[static_cast<size_t>(c)].name);
  }
  for (int r = 0; r < m.num_rows(); ++r) solver.setRowName(r, m.rows[static_cast<size_t>(r)].name);
  solver.messageHandler()->setLogLevel(0);

  CbcModel model(solver);
  CbcMain0(model);
  model.setLogLevel(0);
  if (!opt.start.empty()) {
    std::vector<std::pair<std::string, double>> start;
    for (int c = 0; c < m.num_cols(); ++c) start.push_back({m.cols[static_cast<size_t>(c)].name, opt.start[static_cast<size_t>(c)]});
    model.setMIPStart(start);
  }
  auto state = std::make_shared<ProgressState>();
  state->every = opt.progress_every_s;
  state->sink = opt.progress;
  state->incumbent = opt.incumbent;
  state->num_cols = m.num_cols();
  ProgressHandler handler(state);
  model.passInEventHandler(&handler);

  const std::string threads = std::to_string(std::max(1, opt.threads));
  const std::string sec = fmt::format("{:.3f}", std::max(0.05, opt.time_limit_s));
  const std::string gap = fmt::format("{:.9g}", std::max(0.0, opt.gap));
  std::vector<const char*> argv{"moirai-milp", "-log", "0", "-slog", "0", "-timeMode", "elapsed", "-sec", sec.c_str(),
                                "-ratioGap", gap.c_str()};
  if (!opt.preprocess) argv.insert(argv.end(), {"-preprocess", "off"});
  if (opt.threads > 1) argv.insert(argv.end(), {"-threads", threads.c_str()});
  for (const auto& a : opt.cbc_args) argv.push_back(a.c_str());
  argv.insert(argv.end(), {"-solve", "-quit"});
  CbcMain1(static_cast<int>(argv.size()), argv.data(), model, no_callback);

  result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  result.nodes = model.getNodeCount();
  const double* best = model.bestSolution();
  const double objective = model.getMinimizationObjValue();
  result.bound = model.getBestPossibleObjValue();
  if (best && objective < 1e40 && model.getNumCols() == m.num_cols()) {
    result.has_solution = true;
    result.values.assign(best, best + m.num_cols());
    result.objective = m.objective(result.values);
    // Stopped before the root finished (time limit, loaded machine), CBC reports "no bound" as a huge value:
    // that is no proof of anything, so the bound is unknown (0), never the incumbent. Proven optimal: equal.
    if (model.isProvenOptimal()) result.bound = result.objective;
    else if (!std::isfinite(result.bound) || result.bound > result.objective * (1 + 1e-9) + 1e-12) result.bound = 0;
    result.gap = result.objective > 0 ? std::max(0.0, (result.objective - result.bound) / result.objective) : 0.0;
    if (model.isProvenOptimal() || result.gap <= opt.gap + 1e-12) result.status = SolveStatus::optimal;
    else if (model.status() == 1 && model.secondaryStatus() == 4) result.status = SolveStatus::time_limit;
    else result.status = SolveStatus::feasible;
  } else {
    result.status = model.isProvenInfeasible() ? SolveStatus::infeasible : SolveStatus::no_solution;
    if (!std::isfinite(result.bound) || result.bound > 1e40) result.bound = 0;
  }
  return result;
}

}  // namespace moirai
