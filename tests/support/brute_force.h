// Test support: the optimal makespan of a tiny problem by enumeration, the ground truth for exact methods and
// lower bounds.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "moirai/simulate.h"

namespace moirai::testing {

// Brute force without contention, within memory: every assignment x every topological order (the per-device orders are its
// subsequences; every semi-active schedule arises this way), simulated.
inline double brute_force(const CostTable& t) {
  const int n = t.num_ops(), k = t.num_devices();
  std::vector<std::vector<OpId>> orders;
  std::vector<OpId> cur;
  std::vector<int> indeg(static_cast<size_t>(n), 0);
  for (OpId i = 0; i < n; ++i) indeg[static_cast<size_t>(i)] = static_cast<int>(t.predecessors(i).size());
  std::vector<char> used(static_cast<size_t>(n), 0);
  std::function<void()> extend = [&] {
    if (static_cast<int>(cur.size()) == n) return orders.push_back(cur);
    for (OpId i = 0; i < n; ++i) {
      if (used[static_cast<size_t>(i)] || indeg[static_cast<size_t>(i)] != 0) continue;
      used[static_cast<size_t>(i)] = 1, cur.push_back(i);
      for (OpId s : t.successors(i)) --indeg[static_cast<size_t>(s)];
      extend();
      for (OpId s : t.successors(i)) ++indeg[static_cast<size_t>(s)];
      used[static_cast<size_t>(i)] = 0, cur.pop_back();
    }
  };
  extend();
  SimOptions so;
  so.contention = false;
  double best = 1e300;
  std::vector<DeviceId> dev(static_cast<size_t>(n), 0);
  for (long code = 0; code < static_cast<long>(std::pow(k, n)); ++code) {
    long c = code;
    for (int i = 0; i < n; ++i) dev[static_cast<size_t>(i)] = static_cast<DeviceId>(c % k), c /= k;
    for (const auto& order : orders) {
      Placement p;
      p.device = dev;
      p.order.assign(static_cast<size_t>(k), {});
      for (OpId i : order) p.order[static_cast<size_t>(dev[static_cast<size_t>(i)])].push_back(i);
      const Schedule s = simulate(t, p, so);
      if (s.over_capacity(t).empty()) best = std::min(best, s.makespan_ms);
    }
  }
  return best;
}

}  // namespace moirai::testing
