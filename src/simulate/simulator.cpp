// Discrete-event simulator. One event queue (a binary heap of operator and transfer completions); after all
// events of one instant are processed, idle devices and ports are dispatched. Two policies:
//  - list scheduling (no Placement::order): an idle device runs its earliest-ready operator (ties by position in
//    topo_order); transfers go in order of readiness (ties by data id, then destination);
//  - given orders: each device runs its operators strictly in Placement::order, and each port carries the
//    transfers that have a priority strictly in priority order before any other; every event starts as early as
//    precedence, resource availability and these orders allow (a semi-active schedule).
// A cross-device data item is one transfer per destination device (shared by every consumer there). With
// contention it holds the source's send port and the destination's receive port; without, it starts as soon as
// its producer ends. Memory is accounted afterwards from the finished schedule (see peak memory below).
#include <algorithm>
#include <limits>
#include <queue>
#include <tuple>

#include <fmt/format.h>

#include "moirai/simulate.h"
#include "internal.h"

namespace moirai {
namespace {

struct Event {
  double time;
  int kind;  // 0 = operator end, 1 = transfer end
  int id;
  bool operator>(const Event& o) const { return std::tie(time, kind, id) > std::tie(o.time, o.kind, o.id); }
};

struct Ready {  // a ready operator or transfer, smallest key first
  double time;
  int tie;  // topo position (operators) or data id (transfers)
  int id;
  bool operator>(const Ready& o) const { return std::tie(time, tie, id) > std::tie(o.time, o.tie, o.id); }
  bool operator<(const Ready& o) const { return std::tie(time, tie, id) < std::tie(o.time, o.tie, o.id); }
};

template <class T>
using MinHeap = std::priority_queue<T, std::vector<T>, std::greater<T>>;

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
  const int n = table.num_ops(), k = table.num_devices();
  const auto& dev = placement.device;
  const bool ordered = !placement.order.empty();
  const bool contention = options.contention;
  auto at = [](auto& v, int i) -> auto& { return v[static_cast<size_t>(i)]; };

  // Transfers: one per (data item, remote device with a consumer), CSR by data item.
  const int m = static_cast<int>(table.data.size());
  std::vector<int> x_begin(static_cast<size_t>(m + 1), 0);
  std::vector<int> x_data, x_dst;
  {
    std::vector<int> mark(static_cast<size_t>(k), -1);
    for (int i = 0; i < m; ++i) {
      const DataItem& item = at(table.data, i);
      const DeviceId s = at(dev, item.producer);
      const size_t first = x_data.size();
      for (OpId c : item.consumers) {
        const DeviceId d = at(dev, c);
        if (d != s && at(mark, d) != i) {
          at(mark, d) = i;
          x_data.push_back(i);
          x_dst.push_back(d);
        }
      }
      std::sort(x_dst.begin() + static_cast<std::ptrdiff_t>(first), x_dst.end());
      at(x_begin, i + 1) = static_cast<int>(x_data.size());
    }
  }
  const int nx = static_cast<int>(x_data.size());
  auto x_src = [&](int x) { return at(dev, at(table.data, at(x_data, x)).producer); };

  // Transfer priorities: per port, the prioritized transfers in priority order (ties by data, dst).
  std::vector<char> prioritized(static_cast<size_t>(nx), 0);
  std::vector<std::vector<int>> send_list(static_cast<size_t>(k)), recv_list(static_cast<size_t>(k));
  if (contention && !placement.transfer_priority.empty()) {
    std::vector<std::tuple<double, int, int, int>> keyed;
    for (int x = 0; x < nx; ++x) {
      const auto it = placement.transfer_priority.find({at(x_data, x), at(x_dst, x)});
      if (it == placement.transfer_priority.end()) continue;
      at(prioritized, x) = 1;
      keyed.emplace_back(it->second, at(x_data, x), at(x_dst, x), x);
    }
    std::sort(keyed.begin(), keyed.end());
    for (const auto& [prio, data, dst, x] : keyed) {
      at(send_list, x_src(x)).push_back(x);
      at(recv_list, dst).push_back(x);
    }
  }
  std::vector<size_t> send_pos(static_cast<size_t>(k), 0), recv_pos(static_cast<size_t>(k), 0);
  std::vector<char> send_busy(static_cast<size_t>(k), 0), recv_busy(static_cast<size_t>(k), 0);
  std::vector<char> x_ready(static_cast<size_t>(nx), 0);
  std::vector<MinHeap<Ready>> pending(static_cast<size_t>(k * k));  // unprioritized, per (src, dst)
  int pending_count = 0;

  std::vector<int> topo_pos(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) at(topo_pos, at(table.topo_order, i)) = i;
  std::vector<int> waiting(static_cast<size_t>(n));  // inputs not yet arrived
  for (int op = 0; op < n; ++op) at(waiting, op) = static_cast<int>(at(table.op_inputs, op).size());
  std::vector<MinHeap<Ready>> ready_ops(static_cast<size_t>(ordered ? 0 : k));
  std::vector<size_t> order_pos(static_cast<size_t>(k), 0);
  std::vector<char> dev_busy(static_cast<size_t>(k), 0);

  Schedule sch;
  sch.ops.assign(static_cast<size_t>(n), {});
  sch.transfers.reserve(static_cast<size_t>(nx));
  sch.order.assign(static_cast<size_t>(k), {});
  sch.busy_ms.assign(static_cast<size_t>(k), 0.0);
  sch.link_bytes.assign(static_cast<size_t>(k * k), 0.0);
  std::vector<int> x_span(static_cast<size_t>(nx), -1);  // index into sch.transfers
  MinHeap<Event> events;
  int done = 0;

  auto arrive = [&](OpId op, double t) {
    if (--at(waiting, op) == 0 && !ordered) at(ready_ops, at(dev, op)).push({t, at(topo_pos, op), op});
  };
  auto start_op = [&](OpId op, double t) {
    const DeviceId d = at(dev, op);
    const double dur = table.time(op, d);
    at(sch.ops, op) = {t, t + dur};
    at(dev_busy, d) = 1;
    at(sch.busy_ms, d) += dur;
    at(sch.order, d).push_back(op);
    events.push({t + dur, 0, op});
  };
  auto start_transfer = [&](int x, double t) {
    const int i = at(x_data, x);
    const DeviceId s = x_src(x), d = at(x_dst, x);
    const double dur = table.transfer(i, s, d);
    const double bytes = at(table.data, i).bytes;
    at(x_span, x) = static_cast<int>(sch.transfers.size());
    sch.transfers.push_back({i, s, d, t, t + dur, bytes});
    at(sch.link_bytes, s * k + d) += bytes;
    if (contention) {
      at(send_busy, s) = 1;
      at(recv_busy, d) = 1;
      if (at(prioritized, x)) {
        ++at(send_pos, s);
        ++at(recv_pos, d);
      }
    }
    events.push({t + dur, 1, x});
  };
  auto dispatch = [&](double t) {
    if (contention) {
      for (int s = 0; s < k; ++s) {  // prioritized transfers at the head of both their ports
        if (at(send_busy, s) || at(send_pos, s) >= at(send_list, s).size()) continue;
        const int x = at(send_list, s)[at(send_pos, s)];
        const DeviceId d = at(x_dst, x);
        if (at(x_ready, x) && !at(recv_busy, d) && at(send_pos, s) < at(send_list, s).size() &&
            at(recv_pos, d) < at(recv_list, d).size() && at(recv_list, d)[at(recv_pos, d)] == x)
          start_transfer(x, t);
      }
      while (pending_count > 0) {  // the rest in order of readiness, on ports past their prioritized lists
        int best = -1;
        for (int s = 0; s < k; ++s) {
          if (at(send_busy, s) || at(send_pos, s) < at(send_list, s).size()) continue;
          for (int d = 0; d < k; ++d) {
            auto& q = at(pending, s * k + d);
            if (q.empty() || at(recv_busy, d) || at(recv_pos, d) < at(recv_list, d).size()) continue;
            if (best < 0 || q.top() < at(pending, best).top()) best = s * k + d;
          }
        }
        if (best < 0) break;
        const int x = at(pending, best).top().id;
        at(pending, best).pop();
        --pending_count;
        start_transfer(x, t);
      }
    }
    for (int d = 0; d < k; ++d) {
      if (at(dev_busy, d)) continue;
      if (ordered) {
        const auto& order = at(placement.order, d);
        if (at(order_pos, d) < order.size() && at(waiting, order[at(order_pos, d)]) == 0)
          start_op(order[at(order_pos, d)++], t);
      } else if (!at(ready_ops, d).empty()) {
        const OpId op = at(ready_ops, d).top().id;
        at(ready_ops, d).pop();
        start_op(op, t);
      }
    }
  };
  auto finish_op = [&](OpId op, double t) {
    ++done;
    const DeviceId s = at(dev, op);
    at(dev_busy, s) = 0;
    for (int i : at(table.op_outputs, op)) {
      for (OpId c : at(table.data, i).consumers)
        if (at(dev, c) == s) arrive(c, t);
      for (int x = at(x_begin, i); x < at(x_begin, i + 1); ++x) {
        at(x_ready, x) = 1;
        if (!contention) {
          start_transfer(x, t);
        } else if (!at(prioritized, x)) {
          at(pending, s * k + at(x_dst, x)).push({t, i, x});
          ++pending_count;
        }
      }
    }
  };
  auto finish_transfer = [&](int x, double t) {
    const DeviceId d = at(x_dst, x);
    if (contention) {
      at(send_busy, x_src(x)) = 0;
      at(recv_busy, d) = 0;
    }
    for (OpId c : at(table.data, at(x_data, x)).consumers)
      if (at(dev, c) == d) arrive(c, t);
  };

  for (int op = 0; op < n; ++op)
    if (at(waiting, op) == 0 && !ordered) at(ready_ops, at(dev, op)).push({0.0, at(topo_pos, op), op});
  dispatch(0.0);
  while (!events.empty()) {
    const double t = events.top().time;
    while (!events.empty() && events.top().time == t) {
      const Event e = events.top();
      events.pop();
      if (e.kind == 0) finish_op(e.id, t);
      else finish_transfer(e.id, t);
    }
    dispatch(t);
  }
  if (done != n) {
    std::string where;
    for (int d = 0; d < k && where.empty(); ++d)
      if (ordered && at(order_pos, d) < at(placement.order, d).size())
        where = fmt::format("device '{}' waits to run '{}' (position {} of its order), whose inputs never arrive",
                            table.device_names[static_cast<size_t>(d)],
                            table.op_names[static_cast<size_t>(at(placement.order, d)[at(order_pos, d)])], at(order_pos, d));
    MOIRAI_CHECK(false, fmt::format("simulate: deadlock after {} of {} operators: {}; the given order breaks precedence "
                                    "or conflicts with the transfer priorities",
                                    done, n, where.empty() ? "a transfer waits for its turn forever" : where));
  }
  for (const auto& span : sch.ops) sch.makespan_ms = std::max(sch.makespan_ms, span.end_ms);

  // Peak memory: parameters for the whole run; an activation on its producer's device from the producer's start
  // until its last local consumer and its outgoing transfers have finished (until the end when nobody reads
  // it); a received copy from the start of its transfer until its last consumer there has finished.
  // Intervals are half-open; at one instant, frees are counted before allocations.
  std::vector<std::tuple<int, double, double>> deltas;  // device, time, bytes
  deltas.reserve(static_cast<size_t>(2 * (m + nx)));
  for (int i = 0; i < m; ++i) {
    const DataItem& item = at(table.data, i);
    if (item.bytes == 0) continue;
    const DeviceId s = at(dev, item.producer);
    double end = item.consumers.empty() ? sch.makespan_ms : at(sch.ops, item.producer).end_ms;
    for (OpId c : item.consumers)
      if (at(dev, c) == s) end = std::max(end, at(sch.ops, c).end_ms);
    for (int x = at(x_begin, i); x < at(x_begin, i + 1); ++x) {
      const TransferSpan& span = at(sch.transfers, at(x_span, x));
      end = std::max(end, span.end_ms);
      double copy_end = span.end_ms;
      for (OpId c : item.consumers)
        if (at(dev, c) == span.dst) copy_end = std::max(copy_end, at(sch.ops, c).end_ms);
      deltas.emplace_back(span.dst, span.start_ms, item.bytes);
      deltas.emplace_back(span.dst, copy_end, -item.bytes);
    }
    const double home = item.bytes - item.in_place_bytes;  // an in-place append adds only the new part
    deltas.emplace_back(s, at(sch.ops, item.producer).start_ms, home);
    deltas.emplace_back(s, end, -home);
  }
  std::sort(deltas.begin(), deltas.end());
  sch.peak_memory.assign(static_cast<size_t>(k), 0.0);
  std::vector<double> base(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < n; ++op) at(base, at(dev, op)) += at(table.param_bytes, op);
  for (int d = 0; d < k; ++d) at(sch.peak_memory, d) = at(base, d);
  std::vector<double> live = base;
  for (const auto& [d, t, bytes] : deltas) {
    at(live, d) += bytes;
    at(sch.peak_memory, d) = std::max(at(sch.peak_memory, d), at(live, d));
  }
  return sch;
}

}  // namespace moirai
