// Rule application (private to src/coarsen): the generic pattern matcher and TVM's post-dominator grouping
// over kinds, plus the --max-nodes budget merges. Each returns the contracted working graph.
#pragma once

#include <map>
#include <string>

#include "engine.h"
#include "rules.h"
#include "moirai/cluster.h"

namespace moirai::coarsen_detail {

using OriginRank = std::map<std::string, int, std::less<>>;

/// Contracts every non-overlapping match of `rule` (in topological order of the root) that keeps the graph
/// acyclic and lets only the rule's exit node's outputs leave the group.
Work apply_pattern(const Work& work, const PatternRule& rule, const OriginRank& rank);

/// One phase of TVM-style grouping with the kind rules of that phase.
Work apply_kind_phase(const Work& work, const std::vector<const KindRule*>& rules, const OriginRank& rank);

/// Merges further until at most `max_nodes` remain or nothing can merge without a cycle: linear chains first,
/// then edges by decreasing transfer-time / compute-time ratio (cluster averages), one matching per round.
Work merge_to_budget(const Work& work, const Cluster& cluster, int max_nodes, const OriginRank& rank);

}  // namespace moirai::coarsen_detail
