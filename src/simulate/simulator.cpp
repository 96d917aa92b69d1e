// simulate()'s checks of a placement and its orders, and the operator-level simulation: one request through the
// event loop (event_loop.cpp, shared with simulate_stream()), its trace turned into a Schedule.
#include <algorithm>

#include <fmt/format.h>

#include "moirai/simulate.h"
#include "internal.h"

namespace moirai {
namespace {

std::string describe_order_problem(const CostTable& table, const Placement& p) {
  const int n = table.num_ops(), k = table.num_devices();
  if (p.order.empty()) return "";
  if (static_cast<int>(p.order.size()) != k)
    return fmt::format("the order lists {} devices, the table has {}", p.order.size(), k);
  std::vector<int> seen(static_cast<size_t>(n), 0);
  for (int d = 0; d < k; ++d)
    for (OpId op : p.order[static_cast<size_t>(d)]) {
      if (op < 0 || op >= n) return fmt::format("the order of device '{}' names operator id {}", table.device_names[static_cast<size_t>(d)], op);
      if (p.device[static_cast<size_t>(op)] != d)
        return fmt::format("the order of device '{}' lists operator '{}', which is placed on '{}'",
                           table.device_names[static_cast<size_t>(d)], table.op_names[static_cast<size_t>(op)],
                           table.device_names[static_cast<size_t>(p.device[static_cast<size_t>(op)])]);
      if (seen[static_cast<size_t>(op)]++)
        return fmt::format("operator '{}' appears twice in the orders", table.op_names[static_cast<size_t>(op)]);
    }
  for (int op = 0; op < n; ++op)
    if (!seen[static_cast<size_t>(op)])
      return fmt::format("operator '{}' is missing from the order of device '{}'", table.op_names[static_cast<size_t>(op)],
                         table.device_names[static_cast<size_t>(p.device[static_cast<size_t>(op)])]);
  return "";
}

}  // namespace

Status check_placement(const CostTable& table, const Placement& placement) {
  const int n = table.num_ops(), k = table.num_devices();
  if (static_cast<int>(placement.device.size()) != n)
    return Error{fmt::format("the placement gives a device for {} operators, the table '{}' has {}",
                             placement.device.size(), table.name, n)};
  for (int op = 0; op < n; ++op) {
    const DeviceId d = placement.device[static_cast<size_t>(op)];
    if (d < 0 || d >= k)
      return Error{fmt::format("operator '{}' is placed on device {}, but there are {} devices (0..{})",
                               table.op_names[static_cast<size_t>(op)], d, k, k - 1)};
  }
  if (auto problem = describe_order_problem(table, placement); !problem.empty()) return Error{problem};
  return Ok{};
}

std::optional<OrderDeadlock> order_deadlock(const CostTable& table, const Placement& placement) {
  if (placement.order.empty()) return std::nullopt;
  const int n = table.num_ops(), k = table.num_devices();
  // Run the orders without a clock: a device's head runs once every producer it reads from has run.
  std::vector<char> ran(static_cast<size_t>(n), 0);
  std::vector<size_t> pos(static_cast<size_t>(k), 0);
  auto missing_input = [&](OpId op) -> int {
    for (int i : table.op_inputs[static_cast<size_t>(op)])
      if (!ran[static_cast<size_t>(table.data[static_cast<size_t>(i)].producer)]) return i;
    return -1;
  };
  for (bool progress = true; progress;) {
    progress = false;
    for (int d = 0; d < k; ++d) {
      const auto& order = placement.order[static_cast<size_t>(d)];
      for (size_t& p = pos[static_cast<size_t>(d)]; p < order.size() && missing_input(order[p]) < 0; ++p, progress = true)
        ran[static_cast<size_t>(order[p])] = 1;
    }
  }
  for (int d = 0; d < k; ++d) {
    const auto& order = placement.order[static_cast<size_t>(d)];
    if (pos[static_cast<size_t>(d)] < order.size()) {
      const OpId op = order[pos[static_cast<size_t>(d)]];
      return OrderDeadlock{op, missing_input(op)};
    }
  }
  return std::nullopt;
}

std::vector<DeviceId> Schedule::over_capacity(const CostTable& table) const {
  std::vector<DeviceId> out;
  for (DeviceId d = 0; d < table.num_devices() && d < static_cast<int>(peak_memory.size()); ++d) {
    const double cap = table.capacity[static_cast<size_t>(d)];
    if (peak_memory[static_cast<size_t>(d)] > cap + 1e-9 * std::max(1.0, cap)) out.push_back(d);
  }
  return out;
}

Schedule simulate_ops(const CostTable& table, const Placement& placement, const SimOptions& options) {
  EventTrace trace = run_events(table, placement, Arrivals{{0.0}, 1}, options);
  Schedule sch;
  sch.peak_memory = trace_peak_memory(table, placement, trace, 1);
  sch.ops = std::move(trace.ops);
  sch.transfers = std::move(trace.transfers);
  sch.busy_ms = std::move(trace.busy_ms);
  sch.link_bytes = std::move(trace.link_bytes);
  sch.order = std::move(trace.order);
  for (const auto& span : sch.ops) sch.makespan_ms = std::max(sch.makespan_ms, span.end_ms);
  return sch;
}

}  // namespace moirai
