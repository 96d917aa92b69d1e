// Internal: the greedy rule and the exact backtracking search on one MemProblem.
#pragma once

#include <chrono>
#include <vector>

#include "memory_problem.h"

namespace moirai::sched {

using Clock = std::chrono::steady_clock;

/// Greedy order: the ready operator leaving the least live memory, then the lowest step memory, then the
/// lowest index.
std::vector<int> greedy(const MemProblem& problem);

struct SearchOutcome {
  std::vector<int> order;  ///< best order found (local indices)
  double peak = 0;         ///< its peak
  double lower_bound = 0;  ///< proven lower bound on the peak of any order
  bool proven = false;     ///< peak is optimal, or at most `stop_at`
  long long states = 0;
};

/// BTSearch on one problem, starting from `seed` (a valid order). Stops at `deadline`, or as soon as an order
/// with peak <= stop_at is found (stop_at is a known lower bound of the caller's whole problem).
SearchOutcome exact_search(const MemProblem& problem, const std::vector<int>& seed, double stop_at,
                           Clock::time_point deadline, long long max_memo_states);

}  // namespace moirai::sched
