// coarsen(): the backend's fusion rules (patterns, then kind phases) as one step, then the optional
// --max-nodes budget step. Every step ends with a graph that validates.
#include "moirai/coarsen.h"

#include <algorithm>

#include "engine.h"
#include "match.h"
#include "rules.h"

namespace moirai {

using namespace coarsen_detail;

std::vector<std::string> fusion_backends() {
  std::vector<std::string> names;
  for (const auto& set : rule_sets()) names.push_back(set.name);
  return names;
}

Expected<CoarsenResult> coarsen(const Graph& graph, const Cluster& cluster, const CoarsenOptions& options) {
  const RuleSet* rules = find_rule_set(options.fusion);
  if (rules == nullptr) {
    std::string known;
    for (const auto& name : fusion_backends()) known += (known.empty() ? "" : ", ") + name;
    return Error{"unknown fusion backend '" + options.fusion + "' (known: " + known + ")"};
  }
  if (options.max_nodes < 0)
    return Error{"the node budget must be positive, got " + std::to_string(options.max_nodes), "max_nodes"};
  auto valid = graph.validate();
  if (!valid.ok()) return Error{"coarsen: input graph " + graph.name + ": " + valid.error().message};

  Work work = start_work(graph, *rules);
  // Imported operators name themselves as origin; hand-built ones may not.
  for (OpId op = 0; op < work.graph.num_ops(); ++op)
    if (work.graph.op(op).origin.empty()) work.graph.op(op).origin = {work.graph.op(op).name};
  OriginRank rank;
  auto topo = graph.topological_order();
  for (OpId op : *topo)
    for (const auto& name : work.graph.op(op).origin) rank.emplace(name, static_cast<int>(rank.size()));

  CoarsenResult result;
  const int before = work.graph.num_ops();
  for (const auto& rule : rules->patterns) work = apply_pattern(work, rule, rank);
  std::vector<int> phases;
  for (const auto& r : rules->kind_rules) phases.push_back(r.phase);
  std::sort(phases.begin(), phases.end());
  phases.erase(std::unique(phases.begin(), phases.end()), phases.end());
  for (int phase : phases) {
    std::vector<const KindRule*> active;
    for (const auto& r : rules->kind_rules)
      if (r.phase == phase) active.push_back(&r);
    work = apply_kind_phase(work, active, rank);
  }
  result.steps.push_back({"fusion:" + rules->name, before, work.graph.num_ops()});

  if (options.max_nodes > 0) {
    const int start = work.graph.num_ops();
    work = merge_to_budget(work, cluster, options.max_nodes, rank);
    result.steps.push_back({"max-nodes:" + std::to_string(options.max_nodes), start, work.graph.num_ops()});
  }
  auto check = work.graph.validate();
  MOIRAI_CHECK(check.ok(), check.ok() ? "" : check.error().message);
  result.graph = std::move(work.graph);
  return result;
}

}  // namespace moirai
