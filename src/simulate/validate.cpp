// Schedule validator: re-derives every invariant of shared/design.md from the schedule alone (it trusts neither
// the simulator's bookkeeping nor Schedule::peak_memory, which it checks against its own accounting) and returns
// one message per violation, with numbers.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "moirai/simulate.h"

namespace moirai {
namespace {

double tol(double x) { return 1e-9 * std::max(1.0, std::abs(x)); }

struct Interval {
  double start, end;
  std::string what;
  std::string field;  // with FieldNames: "ops[3]"; else empty
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
      if (cur.start < prev.end - tol(prev.end) && cur.end > cur.start) {
        const std::string fields = cur.field.empty() ? "" : fmt::format("{0}.start_ms/end_ms, {1}.start_ms/end_ms: ", cur.field, prev.field);
        out.push_back(fmt::format("{}{}: {} [{}, {}] overlaps {} [{}, {}]", fields, resource, cur.what, cur.start, cur.end,
                                  prev.what, prev.start, prev.end));
      }
    }
    if (longest < 0 || cur.end > spans[static_cast<size_t>(longest)].end) longest = i;
  }
}

}  // namespace

MemoryPeaks peak_memory_from_spans(const CostTable& table, const Placement& placement, const Schedule& schedule) {
  // Deliberately not the simulator's sweep over sorted +/- deltas: each tensor copy becomes one live interval,
  // and a device's peak is the largest sum of the intervals covering one interval's start (a step function of
  // half-open intervals reaches its maximum at some start), so a bug in either accounting shows as a mismatch.
  const int n = table.num_ops(), k = table.num_devices(), m = static_cast<int>(table.data.size());
  const auto& dev = placement.device;
  auto ends = [&](OpId op) { return schedule.ops[static_cast<size_t>(op)].end_ms; };
  double last = 0;
  for (const auto& s : schedule.ops) last = std::max(last, s.end_ms);
  for (const auto& tr : schedule.transfers) last = std::max(last, tr.end_ms);

  struct Live {
    double start, end, bytes;
  };
  std::vector<std::vector<Live>> live(static_cast<size_t>(k));
  std::vector<double> home_end(static_cast<size_t>(m), 0.0);  // when each tensor's source copy may go
  for (int i = 0; i < m; ++i) {
    const DataItem& item = table.data[static_cast<size_t>(i)];
    const DeviceId home = dev[static_cast<size_t>(item.producer)];
    double& end = home_end[static_cast<size_t>(i)];
    end = item.consumers.empty() ? last : ends(item.producer);
    for (OpId c : item.consumers)
      if (dev[static_cast<size_t>(c)] == home) end = std::max(end, ends(c));
  }
  std::set<std::pair<int, DeviceId>> copied;  // a tensor is held once per device, however often it is sent
  for (const auto& tr : schedule.transfers) {
    if (tr.data < 0 || tr.data >= m || tr.dst < 0 || tr.dst >= k || !copied.insert({tr.data, tr.dst}).second) continue;
    const DataItem& item = table.data[static_cast<size_t>(tr.data)];
    home_end[static_cast<size_t>(tr.data)] = std::max(home_end[static_cast<size_t>(tr.data)], tr.end_ms);
    double end = tr.end_ms;
    for (OpId c : item.consumers)
      if (dev[static_cast<size_t>(c)] == tr.dst) end = std::max(end, ends(c));
    live[static_cast<size_t>(tr.dst)].push_back({tr.start_ms, end, item.bytes});
  }
  for (int i = 0; i < m; ++i) {
    const DataItem& item = table.data[static_cast<size_t>(i)];
    live[static_cast<size_t>(dev[static_cast<size_t>(item.producer)])].push_back(
        {schedule.ops[static_cast<size_t>(item.producer)].start_ms, home_end[static_cast<size_t>(i)], item.bytes - item.in_place_bytes});
  }

  MemoryPeaks out{std::vector<double>(static_cast<size_t>(k), 0.0), std::vector<double>(static_cast<size_t>(k), 0.0)};
  for (OpId op = 0; op < n; ++op) out.peak[static_cast<size_t>(dev[static_cast<size_t>(op)])] += table.param_bytes[static_cast<size_t>(op)];
  for (DeviceId d = 0; d < k; ++d) {
    auto& spans = live[static_cast<size_t>(d)];
    std::sort(spans.begin(), spans.end(), [](const Live& a, const Live& b) { return a.start < b.start; });
    const double params = out.peak[static_cast<size_t>(d)];
    for (const Live& at : spans) {
      double sum = params;
      for (const Live& l : spans)
        if (l.start <= at.start && at.start < l.end) sum += l.bytes;
      if (sum > out.peak[static_cast<size_t>(d)]) {
        out.peak[static_cast<size_t>(d)] = sum;
        out.when[static_cast<size_t>(d)] = at.start;
      }
    }
  }
  return out;
}

namespace {

// The checks of one schedule, section by section; each appends one message per violation to `out`.
struct Validator {
  const CostTable& table;
  const Placement& placement;
  const Schedule& schedule;
  const FieldNames* names;  // the file's field paths, when the schedule comes from a file
  const FieldNames& paths;
  const int n, k, m;
  std::vector<std::string> out;
  std::map<std::pair<int, DeviceId>, int> sent;  // (data, dst) -> index in schedule.transfers, -1 when missing

  Validator(const CostTable& t, const Placement& p, const Schedule& s, const FieldNames* field_names,
            const FieldNames& plain)
      : table(t), placement(p), schedule(s), names(field_names), paths(field_names ? *field_names : plain),
        n(t.num_ops()), k(t.num_devices()), m(static_cast<int>(t.data.size())) {}

  std::string op_name(OpId op) const { return table.op_names[static_cast<size_t>(op)]; }
  std::string dev_name(DeviceId d) const { return table.device_names[static_cast<size_t>(d)]; }
  const OpSpan& span(OpId op) const { return schedule.ops[static_cast<size_t>(op)]; }
  DeviceId device_of(OpId op) const { return placement.device[static_cast<size_t>(op)]; }
  static std::string named(const std::vector<std::string>& list, int i) {
    return i >= 0 && i < static_cast<int>(list.size()) ? list[static_cast<size_t>(i)] : std::string();
  }
  // The "FIELD: " prefix of a message when the schedule comes from a file (see FieldNames); else nothing.
  static std::string field(const std::string& path, const std::string& keys) {
    return path.empty() ? std::string() : path + (keys.empty() ? "" : "." + keys) + ": ";
  }
  std::string op_field(OpId op, const std::string& keys) const { return field(named(paths.ops, op), keys); }
  std::string tr_field(int j, const std::string& keys) const { return field(named(paths.transfers, j), keys); }
  std::string dev_field(DeviceId d, const std::string& keys) const { return field(named(paths.devices, d), keys); }
  bool in_range(const TransferSpan& tr) const {
    return tr.data >= 0 && tr.data < m && tr.src >= 0 && tr.src < k && tr.dst >= 0 && tr.dst < k;
  }

  void durations() {
    for (OpId op = 0; op < n; ++op) {
      const OpSpan& s = span(op);
      const double want = table.time(op, device_of(op));
      if (!(s.start_ms >= 0))
        out.push_back(fmt::format("{}operator '{}' starts at {} ms, before 0", op_field(op, "start_ms"), op_name(op), s.start_ms));
      if (!(std::abs((s.end_ms - s.start_ms) - want) <= tol(want)))
        out.push_back(fmt::format("{}operator '{}' on '{}' lasts {} ms ([{}, {}]), its time there is {} ms",
                                  op_field(op, "start_ms/end_ms/device"), op_name(op), dev_name(device_of(op)),
                                  s.end_ms - s.start_ms, s.start_ms, s.end_ms, want));
    }
  }

  // Transfers: exist exactly once where needed, only where needed, after their producer, with the right length.
  void transfers() {
    for (int j = 0; j < static_cast<int>(schedule.transfers.size()); ++j) transfer(j);
    for (int i = 0; i < m; ++i) {
      const DataItem& item = table.data[static_cast<size_t>(i)];
      for (OpId c : item.consumers) {
        const DeviceId d = device_of(c);
        if (d != device_of(item.producer) && !sent.count({i, d})) {
          out.push_back(fmt::format("{}'{}' is read by '{}' on '{}' but never sent there from '{}'",
                                    names ? "transfers: " : "", item.name, op_name(c), dev_name(d),
                                    dev_name(device_of(item.producer))));
          sent.emplace(std::pair{i, d}, -1);  // report once per device
        }
      }
    }
  }

  void transfer(int j) {
    const TransferSpan& tr = schedule.transfers[static_cast<size_t>(j)];
    if (!in_range(tr)) {
      out.push_back(fmt::format("{}transfer #{} names data {} from device {} to {}: out of range", tr_field(j, ""), j,
                                tr.data, tr.src, tr.dst));
      return;
    }
    const DataItem& item = table.data[static_cast<size_t>(tr.data)];
    const std::string what = fmt::format("transfer of '{}' from '{}' to '{}'", item.name, dev_name(tr.src), dev_name(tr.dst));
    if (tr.src != device_of(item.producer))
      out.push_back(fmt::format("{}{}: its producer '{}' runs on '{}'", tr_field(j, "src"), what, op_name(item.producer),
                                dev_name(device_of(item.producer))));
    if (!std::any_of(item.consumers.begin(), item.consumers.end(), [&](OpId c) { return device_of(c) == tr.dst; }) ||
        tr.dst == tr.src)
      out.push_back(fmt::format("{}{}: no consumer of it runs on '{}'", tr_field(j, "dst"), what, dev_name(tr.dst)));
    if (auto [it, fresh] = sent.emplace(std::pair{tr.data, tr.dst}, j); !fresh)
      out.push_back(fmt::format("{}{}: sent more than once{}", tr_field(j, "tensor/dst"), what,
                                names ? " (also " + named(paths.transfers, it->second) + ")" : ""));
    const double ready = span(item.producer).end_ms;
    if (tr.start_ms < ready - tol(ready))
      out.push_back(fmt::format("{}{} starts at {} ms, before its producer '{}' ends at {} ms", tr_field(j, "start_ms"),
                                what, tr.start_ms, op_name(item.producer), ready));
    const double want = table.transfer(tr.data, tr.src, tr.dst);
    if (!(std::abs((tr.end_ms - tr.start_ms) - want) <= tol(want)))
      out.push_back(fmt::format("{}{} lasts {} ms ([{}, {}]), its transfer time is {} ms", tr_field(j, "start_ms/end_ms/src/dst"),
                                what, tr.end_ms - tr.start_ms, tr.start_ms, tr.end_ms, want));
  }

  // Precedence: an operator starts once each input is local.
  void precedence() {
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
          out.push_back(fmt::format("{}operator '{}' on '{}' starts at {} ms, before its input '{}' is there at {} ms",
                                    op_field(c, "start_ms"), op_name(c), dev_name(device_of(c)), span(c).start_ms,
                                    item.name, arrives));
      }
  }

  // One operator at a time per device; one transfer at a time per port.
  void overlaps(bool contention) {
    std::vector<std::vector<Interval>> per_device(static_cast<size_t>(k));
    for (OpId op = 0; op < n; ++op)
      per_device[static_cast<size_t>(device_of(op))].push_back(
          {span(op).start_ms, span(op).end_ms, "operator '" + op_name(op) + "'", named(paths.ops, op)});
    for (DeviceId d = 0; d < k; ++d) check_overlaps(per_device[static_cast<size_t>(d)], "device '" + dev_name(d) + "'", out);
    if (!contention) return;
    std::vector<std::vector<Interval>> send(static_cast<size_t>(k)), recv(static_cast<size_t>(k));
    for (int j = 0; j < static_cast<int>(schedule.transfers.size()); ++j) {
      const TransferSpan& tr = schedule.transfers[static_cast<size_t>(j)];
      if (!in_range(tr)) continue;
      const std::string what = fmt::format("transfer of '{}' to '{}'", table.data[static_cast<size_t>(tr.data)].name, dev_name(tr.dst));
      const std::string path = named(paths.transfers, j);
      send[static_cast<size_t>(tr.src)].push_back({tr.start_ms, tr.end_ms, what, path});
      recv[static_cast<size_t>(tr.dst)].push_back({tr.start_ms, tr.end_ms, what, path});
    }
    for (DeviceId d = 0; d < k; ++d) {
      check_overlaps(send[static_cast<size_t>(d)], "send port of '" + dev_name(d) + "'", out);
      check_overlaps(recv[static_cast<size_t>(d)], "receive port of '" + dev_name(d) + "'", out);
    }
  }

  // Makespan = last finish.
  void makespan() {
    double last = 0;
    for (const auto& s : schedule.ops) last = std::max(last, s.end_ms);
    for (const auto& tr : schedule.transfers) last = std::max(last, tr.end_ms);
    if (!(std::abs(schedule.makespan_ms - last) <= tol(last)))
      out.push_back(fmt::format("{}makespan is {} ms but the last event ends at {} ms", names ? names->makespan + ": " : "",
                                schedule.makespan_ms, last));
  }

  // Memory, derived from the spans alone; the schedule's own figures, when it has them, must agree.
  void memory() {
    const MemoryPeaks memory = peak_memory_from_spans(table, placement, schedule);
    for (DeviceId d = 0; d < k; ++d) {
      const double peak = memory.peak[static_cast<size_t>(d)], cap = table.capacity[static_cast<size_t>(d)];
      if (schedule.peak_memory.size() == static_cast<size_t>(k) &&
          !(std::abs(schedule.peak_memory[static_cast<size_t>(d)] - peak) <= tol(peak)))
        out.push_back(fmt::format("{}device '{}': the schedule says its peak memory is {}, its spans give {}",
                                  dev_field(d, "peak_memory_bytes"), dev_name(d), schedule.peak_memory[static_cast<size_t>(d)], peak));
      if (peak > cap + tol(cap))
        out.push_back(fmt::format("{}device '{}': peak memory {} exceeds its capacity {} (at {} ms)", dev_field(d, ""),
                                  dev_name(d), peak, cap, memory.when[static_cast<size_t>(d)]));
    }
  }
};

}  // namespace

std::vector<std::string> validate(const CostTable& table, const Placement& placement, const Schedule& schedule,
                                  const SimOptions& options, const FieldNames* names) {
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
  const FieldNames plain;  // no paths: messages as for a schedule in memory
  Validator v(table, placement, schedule, names, plain);
  v.out = std::move(out);
  v.durations();
  v.transfers();
  v.precedence();
  v.overlaps(options.contention);
  v.makespan();
  v.memory();
  return std::move(v.out);
}

}  // namespace moirai
