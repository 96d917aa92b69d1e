// Reporting a run: run.json, the measured trace (through report's trace_json, the simulated trace's writer) and
// the predicted-vs-measured table. Predictions come from the plan file: its makespan and predicted request, its
// operators' times per device and its transfers per link; link bytes from the exported tensors (one transfer per
// tensor and destination device, as the simulator and the workers both count them).
#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "measure.h"

namespace moirai::run_detail {
namespace {

using ojson = nlohmann::ordered_json;

double quantile(std::vector<double> xs, double q) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  if (q == 0.5) {
    const size_t n = xs.size();
    return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
  }
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(xs.size())));  // nearest rank
  return xs[std::min(xs.size(), std::max<size_t>(rank, 1)) - 1];
}

/// Busy time like with like: predicted, what the simulator occupies the device with (its operators, and one
/// stage overhead per stage: plan.json's busy_ms); measured, per stage from its session call's start to its
/// outputs handed on (the call and the hand-off that stage overhead stands for), summed per request.
struct DeviceFigures {
  std::string name, worker;
  std::vector<std::string> stages;
  double busy_predicted = 0, busy_measured = 0;  ///< measured: median over requests of the per-request sum
};
struct LinkFigures {
  std::string src, dst;
  double bytes_predicted = 0, bytes_measured = 0, time_predicted = 0, time_measured = 0;  ///< measured: medians
};

std::vector<DeviceFigures> device_figures(const RunLayout& layout, const Measured& m) {
  std::vector<DeviceFigures> out;
  for (const auto& d : layout.devices) {
    DeviceFigures f;
    f.name = d;
    f.worker = layout.worker.at(d);
    f.stages = stages_on(layout.manifest, d);
    const auto& plan = layout.plan;
    const auto at = std::find(plan.devices.begin(), plan.devices.end(), d) - plan.devices.begin();
    if (!plan.busy_ms.empty()) f.busy_predicted = plan.busy_ms[static_cast<size_t>(at)];
    else  // an older plan file: its operators' times
      for (const auto& op : plan.ops)
        if (op.device == d) f.busy_predicted += op.end_ms - op.start_ms;
    std::map<uint64_t, double> per_request;
    for (uint64_t r : m.request_ids) per_request[r] = 0;
    for (const auto& s : m.stages)
      if (s.device == d) per_request[s.request] += s.handed_ms - s.start_ms;
    std::vector<double> xs;
    for (const auto& [r, v] : per_request) xs.push_back(v);
    f.busy_measured = quantile(xs, 0.5);
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<LinkFigures> link_figures(const RunLayout& layout, const Measured& m) {
  std::map<std::pair<std::string, std::string>, LinkFigures> links;
  auto link = [&](const std::string& s, const std::string& d) -> LinkFigures& {
    LinkFigures& f = links[{s, d}];
    f.src = s;
    f.dst = d;
    return f;
  };
  for (const auto& sub : layout.manifest.submodels)
    for (const auto& t : sub.outputs) {
      std::set<std::string> dsts;
      for (const auto& to : t.to) dsts.insert(layout.stage_device.at(to));
      dsts.erase(sub.device);
      for (const auto& d : dsts) link(sub.device, d).bytes_predicted += static_cast<double>(tensor_bytes(t));
    }
  for (const auto& tr : layout.plan.transfers) link(tr.src, tr.dst).time_predicted += tr.end_ms - tr.start_ms;
  std::map<std::pair<std::string, std::string>, std::map<uint64_t, std::pair<double, double>>> per_request;
  for (const auto& tr : m.transfers) {
    auto& slot = per_request[{tr.src, tr.dst}];
    if (slot.empty())
      for (uint64_t r : m.request_ids) slot[r] = {0, 0};
    slot[tr.request].first += static_cast<double>(tr.bytes);
    slot[tr.request].second += tr.end_ms - tr.start_ms;
  }
  for (const auto& [key, reqs] : per_request) {
    std::vector<double> bytes, times;
    for (const auto& [r, v] : reqs) {
      bytes.push_back(v.first);
      times.push_back(v.second);
    }
    LinkFigures& f = link(key.first, key.second);
    f.bytes_measured = quantile(bytes, 0.5);
    f.time_measured = quantile(times, 0.5);
  }
  std::vector<LinkFigures> out;
  for (auto& [k, f] : links) out.push_back(f);
  return out;
}

double throughput(const Measured& m) {
  return m.wall_ms > 0 ? 1000.0 * static_cast<double>(m.latency_ms.size()) / m.wall_ms : 0;
}

/// The plan's prediction of a whole request (the coordinator's pushes and fetches around the schedule); its
/// makespan when its cluster gives no coordinator links (they are free then).
double predicted_request_ms(const PlanFile& plan) { return plan.request_ms.value_or(plan.makespan_ms); }

std::string pct(double predicted, double measured) {
  return measured > 0 ? fmt::format("{:+.0f}%", 100 * (predicted - measured) / measured) : "";
}

}  // namespace

int64_t tensor_bytes(const ManifestTensor& t) {
  static const std::map<std::string, int64_t> sizes{{"float32", 4}, {"float64", 8}, {"float16", 2}, {"int64", 8},
                                                    {"int32", 4},   {"int16", 2},   {"int8", 1},     {"uint64", 8},
                                                    {"uint32", 4},  {"uint16", 2},  {"uint8", 1},    {"bool", 1}};
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  auto it = sizes.find(t.dtype);
  return it == sizes.end() ? 0 : n * it->second;
}

Phases request_phases(const Measured& m) {
  std::map<uint64_t, std::pair<double, double>> span;  // request -> first start, last end
  for (const auto& s : m.stages) {
    auto [it, fresh] = span.try_emplace(s.request, s.start_ms, s.end_ms);
    it->second = {std::min(it->second.first, s.start_ms), std::max(it->second.second, s.end_ms)};
  }
  Phases p;
  for (size_t i = 0; i < m.request_ids.size() && i < m.pushed_ms.size(); ++i) {
    const auto it = span.find(m.request_ids[i]);
    if (it == span.end()) continue;
    p.push.push_back(m.pushed_ms[i] - m.start_ms[i]);
    p.wait.push_back(it->second.first - m.pushed_ms[i]);
    p.stages.push_back(it->second.second - it->second.first);
    p.fetch.push_back(m.start_ms[i] + m.latency_ms[i] - it->second.second);
  }
  return p;
}

std::string run_json(const RunOptions& options, const RunLayout& layout, const Measured& m,
                     const std::vector<RunAttempt>& attempts) {
  ojson j;
  j["version"] = 1;
  j["plan"] = layout.plan.path;
  j["model"] = options.model_path;
  j["method"] = layout.plan.method;
  j["cluster"] = layout.plan.cluster;
  j["requests"] = options.requests;
  j["warmup"] = options.warmup;
  j["concurrency"] = options.concurrency;
  j["threads"] = options.local ? ojson(options.threads) : ojson(nullptr);
  j["deadline_ms"] = options.deadline_ms;
  j["seed"] = options.seed;
  j["predicted_ms"] = layout.plan.makespan_ms;
  j["predicted_request_ms"] = predicted_request_ms(layout.plan);
  j["measured_median_ms"] = quantile(m.latency_ms, 0.5);
  j["measured_p90_ms"] = quantile(m.latency_ms, 0.9);
  j["throughput_rps"] = throughput(m);
  j["max_abs_diff"] = m.max_abs_diff;
  j["max_reference"] = m.max_reference;
  j["tolerance"] = m.tolerance;
  j["outputs_match"] = m.outputs_match;
  j["latency_ms"] = m.latency_ms;
  const Phases ph = request_phases(m);
  j["request_phases_ms"] = {{"push", ph.push}, {"wait", ph.wait}, {"stages", ph.stages}, {"fetch", ph.fetch}};
  ojson devices = ojson::array();
  const auto figures = device_figures(layout, m);
  for (size_t i = 0; i < figures.size(); ++i) {
    const auto& f = figures[i];
    devices.push_back({{"name", f.name}, {"worker", f.worker}, {"stages", f.stages},
                       {"busy_predicted_ms", f.busy_predicted}, {"busy_measured_ms", f.busy_measured},
                       {"clock_offset_ms", i < m.clock_offset_ms.size() ? m.clock_offset_ms[i] : 0.0}});
  }
  j["devices"] = devices;
  ojson links = ojson::array();
  for (const auto& f : link_figures(layout, m))
    links.push_back({{"src", f.src}, {"dst", f.dst}, {"bytes_predicted", f.bytes_predicted},
                     {"bytes_measured", f.bytes_measured}, {"time_predicted_ms", f.time_predicted},
                     {"time_measured_ms", f.time_measured}});
  j["links"] = links;
  int64_t sent = 0, received = 0;
  for (const auto& [k, v] : m.coordinator_sent) sent += v;
  for (const auto& [k, v] : m.coordinator_received) received += v;
  ojson sent_names = ojson::array(), received_names = ojson::array();
  for (const auto& [k, v] : m.coordinator_sent) sent_names.push_back(k);
  for (const auto& [k, v] : m.coordinator_received) received_names.push_back(k);
  j["coordinator"] = {{"tensors_sent", sent_names}, {"bytes_sent", sent},
                      {"tensors_received", received_names}, {"bytes_received", received}};
  ojson tries = ojson::array();
  for (const auto& a : attempts) {
    ojson t{{"plan", a.plan}};
    if (!a.error.empty()) t["error"] = a.error;
    if (!a.lost_device.empty()) t["lost_device"] = a.lost_device;
    tries.push_back(t);
  }
  j["attempts"] = tries;
  return j.dump(1) + "\n";
}

std::string measured_trace(const RunLayout& layout, const Measured& m) {
  Plan plan;
  CostTable& t = plan.table;
  t.name = layout.manifest.model_name;
  t.cluster = layout.plan.cluster;
  t.device_names = layout.plan.devices;
  auto device_id = [&](const std::string& d) {
    return static_cast<DeviceId>(std::find(t.device_names.begin(), t.device_names.end(), d) - t.device_names.begin());
  };
  double origin = m.start_ms.empty() ? 0 : *std::min_element(m.start_ms.begin(), m.start_ms.end());
  for (const auto& s : m.stages) {
    t.op_names.push_back(fmt::format("{} r{}", s.stage, s.request));
    t.op_types.push_back("stage");
    plan.result.placement.device.push_back(device_id(s.device));
    plan.schedule.ops.push_back({s.start_ms - origin, s.end_ms - origin});
    plan.schedule.makespan_ms = std::max(plan.schedule.makespan_ms, s.end_ms - origin);
  }
  for (const auto& tr : m.transfers) {
    DataItem item;
    item.name = fmt::format("{} r{}", tr.tensor, tr.request);
    t.data.push_back(item);
    plan.schedule.transfers.push_back({static_cast<int>(t.data.size()) - 1, device_id(tr.src), device_id(tr.dst),
                                       tr.start_ms - origin, tr.end_ms - origin, static_cast<double>(tr.bytes)});
  }
  plan.method = layout.plan.method + " (measured)";
  return trace_json(plan);
}

std::string run_table(const RunOptions& options, const RunLayout& layout, const Measured& m) {
  std::string out = fmt::format("{} on {} ({}), {} requests, concurrency {}\n", layout.manifest.model_name,
                                layout.plan.cluster, layout.plan.method, m.latency_ms.size(), options.concurrency);
  out += fmt::format("{:<32} {:>13} {:>13} {:>8}\n", "", "predicted", "measured", "error");
  const double median = quantile(m.latency_ms, 0.5);
  const double request = predicted_request_ms(layout.plan);
  out += fmt::format("{:<32} {:>10.3f} ms {:>10.3f} ms {:>8}\n", "end to end (median)", request, median,
                     pct(request, median));
  const Phases ph = request_phases(m);
  const double stages = quantile(ph.stages, 0.5), push = quantile(ph.push, 0.5), wait = quantile(ph.wait, 0.5),
               fetch = quantile(ph.fetch, 0.5), hand_off = request - layout.plan.makespan_ms;
  out += fmt::format("{:<32} {:>10.3f} ms {:>10.3f} ms {:>8}\n", "  the stages (median)", layout.plan.makespan_ms,
                     stages, pct(layout.plan.makespan_ms, stages));
  out += fmt::format("{:<32} {:>10.3f} ms {:>10.3f} ms {:>8}\n", "  the hand-off (sum of medians)", hand_off,
                     push + wait + fetch, pct(hand_off, push + wait + fetch));
  out += fmt::format("{:<32} {:>13} {:>10.3f} ms\n", "    inputs pushed", "", push);
  out += fmt::format("{:<32} {:>13} {:>10.3f} ms\n", "    then to the first stage", "", wait);
  out += fmt::format("{:<32} {:>13} {:>10.3f} ms\n", "    last stage to the answer", "", fetch);
  out += fmt::format("{:<32} {:>13} {:>10.3f} ms\n", "end to end (p90)", "", quantile(m.latency_ms, 0.9));
  out += fmt::format("{:<32} {:>13} {:>9.1f} r/s\n", "throughput", "", throughput(m));
  for (const auto& f : device_figures(layout, m))
    out += fmt::format("{:<32} {:>10.3f} ms {:>10.3f} ms {:>8}\n", fmt::format("busy {} ({})", f.name, f.worker),
                       f.busy_predicted, f.busy_measured, pct(f.busy_predicted, f.busy_measured));
  for (const auto& f : link_figures(layout, m)) {
    out += fmt::format("{:<32} {:>10.3f} ms {:>10.3f} ms {:>8}\n", fmt::format("link {} -> {} time", f.src, f.dst),
                       f.time_predicted, f.time_measured, pct(f.time_predicted, f.time_measured));
    out += fmt::format("{:<32} {:>13} {:>13}\n", fmt::format("link {} -> {} bytes", f.src, f.dst),
                       human_bytes(f.bytes_predicted), human_bytes(f.bytes_measured));
  }
  out += fmt::format("outputs {} the original model (max |diff| {:.3g}, tolerance {:.3g})\n",
                     m.outputs_match ? "match" : "DIFFER from", m.max_abs_diff, m.tolerance);
  return out;
}

}  // namespace moirai::run_detail
