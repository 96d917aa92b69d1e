// Shared list-scheduling machinery: ranks, the conservative memory guard with packing look-ahead, the partial
// schedule with insertion and port booking, and the earliest-time-first loop (see list_schedule.h).
#include "list_schedule.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <queue>
#include <fmt/format.h>
#include <numeric>
#include <optional>

namespace moirai::place {

double mean_time(const CostTable& table, OpId op) {
  const int n = table.num_devices();
  double sum = 0;
  for (DeviceId d = 0; d < n; ++d) sum += table.time(op, d);
  return n > 0 ? sum / n : 0.0;
}

double mean_transfer(const CostTable& table, int data) {
  const int n = table.num_devices();
  if (n < 2) return 0.0;
  double sum = 0;
  for (DeviceId s = 0; s < n; ++s)
    for (DeviceId d = 0; d < n; ++d)
      if (s != d) sum += table.transfer(data, s, d);
  return sum / (n * (n - 1));
}

std::vector<double> upward_rank(const CostTable& table) {
  std::vector<double> comm(table.data.size());
  for (size_t i = 0; i < comm.size(); ++i) comm[i] = mean_transfer(table, static_cast<int>(i));
  std::vector<double> rank(static_cast<size_t>(table.num_ops()), 0.0);
  for (auto it = table.topo_order.rbegin(); it != table.topo_order.rend(); ++it) {
    const OpId op = *it;
    double tail = 0;
    for (int data : table.op_outputs[static_cast<size_t>(op)])
      for (OpId c : table.data[static_cast<size_t>(data)].consumers)
        tail = std::max(tail, comm[static_cast<size_t>(data)] + rank[static_cast<size_t>(c)]);
    rank[static_cast<size_t>(op)] = mean_time(table, op) + tail;
  }
  return rank;
}

std::vector<double> downward_rank(const CostTable& table) {
  std::vector<double> rank(static_cast<size_t>(table.num_ops()), 0.0);
  for (OpId op : table.topo_order) {
    double head = 0;
    for (int data : table.op_inputs[static_cast<size_t>(op)]) {
      const OpId p = table.data[static_cast<size_t>(data)].producer;
      head = std::max(head, rank[static_cast<size_t>(p)] + mean_time(table, p) + mean_transfer(table, data));
    }
    rank[static_cast<size_t>(op)] = head;
  }
  return rank;
}

std::vector<int> topo_position(const CostTable& table) {
  std::vector<int> pos(static_cast<size_t>(table.num_ops()), 0);
  for (size_t i = 0; i < table.topo_order.size(); ++i) pos[static_cast<size_t>(table.topo_order[i])] = static_cast<int>(i);
  return pos;
}

long long quantize(double value, double scale) {
  return std::llround(value / (scale > 0 ? scale : 1.0) * 1e9);
}

// ---------------------------------------------------------------------------------------------------------------
// MemoryGuard

MemoryGuard::MemoryGuard(const CostTable& table) : t_(table) {
  const size_t n = static_cast<size_t>(table.num_ops());
  double max_cap = 1;
  for (double c : table.capacity) max_cap = std::max(max_cap, c);
  eps_ = 1e-9 * max_cap;
  used_.assign(static_cast<size_t>(table.num_devices()), 0.0);
  standalone_.assign(n, 0.0);
  placed_.assign(n, 0);
  resident_.resize(table.data.size());
  for (size_t op = 0; op < n; ++op) {
    double bytes = table.param_bytes[op];
    for (int data : table.op_inputs[op]) bytes += table.data[static_cast<size_t>(data)].bytes;
    for (int data : table.op_outputs[op]) bytes += table.data[static_cast<size_t>(data)].bytes;
    standalone_[op] = bytes;
    remaining_ += bytes;
    max_remaining_ = std::max(max_remaining_, bytes);
  }
  unplaced_consumers_.assign(table.data.size(), 0);
  for (size_t i = 0; i < table.data.size(); ++i)
    unplaced_consumers_[i] = static_cast<int>(table.data[i].consumers.size());
  for (size_t op = 0; op < n; ++op) remaining_own_ += own(static_cast<OpId>(op));
  frontier_resident_.assign(static_cast<size_t>(table.num_devices()), 0.0);
  by_size_.resize(n);
  std::iota(by_size_.begin(), by_size_.end(), 0);
  std::stable_sort(by_size_.begin(), by_size_.end(),
                   [&](OpId a, OpId b) { return standalone_[static_cast<size_t>(a)] > standalone_[static_cast<size_t>(b)]; });
}

double MemoryGuard::own(OpId op) const {
  double bytes = t_.param_bytes[static_cast<size_t>(op)];
  for (int data : t_.op_outputs[static_cast<size_t>(op)]) bytes += t_.data[static_cast<size_t>(data)].bytes;
  return bytes;
}

double MemoryGuard::added(OpId op, DeviceId d) const {
  const size_t o = static_cast<size_t>(op);
  double bytes = t_.param_bytes[o];
  auto resident = [&](int data) {
    const auto& r = resident_[static_cast<size_t>(data)];
    return std::find(r.begin(), r.end(), d) != r.end();
  };
  for (int data : t_.op_outputs[o]) bytes += t_.data[static_cast<size_t>(data)].bytes;
  for (int data : t_.op_inputs[o])
    if (!resident(data)) bytes += t_.data[static_cast<size_t>(data)].bytes;
  return bytes;
}

bool MemoryGuard::fits_now(OpId op, DeviceId d) const {
  return used_[static_cast<size_t>(d)] + added(op, d) <= t_.capacity[static_cast<size_t>(d)] + eps_;
}

bool MemoryGuard::fits(OpId op, DeviceId d) const {
  const double add = added(op, d);
  if (used_[static_cast<size_t>(d)] + add > t_.capacity[static_cast<size_t>(d)] + eps_) return false;
  // Called for every ready operator and device at every step: the common case allocates nothing.
  auto free_on = [&](size_t i) { return t_.capacity[i] - used_[i] - (static_cast<DeviceId>(i) == d ? add : 0.0); };
  double spare = 0;
  for (size_t i = 0; i < used_.size(); ++i) spare += std::max(0.0, free_on(i) - max_remaining_);
  // Cheap sufficient test: any greedy packing succeeds when every device can take items until less than the
  // largest item is left and that already absorbs everything that remains.
  const double rest = remaining_ - standalone_[static_cast<size_t>(op)];
  if (spare + eps_ >= rest) return true;
  std::vector<double> free(used_.size());
  for (size_t i = 0; i < free.size(); ++i) free[i] = free_on(i);
  // Second sufficient test: one device takes everything that remains (their parameters and outputs, plus the
  // outputs of placed operators they read).
  // Items already counted on a device are not counted again there.
  double frontier = frontier_;
  std::vector<double> counted = frontier_resident_;
  for (int data : t_.op_outputs[static_cast<size_t>(op)])
    if (unplaced_consumers_[static_cast<size_t>(data)] > 0) {
      frontier += t_.data[static_cast<size_t>(data)].bytes;
      counted[static_cast<size_t>(d)] += t_.data[static_cast<size_t>(data)].bytes;
    }
  for (int data : t_.op_inputs[static_cast<size_t>(op)]) {
    const double b = t_.data[static_cast<size_t>(data)].bytes;
    const auto& r = resident_[static_cast<size_t>(data)];
    const bool here = std::find(r.begin(), r.end(), d) != r.end();
    if (unplaced_consumers_[static_cast<size_t>(data)] == 1) {  // leaves the frontier
      frontier -= b;
      for (DeviceId e : r) counted[static_cast<size_t>(e)] -= b;
    } else if (!here) {
      counted[static_cast<size_t>(d)] += b;
    }
  }
  const double all_rest = remaining_own_ - own(op) + frontier;
  for (size_t e = 0; e < free.size(); ++e)
    if (free[e] + eps_ >= all_rest - counted[e]) return true;
  return packable(free, op, nullptr);
}

bool MemoryGuard::fits_everywhere() const {
  // fits()'s first test with the largest operator's bytes for both `add` and the item size: a lower bound on the
  // spare room of every (operator, device) it would check.
  double spare = 0;
  for (size_t i = 0; i < used_.size(); ++i) {
    const double free = t_.capacity[i] - used_[i];
    if (free + eps_ < max_remaining_) return false;
    spare += std::max(0.0, free - 2 * max_remaining_);
  }
  return spare + eps_ >= remaining_;
}

bool MemoryGuard::packable(const std::vector<double>& free_in, OpId skip, std::vector<DeviceId>* assignment) const {
  std::vector<double> free = free_in;
  std::vector<OpId> items;
  for (OpId op : by_size_)
    if (!placed_[static_cast<size_t>(op)] && op != skip) items.push_back(op);
  if (assignment) assignment->assign(static_cast<size_t>(t_.num_ops()), kNone);
  // Best-fit decreasing.
  bool ok = true;
  std::vector<DeviceId> chosen(items.size(), kNone);
  for (size_t i = 0; i < items.size() && ok; ++i) {
    const double size = standalone_[static_cast<size_t>(items[i])];
    DeviceId best = kNone;
    for (DeviceId d = 0; d < static_cast<DeviceId>(free.size()); ++d)
      if (free[static_cast<size_t>(d)] + eps_ >= size && (best == kNone || free[static_cast<size_t>(d)] < free[static_cast<size_t>(best)]))
        best = d;
    if (best == kNone) ok = false;
    else {
      free[static_cast<size_t>(best)] -= size;
      chosen[i] = best;
    }
  }
  if (!ok) {
    // Exact search when few non-empty items remain (bin packing is NP-hard; the node limit keeps it cheap).
    std::vector<size_t> big;
    for (size_t i = 0; i < items.size(); ++i)
      if (standalone_[static_cast<size_t>(items[i])] > eps_) big.push_back(i);
    if (big.size() > 24) return false;
    free = free_in;
    long nodes = 0;
    std::function<bool(size_t)> dfs = [&](size_t k) -> bool {
      if (k == big.size()) return true;
      if (++nodes > 200000) return false;
      const double size = standalone_[static_cast<size_t>(items[big[k]])];
      for (size_t d = 0; d < free.size(); ++d) {
        bool same = false;  // devices with equal free space are interchangeable
        for (size_t e = 0; e < d && !same; ++e) same = std::abs(free[e] - free[d]) <= eps_;
        if (same || free[d] + eps_ < size) continue;
        free[d] -= size;
        chosen[big[k]] = static_cast<DeviceId>(d);
        if (dfs(k + 1)) return true;
        free[d] += size;
      }
      return false;
    };
    if (!dfs(0)) return false;
    for (size_t i = 0; i < items.size(); ++i)
      if (standalone_[static_cast<size_t>(items[i])] <= eps_) chosen[i] = 0;
  }
  if (assignment)
    for (size_t i = 0; i < items.size(); ++i) (*assignment)[static_cast<size_t>(items[i])] = chosen[i];
  return true;
}

void MemoryGuard::place(OpId op, DeviceId d) {
  const size_t o = static_cast<size_t>(op);
  const size_t dd = static_cast<size_t>(d);
  used_[dd] += added(op, d);
  for (int data : t_.op_outputs[o]) {
    resident_[static_cast<size_t>(data)].push_back(d);
    if (unplaced_consumers_[static_cast<size_t>(data)] > 0) {
      frontier_ += t_.data[static_cast<size_t>(data)].bytes;
      frontier_resident_[dd] += t_.data[static_cast<size_t>(data)].bytes;
    }
  }
  for (int data : t_.op_inputs[o]) {
    const double b = t_.data[static_cast<size_t>(data)].bytes;
    auto& r = resident_[static_cast<size_t>(data)];
    if (std::find(r.begin(), r.end(), d) == r.end()) {
      r.push_back(d);
      frontier_resident_[dd] += b;  // the item is in the frontier until its last consumer is placed
    }
    if (--unplaced_consumers_[static_cast<size_t>(data)] == 0) {
      frontier_ -= b;
      for (DeviceId e : r) frontier_resident_[static_cast<size_t>(e)] -= b;
    }
  }
  placed_[o] = 1;
  remaining_ -= standalone_[o];
  remaining_own_ -= own(op);
}

static std::string capacities(const CostTable& t, const std::vector<double>* used) {
  std::string s;
  for (DeviceId d = 0; d < t.num_devices(); ++d) {
    s += (s.empty() ? "" : ", ") + t.device_names[static_cast<size_t>(d)] + " ";
    if (used) s += fmt::format("{:g} used of ", (*used)[static_cast<size_t>(d)]);
    s += fmt::format("{:g}", t.capacity[static_cast<size_t>(d)]);
  }
  return s;
}

Status MemoryGuard::check_model(const std::string& method) const {
  if (t_.num_devices() == 0) return Error{method + ": the cluster has no devices"};
  for (double c : t_.capacity)
    if (c + eps_ >= remaining_own_ + frontier_) return Ok{};  // one device holds the whole model
  if (packable(t_.capacity, kNone, nullptr)) return Ok{};
  double params = 0, total = 0;
  for (size_t op = 0; op < standalone_.size(); ++op) {
    params += t_.param_bytes[op];
    total += standalone_[op];
  }
  const double max_cap = *std::max_element(t_.capacity.begin(), t_.capacity.end());
  for (OpId op : by_size_)
    if (standalone_[static_cast<size_t>(op)] > max_cap + eps_)
      return Error{fmt::format("{}: operator '{}' needs {:g} bytes (parameters + inputs + outputs) but the largest "
                               "device holds {:g} (capacities: {})",
                               method, t_.op_names[static_cast<size_t>(op)], standalone_[static_cast<size_t>(op)],
                               max_cap, capacities(t_, nullptr))};
  // Only the parameters are a certain need: activations can be freed and reordered, so a failed conservative
  // packing proves nothing. Claim "no split" only when the parameters alone exceed every capacity together.
  double capacity_sum = 0;
  for (double c : t_.capacity) capacity_sum += c;
  if (params > capacity_sum + eps_)
    return Error{fmt::format("{}: the model fits on no device and in no split: its parameters need {:g} bytes and "
                             "the capacities are {} (total {:g})",
                             method, params, capacities(t_, nullptr), capacity_sum)};
  (void)total;
  return Ok{};
}

Error MemoryGuard::no_room(const std::string& method, OpId op) const {
  return Error{fmt::format("{}: operator '{}' needs {:g} bytes, and no device has room for it while keeping room for "
                           "the operators still to place (a conservative packing that never frees activations; "
                           "memory so far: {})",
                           method,
                           t_.op_names[static_cast<size_t>(op)], standalone_[static_cast<size_t>(op)],
                           capacities(t_, &used_))};
}

std::vector<DeviceId> MemoryGuard::packing() const {
  std::vector<DeviceId> assignment;
  for (DeviceId d = 0; d < t_.num_devices(); ++d)
    if (t_.capacity[static_cast<size_t>(d)] + eps_ >= remaining_own_ + frontier_)
      return std::vector<DeviceId>(static_cast<size_t>(t_.num_ops()), d);
  if (!packable(t_.capacity, kNone, &assignment)) assignment.clear();
  return assignment;
}

// ---------------------------------------------------------------------------------------------------------------
// Timeline

namespace {

// Does booking [s, e) clash with a candidate [t, t + dur)? Zero-length bookings are points that only block a
// candidate strictly around them, so zero-time operators keep their place in the order.
bool clash(double s, double e, double t, double dur) {
  if (dur == 0 && e == s) return false;
  if (dur == 0) return s < t && t < e;
  if (e == s) return t < s && s < t + dur;
  return s < t + dur && t < e;
}

}  // namespace

double Timeline::earliest(double ready, double duration, bool insertion) const {
  if (!insertion) return std::max(ready, tail_);
  double t = ready;
  auto it = std::upper_bound(busy_.begin(), busy_.end(), t, [](double v, const Interval& iv) { return v < iv.end; });
  for (; it != busy_.end(); ++it) {
    if (clash(it->start, it->end, t, duration)) t = it->end;
    else if (it->start >= t + duration && it->start > t) break;
  }
  return t;
}

void Timeline::book(double start, double end) {
  const Interval iv{start, end};
  auto it = std::upper_bound(busy_.begin(), busy_.end(), iv, [](const Interval& a, const Interval& b) {
    return a.start < b.start || (a.start == b.start && a.end < b.end);
  });
  busy_.insert(it, iv);
  tail_ = std::max(tail_, end);
}

// ---------------------------------------------------------------------------------------------------------------
// ListScheduler

ListScheduler::ListScheduler(const CostTable& table, bool contention, bool insertion)
    : t_(table), contention_(contention), insertion_(insertion) {
  const size_t n = static_cast<size_t>(table.num_ops()), k = static_cast<size_t>(table.num_devices());
  device_.assign(n, kNone);
  start_.assign(n, 0.0);
  finish_.assign(n, 0.0);
  seq_.assign(n, 0);
  compute_.resize(k);
  send_.resize(k);
  recv_.resize(k);
  arrival_.resize(table.data.size());
  succ_.resize(n);
  missing_preds_.assign(n, 0);
  for (size_t op = 0; op < n; ++op) {
    auto& s = succ_[op];
    for (int data : table.op_outputs[op])
      for (OpId c : table.data[static_cast<size_t>(data)].consumers) s.push_back(c);
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    for (OpId c : s) ++missing_preds_[static_cast<size_t>(c)];
  }
}

std::vector<OpId> ListScheduler::sources() const {
  std::vector<OpId> out;
  for (OpId op : t_.topo_order)
    if (missing_preds_[static_cast<size_t>(op)] == 0 && !placed(op)) out.push_back(op);
  return out;
}

double ListScheduler::data_ready(OpId op, DeviceId d) const {
  double ready = 0;
  for (int data : t_.op_inputs[static_cast<size_t>(op)]) {
    const OpId p = t_.data[static_cast<size_t>(data)].producer;
    const DeviceId src = device_[static_cast<size_t>(p)];
    MOIRAI_CHECK(src != kNone, "an input's producer is not placed yet");
    double arrive = finish_[static_cast<size_t>(p)];
    if (src != d) {
      arrive += t_.transfer(data, src, d);
      for (const auto& [dev, at] : arrival_[static_cast<size_t>(data)])
        if (dev == d) arrive = at;
    }
    ready = std::max(ready, arrive);
  }
  return ready;
}

Trial ListScheduler::evaluate(OpId op, DeviceId d) const {
  Trial trial;
  trial.device = d;
  struct Pending {
    double avail;
    int data;
    DeviceId src;
  };
  std::vector<Pending> pending;
  double ready = 0;
  for (int data : t_.op_inputs[static_cast<size_t>(op)]) {
    const OpId p = t_.data[static_cast<size_t>(data)].producer;
    const DeviceId src = device_[static_cast<size_t>(p)];
    MOIRAI_CHECK(src != kNone, "an input's producer is not placed yet");
    const double done = finish_[static_cast<size_t>(p)];
    if (src == d) {
      ready = std::max(ready, done);
      continue;
    }
    bool cached = false;
    for (const auto& [dev, at] : arrival_[static_cast<size_t>(data)])
      if (dev == d) ready = std::max(ready, at), cached = true;
    bool dup = false;
    for (const auto& q : pending) dup = dup || q.data == data;
    if (!cached && !dup) pending.push_back({done, data, src});
  }
  std::sort(pending.begin(), pending.end(),
            [](const Pending& a, const Pending& b) { return a.avail < b.avail || (a.avail == b.avail && a.data < b.data); });
  for (const auto& q : pending) {
    const double dur = t_.transfer(q.data, q.src, d);
    double s = q.avail;
    if (contention_) {
      // Earliest slot free on both the source's send port and this device's receive port, also avoiding the
      // transfers this trial has already planned.
      auto with_tentative = [&](const Timeline& tl, bool send_side, double t) {
        for (;;) {
          t = tl.earliest(t, dur, insertion_);
          bool moved = false;
          for (const auto& x : trial.transfers) {
            if (send_side ? x.src != q.src : false) continue;
            if (insertion_ ? clash(x.start_ms, x.end_ms, t, dur) : x.end_ms > t) t = x.end_ms, moved = true;
          }
          if (!moved) return t;
        }
      };
      for (;;) {
        const double t1 = with_tentative(send_[static_cast<size_t>(q.src)], true, s);
        const double t2 = with_tentative(recv_[static_cast<size_t>(d)], false, t1);
        if (t2 == t1) {
          s = t1;
          break;
        }
        s = t2;
      }
    }
    trial.transfers.push_back({q.data, q.src, d, s, s + dur, t_.data[static_cast<size_t>(q.data)].bytes});
    ready = std::max(ready, s + dur);
  }
  trial.data_ready = ready;
  const double dur = t_.time(op, d);
  trial.start = compute_[static_cast<size_t>(d)].earliest(ready, dur, insertion_);
  trial.finish = trial.start + dur;
  return trial;
}

void ListScheduler::commit(OpId op, const Trial& trial) {
  const size_t o = static_cast<size_t>(op);
  MOIRAI_CHECK(!placed(op), "operator committed twice");
  const DeviceId d = trial.device;
  device_[o] = d;
  start_[o] = trial.start;
  finish_[o] = trial.finish;
  seq_[o] = next_seq_++;
  compute_[static_cast<size_t>(d)].book(trial.start, trial.finish);
  for (const auto& x : trial.transfers) {
    if (contention_) {
      send_[static_cast<size_t>(x.src)].book(x.start_ms, x.end_ms);
      recv_[static_cast<size_t>(x.dst)].book(x.start_ms, x.end_ms);
    }
    arrival_[static_cast<size_t>(x.data)].push_back({x.dst, x.end_ms});
    transfers_.push_back(x);
  }
  newly_ready_.clear();
  for (OpId c : succ_[o])
    if (--missing_preds_[static_cast<size_t>(c)] == 0) newly_ready_.push_back(c);
}

PlaceResult ListScheduler::result() const {
  PlaceResult result;
  const size_t n = device_.size();
  auto& pl = result.placement;
  pl.device = device_;
  pl.order.assign(static_cast<size_t>(t_.num_devices()), {});
  std::vector<OpId> ops(n);
  std::iota(ops.begin(), ops.end(), 0);
  // By planned start; at equal starts zero-time operators first (they were planned as points before the
  // operator starting there), then commit order (a predecessor is always committed first).
  auto key = [&](OpId op) {
    const size_t o = static_cast<size_t>(op);
    return std::make_tuple(start_[o], finish_[o] > start_[o], seq_[o]);
  };
  std::sort(ops.begin(), ops.end(), [&](OpId a, OpId b) { return key(a) < key(b); });
  for (OpId op : ops) {
    MOIRAI_CHECK(placed(op), "operator left unplaced");
    pl.order[static_cast<size_t>(device_[static_cast<size_t>(op)])].push_back(op);
    result.objective_ms = std::max(result.objective_ms, finish_[static_cast<size_t>(op)]);
  }
  std::vector<size_t> idx(transfers_.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const auto& x = transfers_[a];
    const auto& y = transfers_[b];
    return std::make_tuple(x.start_ms, x.end_ms > x.start_ms, a) < std::make_tuple(y.start_ms, y.end_ms > y.start_ms, b);
  });
  for (size_t i = 0; i < idx.size(); ++i) {
    const auto& x = transfers_[idx[i]];
    pl.transfer_priority[{x.data, x.dst}] = static_cast<double>(i);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Earliest time first

namespace {

// Baechi's SCT hold rule: a device is kept for the favourite child of the operator it ran last while that child
// is ready, not placed, and starts there no later than on any other device. held[d] = that child, or kNone.
// The trials of ready operators, kept across steps. A trial reads only the placed producers of its inputs (fixed
// once placed), its device's compute and receive timelines and the tensors that device holds, and the send ports
// of the devices it receives from; a commit changes exactly those of its own device and of its transfers'
// sources. Re-evaluating only the trials a commit touched gives the same trials as evaluating all of them at
// every step (quadratic in the ready set: 20 s for a 20k-operator graph).
class TrialCache {
 public:
  TrialCache(const ListScheduler& sched, int ops, int devices)
      : sched_(sched), trial_(static_cast<size_t>(ops) * static_cast<size_t>(devices)), devices_(devices) {}

  const Trial& get(OpId op, DeviceId d) {
    auto& slot = trial_[index(op, d)];
    if (!slot) slot = sched_.evaluate(op, d);
    return *slot;
  }

  void committed(const std::vector<OpId>& ready, const Trial& trial) {
    std::vector<bool> source(static_cast<size_t>(devices_), false);
    for (const auto& x : trial.transfers) source[static_cast<size_t>(x.src)] = true;
    for (OpId op : ready)
      for (DeviceId d = 0; d < devices_; ++d) {
        auto& slot = trial_[index(op, d)];
        if (!slot) continue;
        bool stale = d == trial.device;
        for (const auto& x : slot->transfers) stale = stale || source[static_cast<size_t>(x.src)];
        if (stale) slot.reset();
      }
  }

 private:
  size_t index(OpId op, DeviceId d) const {
    return static_cast<size_t>(op) * static_cast<size_t>(devices_) + static_cast<size_t>(d);
  }
  const ListScheduler& sched_;
  std::vector<std::optional<Trial>> trial_;
  int devices_;
};

void hold_for_favourites(const std::vector<OpId>& favourite, const std::vector<OpId>& last_op,
                         const std::vector<OpId>& ready, const std::vector<std::vector<const Trial*>>& trials,
                         std::vector<OpId>& held) {
  for (size_t d = 0; d < held.size(); ++d) {
    held[d] = kNone;
    const OpId fav = last_op[d] == kNone ? kNone : favourite[static_cast<size_t>(last_op[d])];
    const auto it = std::find(ready.begin(), ready.end(), fav);
    if (fav == kNone || it == ready.end()) continue;  // no favourite child, or not ready yet: the device is free
    const auto& fav_trials = trials[static_cast<size_t>(it - ready.begin())];
    double first = std::numeric_limits<double>::infinity();
    for (const Trial* t : fav_trials) first = std::min(first, t->start);
    for (const Trial* t : fav_trials)
      if (t->device == static_cast<DeviceId>(d) && t->start <= first) held[d] = fav;
  }
}

// The devices `op` may use now: allowed ones with room, else (rules.allowed set) any with room.
// `everywhere` = guard.fits_everywhere(), checked once per step.
void usable_devices(const MemoryGuard& guard, bool everywhere, const EtfRules& rules, OpId op, int k,
                    std::vector<DeviceId>& out) {
  out.clear();
  auto fits = [&](DeviceId d) { return everywhere || guard.fits(op, d); };
  for (DeviceId d = 0; d < k; ++d)
    if ((!rules.allowed || rules.allowed(op, d)) && fits(d)) out.push_back(d);
  if (out.empty() && rules.allowed)
    for (DeviceId d = 0; d < k; ++d)
      if (fits(d)) out.push_back(d);
}

// The time-limit fallback of run_etf: the remaining operators in one pass, by upward rank (largest first, as
// HEFT), each on the device where it finishes first; n x k trials instead of ETF's scan of every ready pair at
// every step. The plan's mode says how many operators ETF placed.
Expected<PlaceResult> finish_in_rank_order(const CostTable& table, MemoryGuard& guard, ListScheduler& sched,
                                           const EtfRules& rules, const std::vector<double>& rank,
                                           const std::vector<OpId>& ready, const std::string& method) {
  int by_etf = 0;
  for (OpId op = 0; op < table.num_ops(); ++op) by_etf += sched.placed(op);
  auto lower = [&](OpId a, OpId b) {
    const double ra = rank[static_cast<size_t>(a)], rb = rank[static_cast<size_t>(b)];
    return ra != rb ? ra < rb : a > b;
  };
  std::priority_queue<OpId, std::vector<OpId>, decltype(lower)> queue(lower, ready);
  std::vector<DeviceId> devices;
  while (!queue.empty()) {
    const OpId op = queue.top();
    queue.pop();
    std::optional<Trial> best;
    usable_devices(guard, false, rules, op, table.num_devices(), devices);
    for (DeviceId d : devices) {
      Trial trial = sched.evaluate(op, d);
      if (!best || trial.finish < best->finish) best = std::move(trial);
    }
    if (!best) return guard.no_room(method, op);
    guard.place(op, best->device);
    sched.commit(op, *best);
    for (OpId c : sched.newly_ready()) queue.push(c);
  }
  PlaceResult result = sched.result();
  result.mode = (rules.mode.empty() ? "" : rules.mode + "; ") + fmt::format("time limit: ETF placed {} of {} operators, the rest by upward rank on the device "
                            "finishing first", by_etf, table.num_ops());
  return result;
}

}  // namespace

Expected<PlaceResult> run_etf(const CostTable& table, const PlaceOptions& options, const EtfRules& rules,
                              const std::string& method) {
  const auto t0 = std::chrono::steady_clock::now();
  // The ETF step scans every ready operator on every device; on huge graphs that outlasts the budget. Past 90%
  // of it (or when the caller says stop), the rest is placed in one pass (finish_in_rank_order).
  auto out_of_time = [&] {
    if (options.stop && options.stop()) return true;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > 0.9 * (options.time_limit_s - rules.spent_s);
  };
  MemoryGuard guard(table);
  MOIRAI_TRY(guard.check_model(method));
  ListScheduler sched(table, options.sim.contention, /*insertion=*/false);
  const auto rank = upward_rank(table);
  const auto pos = topo_position(table);
  const int k = table.num_devices();
  std::vector<OpId> ready = sched.sources();
  std::vector<OpId> last_op(static_cast<size_t>(k), kNone);
  const bool sct = !rules.favourite.empty();

  struct Best {
    OpId op = kNone;
    const Trial* trial = nullptr;
    double start = 0, finish = 0;  // the trial's, or later on a device kept for a favourite child (m-SCT)
    double rank = 0;
    int pos = 0;
    bool better(const Trial& t, double s, double f, double r, int p) const {
      if (op == kNone) return true;
      if (s != start) return s < start;
      if (f != finish) return f < finish;
      if (r != rank) return r > rank;
      if (p != pos) return p < pos;
      return t.device < trial->device;
    }
  };
  // Trials of every ready operator on every device it may use (trials[i] for ready[i]), owned by the cache.
  std::vector<std::vector<const Trial*>> trials;
  std::vector<OpId> held(static_cast<size_t>(k), kNone);  // m-SCT: the favourite child a device is kept for
  TrialCache cache(sched, table.num_ops(), k);
  std::vector<DeviceId> devices;
  while (!ready.empty()) {
    if (out_of_time()) return finish_in_rank_order(table, guard, sched, rules, rank, ready, method);
    trials.resize(ready.size());
    const bool everywhere = guard.fits_everywhere();
    for (size_t i = 0; i < ready.size(); ++i) {
      trials[i].clear();
      usable_devices(guard, everywhere, rules, ready[i], k, devices);
      for (DeviceId d : devices) trials[i].push_back(&cache.get(ready[i], d));
      if (trials[i].empty()) return guard.no_room(method, ready[i]);
    }
    if (sct) hold_for_favourites(rules.favourite, last_op, ready, trials, held);
    Best best;
    for (size_t i = 0; i < ready.size(); ++i) {
      const OpId op = ready[i];
      // SCT's urgent time: when the operator could start on every device it may use.
      double urgent = 0;
      for (const Trial* t : trials[i]) urgent = std::max(urgent, t->start);
      for (const Trial* trial : trials[i]) {
        double start = trial->start, finish = trial->finish;
        const OpId kept_for = sct ? held[static_cast<size_t>(trial->device)] : kNone;
        if (kept_for != kNone && kept_for != op && start < urgent) {
          // A device kept for a favourite child takes another operator only once that one is urgent.
          start = urgent;
          finish = urgent + table.time(op, trial->device);
        }
        const double r = rank[static_cast<size_t>(op)];
        const int p = pos[static_cast<size_t>(op)];
        if (best.better(*trial, start, finish, r, p)) best = Best{op, trial, start, finish, r, p};
      }
    }
    Trial chosen = *best.trial;
    chosen.start = best.start;
    chosen.finish = best.finish;
    const DeviceId d = chosen.device;
    guard.place(best.op, d);
    sched.commit(best.op, chosen);
    last_op[static_cast<size_t>(d)] = best.op;
    ready.erase(std::find(ready.begin(), ready.end(), best.op));
    cache.committed(ready, chosen);
    for (OpId c : sched.newly_ready()) ready.push_back(c);
  }
  PlaceResult result = sched.result();
  result.mode = rules.mode;
  return result;
}


Trial earliest_finish(const ListScheduler& sched, const MemoryGuard& guard, OpId op, int num_devices) {
  Trial best;
  for (DeviceId d = 0; d < num_devices; ++d) {
    if (!guard.fits(op, d)) continue;
    Trial trial = sched.evaluate(op, d);
    if (best.device == kNone || trial.finish < best.finish) best = std::move(trial);
  }
  return best;
}

}  // namespace moirai::place
