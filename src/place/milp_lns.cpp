// Large-neighbourhood search for the Moirai MILP on graphs too big for the exact model. Each window frees the
// devices and orders of a few operators; every other operator keeps its device, and every pair outside the
// window keeps the incumbent's order (a chain per device and port: milp_build.cpp adds only the rows the chain
// does not imply). CBC re-solves the full makespan objective warm-started from the incumbent, so a step can
// only improve. Windows are chosen in turn along the incumbent's critical path, on its busiest device, around a
// random instant and by sliding over the start order; their size adapts (grows when windows are solved to
// optimality without a gain, shrinks when CBC runs out of time). Window choices are deterministic for a seed;
// CBC's own search is cut by time, so a run can differ when the machine is loaded.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "moirai/placer.h"
#include "milp_cbc.h"
#include "milp_formulation.h"

namespace moirai {
namespace {

// Operators on one longest path of the plan: from the last to finish, step back to whatever made each start
// when it did (an input's arrival, the operator before it on its device, or a transfer that waited its turn).
std::vector<OpId> critical_path(const CostTable& t, const std::vector<MilpEdge>& edges, const MilpPlan& p) {
  const int n = t.num_ops();
  auto same = [](double a, double b) { return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(a)); };
  std::vector<std::vector<int>> in(static_cast<size_t>(n));
  for (size_t q = 0; q < edges.size(); ++q) in[static_cast<size_t>(edges[q].to)].push_back(static_cast<int>(q));
  OpId cur = 0;
  for (OpId i = 0; i < n; ++i)
    if (p.finish[static_cast<size_t>(i)] > p.finish[static_cast<size_t>(cur)]) cur = i;
  std::vector<OpId> path{cur};
  std::vector<char> seen(static_cast<size_t>(n), 0);
  seen[static_cast<size_t>(cur)] = 1;
  while (true) {
    const double s = p.start[static_cast<size_t>(cur)];
    OpId next = kNone;
    for (int q : in[static_cast<size_t>(cur)])  // an input arriving just in time
      if (same(p.comm_finish[static_cast<size_t>(q)], s)) {
        next = edges[static_cast<size_t>(q)].from;
        break;
      }
    for (OpId j = 0; j < n && next == kNone; ++j)  // the operator before it on its device
      if (j != cur && p.device[static_cast<size_t>(j)] == p.device[static_cast<size_t>(cur)] && same(p.finish[static_cast<size_t>(j)], s))
        next = j;
    if (next == kNone || seen[static_cast<size_t>(next)]) break;
    seen[static_cast<size_t>(next)] = 1;
    path.push_back(cur = next);
  }
  std::reverse(path.begin(), path.end());
  return path;
}

enum class Pick { kCritical, kBusiest, kRandom, kSlide };
constexpr Pick kPicks[] = {Pick::kCritical, Pick::kBusiest, Pick::kRandom, Pick::kSlide};
const char* pick_name(Pick p) {
  switch (p) {
    case Pick::kCritical: return "critical path";
    case Pick::kBusiest: return "busiest device";
    case Pick::kRandom: return "random instant";
    case Pick::kSlide: return "sliding";
  }
  return "?";
}

// `size` operators: those nearest in start time to an anchor chosen by `pick`.
std::vector<OpId> choose_window(const CostTable& t, const std::vector<MilpEdge>& edges, const MilpPlan& p, Pick pick,
                                int size, int& slide, std::mt19937_64& rng) {
  const int n = t.num_ops();
  std::vector<OpId> by_start(t.topo_order.begin(), t.topo_order.end());
  std::stable_sort(by_start.begin(), by_start.end(),
                   [&](OpId a, OpId b) { return p.start[static_cast<size_t>(a)] < p.start[static_cast<size_t>(b)]; });
  std::vector<OpId> pool;
  if (pick == Pick::kCritical) {
    pool = critical_path(t, edges, p);
  } else if (pick == Pick::kBusiest) {
    std::vector<double> busy(static_cast<size_t>(t.num_devices()), 0);
    for (OpId i = 0; i < n; ++i) busy[static_cast<size_t>(p.device[static_cast<size_t>(i)])] += p.finish[static_cast<size_t>(i)] - p.start[static_cast<size_t>(i)];
    const auto k = static_cast<DeviceId>(std::max_element(busy.begin(), busy.end()) - busy.begin());
    for (OpId i : by_start)
      if (p.device[static_cast<size_t>(i)] == k) pool.push_back(i);
  }
  std::vector<OpId> window;
  if (!pool.empty() && static_cast<int>(pool.size()) > size) {  // a contiguous run of the pool
    const auto from = std::uniform_int_distribution<size_t>(0, pool.size() - static_cast<size_t>(size))(rng);
    window.assign(pool.begin() + static_cast<long>(from), pool.begin() + static_cast<long>(from) + size);
  } else if (!pool.empty()) {
    window = pool;
  }
  // Fill up with the operators nearest in start time to the window's middle (or to a chosen instant).
  double at = 0;
  if (!window.empty()) at = p.start[static_cast<size_t>(window[window.size() / 2])];
  else if (pick == Pick::kRandom) at = std::uniform_real_distribution<double>(0, p.makespan)(rng);
  else at = p.start[static_cast<size_t>(by_start[static_cast<size_t>(slide % n)])], slide += std::max(1, size / 2);
  std::vector<char> in(static_cast<size_t>(n), 0);
  for (OpId i : window) in[static_cast<size_t>(i)] = 1;
  std::vector<OpId> rest;
  for (OpId i : by_start)
    if (!in[static_cast<size_t>(i)]) rest.push_back(i);
  std::stable_sort(rest.begin(), rest.end(), [&](OpId a, OpId b) {
    return std::abs(p.start[static_cast<size_t>(a)] - at) < std::abs(p.start[static_cast<size_t>(b)] - at);
  });
  for (size_t j = 0; static_cast<int>(window.size()) < std::min(size, n) && j < rest.size(); ++j) window.push_back(rest[j]);
  return window;
}

}  // namespace

MilpPlan milp_lns(const CostTable& t, const MilpPlan& warm, const PlaceOptions& options, double seconds,
                  int& windows, int& crashes) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto left = [&] { return seconds - std::chrono::duration<double>(Clock::now() - t0).count(); };
  const int n = t.num_ops();
  const auto edges = milp_edges(t);
  std::mt19937_64 rng(options.seed);
  MilpPlan best = warm;
  constexpr int kMinSize = 8, kMaxSize = 40;
  int size = std::min(n, 20), slide = 0, stale = 0;
  windows = 0;
  crashes = 0;
  // A window whose solver crashes keeps the incumbent; after a few crashes the solver is not worth the time.
  constexpr int kMaxCrashes = 3;
  // Stop after every kind of window failed to improve at the largest size, twice over.
  // A window needs its solve plus the 1 s the solver child may overrun before it is killed.
  constexpr double kKillMargin = 1.0;
  double build_s = 0;  // building the last window's model (seconds on 10k operators): the next one needs as long
  while (left() > kKillMargin + 0.3 + build_s && crashes < kMaxCrashes &&
         stale < 8 * static_cast<int>(std::size(kPicks))) {
    const auto built_from = Clock::now();
    const Pick pick = kPicks[windows % std::size(kPicks)];
    const auto window = choose_window(t, edges, best, pick, size, slide, rng);
    FormulationOptions fo;
    fo.contention = options.sim.contention;
    fo.upper_bound = best.makespan * (1 + 1e-7) + 1e-9;
    fo.incumbent = &best;
    fo.free_op.assign(static_cast<size_t>(n), 0);
    fo.near.assign(static_cast<size_t>(n), 0);
    double lo = 1e300, hi = -1e300;
    for (OpId i : window) {
      fo.free_op[static_cast<size_t>(i)] = fo.near[static_cast<size_t>(i)] = 1;
      lo = std::min(lo, best.start[static_cast<size_t>(i)]);
      hi = std::max(hi, best.finish[static_cast<size_t>(i)]);
    }
    for (OpId i = 0; i < n; ++i)  // operators running during the window's span compete with it
      if (best.finish[static_cast<size_t>(i)] >= lo && best.start[static_cast<size_t>(i)] <= hi) fo.near[static_cast<size_t>(i)] = 1;
    auto f = build_formulation(t, fo);
    if (!f.ok()) break;
    build_s = std::chrono::duration<double>(Clock::now() - built_from).count();
    if (left() < kKillMargin + 0.1) break;  // the build ate the time the solve needed
    MilpSolveOptions so;
    so.time_limit_s = std::min(left() - kKillMargin, 1.0);
    so.kill_margin_s = kKillMargin;
    so.gap = options.gap;
    so.threads = options.threads;
    so.start = plan_to_values(*f, best);
    so.preprocess = false;
    const auto r = solve_with_cbc(f->model, so);
    ++windows;
    if (r.status == SolveStatus::crashed) {
      ++crashes;
      if (options.progress)
        options.progress(fmt::format("milp lns: window {} lost to a solver crash ({}); incumbent kept", windows, r.diagnostic));
    }
    bool improved = false;
    if (r.has_solution) {
      const MilpPlan got = values_to_plan(*f, r.values);
      // Only a real schedule counts: the answer's orders, re-timed.
      const auto tight = tighten(t, edges, got.device, got.start, got.comm_start, options.sim.contention);
      if (tight && tight->makespan < best.makespan * (1 - 1e-9)) {
        best = *tight;
        improved = true;
        if (options.progress)
          options.progress(fmt::format("milp lns: window {} ({}, {} ops, {} binaries, {:.2f} s): makespan {:.6g}", windows,
                                       pick_name(pick), window.size(), f->model.num_integer(), r.seconds, best.makespan));
      }
    }
    // Adapt: a window CBC could not finish is too big; one it proved without a gain is too small.
    if (r.status == SolveStatus::optimal && !improved) size = std::min({n, kMaxSize, size + 4});
    else if (r.status != SolveStatus::optimal) size = std::max(kMinSize, size - 4);
    stale = improved ? 0 : stale + 1;
  }
  return best;
}

}  // namespace moirai
