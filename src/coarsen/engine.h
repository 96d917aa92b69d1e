// The contraction engine (private to src/coarsen): a working graph with a matching label and kind per node,
// a union-find of groups being formed with a cycle test, and the contraction that turns a partition into the
// coarse graph. It names no operator type.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "rules.h"
#include "moirai/graph.h"

namespace moirai::coarsen_detail {

/// The graph being coarsened plus, per operator, the label the rules match (its op type, or the name a rule gave
/// its fused node) and its pattern kind (the largest kind of its members).
struct Work {
  Graph graph;
  std::vector<std::string> label;
  std::vector<Kind> kind;
};

/// Starts a working graph from an imported one: labels are op types, kinds come from the rule set's table.
Work start_work(const Graph& graph, const RuleSet& rules);

/// Groups being formed on a fixed graph: union-find over operators with member lists per root, and a test that
/// a merge keeps the quotient graph acyclic.
class Groups {
 public:
  explicit Groups(const Graph& graph);

  int find(OpId op) const;
  const std::vector<OpId>& members(int root) const { return members_[static_cast<size_t>(root)]; }
  /// The operators of every group that `ops` touch (sorted).
  std::vector<OpId> expand(const std::vector<OpId>& ops) const;
  /// True when contracting the groups of `ops` into one node would close a cycle: some path leaves the merged
  /// set and comes back into it through outside groups.
  bool would_cycle(const std::vector<OpId>& ops) const;
  /// Merges the groups of `ops`; returns the new root.
  int merge(const std::vector<OpId>& ops);
  int count() const { return count_; }
  const std::vector<std::vector<OpId>>& successors() const { return succ_; }
  const std::vector<std::vector<OpId>>& predecessors() const { return pred_; }

 private:
  const Graph& graph_;
  std::vector<int> parent_;
  std::vector<std::vector<OpId>> members_;
  std::vector<std::vector<OpId>> succ_, pred_;
  int count_ = 0;
  mutable std::vector<int> mark_;  // scratch for would_cycle, stamped to avoid clearing
  mutable int stamp_ = 0;
};

/// Members of `set` (sorted op ids) with an output that is a graph output or is read outside the set.
std::vector<OpId> exits(const Graph& graph, const std::vector<OpId>& set);

/// Contracts every group of `groups` into one operator. `labels` gives a label per root for fused groups
/// ("" keeps the anchor's). Fused operators take the anchor's (most FLOPs) name, type and attributes; their
/// origins are the members' origins in original topological order (`origin_rank`); internal tensors vanish.
Work contract(const Work& work, const Groups& groups, const std::map<int, std::string>& labels,
              const std::map<std::string, int, std::less<>>& origin_rank);

}  // namespace moirai::coarsen_detail
