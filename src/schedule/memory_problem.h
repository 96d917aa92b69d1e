// Internal form of the ordering problem: a set of operators with local indices, the precedence among them and
// the data items they touch, each with its lifetime rule (see include/moirai/schedule.h). Lifetime accounting
// is kept apart from the search (as in HMCOS), so baselines, BTSearch and the partitioned search all evaluate
// orders with the same code.
#pragma once

#include <vector>

#include "moirai/cost.h"
#include "moirai/schedule.h"

namespace moirai::sched {

/// One data item as seen by the operator set: live from its first user's step (or from step 0 with at_start)
/// to its last user's step (or the last step with at_end).
struct MemItem {
  double bytes = 0;
  std::vector<int> users;  ///< local operator indices, ascending, distinct, never empty
  bool at_start = false;   ///< already live when the first operator starts
  bool at_end = false;     ///< still live when the last operator finishes
};

struct MemProblem {
  std::vector<OpId> ops;                 ///< local index -> operator id
  std::vector<std::vector<int>> preds;   ///< local predecessors (transitive through operators outside the set)
  std::vector<std::vector<int>> succs;
  std::vector<MemItem> items;
  std::vector<std::vector<int>> op_items;  ///< items each operator touches
  std::vector<double> saving;              ///< in-place saving of each operator's step
  double base = 0;  ///< always resident: parameters, plus items live across the whole set

  int size() const { return static_cast<int>(ops.size()); }
};

/// `ops` sorted and checked (ids in range, no duplicates); all operators when empty.
std::vector<OpId> resolve_ops(const CostTable& table, const std::vector<OpId>& ops);

/// The problem of running the (sorted, distinct) operators `ops` on one device.
MemProblem build_problem(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model);

/// Memory of each step of a local order (a permutation of 0..size()-1).
std::vector<double> step_memory(const MemProblem& problem, const std::vector<int>& order);
double peak_of(const MemProblem& problem, const std::vector<int>& order);

/// True when `order` is a permutation of the local operators that respects every predecessor.
bool is_valid_order(const MemProblem& problem, const std::vector<int>& order);

enum class ReadyPolicy { SmallestIndex, Stack, Queue };
/// A topological order of the local operators (Kahn's algorithm with the given ready-set policy).
std::vector<int> kahn_order(const MemProblem& problem, ReadyPolicy policy);

/// Consecutive groups of a topological order, each ending at a cut operator (every other operator is its
/// ancestor or its descendant), so every valid order runs the groups one after another. Local indices.
std::vector<std::vector<int>> cut_parts(const MemProblem& problem);

/// One sub-problem per part, with items crossing part boundaries marked at_start / at_end and items live
/// across a whole part folded into its base. The peak of the concatenated orders is the maximum of the parts'.
std::vector<MemProblem> split_problem(const MemProblem& problem, const std::vector<std::vector<int>>& parts);

/// Lower bound on the memory of the step of each operator in any order.
std::vector<double> op_footprints(const MemProblem& problem);

}  // namespace moirai::sched
