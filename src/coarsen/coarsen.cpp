// coarsen(): the backend's fusion rules (patterns, then kind phases) as one step, then the optional
// --max-nodes budget step. Every step ends with a graph that validates.
#include "moirai/coarsen.h"

#include <algorithm>
#include <map>

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

namespace {

/// Contracts the explicit groups of `options.groups` (original node names): one node per group.
Expected<Work> contract_groups(const Work& work, const std::vector<std::vector<std::string>>& named,
                               const OriginRank& rank) {
  std::map<std::string, OpId, std::less<>> by_origin;
  for (OpId op = 0; op < work.graph.num_ops(); ++op)
    for (const auto& name : work.graph.op(op).origin) by_origin.emplace(name, op);
  Groups groups(work.graph);
  for (const auto& group : named) {
    std::vector<OpId> ops;
    for (const auto& name : group)
      if (auto it = by_origin.find(name); it != by_origin.end()) ops.push_back(it->second);
    if (ops.size() < 2) continue;
    if (groups.would_cycle(ops))
      return Error{"the fused group of '" + group.front() + "' would close a cycle in " + work.graph.name};
    groups.merge(ops);
  }
  return contract(work, groups, {}, rank);
}

}  // namespace

std::string fusion_description(const std::string& fusion) {
  const RuleSet* rules = find_rule_set(fusion);
  return rules ? rules->describes : "";
}

Expected<CoarsenResult> coarsen(const Graph& graph, const Cluster& cluster, const CoarsenOptions& options) {
  const bool explicit_groups = !options.groups.empty();
  const RuleSet* rules = find_rule_set(explicit_groups ? "none" : options.fusion);
  if (rules == nullptr) {
    std::string known;
    for (const auto& name : fusion_backends()) known += (known.empty() ? "" : ", ") + name;
    return Error{"unknown fusion backend '" + options.fusion + "' (known: " + known +
                 ", onnxruntime-runtime[:basic|extended|all])"};
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
  if (explicit_groups) {
    auto contracted = contract_groups(work, options.groups, rank);
    if (!contracted) return contracted.error();
    work = std::move(*contracted);
  }
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
  result.steps.push_back({"fusion:" + (explicit_groups ? options.fusion : rules->name), before, work.graph.num_ops()});

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
