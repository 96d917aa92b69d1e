// Stream simulator: simulate()'s event model (one operator per device at a time, one transfer per send and per
// receive port, a transfer per data item and remote device) over many requests. Work of request r has the
// global id r * count + local id; every ready queue is keyed by (request, ready time, tie, id), so a resource
// serves the earliest-arrived request first, and with one request the keys, hence the schedule, are simulate()'s.
// Admission: at most `in_flight` requests are inside at once; the next enters when one finishes (not before its
// arrival). Memory follows simulate()'s rule per request, except that an unread output lives until its request
// finishes (simulate(): until the makespan, the same instant for one request).
#include "moirai/stream.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <tuple>

#include <fmt/format.h>

namespace moirai {
namespace {

struct Event {
  double time;
  int kind;  // 0 = operator end, 1 = transfer end, 2 = request admitted
  int id;
  bool operator>(const Event& o) const { return std::tie(time, kind, id) > std::tie(o.time, o.kind, o.id); }
};

struct Ready {
  int request;
  double time;
  int tie;
  int id;
  auto key() const { return std::tie(request, time, tie, id); }
  bool operator>(const Ready& o) const { return key() > o.key(); }
  bool operator<(const Ready& o) const { return key() < o.key(); }
};

template <class T>
using MinHeap = std::priority_queue<T, std::vector<T>, std::greater<T>>;

template <class V>
auto& at(V& v, long i) {
  return v[static_cast<size_t>(i)];
}

double nearest_rank(std::vector<double> sorted, double q) {
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

// Cross-device transfers of one request: one per (data item, remote device with a reader), CSR by data item.
struct Transfers {
  std::vector<int> begin, data, dst;
  int size() const { return static_cast<int>(data.size()); }
};

Transfers transfers_of(const CostTable& table, const Placement& placement) {
  const int m = static_cast<int>(table.data.size()), k = table.num_devices();
  Transfers x;
  x.begin.assign(static_cast<size_t>(m + 1), 0);
  std::vector<int> mark(static_cast<size_t>(k), -1);
  for (int i = 0; i < m; ++i) {
    const DataItem& item = at(table.data, i);
    const DeviceId s = at(placement.device, item.producer);
    const size_t first = x.data.size();
    for (OpId c : item.consumers) {
      const DeviceId d = at(placement.device, c);
      if (d != s && at(mark, d) != i) {
        at(mark, d) = i;
        x.data.push_back(i);
        x.dst.push_back(d);
      }
    }
    std::sort(x.dst.begin() + static_cast<std::ptrdiff_t>(first), x.dst.end());
    at(x.begin, i + 1) = x.size();
  }
  return x;
}

}  // namespace

int stream_in_flight(const StreamOptions& options, int devices) {
  return options.max_in_flight > 0 ? options.max_in_flight : 2 * std::max(1, devices);
}

std::vector<DeviceId> StreamResult::over_capacity(const CostTable& table) const {
  Schedule s;
  s.peak_memory = peak_memory;
  return s.over_capacity(table);
}

StreamResult simulate_stream(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim) {
  if (auto status = check_placement(table, placement); !status)
    MOIRAI_CHECK(false, "simulate_stream: " + status.error().message);
  MOIRAI_CHECK(options.requests >= 1, "simulate_stream: at least one request");
  const int n = table.num_ops(), k = table.num_devices(), m = static_cast<int>(table.data.size());
  const int N = options.requests;
  const auto& dev = placement.device;
  const bool ordered = !placement.order.empty();
  const bool contention = sim.contention;
  const Transfers xs = transfers_of(table, placement);
  const int nx = xs.size();
  auto x_src = [&](int x) { return at(dev, at(table.data, at(xs.data, x)).producer); };

  // Per port, the prioritized transfers of one request in priority order; the port repeats it per request.
  std::vector<char> prioritized(static_cast<size_t>(nx), 0);
  std::vector<std::vector<int>> send_list(static_cast<size_t>(k)), recv_list(static_cast<size_t>(k));
  if (contention && !placement.transfer_priority.empty()) {
    std::vector<std::tuple<double, int, int, int>> keyed;
    for (int x = 0; x < nx; ++x) {
      const auto it = placement.transfer_priority.find({at(xs.data, x), at(xs.dst, x)});
      if (it == placement.transfer_priority.end()) continue;
      at(prioritized, x) = 1;
      keyed.emplace_back(it->second, at(xs.data, x), at(xs.dst, x), x);
    }
    std::sort(keyed.begin(), keyed.end());
    for (const auto& [prio, data, dst, x] : keyed) {
      at(send_list, x_src(x)).push_back(x);
      at(recv_list, dst).push_back(x);
    }
  }
  // A port has served request r's prioritized transfers once its position reaches (r + 1) * list size.
  auto list_done = [](const std::vector<int>& list, long pos, int r) {
    return pos >= static_cast<long>(r + 1) * static_cast<long>(list.size());
  };
  std::vector<long> send_pos(static_cast<size_t>(k), 0), recv_pos(static_cast<size_t>(k), 0);
  std::vector<char> send_busy(static_cast<size_t>(k), 0), recv_busy(static_cast<size_t>(k), 0);
  std::vector<char> x_ready(static_cast<size_t>(N) * static_cast<size_t>(nx), 0);
  std::vector<MinHeap<Ready>> pending(static_cast<size_t>(k * k));
  int pending_count = 0;

  std::vector<int> topo_pos(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) at(topo_pos, at(table.topo_order, i)) = i;
  // Inputs not yet arrived, plus one for the request's admission.
  std::vector<int> waiting(static_cast<size_t>(N) * static_cast<size_t>(n));
  for (int r = 0; r < N; ++r)
    for (int op = 0; op < n; ++op) at(waiting, static_cast<long>(r) * n + op) = static_cast<int>(at(table.op_inputs, op).size()) + 1;
  std::vector<MinHeap<Ready>> ready_ops(static_cast<size_t>(ordered ? 0 : k));
  std::vector<long> order_pos(static_cast<size_t>(k), 0);
  std::vector<char> dev_busy(static_cast<size_t>(k), 0);

  StreamResult res;
  res.requests = N;
  res.in_flight = stream_in_flight(options, k);
  res.arrival_ms.resize(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) at(res.arrival_ms, r) = options.arrival_rps > 0 ? 1000.0 * r / options.arrival_rps : 0.0;
  res.finish_ms.assign(static_cast<size_t>(N), 0.0);
  res.ops.assign(static_cast<size_t>(N) * static_cast<size_t>(n), {});
  res.busy_ms.assign(static_cast<size_t>(k), 0.0);
  std::vector<int> x_span(static_cast<size_t>(N) * static_cast<size_t>(nx), -1);
  std::vector<int> ops_left(static_cast<size_t>(N), n);
  MinHeap<Event> events;
  int done = 0, admitted = 0;

  auto admit_next = [&](double t) {
    if (admitted < N) {
      events.push({std::max(t, at(res.arrival_ms, admitted)), 2, admitted});
      ++admitted;
    }
  };
  auto arrive = [&](long g, double t) {
    const int r = static_cast<int>(g / n), op = static_cast<int>(g % n);
    if (--at(waiting, g) == 0 && !ordered) at(ready_ops, at(dev, op)).push({r, t, at(topo_pos, op), static_cast<int>(g)});
  };
  auto start_op = [&](long g, double t) {
    const int op = static_cast<int>(g % n);
    const DeviceId d = at(dev, op);
    const double dur = table.time(op, d);
    at(res.ops, g) = {t, t + dur};
    at(dev_busy, d) = 1;
    at(res.busy_ms, d) += dur;
    events.push({t + dur, 0, static_cast<int>(g)});
  };
  auto start_transfer = [&](long gx, double t) {
    const int r = static_cast<int>(gx / nx), x = static_cast<int>(gx % nx);
    const int i = at(xs.data, x);
    const DeviceId s = x_src(x), d = at(xs.dst, x);
    const double dur = table.transfer(i, s, d);
    at(x_span, gx) = static_cast<int>(res.transfers.size());
    res.transfers.push_back({i, s, d, t, t + dur, at(table.data, i).bytes});
    res.transfer_request.push_back(r);
    if (contention) {
      at(send_busy, s) = 1;
      at(recv_busy, d) = 1;
      if (at(prioritized, x)) {
        ++at(send_pos, s);
        ++at(recv_pos, d);
      }
    }
    events.push({t + dur, 1, static_cast<int>(gx)});
  };
  auto dispatch = [&](double t) {
    if (contention) {
      for (int s = 0; s < k; ++s) {  // prioritized transfers at the head of both their ports
        const auto& list = at(send_list, s);
        if (at(send_busy, s) || list.empty() || at(send_pos, s) >= static_cast<long>(N) * static_cast<long>(list.size()))
          continue;
        const int r = static_cast<int>(at(send_pos, s) / static_cast<long>(list.size()));
        const int x = list[static_cast<size_t>(at(send_pos, s) % static_cast<long>(list.size()))];
        const DeviceId d = at(xs.dst, x);
        const auto& rlist = at(recv_list, d);
        const long gx = static_cast<long>(r) * nx + x;
        if (at(x_ready, gx) && !at(recv_busy, d) && at(recv_pos, d) < static_cast<long>(N) * static_cast<long>(rlist.size()) &&
            rlist[static_cast<size_t>(at(recv_pos, d) % static_cast<long>(rlist.size()))] == x &&
            at(recv_pos, d) / static_cast<long>(rlist.size()) == r)
          start_transfer(gx, t);
      }
      while (pending_count > 0) {  // the rest, on ports past this request's prioritized transfers
        int best = -1;
        for (int s = 0; s < k; ++s) {
          if (at(send_busy, s)) continue;
          for (int d = 0; d < k; ++d) {
            auto& q = at(pending, s * k + d);
            if (q.empty() || at(recv_busy, d)) continue;
            const int r = q.top().request;
            if (!list_done(at(send_list, s), at(send_pos, s), r) || !list_done(at(recv_list, d), at(recv_pos, d), r)) continue;
            if (best < 0 || q.top() < at(pending, best).top()) best = s * k + d;
          }
        }
        if (best < 0) break;
        const long gx = at(pending, best).top().id;
        at(pending, best).pop();
        --pending_count;
        start_transfer(gx, t);
      }
    }
    for (int d = 0; d < k; ++d) {
      if (at(dev_busy, d)) continue;
      if (ordered) {
        const auto& order = at(placement.order, d);
        if (order.empty() || at(order_pos, d) >= static_cast<long>(N) * static_cast<long>(order.size())) continue;
        const long len = static_cast<long>(order.size());
        const long g = (at(order_pos, d) / len) * n + order[static_cast<size_t>(at(order_pos, d) % len)];
        if (at(waiting, g) == 0) {
          ++at(order_pos, d);
          start_op(g, t);
        }
      } else if (!at(ready_ops, d).empty()) {
        const long g = at(ready_ops, d).top().id;
        at(ready_ops, d).pop();
        start_op(g, t);
      }
    }
  };
  auto finish_op = [&](long g, double t) {
    ++done;
    const int r = static_cast<int>(g / n), op = static_cast<int>(g % n);
    const long base = static_cast<long>(r) * n;
    const DeviceId s = at(dev, op);
    at(dev_busy, s) = 0;
    for (int i : at(table.op_outputs, op)) {
      for (OpId c : at(table.data, i).consumers)
        if (at(dev, c) == s) arrive(base + c, t);
      for (int x = at(xs.begin, i); x < at(xs.begin, i + 1); ++x) {
        const long gx = static_cast<long>(r) * nx + x;
        at(x_ready, gx) = 1;
        if (!contention) {
          start_transfer(gx, t);
        } else if (!at(prioritized, x)) {
          at(pending, s * k + at(xs.dst, x)).push({r, t, i, static_cast<int>(gx)});
          ++pending_count;
        }
      }
    }
    if (--at(ops_left, r) == 0) {
      at(res.finish_ms, r) = t;
      admit_next(t);
    }
  };
  auto finish_transfer = [&](long gx, double t) {
    const int r = static_cast<int>(gx / nx), x = static_cast<int>(gx % nx);
    const DeviceId d = at(xs.dst, x);
    if (contention) {
      at(send_busy, x_src(x)) = 0;
      at(recv_busy, d) = 0;
    }
    for (OpId c : at(table.data, at(xs.data, x)).consumers)
      if (at(dev, c) == d) arrive(static_cast<long>(r) * n + c, t);
  };

  for (int r = 0; r < res.in_flight; ++r) admit_next(0.0);
  while (!events.empty()) {
    const double t = events.top().time;
    while (!events.empty() && events.top().time == t) {
      const Event e = events.top();
      events.pop();
      if (e.kind == 0) {
        finish_op(e.id, t);
      } else if (e.kind == 1) {
        finish_transfer(e.id, t);
      } else {
        for (int op = 0; op < n; ++op) arrive(static_cast<long>(e.id) * n + op, t);
        if (n == 0) at(res.finish_ms, e.id) = t;
      }
    }
    dispatch(t);
  }
  MOIRAI_CHECK(done == static_cast<long>(N) * n,
               fmt::format("simulate_stream: deadlock after {} of {} operators; the given order breaks precedence or "
                           "conflicts with the transfer priorities",
                           done, static_cast<long>(N) * n));

  res.latency_ms.resize(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) {
    at(res.latency_ms, r) = at(res.finish_ms, r) - at(res.arrival_ms, r);
    res.makespan_ms = std::max(res.makespan_ms, at(res.finish_ms, r));
  }
  res.latency_p50_ms = nearest_rank(res.latency_ms, 0.5);
  res.latency_p90_ms = nearest_rank(res.latency_ms, 0.9);
  res.latency_max_ms = nearest_rank(res.latency_ms, 1.0);
  std::vector<double> done_at = res.finish_ms;
  std::sort(done_at.begin(), done_at.end());
  const int warm = std::min(N - 1, static_cast<int>(std::floor(options.warmup_fraction * N)));
  const double window = done_at.back() - at(done_at, warm);
  res.throughput_rps = (N - 1 - warm >= 1 && window > 0) ? 1000.0 * (N - 1 - warm) / window
                                                         : (res.makespan_ms > 0 ? 1000.0 * N / res.makespan_ms : 0.0);
  res.utilisation.resize(static_cast<size_t>(k));
  for (int d = 0; d < k; ++d) at(res.utilisation, d) = res.makespan_ms > 0 ? at(res.busy_ms, d) / res.makespan_ms : 0.0;

  // Peak memory, simulate()'s rule per request (see the file comment).
  std::vector<std::tuple<int, double, double>> deltas;
  for (int r = 0; r < N; ++r) {
    const long base = static_cast<long>(r) * n;
    auto span = [&](OpId op) -> const OpSpan& { return at(res.ops, base + op); };
    for (int i = 0; i < m; ++i) {
      const DataItem& item = at(table.data, i);
      if (item.bytes == 0) continue;
      const DeviceId s = at(dev, item.producer);
      double end = item.consumers.empty() ? at(res.finish_ms, r) : span(item.producer).end_ms;
      for (OpId c : item.consumers)
        if (at(dev, c) == s) end = std::max(end, span(c).end_ms);
      for (int x = at(xs.begin, i); x < at(xs.begin, i + 1); ++x) {
        const TransferSpan& tr = at(res.transfers, at(x_span, static_cast<long>(r) * nx + x));
        end = std::max(end, tr.end_ms);
        double copy_end = tr.end_ms;
        for (OpId c : item.consumers)
          if (at(dev, c) == tr.dst) copy_end = std::max(copy_end, span(c).end_ms);
        deltas.emplace_back(tr.dst, tr.start_ms, item.bytes);
        deltas.emplace_back(tr.dst, copy_end, -item.bytes);
      }
      deltas.emplace_back(s, span(item.producer).start_ms, item.bytes);
      deltas.emplace_back(s, end, -item.bytes);
    }
  }
  std::sort(deltas.begin(), deltas.end());
  std::vector<double> live(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < n; ++op) at(live, at(dev, op)) += at(table.param_bytes, op);
  res.peak_memory = live;
  for (const auto& [d, t, bytes] : deltas) {
    at(live, d) += bytes;
    at(res.peak_memory, d) = std::max(at(res.peak_memory, d), at(live, d));
  }
  return res;
}

PeriodLoads period_loads(const CostTable& table, const Placement& placement, const SimOptions& sim) {
  const int n = table.num_ops(), k = table.num_devices();
  PeriodLoads loads;
  loads.device_ms.assign(static_cast<size_t>(k), 0.0);
  loads.send_ms.assign(static_cast<size_t>(k), 0.0);
  loads.recv_ms.assign(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < n; ++op) at(loads.device_ms, at(placement.device, op)) += table.time(op, at(placement.device, op));
  const Transfers xs = transfers_of(table, placement);
  for (int x = 0; x < xs.size(); ++x) {
    const int i = at(xs.data, x);
    const DeviceId s = at(placement.device, at(table.data, i).producer), d = at(xs.dst, x);
    at(loads.send_ms, s) += table.transfer(i, s, d);
    at(loads.recv_ms, d) += table.transfer(i, s, d);
  }
  auto consider = [&](double v, const char* what, int d) {
    if (v > loads.period_ms) {
      loads.period_ms = v;
      loads.bottleneck = fmt::format("{} {}", what, at(table.device_names, d));
    }
  };
  for (int d = 0; d < k; ++d) consider(at(loads.device_ms, d), "device", d);
  if (sim.contention)
    for (int d = 0; d < k; ++d) {
      consider(at(loads.send_ms, d), "send port", d);
      consider(at(loads.recv_ms, d), "receive port", d);
    }
  return loads;
}

std::vector<double> stream_memory_bound(const CostTable& table, const Placement& placement, int in_flight) {
  const int k = table.num_devices();
  std::vector<double> params(static_cast<size_t>(k), 0.0), acts(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < table.num_ops(); ++op) at(params, at(placement.device, op)) += at(table.param_bytes, op);
  std::vector<int> mark(static_cast<size_t>(k), -1);
  for (int i = 0; i < static_cast<int>(table.data.size()); ++i) {
    const DataItem& item = at(table.data, i);
    const DeviceId s = at(placement.device, item.producer);
    at(mark, s) = i;
    at(acts, s) += item.bytes;
    for (OpId c : item.consumers) {
      const DeviceId d = at(placement.device, c);
      if (at(mark, d) != i) {
        at(mark, d) = i;
        at(acts, d) += item.bytes;
      }
    }
  }
  for (int d = 0; d < k; ++d) at(params, d) += in_flight * at(acts, d);
  return params;
}

StreamFigures stream_figures(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim) {
  const StreamResult r = simulate_stream(table, placement, options, sim);
  const PeriodLoads loads = period_loads(table, placement, sim);
  StreamFigures f;
  f.requests = r.requests;
  f.in_flight = r.in_flight;
  f.arrival_rps = options.arrival_rps;
  f.throughput_rps = r.throughput_rps;
  f.latency_p50_ms = r.latency_p50_ms;
  f.latency_p90_ms = r.latency_p90_ms;
  f.latency_max_ms = r.latency_max_ms;
  f.period_ms = loads.period_ms;
  f.bottleneck = loads.bottleneck;
  f.utilisation = r.utilisation;
  f.peak_memory = r.peak_memory;
  return f;
}

}  // namespace moirai
