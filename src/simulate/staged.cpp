// Stage-level simulation: what the executor does when a runtime call has a fixed cost. The executor runs one
// session per stage (moirai/stages.h): a stage starts when every input it receives has arrived, costs the
// device's stage overhead plus its operators' times, and its outputs leave when it ends. This file builds that
// stage graph as a cost table of its own, runs the operator-level simulator on it, and maps the result back to
// operators. The stream simulator runs the same stage graph for many requests.
//
// Which operators form a stage depends on the timeline (export walks the plan's start times), and the timeline
// depends on the stages. We iterate: stages from the operator-level schedule, simulate them, re-derive the
// stages from that schedule's start times, and stop at the first fixed point, where export, given the written
// plan, derives exactly the stages that were simulated.
#include <algorithm>
#include <tuple>

#include <fmt/format.h>

#include "moirai/stages.h"
#include "internal.h"

namespace moirai {
namespace {

// A fixed point is usually reached at the first re-derivation; merges of stages only shorten the list, so a
// handful of rounds suffices (checked on random DAGs by the tests).
constexpr int kMaxRounds = 8;

Stages stages_of(const CostTable& table, const Placement& placement, const Schedule& schedule) {
  StageInput in;
  const int n = table.num_ops();
  in.names = table.op_names;
  in.device.assign(placement.device.begin(), placement.device.end());
  in.start_ms.reserve(static_cast<size_t>(n));
  for (const auto& span : schedule.ops) in.start_ms.push_back(span.start_ms);
  in.preds.reserve(static_cast<size_t>(n));
  for (OpId op = 0; op < n; ++op) {
    const auto preds = table.predecessors(op);
    in.preds.emplace_back(preds.begin(), preds.end());
  }
  auto stages = assign_stages(in, table.name);
  MOIRAI_CHECK(stages.ok(), "simulate: the cost table is not acyclic: " + stages.error().message);
  return std::move(*stages);
}

// Each stage one task: overhead + its operators' times on its device; its parameters and flops summed.
CostTable stage_tasks(const CostTable& table, const Stages& st) {
  const int k = table.num_devices(), ns = st.size();
  CostTable t = table.with_devices_only();
  t.name = table.name + " (stages)";
  t.stage_overhead_ms.assign(static_cast<size_t>(k), 0.0);
  t.time_ms.assign(static_cast<size_t>(ns * k), 0.0);
  t.param_bytes.assign(static_cast<size_t>(ns), 0.0);
  t.flops.assign(static_cast<size_t>(ns), 0.0);
  for (int s = 0; s < ns; ++s) {
    const int d = st.device[static_cast<size_t>(s)];
    double ms = table.stage_overhead_ms[static_cast<size_t>(d)];
    for (int op : st.ops[static_cast<size_t>(s)]) {
      ms += table.time(op, d);
      t.param_bytes[static_cast<size_t>(s)] += table.param_bytes[static_cast<size_t>(op)];
      t.flops[static_cast<size_t>(s)] += table.flops[static_cast<size_t>(op)];
    }
    t.op_names.push_back(fmt::format("stage{}", s));
    t.op_types.push_back("stage");
    t.op_origin.push_back({});
    for (int e = 0; e < k; ++e) t.time_ms[static_cast<size_t>(s * k + e)] = ms;  // only its own device is used
  }
  return t;
}

}  // namespace

StageGraph stage_graph(const CostTable& table, const Placement& placement, Stages st) {
  const int k = table.num_devices(), ns = st.size();
  StageGraph g;
  g.table = stage_tasks(table, st);
  // Data that crosses stages keeps its transfer times; data read only inside its producer's stage disappears.
  std::vector<int> renamed(table.data.size(), -1);
  for (size_t i = 0; i < table.data.size(); ++i) {
    const DataItem& item = table.data[i];
    const int from = st.stage[static_cast<size_t>(item.producer)];
    DataItem x;
    x.name = item.name;
    x.producer = from;
    x.bytes = item.bytes;
    x.transfer_ms = item.transfer_ms;
    for (OpId c : item.consumers)
      if (const int to = st.stage[static_cast<size_t>(c)]; to != from) x.consumers.push_back(to);
    if (x.consumers.empty()) continue;
    std::sort(x.consumers.begin(), x.consumers.end());
    x.consumers.erase(std::unique(x.consumers.begin(), x.consumers.end()), x.consumers.end());
    renamed[i] = static_cast<int>(g.original.size());
    g.original.push_back(static_cast<int>(i));
    g.table.data.push_back(std::move(x));
  }
  if (auto status = g.table.finalize(); !status) MOIRAI_CHECK(false, "simulate: stage graph: " + status.error().message);
  // Every device runs its stages in index order, as the stages' run order says.
  g.placement.device.assign(st.device.begin(), st.device.end());
  g.placement.order.assign(static_cast<size_t>(k), {});
  for (int s = 0; s < ns; ++s) g.placement.order[static_cast<size_t>(st.device[static_cast<size_t>(s)])].push_back(s);
  // Transfer priorities were planned for operators. A stage waits for the inputs of all its operators, so a
  // transfer queued behind one whose producer stage comes later can deadlock the stages (seen with a MILP plan of
  // llama_tiny). Ranking each port's transfers by their producer stage first, the planned priority second, keeps
  // every queue in a run order of the stages: the lowest unfinished stage can always run.
  std::vector<std::tuple<int, double, int, DeviceId>> ranked;  // producer stage, priority, item, destination
  for (const auto& [key, priority] : placement.transfer_priority)
    if (const int item = renamed[static_cast<size_t>(key.first)]; item >= 0)
      ranked.emplace_back(g.table.data[static_cast<size_t>(item)].producer, priority, item, key.second);
  std::sort(ranked.begin(), ranked.end());
  for (size_t i = 0; i < ranked.size(); ++i)
    g.placement.transfer_priority[{std::get<2>(ranked[i]), std::get<3>(ranked[i])}] = static_cast<double>(i);
  g.stages = std::move(st);
  return g;
}

void expand_stage_spans(const CostTable& table, const StageGraph& g, int requests, const std::vector<OpSpan>& stage_spans,
                        std::vector<TransferSpan>& transfers, std::vector<OpSpan>& ops) {
  const int n = table.num_ops(), ns = g.stages.size();
  ops.assign(static_cast<size_t>(requests) * static_cast<size_t>(n), {});
  for (int r = 0; r < requests; ++r)
    for (int s = 0; s < ns; ++s) {
      const int d = g.stages.device[static_cast<size_t>(s)];
      double t0 = stage_spans[static_cast<size_t>(r) * static_cast<size_t>(ns) + static_cast<size_t>(s)].start_ms +
                  table.stage_overhead_ms[static_cast<size_t>(d)];
      for (int op : g.stages.ops[static_cast<size_t>(s)]) {
        const double end = t0 + table.time(op, d);
        ops[static_cast<size_t>(r) * static_cast<size_t>(n) + static_cast<size_t>(op)] = {t0, end};
        t0 = end;
      }
    }
  for (auto& tr : transfers) tr.data = g.original[static_cast<size_t>(tr.data)];
}

namespace {

/// Simulates the stages as tasks and expands the result into a per-operator schedule.
Schedule run_stages(const CostTable& table, const Placement& placement, const StageGraph& g, const SimOptions& options) {
  const Schedule staged = simulate_ops(g.table, g.placement, options);
  Schedule out;
  out.transfers = staged.transfers;
  expand_stage_spans(table, g, 1, staged.ops, out.transfers, out.ops);
  out.order.assign(static_cast<size_t>(table.num_devices()), {});
  for (size_t d = 0; d < out.order.size(); ++d)
    for (OpId s : staged.order[d])
      for (int op : g.stages.ops[static_cast<size_t>(s)]) out.order[d].push_back(op);
  out.makespan_ms = staged.makespan_ms;
  out.busy_ms = staged.busy_ms;  // operators plus one overhead per stage: what the device is occupied for
  out.link_bytes = staged.link_bytes;
  out.stage = g.stages.stage;
  out.stage_device = g.stages.device;
  out.peak_memory = peak_memory_from_spans(table, placement, out).peak;
  return out;
}

// simulate()'s fixed point: the stages export derives from the schedule of exactly these stages.
std::pair<Schedule, StageGraph> staged_fixed_point(const CostTable& table, const Placement& placement,
                                                   const SimOptions& options) {
  // The operator-level schedule (no overhead) gives the first timeline.
  StageGraph g = stage_graph(table, placement, stages_of(table, placement, simulate_ops(table, placement, options)));
  Schedule schedule;
  for (int round = 0; round < kMaxRounds; ++round) {
    schedule = run_stages(table, placement, g, options);
    Stages next = stages_of(table, placement, schedule);
    if (next.stage == g.stages.stage || round + 1 == kMaxRounds) break;  // g is what `schedule` ran
    g = stage_graph(table, placement, std::move(next));
  }
  return {std::move(schedule), std::move(g)};
}

}  // namespace

StageGraph simulated_stages(const CostTable& table, const Placement& placement, const SimOptions& options) {
  return staged_fixed_point(table, placement, options).second;
}

Schedule simulate(const CostTable& table, const Placement& placement, const SimOptions& options) {
  if (auto status = check_placement(table, placement); !status)
    MOIRAI_CHECK(false, "simulate: " + status.error().message);
  if (!table.models_stages()) return simulate_ops(table, placement, options);
  return staged_fixed_point(table, placement, options).first;
}

}  // namespace moirai
