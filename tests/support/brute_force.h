// Test support: the optimal makespan of a tiny problem by enumeration, the ground truth for exact methods and
// lower bounds.
#pragma once

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <vector>

#include "moirai/simulate.h"

namespace moirai::testing {

// Brute force within memory: every assignment x every topological order (the per-device orders are its
// subsequences; every semi-active schedule arises this way), simulated. With contention also every order of the
// transfers (one per data item and remote destination) as priorities: the start order of any schedule's
// transfers is one of them, so its per-port orders are covered too.
inline double brute_force(const CostTable& t, bool contention = false) {
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
  so.contention = contention;
  double best = 1e300;
  std::vector<DeviceId> dev(static_cast<size_t>(n), 0);
  for (long code = 0; code < static_cast<long>(std::pow(k, n)); ++code) {
    long c = code;
    for (int i = 0; i < n; ++i) dev[static_cast<size_t>(i)] = static_cast<DeviceId>(c % k), c /= k;
    std::vector<std::pair<int, DeviceId>> transfers;  // sorted: next_permutation enumerates all orders
    for (int d = 0; d < static_cast<int>(t.data.size()); ++d)
      for (DeviceId b = 0; b < k && contention; ++b) {
        const auto& item = t.data[static_cast<size_t>(d)];
        if (b == dev[static_cast<size_t>(item.producer)]) continue;
        if (std::any_of(item.consumers.begin(), item.consumers.end(), [&](OpId c) { return dev[static_cast<size_t>(c)] == b; }))
          transfers.push_back({d, b});
      }
    for (const auto& order : orders) {
      Placement p;
      p.device = dev;
      p.order.assign(static_cast<size_t>(k), {});
      for (OpId i : order) p.order[static_cast<size_t>(dev[static_cast<size_t>(i)])].push_back(i);
      do {
        p.transfer_priority.clear();
        for (size_t x = 0; x < transfers.size(); ++x) p.transfer_priority[transfers[x]] = static_cast<double>(x);
        try {
          const Schedule s = simulate(t, p, so);
          if (s.over_capacity(t).empty()) best = std::min(best, s.makespan_ms);
        } catch (const std::exception&) {
          // these priorities deadlock against the operator order: no schedule
        }
      } while (std::next_permutation(transfers.begin(), transfers.end()));
    }
  }
  return best;
}

}  // namespace moirai::testing
