// The discrete-event loop shared by simulate() (one request) and simulate_stream() (many). One event queue (a
// binary heap of operator ends, transfer ends and admissions); after all events of one instant are processed,
// idle devices and ports are dispatched. Two policies:
//  - list scheduling (no Placement::order): an idle device runs its ready operator of the earliest request, then
//    earliest ready, then earliest topological position; transfers likewise (request, readiness, data id, dst);
//  - given orders: each device runs its operators strictly in Placement::order, repeated request after request,
//    and each port carries the transfers that have a priority strictly in priority order (repeated per request)
//    before any other of that request; every event starts as early as precedence, resource availability and
//    these orders allow (a semi-active schedule).
// With one request every key reduces to the single-request policy, so simulate() is this loop with one request.
// A cross-device data item is one transfer per destination device (shared by every consumer there). With
// contention it holds the source's send port and the destination's receive port; without, it starts as soon as
// its producer ends.
#include <algorithm>
#include <queue>
#include <tuple>

#include <fmt/format.h>

#include "moirai/stream.h"
#include "internal.h"

namespace moirai {
namespace {

struct Event {
  double time;
  int kind;  // 0 = operator end, 1 = transfer end, 2 = request admitted
  long id;
  bool operator>(const Event& o) const { return std::tie(time, kind, id) > std::tie(o.time, o.kind, o.id); }
};

struct Ready {  // a ready operator or transfer, smallest key first
  int request;
  double time;
  int tie;  // topological position (operators) or data id (transfers)
  long id;
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

// A resource that repeats one request's list per request (a device's order, a port's prioritized transfers):
// position p is entry p % size of request p / size.
struct Cycle {
  const std::vector<int>* list = nullptr;
  long pos = 0;
  long size() const { return static_cast<long>(list->size()); }
  bool finished(int requests) const { return list->empty() || pos >= requests * size(); }
  int request() const { return static_cast<int>(pos / size()); }
  int head() const { return (*list)[static_cast<size_t>(pos % size())]; }
  bool done_with(int r) const { return pos >= static_cast<long>(r + 1) * size(); }  // request r's entries served
};

class EventLoop {
 public:
  EventLoop(const CostTable& table, const Placement& placement, const Arrivals& arrivals, const SimOptions& options);
  EventTrace run();

 private:
  void prioritize_transfers();
  void admit_next(double t);
  void admit(int r, double t);
  void arrive(long g, double t);
  void start_op(long g, double t);
  void start_transfer(long gx, double t);
  void dispatch(double t);
  void dispatch_prioritized(double t);
  void dispatch_pending(double t);
  void dispatch_devices(double t);
  void finish_op(long g, double t);
  void finish_transfer(long gx, double t);
  std::string deadlock_message(long done) const;
  DeviceId x_src(int x) const { return at(dev_, at(table_.data, at(trace_.xs.data, x)).producer); }

  const CostTable& table_;
  const Placement& placement_;
  const Arrivals& arrivals_;
  const std::vector<DeviceId>& dev_;
  const int n_, k_, N_;
  const bool ordered_, contention_;
  int nx_ = 0;
  EventTrace trace_;
  MinHeap<Event> events_;
  // Transfers: the prioritized ones per port in priority order, the rest waiting per (src, dst).
  std::vector<char> prioritized_, x_ready_, send_busy_, recv_busy_;
  std::vector<std::vector<int>> send_list_, recv_list_;
  std::vector<Cycle> send_, recv_;
  std::vector<MinHeap<Ready>> pending_;
  int pending_count_ = 0;
  // Operators: inputs not yet arrived (plus one for the request's admission), ready queues or order positions.
  std::vector<int> topo_pos_, waiting_, ops_left_;
  std::vector<MinHeap<Ready>> ready_ops_;
  std::vector<Cycle> order_;
  std::vector<char> dev_busy_;
  int admitted_ = 0;
};

EventLoop::EventLoop(const CostTable& table, const Placement& placement, const Arrivals& arrivals,
                     const SimOptions& options)
    : table_(table), placement_(placement), arrivals_(arrivals), dev_(placement.device), n_(table.num_ops()),
      k_(table.num_devices()), N_(static_cast<int>(arrivals.arrival_ms.size())), ordered_(!placement.order.empty()),
      contention_(options.contention) {
  const auto K = static_cast<size_t>(k_), N = static_cast<size_t>(N_);
  trace_.xs = transfers_of(table, placement);
  nx_ = trace_.xs.size();
  prioritize_transfers();
  send_busy_.assign(K, 0);
  recv_busy_.assign(K, 0);
  x_ready_.assign(N * static_cast<size_t>(nx_), 0);
  pending_.resize(K * K);
  topo_pos_.assign(static_cast<size_t>(n_), 0);
  for (int i = 0; i < n_; ++i) at(topo_pos_, at(table.topo_order, i)) = i;
  waiting_.resize(N * static_cast<size_t>(n_));
  for (int r = 0; r < N_; ++r)
    for (int op = 0; op < n_; ++op) at(waiting_, static_cast<long>(r) * n_ + op) = static_cast<int>(at(table.op_inputs, op).size()) + 1;
  ops_left_.assign(N, n_);
  ready_ops_.resize(ordered_ ? 0 : K);
  for (int d = 0; d < k_ && ordered_; ++d) order_.push_back({&at(placement.order, d), 0});
  dev_busy_.assign(K, 0);
  trace_.ops.assign(N * static_cast<size_t>(n_), {});
  trace_.transfers.reserve(N * static_cast<size_t>(nx_));
  trace_.transfer_span.assign(N * static_cast<size_t>(nx_), -1);
  trace_.order.assign(K, {});
  trace_.busy_ms.assign(K, 0.0);
  trace_.link_bytes.assign(K * K, 0.0);
  trace_.finish_ms.assign(N, 0.0);
}

// Per port, the prioritized transfers of one request in priority order (ties by data, dst).
void EventLoop::prioritize_transfers() {
  const Transfers& xs = trace_.xs;
  prioritized_.assign(static_cast<size_t>(nx_), 0);
  send_list_.assign(static_cast<size_t>(k_), {});
  recv_list_.assign(static_cast<size_t>(k_), {});
  if (contention_ && !placement_.transfer_priority.empty()) {
    std::vector<std::tuple<double, int, int, int>> keyed;
    for (int x = 0; x < nx_; ++x) {
      const auto it = placement_.transfer_priority.find({at(xs.data, x), at(xs.dst, x)});
      if (it == placement_.transfer_priority.end()) continue;
      at(prioritized_, x) = 1;
      keyed.emplace_back(it->second, at(xs.data, x), at(xs.dst, x), x);
    }
    std::sort(keyed.begin(), keyed.end());
    for (const auto& [prio, data, dst, x] : keyed) {
      at(send_list_, x_src(x)).push_back(x);
      at(recv_list_, dst).push_back(x);
    }
  }
  for (int d = 0; d < k_; ++d) {
    send_.push_back({&at(send_list_, d), 0});
    recv_.push_back({&at(recv_list_, d), 0});
  }
}

void EventLoop::admit_next(double t) {
  if (admitted_ >= N_) return;
  events_.push({std::max(t, at(arrivals_.arrival_ms, admitted_)), 2, admitted_});
  ++admitted_;
}

void EventLoop::admit(int r, double t) {
  for (int op = 0; op < n_; ++op) arrive(static_cast<long>(r) * n_ + op, t);
  if (n_ == 0) at(trace_.finish_ms, r) = t;
}

void EventLoop::arrive(long g, double t) {
  const int r = static_cast<int>(g / n_), op = static_cast<int>(g % n_);
  if (--at(waiting_, g) == 0 && !ordered_) at(ready_ops_, at(dev_, op)).push({r, t, at(topo_pos_, op), g});
}

void EventLoop::start_op(long g, double t) {
  const int op = static_cast<int>(g % n_);
  const DeviceId d = at(dev_, op);
  const double dur = table_.time(op, d);
  at(trace_.ops, g) = {t, t + dur};
  at(dev_busy_, d) = 1;
  at(trace_.busy_ms, d) += dur;
  at(trace_.order, d).push_back(op);
  events_.push({t + dur, 0, g});
}

void EventLoop::start_transfer(long gx, double t) {
  const int r = static_cast<int>(gx / nx_), x = static_cast<int>(gx % nx_);
  const int i = at(trace_.xs.data, x);
  const DeviceId s = x_src(x), d = at(trace_.xs.dst, x);
  const double dur = table_.transfer(i, s, d);
  const double bytes = at(table_.data, i).bytes;
  at(trace_.transfer_span, gx) = static_cast<int>(trace_.transfers.size());
  trace_.transfers.push_back({i, s, d, t, t + dur, bytes});
  trace_.transfer_request.push_back(r);
  at(trace_.link_bytes, s * k_ + d) += bytes;
  if (contention_) {
    at(send_busy_, s) = 1;
    at(recv_busy_, d) = 1;
    if (at(prioritized_, x)) {
      ++at(send_, s).pos;
      ++at(recv_, d).pos;
    }
  }
  events_.push({t + dur, 1, gx});
}

void EventLoop::dispatch(double t) {
  if (contention_) {
    dispatch_prioritized(t);
    dispatch_pending(t);
  }
  dispatch_devices(t);
}

// A prioritized transfer starts when it is ready and at the head of both its ports.
void EventLoop::dispatch_prioritized(double t) {
  for (int s = 0; s < k_; ++s) {
    const Cycle& send = at(send_, s);
    if (at(send_busy_, s) || send.finished(N_)) continue;
    const int r = send.request(), x = send.head();
    const DeviceId d = at(trace_.xs.dst, x);
    const Cycle& recv = at(recv_, d);
    const long gx = static_cast<long>(r) * nx_ + x;
    if (at(x_ready_, gx) && !at(recv_busy_, d) && !recv.finished(N_) && recv.head() == x && recv.request() == r)
      start_transfer(gx, t);
  }
}

// The other transfers in order of (request, readiness), on ports past that request's prioritized transfers.
void EventLoop::dispatch_pending(double t) {
  while (pending_count_ > 0) {
    int best = -1;
    for (int s = 0; s < k_; ++s) {
      if (at(send_busy_, s)) continue;
      for (int d = 0; d < k_; ++d) {
        auto& q = at(pending_, s * k_ + d);
        if (q.empty() || at(recv_busy_, d)) continue;
        const int r = q.top().request;
        if (!at(send_, s).done_with(r) || !at(recv_, d).done_with(r)) continue;
        if (best < 0 || q.top() < at(pending_, best).top()) best = s * k_ + d;
      }
    }
    if (best < 0) break;
    const long gx = at(pending_, best).top().id;
    at(pending_, best).pop();
    --pending_count_;
    start_transfer(gx, t);
  }
}

void EventLoop::dispatch_devices(double t) {
  for (int d = 0; d < k_; ++d) {
    if (at(dev_busy_, d)) continue;
    if (ordered_) {
      Cycle& order = at(order_, d);
      if (order.finished(N_)) continue;
      const long g = static_cast<long>(order.request()) * n_ + order.head();
      if (at(waiting_, g) == 0) {
        ++order.pos;
        start_op(g, t);
      }
    } else if (!at(ready_ops_, d).empty()) {
      const long g = at(ready_ops_, d).top().id;
      at(ready_ops_, d).pop();
      start_op(g, t);
    }
  }
}

void EventLoop::finish_op(long g, double t) {
  const int r = static_cast<int>(g / n_), op = static_cast<int>(g % n_);
  const long base = static_cast<long>(r) * n_;
  const DeviceId s = at(dev_, op);
  at(dev_busy_, s) = 0;
  for (int i : at(table_.op_outputs, op)) {
    for (OpId c : at(table_.data, i).consumers)
      if (at(dev_, c) == s) arrive(base + c, t);
    for (int x = at(trace_.xs.begin, i); x < at(trace_.xs.begin, i + 1); ++x) {
      const long gx = static_cast<long>(r) * nx_ + x;
      at(x_ready_, gx) = 1;
      if (!contention_) {
        start_transfer(gx, t);
      } else if (!at(prioritized_, x)) {
        at(pending_, s * k_ + at(trace_.xs.dst, x)).push({r, t, i, gx});
        ++pending_count_;
      }
    }
  }
  if (--at(ops_left_, r) == 0) {
    at(trace_.finish_ms, r) = t;
    admit_next(t);
  }
}

void EventLoop::finish_transfer(long gx, double t) {
  const int r = static_cast<int>(gx / nx_), x = static_cast<int>(gx % nx_);
  const DeviceId d = at(trace_.xs.dst, x);
  if (contention_) {
    at(send_busy_, x_src(x)) = 0;
    at(recv_busy_, d) = 0;
  }
  for (OpId c : at(table_.data, at(trace_.xs.data, x)).consumers)
    if (at(dev_, c) == d) arrive(static_cast<long>(r) * n_ + c, t);
}

std::string EventLoop::deadlock_message(long done) const {
  std::string where = "a transfer waits for its turn forever";
  for (int d = 0; d < k_ && ordered_; ++d) {
    const Cycle& order = at(order_, d);
    if (order.finished(N_)) continue;
    where = fmt::format("device '{}' waits to run '{}' (position {} of its order{}), whose inputs never arrive",
                        at(table_.device_names, d), at(table_.op_names, order.head()), order.pos % order.size(),
                        N_ > 1 ? fmt::format(", request {}", order.request()) : "");
    break;
  }
  return fmt::format("simulate: deadlock after {} of {} operators: {}; the given order breaks precedence or "
                     "conflicts with the transfer priorities",
                     done, static_cast<long>(N_) * n_, where);
}

EventTrace EventLoop::run() {
  long done = 0;
  for (int r = 0; r < arrivals_.in_flight; ++r) admit_next(0.0);
  while (!events_.empty()) {
    const double t = events_.top().time;
    while (!events_.empty() && events_.top().time == t) {
      const Event e = events_.top();
      events_.pop();
      if (e.kind == 0) {
        finish_op(e.id, t);
        ++done;
      } else if (e.kind == 1) {
        finish_transfer(e.id, t);
      } else {
        admit(static_cast<int>(e.id), t);
      }
    }
    dispatch(t);
  }
  MOIRAI_CHECK(done == static_cast<long>(N_) * n_, deadlock_message(done));
  return std::move(trace_);
}

}  // namespace

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

EventTrace run_events(const CostTable& table, const Placement& placement, const Arrivals& arrivals,
                      const SimOptions& options) {
  return EventLoop(table, placement, arrivals, options).run();
}

std::vector<double> trace_peak_memory(const CostTable& table, const Placement& placement, const EventTrace& trace,
                                      int sequences) {
  const int n = table.num_ops(), k = table.num_devices(), m = static_cast<int>(table.data.size());
  const int N = static_cast<int>(trace.finish_ms.size()), nx = trace.xs.size();
  const auto& dev = placement.device;
  const Transfers& xs = trace.xs;
  std::vector<std::tuple<int, double, double>> deltas;  // device, time, bytes
  deltas.reserve(static_cast<size_t>(2 * N) * static_cast<size_t>(m + nx));
  for (int r = 0; r < N; ++r) {
    auto span = [&](OpId op) -> const OpSpan& { return at(trace.ops, static_cast<long>(r) * n + op); };
    for (int i = 0; i < m; ++i) {
      const DataItem& item = at(table.data, i);
      if (item.bytes == 0) continue;
      const DeviceId s = at(dev, item.producer);
      double end = item.consumers.empty() ? at(trace.finish_ms, r) : span(item.producer).end_ms;
      for (OpId c : item.consumers)
        if (at(dev, c) == s) end = std::max(end, span(c).end_ms);
      for (int x = at(xs.begin, i); x < at(xs.begin, i + 1); ++x) {
        const TransferSpan& tr = at(trace.transfers, at(trace.transfer_span, static_cast<long>(r) * nx + x));
        end = std::max(end, tr.end_ms);
        double copy_end = tr.end_ms;
        for (OpId c : item.consumers)
          if (at(dev, c) == tr.dst) copy_end = std::max(copy_end, span(c).end_ms);
        deltas.emplace_back(tr.dst, tr.start_ms, item.bytes);
        deltas.emplace_back(tr.dst, copy_end, -item.bytes);
      }
      const double home = item.bytes - item.in_place_bytes;  // an in-place append adds only the new part
      deltas.emplace_back(s, span(item.producer).start_ms, home);
      deltas.emplace_back(s, end, -home);
    }
  }
  std::sort(deltas.begin(), deltas.end());
  std::vector<double> live(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < n; ++op) at(live, at(dev, op)) += resident_bytes(table, op, sequences);
  std::vector<double> peak = live;
  for (const auto& [d, t, bytes] : deltas) {
    at(live, d) += bytes;
    at(peak, d) = std::max(at(peak, d), at(live, d));
  }
  return peak;
}

}  // namespace moirai
