// Iterated local search in the MILP's own schedule model (evaluate_milp_plan), used to improve the heuristic
// warm start before CBC sees it. A better incumbent prunes far more of CBC's tree: on example-1 the proof of 30
// took CBC seconds once 30 was known, but tens of seconds to find 30 from HEFT's 33.
// Moves: put one operator on any device at any position of that device's order (keys are start times; a new
// key is the midpoint between two neighbours). Kicks: re-place two or three random operators, then descend
// again from there; the best plan is kept. Deterministic per seed; an evaluation budget bounds the work and a
// wall-clock cap guards against huge graphs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "milp_formulation.h"

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;

struct Search {
  const CostTable& t;
  const std::vector<MilpEdge>& edges;
  bool contention;
  Clock::time_point deadline;
  long evaluations = 0;
  long budget = 0;

  bool out_of_time() { return evaluations >= budget || ((evaluations & 63) == 0 && Clock::now() > deadline); }

  std::optional<MilpPlan> eval(const std::vector<DeviceId>& dev, const std::vector<double>& key, const MilpPlan& from) {
    ++evaluations;
    if (!fits_memory_reserve(t, dev)) return std::nullopt;
    return evaluate_milp_plan(t, edges, dev, key, from.comm_start, contention);
  }

  // First-improvement descent over (operator, device, position) moves.
  MilpPlan descend(MilpPlan plan) {
    const int n = t.num_ops(), K = t.num_devices();
    bool improved = true;
    while (improved && !out_of_time()) {
      improved = false;
      for (OpId i = 0; i < n && !out_of_time(); ++i)
        for (DeviceId k = 0; k < K && !out_of_time(); ++k) {
          // Candidate keys on k: before the first, between neighbours, after the last (by start).
          std::vector<double> starts;
          for (OpId j = 0; j < n; ++j)
            if (j != i && plan.device[static_cast<size_t>(j)] == k) starts.push_back(plan.start[static_cast<size_t>(j)]);
          std::sort(starts.begin(), starts.end());
          std::vector<double> keys;
          if (starts.empty()) keys.push_back(plan.start[static_cast<size_t>(i)]);
          else keys.push_back(starts.front() - 1);
          for (size_t p = 0; p + 1 < starts.size(); ++p) keys.push_back(0.5 * (starts[p] + starts[p + 1]));
          if (!starts.empty()) keys.push_back(starts.back() + 1);
          for (double key : keys) {
            if (out_of_time()) break;
            auto dev = plan.device;
            dev[static_cast<size_t>(i)] = k;
            auto order = plan.start;
            order[static_cast<size_t>(i)] = key;
            auto next = eval(dev, order, plan);
            if (next && next->makespan < plan.makespan * (1 - 1e-9)) {
              plan = *next;
              improved = true;
              break;
            }
          }
        }
    }
    return plan;
  }
};

}  // namespace

MilpPlan improve_milp_plan(const CostTable& t, const std::vector<MilpEdge>& edges, const MilpPlan& start,
                           bool contention, double seconds, uint64_t seed) {
  const int n = t.num_ops(), K = t.num_devices();
  if (n == 0 || K == 0) return start;
  Search s{t, edges, contention, Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds))};
  // About 5e6 operator-steps of evaluation: a few hundred kicks on small graphs, one descent on large ones.
  s.budget = std::max<long>(2000, 5'000'000L / (n + static_cast<long>(edges.size()) + 1));
  MilpPlan best = s.descend(start);
  std::mt19937_64 rng(seed);
  while (!s.out_of_time()) {
    MilpPlan kicked = best;
    const int moves = 2 + static_cast<int>(rng() % 2);
    bool ok = true;
    for (int m = 0; m < moves && ok; ++m) {
      const auto i = static_cast<size_t>(rng() % static_cast<uint64_t>(n));
      auto dev = kicked.device;
      dev[i] = static_cast<DeviceId>(rng() % static_cast<uint64_t>(K));
      auto key = kicked.start;
      key[i] += (static_cast<double>(rng() % 1000) / 1000.0 - 0.5) * std::max(1e-9, kicked.makespan) * 0.2;
      auto next = s.eval(dev, key, kicked);
      if (next) kicked = *next;
      else ok = false;
    }
    if (!ok) continue;
    MilpPlan local = s.descend(kicked);
    if (local.makespan < best.makespan * (1 - 1e-9)) best = local;
  }
  return best;
}

}  // namespace moirai
