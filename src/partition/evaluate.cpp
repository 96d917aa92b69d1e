// Evaluation of a fixed set of splits: expand, simulate, and fold the expanded schedule back onto the original
// operators (the view that plan.json and the Gantt show, with each split operator's parts).
#include <algorithm>

#include <fmt/format.h>

#include "moirai/partition.h"
#include "internal.h"

namespace moirai {

void fill_view(const CostTable& table, PartitionResult& r) {
  const PartitionedProblem& e = r.expanded;
  const int n = table.num_ops();
  r.view_table = table;
  r.view_table.data.clear();
  for (const DataItem& item : e.table.data) {
    DataItem d = item;
    d.producer = e.origin[static_cast<size_t>(item.producer)];
    d.consumers.clear();
    for (OpId c : item.consumers) d.consumers.push_back(e.origin[static_cast<size_t>(c)]);
    std::sort(d.consumers.begin(), d.consumers.end());
    d.consumers.erase(std::unique(d.consumers.begin(), d.consumers.end()), d.consumers.end());
    r.view_table.data.push_back(std::move(d));
  }
  MOIRAI_CHECK(r.view_table.finalize().ok(), "the folded table of a split plan must stay acyclic");

  r.view_placement = Placement{};
  r.view_placement.device.assign(static_cast<size_t>(n), 0);
  r.view_schedule = r.schedule;
  r.view_schedule.ops.assign(static_cast<size_t>(n), {});
  r.parts.assign(static_cast<size_t>(n), {});
  r.split_ops = 0;
  for (OpId o = 0; o < n; ++o) {
    const auto& ids = e.parts_of[static_cast<size_t>(o)];
    const auto& specs = e.specs[static_cast<size_t>(o)];
    OpSpan span = r.schedule.ops[static_cast<size_t>(ids.front())];
    double best_share = -1;
    for (size_t i = 0; i < ids.size(); ++i) {
      const OpSpan& s = r.schedule.ops[static_cast<size_t>(ids[i])];
      span.start_ms = std::min(span.start_ms, s.start_ms);
      span.end_ms = std::max(span.end_ms, s.end_ms);
      const double share = specs.empty() ? 1.0 : specs[i].share;
      if (share > best_share) {
        best_share = share;
        r.view_placement.device[static_cast<size_t>(o)] = e.placement.device[static_cast<size_t>(ids[i])];
      }
      if (!specs.empty())
        r.parts[static_cast<size_t>(o)].push_back({specs[i].device, specs[i].share, s.start_ms, s.end_ms});
    }
    if (!specs.empty()) ++r.split_ops;
    r.view_schedule.ops[static_cast<size_t>(o)] = span;
  }
  for (auto& order : r.view_schedule.order) {  // expanded ids -> original ids, each once
    std::vector<OpId> folded;
    for (OpId x : order) {
      const OpId o = e.origin[static_cast<size_t>(x)];
      if (std::find(folded.begin(), folded.end(), o) == folded.end()) folded.push_back(o);
    }
    order = std::move(folded);
  }
}

PartitionResult finish_partition(const CostTable& table, std::vector<Split> splits, PartitionedProblem expanded,
                                 Schedule schedule, double seed_ms) {
  PartitionResult r;
  r.splits = std::move(splits);
  r.expanded = std::move(expanded);
  r.schedule = std::move(schedule);
  r.makespan_ms = r.schedule.makespan_ms;
  r.seed_makespan_ms = seed_ms;
  fill_view(table, r);
  return r;
}

Expected<PartitionResult> evaluate_splits(const CostTable& table, const Graph& graph, const Placement& base,
                                          const std::vector<Split>& splits, const SimOptions& sim,
                                          const Cluster* cluster, const std::map<std::string, double>* start_ms) {
  MOIRAI_ASSIGN_OR_RETURN(auto expanded, expand_splits(table, graph, base, splits, cluster));
  if (start_ms) {  // each device runs its operators in the order of the given start times
    const CostTable& t = expanded.table;
    std::vector<std::pair<double, OpId>> by_start;
    for (OpId op : t.topo_order) {  // ties keep a topological order
      const auto it = start_ms->find(t.op_names[static_cast<size_t>(op)]);
      if (it == start_ms->end())
        return Error{fmt::format("no start time for operator '{}'", t.op_names[static_cast<size_t>(op)])};
      by_start.emplace_back(it->second, op);
    }
    std::stable_sort(by_start.begin(), by_start.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    Placement& p = expanded.placement;
    p.order.assign(static_cast<size_t>(t.num_devices()), {});
    p.transfer_priority.clear();
    for (const auto& [start, op] : by_start) p.order[static_cast<size_t>(p.device[static_cast<size_t>(op)])].push_back(op);
    if (order_deadlock(t, p)) p.order.clear();  // against precedence: the list policy decides
  }
  Schedule schedule = simulate(expanded.table, expanded.placement, sim);
  return finish_partition(table, splits, std::move(expanded), std::move(schedule),
                          simulate(table, base, sim).makespan_ms);
}

}  // namespace moirai
