// report.html (one self-contained file: inline CSS and SVG, no scripts or external resources) and
// write_plan_outputs, which renders every output first and then writes each file atomically.
#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

#include "render.h"

namespace moirai {
namespace {

using report_detail::xml_escape;

constexpr const char* kStyle = R"(
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 12px}h2{font-size:15px;margin:24px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card .k{font-size:11px;color:#666}.card .v{font-size:17px;font-weight:bold}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}
.bar{position:relative;width:160px;height:12px;background:#eee;border-radius:3px;display:inline-block;vertical-align:middle}
.bar span{position:absolute;left:0;top:0;bottom:0;background:#4e79a7;border-radius:3px}
.bar.over span{background:#c0392b}
.gantt{overflow-x:auto;border:1px solid #eee}
.gantt rect.op:hover,.gantt rect.send:hover,.gantt rect.recv:hover{stroke:#000;stroke-width:1.5}
.over{color:#c0392b;font-weight:bold}.muted{color:#777;font-size:12px}
)";

std::string bar(double fraction, bool over) {
  const double pct = std::clamp(fraction, 0.0, 1.0) * 100;
  return fmt::format("<span class=\"bar{}\"><span style=\"width:{:.1f}%\"></span></span>", over ? " over" : "", pct);
}

std::string card(const std::string& key, const std::string& value) {
  return fmt::format("<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div></div>\n", xml_escape(key),
                     xml_escape(value));
}

}  // namespace

std::string report_html(const Plan& plan) {
  const CostTable& t = plan.table;
  const Schedule& s = plan.schedule;
  const int n = t.num_devices();
  const std::string title = fmt::format("{} on {}: {}", t.name, t.cluster, plan.method);
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  h += fmt::format("<title>moirai: {}</title>\n<style>{}</style>\n</head>\n<body>\n", xml_escape(title), kStyle);
  h += fmt::format("<h1>{}</h1>\n<div class=\"cards\">\n", xml_escape(title));
  h += card("latency", human_time(s.makespan_ms));
  h += card("method", plan.method);
  h += card("status", plan.status_text() + (plan.result.mode.empty() ? "" : " (" + plan.result.mode + ")"));
  const auto gap = plan.gap();
  h += card("gap", gap ? fmt::format("{:.2f}%", *gap * 100) : std::string("n/a"));
  h += card("lower bound", plan.result.lower_bound_ms > 0 ? human_time(plan.result.lower_bound_ms) : "n/a");
  h += card("placement time", human_time(plan.placement_time_s * 1000));
  h += card("operators", std::to_string(t.num_ops()));
  h += card("transfers", std::to_string(s.transfers.size()));
  h += card("ports", plan.sim.contention ? "contended" : "contention-free");
  h += card("objective", plan.objective);
  if (plan.stream) {
    const StreamFigures& f = *plan.stream;
    h += card("throughput", f.tokens_per_s > 0 ? fmt::format("{:.4g} tokens/s ({} sequences)", f.tokens_per_s, f.sequences)
                                               : fmt::format("{:.4g} requests/s", f.throughput_rps));
    h += card("stream latency p50 / p90", human_time(f.latency_p50_ms) + " / " + human_time(f.latency_p90_ms));
  }
  h += "</div>\n";
  if (plan.stream) {  // every device's share of the stream's time
    const StreamFigures& f = *plan.stream;
    h += fmt::format("<h2>Stream</h2>\n<p class=\"muted\">{} requests, {} in flight{}; period {} (bottleneck: {}).</p>\n",
                     f.requests, f.in_flight, f.arrival_rps > 0 ? fmt::format(", {:.4g} arriving per second", f.arrival_rps) : "",
                     human_time(f.period_ms), xml_escape(f.bottleneck));
    h += "<table>\n<tr><th class=\"l\">device</th><th class=\"l\">utilisation under the stream</th></tr>\n";
    for (int d = 0; d < n && d < static_cast<int>(f.utilisation.size()); ++d)
      h += fmt::format("<tr><td class=\"l\">{}</td><td class=\"l\">{} {:.1f}%</td></tr>\n",
                       xml_escape(t.device_names[static_cast<size_t>(d)]), bar(f.utilisation[static_cast<size_t>(d)], false),
                       f.utilisation[static_cast<size_t>(d)] * 100);
    h += "</table>\n";
  }

  h += "<h2>Schedule</h2>\n<p class=\"muted\">Hover over a box for its details.</p>\n<div class=\"gantt\">\n";
  h += report_detail::gantt(plan, false);
  h += "</div>\n";

  // Per device.
  std::vector<int> op_count(static_cast<size_t>(n), 0);
  for (DeviceId d : plan.result.placement.device)
    if (d >= 0 && d < n) ++op_count[static_cast<size_t>(d)];
  h += "<h2>Devices</h2>\n<table>\n<tr><th class=\"l\">device</th><th>operators</th><th>busy</th>"
       "<th class=\"l\">utilisation</th><th class=\"l\">peak memory / capacity</th></tr>\n";
  for (int d = 0; d < n; ++d) {
    const auto i = static_cast<size_t>(d);
    const double busy = i < s.busy_ms.size() ? s.busy_ms[i] : 0;
    const double util = s.makespan_ms > 0 ? busy / s.makespan_ms : 0;
    const double peak = i < s.peak_memory.size() ? s.peak_memory[i] : 0;
    const double cap = i < t.capacity.size() ? t.capacity[i] : 0;
    const bool over = cap > 0 && peak > cap;
    h += fmt::format(
        "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{} {:.1f}%</td>"
        "<td class=\"l\">{} <span{}>{} / {} ({:.1f}%)</span></td></tr>\n",
        xml_escape(t.device_names[i]), op_count[i], human_time(busy), bar(util, false), util * 100,
        bar(cap > 0 ? peak / cap : 0, over), over ? " class=\"over\"" : "", human_memory(t, peak), human_memory(t, cap),
        cap > 0 ? peak / cap * 100 : 0.0);
  }
  h += "</table>\n";

  // Per link direction.
  std::vector<int> count(static_cast<size_t>(n * n), 0);
  std::vector<double> busy(static_cast<size_t>(n * n), 0), bytes(static_cast<size_t>(n * n), 0);
  for (const auto& tr : s.transfers) {
    const auto k = static_cast<size_t>(tr.src * n + tr.dst);
    ++count[k];
    busy[k] += tr.end_ms - tr.start_ms;
    bytes[k] += tr.bytes;
  }
  for (size_t k = 0; k < bytes.size() && k < s.link_bytes.size(); ++k) bytes[k] = s.link_bytes[k];
  h += "<h2>Links</h2>\n";
  bool any = false;
  std::string rows;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      const auto k = static_cast<size_t>(a * n + b);
      if (a == b || (count[k] == 0 && bytes[k] == 0)) continue;
      any = true;
      rows += fmt::format("<tr><td class=\"l\">{} &#8594; {}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                          xml_escape(t.device_names[static_cast<size_t>(a)]),
                          xml_escape(t.device_names[static_cast<size_t>(b)]), count[k], human_bytes(bytes[k]),
                          human_time(busy[k]));
    }
  if (any)
    h += "<table>\n<tr><th class=\"l\">link</th><th>transfers</th><th>bytes</th><th>busy</th></tr>\n" + rows + "</table>\n";
  else
    h += "<p class=\"muted\">No data crosses devices.</p>\n";

  // Inputs, for re-running.
  h += "<h2>Inputs</h2>\n<table>\n";
  auto row = [&](const std::string& k, const std::string& v) {
    if (!v.empty()) h += fmt::format("<tr><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>\n", xml_escape(k), xml_escape(v));
  };
  row("model", plan.inputs.model);
  row("cluster", plan.inputs.cluster);
  row("fusion", plan.inputs.fusion);
  row("max nodes", plan.inputs.max_nodes > 0 ? std::to_string(plan.inputs.max_nodes) : "");
  std::string dims;
  for (const auto& [k, v] : plan.inputs.dims) dims += (dims.empty() ? "" : ", ") + k + "=" + std::to_string(v);
  row("dims", dims);
  row("profile", plan.inputs.profile);
  for (const auto& st : plan.steps)
    row("coarsening " + st.name, fmt::format("{} -> {} nodes", st.nodes_before, st.nodes_after));
  h += "</table>\n</body>\n</html>\n";
  return h;
}

Status write_plan_outputs(const Plan& plan, const std::string& dir) {
  // Render everything first: a failure while rendering leaves no file behind.
  const std::pair<const char*, std::string> files[] = {
      {"plan.json", plan_json(plan, dir)},
      {"trace.json", trace_json(plan)},
      {"gantt.svg", gantt_svg(plan)},
      {"report.html", report_html(plan)},
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create the output directory: {}", dir, ec.message())};
  for (const auto& [name, text] : files) {
    auto status = write_file_atomic((std::filesystem::path(dir) / name).string(), text);
    if (!status.ok()) return status;
  }
  return Ok{};
}

}  // namespace moirai
