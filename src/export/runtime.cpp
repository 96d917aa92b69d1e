// Running a manifest for real: calls tools/run_plan.mjs (Node + onnxruntime-node) and reads its JSON result;
// measured profiles run one sub-model per coarse operator through the same script, in order, with real
// intermediate values, so each operator is timed on the inputs it would really see.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/coarsen.h"
#include "moirai/cost.h"
#include "moirai/export.h"
#include "moirai/import.h"
#include "moirai/runtime_fusion.h"
#include "process.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;
using export_detail::last_lines;
using export_detail::quote;
using export_detail::run_command;

}  // namespace

Expected<std::string> find_tool(const std::string& name, const std::string& argv0) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("MOIRAI_TOOLS")) candidates.push_back(fs::path(env) / name);
  std::error_code ec;
  if (!argv0.empty()) {
    fs::path exe = fs::canonical(fs::path(argv0), ec);
    if (ec) exe = fs::canonical("/proc/self/exe", ec);
    if (!ec) {
      candidates.push_back(exe.parent_path().parent_path() / "tools" / name);
      candidates.push_back(exe.parent_path().parent_path().parent_path() / "tools" / name);
    }
  }
  candidates.push_back(fs::path("tools") / name);
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return fs::absolute(c, ec).lexically_normal().string();
  return Error{fmt::format("cannot find tools/{} (set MOIRAI_TOOLS to the project's tools/ directory)", name)};
}

Expected<RuntimeResult> run_manifest(const std::string& manifest_path, const RuntimeOptions& options) {
  std::string script = options.script;
  if (script.empty()) {
    MOIRAI_ASSIGN_OR_RETURN(auto found, find_tool("run_plan.mjs", "/proc/self/exe"));
    script = found;
  }
  const std::string node = export_detail::node_executable();
  std::string command = fmt::format("{} {} {}", quote(node), quote(script), quote(manifest_path));
  if (!options.original.empty()) command += " " + quote(options.original);
  command += fmt::format(" --json --repeats {} --warmup {} --seed {} --tol {} --stat {} --threads {}", options.repeats,
                         options.warmup, options.seed, options.tolerance, options.fastest ? "min" : "median",
                         options.threads);
  auto [status, output] = run_command(command);
  if (status != 0 && status != 1)
    return Error{fmt::format("{}: running the sub-models failed (exit {}): {}", manifest_path, status,
                             last_lines(output, 3))};
  // The JSON result is the last line that starts with '{'.
  size_t pos = output.rfind("\n{");
  pos = pos == std::string::npos ? (output.rfind('{', 0) == 0 ? 0 : std::string::npos) : pos + 1;
  if (pos == std::string::npos) return Error{fmt::format("{}: run_plan.mjs printed no result: {}", manifest_path, last_lines(output, 3))};
  RuntimeResult r;
  try {
    const auto j = nlohmann::json::parse(output.substr(pos, output.find('\n', pos) - pos));
    r.match = j.at("match").get<bool>();
    r.max_abs_diff = j.at("max_abs_diff").get<double>();
    r.max_reference = j.at("max_reference").get<double>();
    r.original_ms = j.at("original_ms").get<double>();
    r.split_ms = j.at("split_ms").get<double>();
    r.submodel_ms = j.at("submodel_ms").get<std::map<std::string, double>>();
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: cannot read the result of run_plan.mjs: {}", manifest_path, e.what())};
  }
  r.output = output.substr(0, pos);
  return r;
}

Expected<ProfileGroups> export_profile_groups(const ProfileOptions& options, const std::string& dir) {
  MOIRAI_ASSIGN_OR_RETURN(auto graph, import_onnx(options.model, ImportOptions{options.dims}));
  Cluster cluster;
  if (!options.cluster.empty()) {
    MOIRAI_ASSIGN_OR_RETURN(auto loaded, load_cluster(options.cluster));
    cluster = std::move(loaded);
  } else if (options.max_nodes > 0) {
    return Error{"a node budget needs a cluster (the budget step weighs transfers against compute)", "max_nodes"};
  }
  CoarsenOptions coarsen_options;
  coarsen_options.fusion = options.fusion;
  coarsen_options.max_nodes = options.max_nodes;
  MOIRAI_ASSIGN_OR_RETURN(auto coarse, coarsen_model(graph, options.model, cluster, coarsen_options));
  const Graph& g = coarse.graph;
  std::vector<double> analytic(static_cast<size_t>(g.num_ops()), -1);
  if (!options.cluster.empty()) {
    const DeviceId d = cluster.find(options.device);
    if (d == kNone) return Error{fmt::format("{}: no device named '{}'", options.cluster, options.device), "device"};
    MOIRAI_ASSIGN_OR_RETURN(auto table, build_cost_table(g, cluster));
    for (OpId op = 0; op < g.num_ops(); ++op) analytic[static_cast<size_t>(op)] = table.time(op, d);
  }
  // One stage per coarse operator: the stage key is the operator's index.
  ExportRequest request;
  request.model_path = options.model;
  request.source = options.model;
  request.dims = options.dims;
  request.check = false;  // measured, not delivered; the export tests run the checker
  MOIRAI_ASSIGN_OR_RETURN(auto order, g.topological_order());
  std::vector<int> position(static_cast<size_t>(g.num_ops()));
  for (size_t i = 0; i < order.size(); ++i) position[static_cast<size_t>(order[i])] = static_cast<int>(i);
  for (OpId op = 0; op < g.num_ops(); ++op)
    request.ops.push_back(ExportOp{g.op(op).name, fmt::format("op{}", op), g.op(op).origin,
                                   static_cast<double>(position[static_cast<size_t>(op)])});
  MOIRAI_ASSIGN_OR_RETURN(auto manifest, export_submodels(request, dir));
  ProfileGroups out;
  out.manifest = std::move(manifest);
  // Hand-offs: the activation bytes a group receives from and sends to other groups (the model's own inputs and
  // outputs are paid by the whole model too and not counted).
  for (OpId op : order) {
    ProfileGroup group{g.op(op).name, g.op(op).type, -1, 0};
    group.analytic_ms = analytic[static_cast<size_t>(op)];
    for (const auto& list : {g.op(op).inputs, g.op(op).outputs})
      for (TensorId t : list)
        if (g.tensor(t).kind == TensorKind::Activation && !g.tensor(t).graph_output)
          group.handoff_bytes += static_cast<double>(g.tensor(t).bytes());
    out.groups.push_back(std::move(group));
    out.flops += g.op(op).flops;
    out.bytes += g.op(op).bytes_read + g.op(op).bytes_written;
  }
  return out;
}

ProfileResult profile_result(const ProfileGroups& groups, const GroupTimes& times) {
  std::map<std::string, double> by_op;
  for (const auto& sub : groups.manifest.submodels)
    if (auto it = times.submodel_ms.find(sub.name); it != times.submodel_ms.end() && !sub.ops.empty())
      by_op[sub.ops.front()] = it->second;
  ProfileResult result;
  result.original_ms = times.original_ms;
  result.threads = times.threads;
  result.call_ms = times.call_ms;
  result.stage_overhead_ms = times.stage_overhead_ms;
  // Every group pays a call and moves its activations out of and into sessions, which the whole model in one
  // session does not. What the groups take beyond the whole model and those calls, per byte handed off, is the
  // hand-off cost.
  double handoff_bytes = 0, groups_ms = 0;
  for (const auto& group : groups.groups) {
    handoff_bytes += group.handoff_bytes;
    groups_ms += by_op.count(group.name) ? by_op[group.name] : 0;
  }
  const double calls = static_cast<double>(groups.groups.size()) - 1;
  const double extra_ms = groups_ms - times.original_ms - calls * times.call_ms;
  const double ms_per_byte = handoff_bytes > 0 ? std::max(0.0, extra_ms) / handoff_bytes : 0;
  result.handoff_gbps = ms_per_byte > 0 ? std::min(1e6, 1.0 / ms_per_byte / 1e6) : 1e6;
  bool analytic = false;
  double analytic_ms = 0;
  for (const auto& group : groups.groups) {
    OpProfile p;
    p.name = group.name;
    p.type = group.type;
    p.measured_ms = by_op.count(p.name) ? by_op[p.name] : 0;
    p.handoff_bytes = group.handoff_bytes;
    p.compute_ms = std::max(0.0, p.measured_ms - times.call_ms - p.handoff_bytes * ms_per_byte);
    p.analytic_ms = group.analytic_ms;
    result.measured_total_ms += p.measured_ms;
    if (p.analytic_ms >= 0) {
      analytic_ms += p.analytic_ms;
      analytic = true;
    }
    result.ops.push_back(std::move(p));
  }
  result.analytic_total_ms = analytic ? analytic_ms : -1;  // -1: no cluster to compare with
  // Net of a call and its hand-offs, the groups add up to the whole model less its one call, unless the call
  // probe costs more than a small group's call really does (gpt_tiny: 92 groups, half of them below the probe's
  // 0.08 ms, so their compute clips to 0 and the sum came to 2.6 ms against 3.5): then the compute times are
  // scaled so that a one-stage plan is predicted at the whole model's measured time.
  double compute_ms = 0;
  for (const auto& op : result.ops) compute_ms += op.compute_ms;
  const double whole_ms = times.original_ms - times.call_ms;
  if (compute_ms > 0 && whole_ms > 0) {
    result.compute_scale = whole_ms / compute_ms;
    for (auto& op : result.ops) op.compute_ms *= result.compute_scale;
  }
  return result;
}

Expected<ProfileResult> profile_model(const ProfileOptions& options) {
  const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
  const fs::path dir = fs::temp_directory_path() / fmt::format("moirai-profile-{}-{}", ::getpid(), stamp);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};
  MOIRAI_ASSIGN_OR_RETURN(auto groups, export_profile_groups(options, dir.string()));
  RuntimeOptions runtime = options.runtime;
  if (runtime.original.empty()) runtime.original = options.model;
  MOIRAI_ASSIGN_OR_RETURN(auto run, run_manifest(groups.manifest.path, runtime));
  if (!run.match)
    return Error{fmt::format("{}: the per-operator sub-models disagree with the model (max |diff| {:.3g})",
                             options.model, run.max_abs_diff)};
  // The call probe, with the same runtime options: a stage that does no work.
  MOIRAI_ASSIGN_OR_RETURN(auto probe, write_call_probes((dir / "probe").string(), {1}));
  RuntimeOptions probe_options = runtime;
  probe_options.original = probe.model;
  probe_options.repeats = std::max(runtime.repeats, 50);  // microseconds each: many repeats are cheap
  MOIRAI_ASSIGN_OR_RETURN(auto probe_run, run_manifest(probe.path, probe_options));
  GroupTimes times;
  times.submodel_ms = run.submodel_ms;
  times.original_ms = run.original_ms;
  times.threads = runtime.threads;
  times.call_ms = probe_run.submodel_ms.count("probe0") ? probe_run.submodel_ms.at("probe0") : 0;
  // The runner's loop around a call: the probe's end-to-end time beyond its session call.
  times.stage_overhead_ms = std::max(times.call_ms, probe_run.split_ms);
  return profile_result(groups, times);
}

std::string profile_json(const std::vector<DeviceProfile>& devices) {
  using ojson = nlohmann::ordered_json;
  ojson overhead = ojson::object(), ops = ojson::object(), per_device = ojson::object();
  for (const auto& [name, result] : devices) {
    overhead[name] = result.stage_overhead_ms;
    for (const auto& op : result.ops) {
      if (!ops.contains(op.name)) ops[op.name] = ojson::object();
      ops[op.name][name] = op.compute_ms;
    }
    per_device[name] = ojson{{"threads", result.threads}, {"call_ms", result.call_ms},
                             {"handoff_gbps", result.handoff_gbps}, {"measured_total_ms", result.measured_total_ms},
                             {"whole_model_ms", result.original_ms}, {"compute_scale", result.compute_scale}};
  }
  const ProfileResult& first = devices.front().result;
  ojson j;
  j["version"] = 2;
  j["threads"] = first.threads;
  j["stage_overhead_ms"] = overhead;
  j["ops"] = ops;
  j["call_ms"] = first.call_ms;
  j["handoff_gbps"] = first.handoff_gbps;
  j["measured_total_ms"] = first.measured_total_ms;
  j["whole_model_ms"] = first.original_ms;
  j["per_device"] = per_device;
  return j.dump(1) + "\n";
}

std::string profile_json(const ProfileResult& result, const std::vector<std::string>& devices) {
  std::vector<DeviceProfile> same;
  for (const auto& d : devices) same.push_back({d, result});
  return profile_json(same);
}

Expected<Cluster> measured_cluster(const ProfileResult& result, const Cluster& base, const std::string& device,
                                   const std::vector<std::string>& devices) {
  const DeviceId d = base.find(device);
  if (d == kNone) return Error{fmt::format("{}: no device named '{}'", base.name, device), "device"};
  Cluster c;
  c.name = fmt::format("measured-{}", base.name);
  c.description = fmt::format(
      "Measured by moirai profile: {} worker(s) of this machine, each as device '{}' of {} with the measured "
      "per-stage overhead ({:.1f} us) and {} intra-op thread(s); links are in-process hand-offs between sessions "
      "(measured by the call probes), not network links.",
      devices.size(), device, base.name, result.stage_overhead_ms * 1000.0, result.threads);
  const double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * static_cast<double>(::sysconf(_SC_PAGE_SIZE));
  for (const auto& name : devices) {
    Device dev = base.devices[static_cast<size_t>(d)];
    dev.name = name;
    dev.stage_overhead_us = result.stage_overhead_ms * 1000.0;
    dev.threads = result.threads;
    if (memory > 0) dev.memory_bytes = memory;
    c.devices.push_back(std::move(dev));
  }
  // In one process a tensor leaves one session and enters the next: two boundary crossings, no latency of its
  // own (the call cost is in the stage overhead).
  c.links.assign(devices.size() * devices.size(), Link{result.handoff_gbps / 2, 0.0});
  return c;
}

std::string format_profile(const ProfileResult& result) {
  std::string out = fmt::format("{:<44} {:<12} {:>11} {:>11} {:>8}\n", "operator", "type", "measured ms",
                                "analytic ms", "error");
  std::vector<double> errors;
  int within2 = 0;
  for (const auto& op : result.ops) {
    std::string name = op.name.size() > 44 ? op.name.substr(0, 41) + "..." : op.name;
    std::string type = op.type.size() > 12 ? op.type.substr(0, 12) : op.type;
    if (op.analytic_ms < 0) {
      out += fmt::format("{:<44} {:<12} {:>11.4f}\n", name, type, op.measured_ms);
      continue;
    }
    const double err = op.measured_ms > 0 ? (op.analytic_ms - op.measured_ms) / op.measured_ms : 0;
    errors.push_back(std::abs(err));
    const double ratio = op.measured_ms > 0 ? op.analytic_ms / op.measured_ms : 1;
    within2 += ratio >= 0.5 && ratio <= 2.0;
    out += fmt::format("{:<44} {:<12} {:>11.4f} {:>11.4f} {:>+7.0f}%\n", name, type, op.measured_ms, op.analytic_ms,
                       100 * err);
  }
  out += fmt::format("sum of operators: measured {:.3f} ms", result.measured_total_ms);
  if (result.analytic_total_ms >= 0 && result.measured_total_ms > 0)
    out += fmt::format(", analytic {:.3f} ms (error {:+.0f}%)", result.analytic_total_ms,
                       100 * (result.analytic_total_ms - result.measured_total_ms) / result.measured_total_ms);
  out += fmt::format("; whole model in one session {:.3f} ms\n", result.original_ms);
  out += fmt::format("call probe ({} thread(s)): {:.4f} ms per session call, {:.4f} ms per stage (the call and its hand-off); "
                     "hand-off across a session boundary {:.3g} GB/s (groups beyond the whole model)\n",
                     result.threads, result.call_ms, result.stage_overhead_ms, result.handoff_gbps);
  if (std::abs(result.compute_scale - 1) > 1e-3)
    out += fmt::format("compute times net of calls and hand-offs scaled by {:.3f} to add up to the whole model\n",
                       result.compute_scale);
  if (!errors.empty()) {
    std::sort(errors.begin(), errors.end());
    double mean = 0;
    for (double e : errors) mean += e;
    mean /= static_cast<double>(errors.size());
    out += fmt::format("per operator |error|: median {:.0f}%, mean {:.0f}%, {} of {} within 2x\n",
                       100 * errors[errors.size() / 2], 100 * mean, within2, errors.size());
  }
  return out;
}

}  // namespace moirai
