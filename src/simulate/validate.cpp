// Schedule validator: re-derives every invariant of shared/design.md from the schedule alone (it trusts neither
// the simulator's bookkeeping nor Schedule::peak_memory) and returns one message per violation, with numbers.
#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <fmt/format.h>

#include "moirai/simulate.h"

namespace moirai {
namespace {

double tol(double x) { return 1e-9 * std::max(1.0, std::abs(x)); }

struct Interval {
  double start, end;
  std::string what;
};

// Reports pairs that overlap on one resource (device or port). Intervals are half-open, so touching is fine.
void check_overlaps(std::vector<Interval> spans, const std::string& resource, std::vector<std::string>& out) {
  std::sort(spans.begin(), spans.end(), [](const Interval& a, const Interval& b) {
    return std::tie(a.start, a.end, a.what) < std::tie(b.start, b.end, b.what);
  });
  int longest = -1;  // the span seen so far that ends last
  for (int i = 0; i < static_cast<int>(spans.size()); ++i) {
    const Interval& cur = spans[static_cast<size_t>(i)];
    if (longest >= 0) {
      const Interval& prev = spans[static_cast<size_t>(longest)];
      if (cur.start < prev.end - tol(prev.end) && cur.end > cur.start)
        out.push_back(fmt::format("{}: {} [{}, {}] overlaps {} [{}, {}]", resource, cur.what, cur.start, cur.end,
                                  prev.what, prev.start, prev.end));
    }
    if (longest < 0 || cur.end > spans[static_cast<size_t>(longest)].end) longest = i;
  }
}

}  // namespace

std::vector<std::string> validate(const CostTable& table, const Placement& placement, const Schedule& schedule,
                                  const SimOptions& options) {
  std::vector<std::string> out;
  const int n = table.num_ops(), k = table.num_devices();
  if (auto status = check_placement(table, placement); !status) {
    out.push_back("placement: " + status.error().message);
    if (placement.device.size() != static_cast<size_t>(n)) return out;
    for (DeviceId d : placement.device)
      if (d < 0 || d >= k) return out;  // nothing else can be checked without valid devices
  }
  if (schedule.ops.size() != static_cast<size_t>(n)) {
    out.push_back(fmt::format("schedule: {} operator spans for {} operators", schedule.ops.size(), n));
    return out;
  }
  const auto& dev = placement.device;
  auto op_name = [&](OpId op) { return table.op_names[static_cast<size_t>(op)]; };
  auto dev_name = [&](DeviceId d) { return table.device_names[static_cast<size_t>(d)]; };
  auto span = [&](OpId op) -> const OpSpan& { return schedule.ops[static_cast<size_t>(op)]; };
  auto device_of = [&](OpId op) { return dev[static_cast<size_t>(op)]; };

  // Durations.
  for (OpId op = 0; op < n; ++op) {
    const OpSpan& s = span(op);
    const double want = table.time(op, device_of(op));
    if (!(s.start_ms >= 0)) out.push_back(fmt::format("operator '{}' starts at {} ms, before 0", op_name(op), s.start_ms));
    if (std::abs((s.end_ms - s.start_ms) - want) > tol(want))
      out.push_back(fmt::format("operator '{}' on '{}' lasts {} ms ([{}, {}]), its time there is {} ms", op_name(op),
                                dev_name(device_of(op)), s.end_ms - s.start_ms, s.start_ms, s.end_ms, want));
  }

  // Transfers: exist exactly once where needed, only where needed, after their producer, with the right length.
  const int m = static_cast<int>(table.data.size());
  std::map<std::pair<int, DeviceId>, int> sent;  // (data, dst) -> index in schedule.transfers
  for (int j = 0; j < static_cast<int>(schedule.transfers.size()); ++j) {
    const TransferSpan& tr = schedule.transfers[static_cast<size_t>(j)];
    if (tr.data < 0 || tr.data >= m || tr.src < 0 || tr.src >= k || tr.dst < 0 || tr.dst >= k) {
      out.push_back(fmt::format("transfer #{} names data {} from device {} to {}: out of range", j, tr.data, tr.src, tr.dst));
      continue;
    }
    const DataItem& item = table.data[static_cast<size_t>(tr.data)];
    const std::string what = fmt::format("transfer of '{}' from '{}' to '{}'", item.name, dev_name(tr.src), dev_name(tr.dst));
    if (tr.src != device_of(item.producer))
      out.push_back(fmt::format("{}: its producer '{}' runs on '{}'", what, op_name(item.producer),
                                dev_name(device_of(item.producer))));
    if (!std::any_of(item.consumers.begin(), item.consumers.end(), [&](OpId c) { return device_of(c) == tr.dst; }) ||
        tr.dst == tr.src)
      out.push_back(fmt::format("{}: no consumer of it runs on '{}'", what, dev_name(tr.dst)));
    if (!sent.emplace(std::pair{tr.data, tr.dst}, j).second)
      out.push_back(fmt::format("{}: sent more than once", what));
    const double ready = span(item.producer).end_ms;
    if (tr.start_ms < ready - tol(ready))
      out.push_back(fmt::format("{} starts at {} ms, before its producer '{}' ends at {} ms", what, tr.start_ms,
                                op_name(item.producer), ready));
    const double want = table.transfer(tr.data, tr.src, tr.dst);
    if (std::abs((tr.end_ms - tr.start_ms) - want) > tol(want))
      out.push_back(fmt::format("{} lasts {} ms ([{}, {}]), its transfer time is {} ms", what, tr.end_ms - tr.start_ms,
                                tr.start_ms, tr.end_ms, want));
  }
  for (int i = 0; i < m; ++i) {
    const DataItem& item = table.data[static_cast<size_t>(i)];
    for (OpId c : item.consumers) {
      const DeviceId d = device_of(c);
      if (d != device_of(item.producer) && !sent.count({i, d})) {
        out.push_back(fmt::format("'{}' is read by '{}' on '{}' but never sent there from '{}'", item.name, op_name(c),
                                  dev_name(d), dev_name(device_of(item.producer))));
        sent.emplace(std::pair{i, d}, -1);  // report once per device
      }
    }
  }

  // Precedence: an operator starts once each input is local.
  for (OpId c = 0; c < n; ++c)
    for (int i : table.op_inputs[static_cast<size_t>(c)]) {
      const DataItem& item = table.data[static_cast<size_t>(i)];
      double arrives = span(item.producer).end_ms;
      if (device_of(item.producer) != device_of(c)) {
        const auto it = sent.find({i, device_of(c)});
        if (it == sent.end() || it->second < 0) continue;  // reported above
        arrives = schedule.transfers[static_cast<size_t>(it->second)].end_ms;
      }
      if (span(c).start_ms < arrives - tol(arrives))
        out.push_back(fmt::format("operator '{}' on '{}' starts at {} ms, before its input '{}' is there at {} ms",
                                  op_name(c), dev_name(device_of(c)), span(c).start_ms, item.name, arrives));
    }

  // One operator at a time per device; one transfer at a time per port.
  std::vector<std::vector<Interval>> per_device(static_cast<size_t>(k));
  for (OpId op = 0; op < n; ++op)
    per_device[static_cast<size_t>(device_of(op))].push_back({span(op).start_ms, span(op).end_ms, "operator '" + op_name(op) + "'"});
  for (DeviceId d = 0; d < k; ++d) check_overlaps(per_device[static_cast<size_t>(d)], "device '" + dev_name(d) + "'", out);
  if (options.contention) {
    std::vector<std::vector<Interval>> send(static_cast<size_t>(k)), recv(static_cast<size_t>(k));
    for (const auto& tr : schedule.transfers) {
      if (tr.data < 0 || tr.data >= m || tr.src < 0 || tr.src >= k || tr.dst < 0 || tr.dst >= k) continue;
      const std::string what = fmt::format("transfer of '{}' to '{}'", table.data[static_cast<size_t>(tr.data)].name, dev_name(tr.dst));
      send[static_cast<size_t>(tr.src)].push_back({tr.start_ms, tr.end_ms, what});
      recv[static_cast<size_t>(tr.dst)].push_back({tr.start_ms, tr.end_ms, what});
    }
    for (DeviceId d = 0; d < k; ++d) {
      check_overlaps(send[static_cast<size_t>(d)], "send port of '" + dev_name(d) + "'", out);
      check_overlaps(recv[static_cast<size_t>(d)], "receive port of '" + dev_name(d) + "'", out);
    }
  }

  // Makespan = last finish.
  double last = 0;
  for (const auto& s : schedule.ops) last = std::max(last, s.end_ms);
  for (const auto& tr : schedule.transfers) last = std::max(last, tr.end_ms);
  if (std::abs(schedule.makespan_ms - last) > tol(last))
    out.push_back(fmt::format("makespan is {} ms but the last event ends at {} ms", schedule.makespan_ms, last));

  // Memory, recomputed from the spans: parameters always; an activation on its producer's device from the
  // producer's start to the end of its last local reader and of its outgoing transfers (to the end if nobody
  // reads it); a received copy from its transfer's start to the end of its last reader there.
  std::vector<std::tuple<DeviceId, double, double>> deltas;  // device, time, +/- bytes (frees first at a tie)
  std::vector<std::vector<int>> transfers_of(static_cast<size_t>(m));
  for (const auto& [key, j] : sent)
    if (j >= 0) transfers_of[static_cast<size_t>(key.first)].push_back(j);
  for (int i = 0; i < m; ++i) {
    const DataItem& item = table.data[static_cast<size_t>(i)];
    if (item.bytes == 0) continue;
    const DeviceId home = device_of(item.producer);
    double end = item.consumers.empty() ? last : span(item.producer).end_ms;
    for (OpId c : item.consumers)
      if (device_of(c) == home) end = std::max(end, span(c).end_ms);
    for (int j : transfers_of[static_cast<size_t>(i)]) {
      const TransferSpan& tr = schedule.transfers[static_cast<size_t>(j)];
      end = std::max(end, tr.end_ms);
      double copy_end = tr.end_ms;
      for (OpId c : item.consumers)
        if (device_of(c) == tr.dst) copy_end = std::max(copy_end, span(c).end_ms);
      deltas.emplace_back(tr.dst, tr.start_ms, item.bytes);
      deltas.emplace_back(tr.dst, copy_end, -item.bytes);
    }
    deltas.emplace_back(home, span(item.producer).start_ms, item.bytes);
    deltas.emplace_back(home, end, -item.bytes);
  }
  std::sort(deltas.begin(), deltas.end());
  std::vector<double> live(static_cast<size_t>(k), 0.0), peak(static_cast<size_t>(k), 0.0), when(static_cast<size_t>(k), 0.0);
  for (OpId op = 0; op < n; ++op) live[static_cast<size_t>(device_of(op))] += table.param_bytes[static_cast<size_t>(op)];
  peak = live;
  for (const auto& [d, t, bytes] : deltas) {
    live[static_cast<size_t>(d)] += bytes;
    if (live[static_cast<size_t>(d)] > peak[static_cast<size_t>(d)]) {
      peak[static_cast<size_t>(d)] = live[static_cast<size_t>(d)];
      when[static_cast<size_t>(d)] = t;
    }
  }
  for (DeviceId d = 0; d < k; ++d) {
    const double cap = table.capacity[static_cast<size_t>(d)];
    if (peak[static_cast<size_t>(d)] > cap + tol(cap))
      out.push_back(fmt::format("device '{}': peak memory {} exceeds its capacity {} (at {} ms)", dev_name(d),
                                peak[static_cast<size_t>(d)], cap, when[static_cast<size_t>(d)]));
  }
  return out;
}

}  // namespace moirai
