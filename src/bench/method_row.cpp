// One combination's row: the problem's own figures, the method's outcome classified into a status ("does not
// fit", "failed: ...", "invalid: ..."), and the append + fsync of a finished row to rows.jsonl.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "internal.h"
#include "moirai/report.h"
#include "moirai/throughput.h"

namespace moirai {

std::string clip(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() > max ? s.substr(0, max - 3) + "..." : s;
}

BenchRow base_row(const BenchTask& t, const std::string& method, const std::string& settings) {
  BenchRow r;
  r.model = t.model;
  r.cluster = t.cluster;
  r.method = method;
  r.settings = settings;
  return r;
}

// The figures of the problem itself, known before any method runs.
void fill_problem(BenchRow& r, const Problem& p) {
  r.devices = p.table.device_names;
  r.capacity = p.table.capacity;
  r.nodes_after = p.table.num_ops();
  r.nodes_before = p.steps.empty() ? r.nodes_after : p.steps.front().nodes_before;
  r.single_device_ms = best_single_device_ms(p.table);
}

namespace {

// A method's error that says no plan fits the memory capacities (the placers phrase it differently, and every
// such message names the capacities).
bool about_memory(const std::string& error) {
  for (const char* hint : {"capacit", "does not fit", "fits on no device", "no device holds", "no device has room"})
    if (error.find(hint) != std::string::npos) return true;
  return false;
}

}  // namespace

BenchRow make_row(BenchRow row, const Problem& p, const MethodRun& run) {
  row.placement_time_s = run.placement_time_s;
  if (!run.error.empty()) {
    row.note = clip(run.error, 2000);
    row.status = about_memory(run.error) ? RowStatus{RowOutcome::does_not_fit, PlanStatus::ok, ""}
                                        : RowStatus{RowOutcome::failed, PlanStatus::ok, clip(run.error, 200)};
    return row;
  }
  row.peak_memory = run.schedule.peak_memory;
  row.lower_bound_ms = run.result.lower_bound_ms;
  row.lower_bound_source = run.result.lower_bound_source;
  row.mode = run.result.mode;
  row.warm_start_method = run.result.warm_start_method;
  row.warm_start_ms = run.result.warm_start_ms;
  row.polished_ms = run.result.polished_ms;
  std::vector<std::string> bugs;  // an over-capacity plan is reported as "does not fit", not as a bug
  for (const auto& v : run.violations)
    if (run.fits || v.find("exceeds its capacity") == std::string::npos) bugs.push_back(v);
  if (!bugs.empty()) {
    row.status = {RowOutcome::invalid, PlanStatus::ok, clip(bugs.front(), 300)};
    std::string all;
    for (const auto& b : bugs) all += (all.empty() ? "" : "; ") + b;
    row.note = clip(all, 2000);
    return row;
  }
  if (!run.fits) {
    row.status.outcome = RowOutcome::does_not_fit;
    for (DeviceId d : run.schedule.over_capacity(p.table))
      row.note += fmt::format("{}{} needs {} of {}", row.note.empty() ? "" : "; ", p.table.device_names[d],
                              human_memory(p.table, run.schedule.peak_memory[d]),
                              human_memory(p.table, p.table.capacity[d]));
    return row;
  }
  const double lat = run.schedule.makespan_ms;
  row.latency_ms = lat;
  row.status.plan = run.result.status;
  if (row.lower_bound_ms > 0 && lat > 0) row.gap = std::max(0.0, (lat - row.lower_bound_ms) / lat);
  if (row.single_device_ms > 0 && lat > 0) row.speedup_vs_single = row.single_device_ms / lat;
  std::vector<std::string> notes;
  if (!run.result.mode.empty()) notes.push_back("mode " + run.result.mode);
  if (run.memory_ordered) notes.push_back("memory-ordered (BTSearch)");
  if (run.result.train_time_s > 0) notes.push_back(fmt::format("training {:.3g} s", run.result.train_time_s));
  for (const auto& n : notes) row.note += (row.note.empty() ? "" : "; ") + n;
  return row;
}

BenchRow run_in_process(const BenchRow& base, const Problem& p, const std::string& method, const PlaceOptions& o,
                        const StreamOptions& stream) {
  try {
    // "throughput": the throughput objective's placer (stage DP + period MILP), outside the latency registry.
    ThroughputOptions topts;
    topts.in_flight = stream.max_in_flight;
    const MethodRun run = method == "throughput" ? run_placer(p, *make_throughput_placer(topts), o) : run_method(p, method, o);
    BenchRow row = make_row(base, p, run);
    if (row.has_latency() && !run.partition) {  // the plan serving a stream
      StreamOptions so = stream;
      if (so.max_in_flight == 0) so.max_in_flight = run.result.in_flight;  // what a throughput plan holds
      const StreamFigures f = stream_figures(p.table, run.result.placement, so, o.sim);
      row.throughput_rps = f.throughput_rps;
      row.stream_p50_ms = f.latency_p50_ms;
      row.stream_p90_ms = f.latency_p90_ms;
      row.period_ms = f.period_ms;
      row.stream_utilisation = f.utilisation;
      Schedule peaks;  // over_capacity() of the stream's peaks
      peaks.peak_memory = f.peak_memory;
      for (DeviceId d : peaks.over_capacity(p.table))
        row.stream_note += fmt::format("{}{} needs {} of {} under the stream", row.stream_note.empty() ? "" : "; ",
                                       p.table.device_names[static_cast<size_t>(d)],
                                       human_memory(p.table, f.peak_memory[static_cast<size_t>(d)]),
                                       human_memory(p.table, p.table.capacity[static_cast<size_t>(d)]));
    }
    return row;
  } catch (const std::exception& e) {  // a MOIRAI_CHECK in a method: a bug, but the bench goes on with a row
    BenchRow row = base;
    row.status = {RowOutcome::failed, PlanStatus::ok, "internal error: " + clip(e.what(), 200)};
    row.note = clip(e.what(), 2000);
    return row;
  }
}

Status append_row(const std::string& dir, const BenchRow& row) {
  const std::string path = rows_path(dir);
  const std::string line = bench_row_json(row) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{fmt::format("{}: cannot open for appending: {}", path, std::strerror(errno))};
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return Error{fmt::format("{}: cannot append: {}", path, std::strerror(err))};
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Error{fmt::format("{}: cannot flush: {}", path, std::strerror(errno))};
  return Ok{};
}

}  // namespace moirai
