// Bench rows as data: one JSON line per row (the resumable record in rows.jsonl), the rows file reader, the
// output order, and the results.csv / results.json writers.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>

#include "internal.h"
#include "moirai/bench.h"
#include "moirai/pipeline.h"
#include "moirai/report.h"

namespace moirai {
namespace {

using nlohmann::json;

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::optional<double> opt_of(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<double>();
}

json row_object(const BenchRow& r) {
  return json{{"model", r.model},
              {"cluster", r.cluster},
              {"method", r.method},
              {"status", r.status_text()},
              {"latency_ms", opt(r.latency_ms)},
              {"placement_time_s", r.placement_time_s},
              {"devices", r.devices},
              {"peak_memory", r.peak_memory},
              {"capacity", r.capacity},
              {"lower_bound_ms", r.lower_bound_ms},
              {"lower_bound_source", r.lower_bound_source},
              {"mode", r.mode},
              {"warm_start_method", r.warm_start_method},
              {"warm_start_ms", r.warm_start_ms},
              {"polished_ms", r.polished_ms},
              {"gap", opt(r.gap)},
              {"nodes_before", r.nodes_before},
              {"nodes_after", r.nodes_after},
              {"single_device_ms", r.single_device_ms},
              {"speedup_vs_single", opt(r.speedup_vs_single)},
              {"note", r.note},
              {"throughput_rps", opt(r.throughput_rps)},
              {"stream_p50_ms", opt(r.stream_p50_ms)},
              {"stream_p90_ms", opt(r.stream_p90_ms)},
              {"period_ms", r.period_ms},
              {"stream_utilisation", r.stream_utilisation},
              {"stream_note", r.stream_note},
              {"settings", r.settings}};
}

// A CSV field, quoted when it holds a separator, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string num(double v) { return fmt::format("{}", v); }
std::string num(const std::optional<double>& v) { return v ? num(*v) : std::string(); }

template <class T, class F>
std::string joined(const std::vector<T>& xs, F f) {
  std::string out;
  for (size_t i = 0; i < xs.size(); ++i) out += (i ? ";" : "") + f(xs[i]);
  return out;
}

}  // namespace

namespace {
constexpr std::string_view kFailed = "failed: ", kKilled = "killed after", kInvalid = "invalid: ",
                           kDoesNotFit = "does not fit";
}  // namespace

std::string row_status_text(const RowStatus& s) {
  switch (s.outcome) {
    case RowOutcome::planned: return plan_status_name(s.plan);
    case RowOutcome::does_not_fit: return std::string(kDoesNotFit);
    case RowOutcome::failed:
    case RowOutcome::killed: return std::string(kFailed) + s.reason;
    case RowOutcome::invalid: return std::string(kInvalid) + s.reason;
  }
  return "?";
}

Expected<RowStatus> parse_row_status(const std::string& text) {
  const std::string_view t = text;
  if (t == kDoesNotFit) return RowStatus{RowOutcome::does_not_fit, PlanStatus::ok, ""};
  if (t.substr(0, kInvalid.size()) == kInvalid)
    return RowStatus{RowOutcome::invalid, PlanStatus::ok, std::string(t.substr(kInvalid.size()))};
  if (t.substr(0, kFailed.size()) == kFailed) {
    const std::string_view reason = t.substr(kFailed.size());
    const bool killed = reason.substr(0, kKilled.size()) == kKilled;
    return RowStatus{killed ? RowOutcome::killed : RowOutcome::failed, PlanStatus::ok, std::string(reason)};
  }
  if (auto plan = plan_status_from_name(t)) return RowStatus{RowOutcome::planned, *plan, ""};
  return Error{"unknown status '" + text + "'"};
}

std::string bench_row_json(const BenchRow& row) { return row_object(row).dump(); }

Expected<BenchRow> parse_bench_row(const std::string& line) {
  try {
    const json j = json::parse(line);
    BenchRow r;
    r.model = j.at("model").get<std::string>();
    r.cluster = j.at("cluster").get<std::string>();
    r.method = j.at("method").get<std::string>();
    auto status = parse_row_status(j.at("status").get<std::string>());
    if (!status) return Error{"not a bench row: " + status.error().message};
    r.status = std::move(*status);
    r.latency_ms = opt_of(j, "latency_ms");
    r.placement_time_s = j.value("placement_time_s", 0.0);
    r.devices = j.value("devices", std::vector<std::string>{});
    r.peak_memory = j.value("peak_memory", std::vector<double>{});
    r.capacity = j.value("capacity", std::vector<double>{});
    r.lower_bound_ms = j.value("lower_bound_ms", 0.0);
    r.lower_bound_source = j.value("lower_bound_source", std::string());
    r.mode = j.value("mode", std::string());
    r.warm_start_method = j.value("warm_start_method", std::string());
    r.warm_start_ms = j.value("warm_start_ms", 0.0);
    r.polished_ms = j.value("polished_ms", 0.0);
    r.gap = opt_of(j, "gap");
    r.nodes_before = j.value("nodes_before", 0);
    r.nodes_after = j.value("nodes_after", 0);
    r.single_device_ms = j.value("single_device_ms", 0.0);
    r.speedup_vs_single = opt_of(j, "speedup_vs_single");
    r.note = j.value("note", std::string());
    r.settings = j.value("settings", std::string());
    r.throughput_rps = opt_of(j, "throughput_rps");
    r.stream_p50_ms = opt_of(j, "stream_p50_ms");
    r.stream_p90_ms = opt_of(j, "stream_p90_ms");
    r.period_ms = j.value("period_ms", 0.0);
    r.stream_utilisation = j.value("stream_utilisation", std::vector<double>{});
    r.stream_note = j.value("stream_note", std::string());
    return r;
  } catch (const std::exception& e) {
    return Error{std::string("not a bench row: ") + e.what()};
  }
}

Expected<std::vector<BenchRow>> read_bench_rows(const std::string& out_dir) {
  const std::string path = rows_path(out_dir);
  std::vector<BenchRow> rows;
  std::ifstream in(path);
  if (!in) return rows;  // nothing run yet
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    auto row = parse_bench_row(line);
    if (row) {
      rows.push_back(std::move(*row));
    } else if (in.peek() != std::char_traits<char>::eof()) {
      // Only the last line can be torn by a kill; a bad line in the middle means someone edited the file.
      return Error{fmt::format("{}:{}: {}", path, line_no, row.error().message)};
    }
  }
  return rows;
}

int method_rank(const std::string& method) {
  static const std::vector<std::string> names = method_names();
  const auto it = std::find(names.begin(), names.end(), method);
  return it == names.end() ? static_cast<int>(names.size()) : static_cast<int>(it - names.begin());
}

bool method_before(const std::string& a, const std::string& b) {
  const int ra = method_rank(a), rb = method_rank(b);
  return ra != rb ? ra < rb : a < b;
}

void sort_bench_rows(std::vector<BenchRow>& rows) {
  std::stable_sort(rows.begin(), rows.end(), [](const BenchRow& a, const BenchRow& b) {
    if (a.cluster != b.cluster) return a.cluster < b.cluster;
    if (a.model != b.model) return a.model < b.model;
    return method_before(a.method, b.method);
  });
}

const std::vector<std::string>& bench_csv_columns() {
  static const std::vector<std::string> columns{
      "model",          "cluster",     "method",         "status",        "latency_ms",
      "placement_time_s", "peak_memory", "lower_bound_ms", "lower_bound_source", "gap",
      "nodes_before",   "nodes_after", "speedup_vs_single", "single_device_ms", "devices",
      "capacity",       "mode",        "warm_start_method", "warm_start_ms", "polished_ms",
      "throughput_rps", "stream_p50_ms", "stream_p90_ms", "period_ms", "note"};
  return columns;
}

std::string bench_csv(const std::vector<BenchRow>& rows) {
  std::string out;
  const auto& columns = bench_csv_columns();
  for (size_t i = 0; i < columns.size(); ++i) out += (i ? "," : "") + columns[i];
  out += "\n";
  for (const auto& r : rows) {
    const std::vector<std::string> fields{
        r.model,
        r.cluster,
        r.method,
        r.status_text(),
        num(r.latency_ms),
        num(r.placement_time_s),
        joined(r.peak_memory, [](double b) { return fmt::format("{:.0f}", b); }),
        r.lower_bound_ms > 0 ? num(r.lower_bound_ms) : std::string(),
        r.lower_bound_source,
        num(r.gap),
        std::to_string(r.nodes_before),
        std::to_string(r.nodes_after),
        num(r.speedup_vs_single),
        num(r.single_device_ms),
        joined(r.devices, [](const std::string& s) { return s; }),
        joined(r.capacity, [](double b) { return fmt::format("{:.0f}", b); }),
        r.mode,
        r.warm_start_method,
        r.warm_start_ms > 0 ? num(r.warm_start_ms) : std::string(),
        r.polished_ms > 0 ? num(r.polished_ms) : std::string(),
        num(r.throughput_rps),
        num(r.stream_p50_ms),
        num(r.stream_p90_ms),
        r.period_ms > 0 ? num(r.period_ms) : std::string(),
        r.note};
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
    out += "\n";
  }
  return out;
}

std::string bench_json(const std::vector<BenchRow>& rows) {
  json list = json::array();
  for (const auto& r : rows) {
    json o = row_object(r);
    o.erase("settings");
    list.push_back(std::move(o));
  }
  std::string settings = rows.empty() ? std::string() : rows.front().settings;
  return json{{"version", 1}, {"settings", settings}, {"rows", std::move(list)}}.dump(2) + "\n";
}

Expected<std::vector<std::string>> write_bench_outputs(const std::vector<BenchRow>& rows, const std::string& dir,
                                                       const std::string& reference) {
  // Every content first, then the files: a failure leaves the earlier outputs whole.
  std::vector<std::pair<std::string, std::string>> files{{"results.csv", bench_csv(rows)},
                                                         {"results.json", bench_json(rows)},
                                                         {"summary.md", bench_summary_md(rows, reference)}};
  std::vector<std::string> clusters;
  for (const auto& r : rows)
    if (std::find(clusters.begin(), clusters.end(), r.cluster) == clusters.end()) clusters.push_back(r.cluster);
  for (const auto& c : clusters) {
    std::string safe = c;  // cluster names come from file names; keep the output name plain
    for (char& ch : safe)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_') ch = '_';
    files.emplace_back("latency-" + safe + ".svg", bench_latency_svg(rows, c));
  }
  files.emplace_back("speedup.svg", bench_speedup_svg(rows, reference));
  files.emplace_back("placement-time.svg", bench_time_svg(rows));
  if (auto md = bench_throughput_md(rows, reference); !md.empty()) files.emplace_back("throughput.md", md);
  std::vector<std::string> names;
  for (const auto& [name, contents] : files) {
    MOIRAI_TRY(write_file_atomic(dir + "/" + name, contents));
    names.push_back(name);
  }
  return names;
}

std::string format_bench_progress(const BenchProgress& p, bool bar, int width) {
  const int total = std::max(1, p.total);
  const double frac = std::min(1.0, static_cast<double>(p.done) / total);
  std::string head;
  if (bar) {
    const int filled = static_cast<int>(frac * width + 0.5);
    head = "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
           "]";
  }
  head += fmt::format("{}{}/{} {:3.0f}%", bar ? " " : "", p.done, p.total, frac * 100);
  head += " elapsed " + human_time(p.elapsed_s * 1000);
  if (p.eta_s) head += " ETA " + human_time(*p.eta_s * 1000);
  if (p.skipped > 0) head += fmt::format(" ({} done before)", p.skipped);
  if (!p.last) return head;
  const BenchRow& r = *p.last;
  std::string what =
      r.has_latency() ? fmt::format("{} ms ({})", format_ms(*r.latency_ms), r.status_text()) : r.status_text();
  if (what.size() > 100) what = what.substr(0, 97) + "...";
  return head + fmt::format(" | {} / {} / {}: {}, placed in {}", r.model, r.cluster, r.method, what,
                            human_time(r.placement_time_s * 1000));
}

}  // namespace moirai
