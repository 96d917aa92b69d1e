// Large-neighbourhood search for the Moirai MILP on graphs too big for the exact model: slide a window over
// the operators (in the incumbent's start order), free their devices and orders, keep every other operator on
// its device and every pair outside the window's time span in the incumbent's order, and re-solve the full
// makespan objective with CBC, warm-started from the incumbent. Each step can only improve the real objective.
#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "moirai/placer.h"
#include "place/milp_cbc.h"
#include "place/milp_formulation.h"

namespace moirai {

MilpPlan milp_lns(const CostTable& t, const MilpPlan& warm, const PlaceOptions& options, double seconds,
                  int& windows, int& crashes) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto left = [&] { return seconds - std::chrono::duration<double>(Clock::now() - t0).count(); };
  const int n = t.num_ops();
  const auto edges = milp_edges(t);
  MilpPlan best = warm;
  int size = std::min(n, 16);
  windows = 0;
  crashes = 0;
  int stale_passes = 0;
  // A window whose solver crashes keeps the incumbent; after a few crashes the solver is not worth the time.
  constexpr int kMaxCrashes = 3;
  while (left() > 0.5 && stale_passes < 2 && crashes < kMaxCrashes) {
    bool improved = false;
    std::vector<OpId> by_start(t.topo_order.begin(), t.topo_order.end());
    std::stable_sort(by_start.begin(), by_start.end(), [&](OpId a, OpId b) {
      return best.start[static_cast<size_t>(a)] < best.start[static_cast<size_t>(b)];
    });
    const int step = std::max(1, size / 2);
    for (int from = 0; from < n && left() > 0.5 && crashes < kMaxCrashes; from += step) {
      FormulationOptions fo;
      fo.contention = options.sim.contention;
      fo.upper_bound = best.makespan * (1 + 1e-7) + 1e-9;
      fo.incumbent = &best;
      fo.free_op.assign(static_cast<size_t>(n), 0);
      fo.near.assign(static_cast<size_t>(n), 0);
      double lo = 1e300, hi = -1e300;
      for (int p = from; p < std::min(n, from + size); ++p) {
        const auto i = static_cast<size_t>(by_start[static_cast<size_t>(p)]);
        fo.free_op[i] = fo.near[i] = 1;
        lo = std::min(lo, best.start[i]);
        hi = std::max(hi, best.finish[i]);
      }
      for (OpId i = 0; i < n; ++i)  // operators running during the window's span compete with it
        if (best.finish[static_cast<size_t>(i)] >= lo && best.start[static_cast<size_t>(i)] <= hi) fo.near[static_cast<size_t>(i)] = 1;
      auto f = build_formulation(t, fo);
      if (!f.ok()) break;
      MilpSolveOptions so;
      so.time_limit_s = std::min(left(), std::max(2.0, options.time_limit_s / 20));
      so.gap = options.gap;
      so.threads = options.threads;
      so.start = plan_to_values(*f, best);
      so.preprocess = false;
      const auto r = solve_with_cbc(f->model, so);
      ++windows;
      if (r.status == "solver crashed") {
        ++crashes;
        if (options.progress)
          options.progress(fmt::format("milp lns: window {} lost to a solver crash ({}); incumbent kept", windows, r.diagnostic));
      }
      if (!r.has_solution) continue;
      MilpPlan got = values_to_plan(*f, r.values);
      std::vector<double> ok(got.start), ek(got.comm_start);
      for (auto& v : ok) v = std::round(v * 1e7) / 1e7;
      for (auto& v : ek) v = std::round(v * 1e7) / 1e7;
      if (auto tight = evaluate_milp_plan(t, edges, got.device, ok, ek, options.sim.contention)) got = *tight;
      if (got.makespan < best.makespan * (1 - 1e-9)) {
        best = got;
        improved = true;
        if (options.progress)
          options.progress(fmt::format("milp lns: window {} ({} ops from position {}): makespan {:.6g}", windows, size, from, best.makespan));
      }
    }
    stale_passes = improved ? 0 : stale_passes + 1;
    if (!improved) size = std::min(n, size * 3 / 2 + 1);  // widen the neighbourhood when stuck
  }
  return best;
}

}  // namespace moirai
