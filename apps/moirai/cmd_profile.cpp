// `moirai profile MODEL.onnx [-c CLUSTER] [--local | --workers ...] --out DIR`: measures what the executor runs
// (every coarse operator as its own session, and the per-stage call overhead) and writes DIR/profile.json and
// DIR/cluster.json. In process (the default) with tools/run_plan.mjs; with --local or --workers through the
// workers of `moirai run`, which also gives the worker-to-worker links (src/run/profile.cpp).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/file_io.h"
#include "moirai/pipeline.h"
#include "moirai/run.h"
#include "options.h"

namespace moirai::cli {
namespace {
namespace fs = std::filesystem;

struct ProfileArgs {
  std::string model, out;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::vector<std::string> dims;
  std::string device = "cpu";
  int devices = 0;  // 0: 1 in process, 2 with --local
  std::string cluster;
  bool local = false;
  std::string workers;
  std::string provider = "cpu";
  double deadline_ms = 30000;
  int repeats = 10;
  int threads = 1;
  bool fastest = false;
  Verbosity verbosity = Verbosity::normal;
};

ProfileOptions profile_options(const ProfileArgs& args) {
  ProfileOptions options;
  options.model = args.model;
  options.fusion = args.fusion;
  options.max_nodes = args.max_nodes;
  options.dims = parse_dims(args.dims);
  options.device = args.device;
  options.cluster = args.cluster;
  options.runtime.repeats = args.repeats;
  options.runtime.warmup = 2;
  options.runtime.fastest = args.fastest;
  options.runtime.threads = args.threads;
  return options;
}

/// Writes DIR/profile.json and DIR/cluster.json (each whole or not at all); returns their paths.
std::pair<std::string, std::string> write_outputs(const std::string& out, const std::string& profile,
                                                  const Cluster& cluster) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail(fmt::format("{}: cannot create the output directory: {}", out, ec.message()));
  const std::string profile_path = (fs::path(out) / "profile.json").string();
  const std::string cluster_path = (fs::path(out) / "cluster.json").string();
  if (auto s = write_file_atomic(profile_path, profile); !s) fail(s.error());
  if (auto s = write_file_atomic(cluster_path, cluster_json(cluster)); !s) fail(s.error());
  return {profile_path, cluster_path};
}

void run_on_workers(const ProfileArgs& args) {
  if (args.local == !args.workers.empty()) fail("moirai profile takes at most one of --local and --workers");
  if (!args.local && args.devices > 0) fail("--devices is for --local (with --workers, the workers are the devices)");
  WorkerProfileOptions options;
  options.profile = profile_options(args);
  options.local_devices = args.local ? (args.devices > 0 ? args.devices : 2) : 0;
  if (!args.local) options.workers = parse_workers(args.workers);
  options.threads = args.threads;
  options.provider = args.provider;
  options.deadline_ms = args.deadline_ms;
  options.argv0 = "/proc/self/exe";
  Progress progress(args.verbosity, stderr_sink());
  const auto task = progress.start("profile");
  auto measured = profile_workers(options);
  if (measured) task.finish(fmt::format("{} worker(s) measured", measured->devices.size()));
  else task.drop();
  const WorkerProfile p = unwrap(std::move(measured));
  for (const auto& d : p.devices)
    std::cout << fmt::format("== {} ({} thread(s))\n", d.device, d.result.threads) << format_profile(d.result);
  if (options.local_devices > 1)
    std::cout << fmt::format("the {} local workers share this machine: operator times, whole model, call and stage "
                             "overhead above are their mean\n", options.local_devices);
  for (const auto* links : {&p.links, &p.coordinator})
    for (const auto& l : *links) {
      std::string points;
      for (const auto& s : l.points) points += fmt::format("{}{:.0f} B: {:.3f} ms", points.empty() ? "" : ", ", s.bytes, s.ms);
      std::cout << fmt::format("link {} -> {}: latency {:.1f} us, {:.3g} GB/s (r2 {:.3f}; {}){}\n", l.src, l.dst,
                               l.fit.link.latency_us, l.fit.link.bandwidth_gbps, l.fit.r2, points,
                               l.request_excess_ms > 0
                                   ? fmt::format("; latency includes the whole model's request beyond the probes, "
                                                 "{:.3f} ms", l.request_excess_ms)
                                   : "");
    }
  const auto [profile_path, cluster_path] = write_outputs(args.out, profile_json(p.devices), p.cluster);
  std::cout << fmt::format("wrote {} ({} operators, {} device(s)) and {} ({} link(s) measured)\n", profile_path,
                           p.devices.front().result.ops.size(), p.devices.size(), cluster_path,
                           p.links.size() + p.coordinator.size());
}

void run(const ProfileArgs& args) {
  if (args.local || !args.workers.empty()) return run_on_workers(args);
  if (args.cluster.empty())
    fail("moirai profile needs -c CLUSTER in process (with --local or --workers the workers give the cluster)");
  const Cluster base = unwrap(load_cluster(args.cluster));
  if (base.find(args.device) == kNone) fail(fmt::format("{}: no device named '{}' (--device)", args.cluster, args.device));
  const int devices = args.devices > 0 ? args.devices : 1;
  std::vector<std::string> names;
  for (int i = 0; i < devices; ++i) names.push_back(devices == 1 ? args.device : fmt::format("{}{}", args.device, i));
  Progress progress(args.verbosity, stderr_sink());
  const auto task = progress.start("profile");
  auto profiled = profile_model(profile_options(args));
  if (profiled) task.finish(fmt::format("{} operators measured", profiled->ops.size()));
  else task.drop();
  const ProfileResult result = unwrap(std::move(profiled));
  const Cluster measured = unwrap(measured_cluster(result, base, args.device, names));
  std::cout << format_profile(result);

  const auto [profile_path, cluster_path] = write_outputs(args.out, profile_json(result, names), measured);
  std::cout << fmt::format("wrote {} ({} operators) and {} ({} device(s): {} thread(s), stage overhead {:.1f} us)\n",
                           profile_path, result.ops.size(), cluster_path, names.size(), args.threads,
                           result.stage_overhead_ms * 1000.0);
}

const bool registered = register_command(55, [](CLI::App& app) {
  auto args = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("profile", "Measure every (coarse) operator, the per-stage overhead and the links");
  cmd->footer(
      "Runs every coarse operator (the groups 'moirai place' sees with the same --fusion and --max-nodes) as its\n"
      "own ONNX Runtime session with --threads intra-op threads, on the values it really receives (warm-up, then\n"
      "the median of --repeats), and a call probe (an Identity on one number) run the same way: its time is the\n"
      "per-stage overhead the executor pays once per stage. What the groups take beyond the whole model in one\n"
      "session and their calls, per activation byte they receive and send, is the hand-off cost of crossing a\n"
      "session boundary. An operator's compute time is its time minus one session call and its hand-offs.\n"
      "\n"
      "Where it measures:\n"
      "  (default)     in this process's runner (tools/run_plan.mjs); the links of cluster.json are in-process\n"
      "                hand-offs (out of one session and into the next, latency 0).\n"
      "  --local       on --devices (default 2) workers started on this machine, as 'moirai run --local' runs a\n"
      "                plan (--threads each), stopped at the end. They are one machine: every figure but the\n"
      "                links is the mean over the workers, so that no plan prefers the worker that measured luckier.\n"
      "  --workers     on running workers ('moirai worker'), DEVICE=HOST:PORT,...: their names are the devices;\n"
      "                each keeps its own --threads.\n"
      "  On workers every measurement is a run of stages through the executor: the groups as stages of one\n"
      "  worker, the per-stage overhead from a chain of call probes (one probe's start to the next's: the call\n"
      "  and the hand-off to the next stage), and for every pair of workers chains of probes alternating between\n"
      "  them at 4 B, 256 KiB, 1 MiB and 4 MiB: each worker-to-worker push is timed by the sender up to the\n"
      "  receiver's acknowledgement, and latency + bytes / bandwidth is fitted per direction to the median (or\n"
      "  --fastest) time per size, minimizing relative errors. The same chains on each worker alone give the\n"
      "  coordinator's links: its push of the input (request sent to first stage start) and its fetch of the\n"
      "  output (last stage end to the answer), fitted the same way; what the whole model's own request hands\n"
      "  off beyond that fit (a real request costs more than the probes) is added to the fetch's latency. A\n"
      "  worker that is not reachable ends the\n"
      "  measurement with one line naming it (within 5 s); nothing is written.\n"
      "\n"
      "Writes into DIR (each file written whole, after every measurement succeeded):\n"
      "  profile.json  version 2: threads, stage_overhead_ms per device, ops {OP: {DEVICE: compute ms}},\n"
      "                per_device {DEVICE: {threads, call_ms, handoff_gbps, ...}}\n"
      "  cluster.json  one device per worker (in process: --devices copies, named DEVICE or DEVICE0, DEVICE1...),\n"
      "                each --device of --cluster (without -c on workers: a CPU at the whole model's measured\n"
      "                FLOP/s and bytes/s) with the measured stage_overhead_us, threads and memory, and\n"
      "                the measured links (on workers also from_coordinator / to_coordinator per device).\n"
      "\n"
      "Examples:\n"
      "  moirai profile models/squeezenet1_1.weights.onnx -c clusters/local-cpu.json --local --out m/\n"
      "  moirai profile models/squeezenet1_1.weights.onnx --workers a=10.0.0.2:7000,b=10.0.0.3:7000 --out m/\n"
      "  moirai place models/squeezenet1_1.onnx -c m/cluster.json --profile m/profile.json -m heft --out plan/");
  cmd->add_option("model", args->model, "ONNX model with weights")->required();
  cmd->add_option("--out,-o", args->out, "Directory to write profile.json and cluster.json into")->check(non_empty())->required();
  cmd->add_option("--cluster,-c", args->cluster,
                  "Cluster whose --device describes this CPU: its analytic times are compared, its figures copied "
                  "(optional with --local or --workers: the devices then get the whole model's measured rates)")
      ->check(non_empty());
  cmd->add_option("--device", args->device, "Device of --cluster that this CPU is")->capture_default_str();
  cmd->add_option("--devices", args->devices,
                  "Workers of this machine: started with --local (default 2), or written into cluster.json (default 1)")
      ->check(within(1, 64, true));
  cmd->add_flag("--local", args->local, "Measure on workers started on this machine");
  cmd->add_option("--workers", args->workers, "DEVICE=HOST:PORT,... : measure on these running workers");
  cmd->add_option("--provider", args->provider, "Execution provider of --local workers: cpu or cuda:K")->capture_default_str();
  cmd->add_option("--deadline-ms", args->deadline_ms, "Deadline of each request to the workers in ms")
      ->capture_default_str()->check(within(1, 1e9));
  cmd->add_option("--threads", args->threads, "Intra-op threads of every session, and of each --local worker (1..1024)")
      ->check(within(1, 1024, true))->capture_default_str();
  cmd->add_option("--fusion", args->fusion,
                  "Fusion rules: onnxruntime, tensorrt, tvm, none, or onnxruntime-runtime[:LEVEL] (ONNX Runtime's own "
                  "groups)")->capture_default_str();
  cmd->add_option("--max-nodes", args->max_nodes, "Coarsening node budget")->check(within(0, 1e7, true));
  cmd->add_option("--dim", args->dims, "Fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--repeats,-r", args->repeats, "Timed repetitions per operator (1..100000, median)")
      ->check(within(1, 1e5, true))->capture_default_str();
  cmd->add_flag("--fastest", args->fastest, "Keep the fastest repetition instead of the median (busy machines)");
  add_verbosity_options(*cmd, args->verbosity);
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
