// `moirai profile MODEL.onnx -c CLUSTER --threads N --out DIR`: measures what the executor runs on this CPU with
// ONNX Runtime (every coarse operator as its own session, and the per-stage call overhead) and writes
// DIR/profile.json and DIR/cluster.json (this machine as N-thread workers).
#include <fmt/format.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/file_io.h"
#include "moirai/pipeline.h"

namespace moirai::cli {
namespace {
namespace fs = std::filesystem;

struct ProfileArgs {
  std::string model, out;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::vector<std::string> dims;
  std::string device = "cpu";
  int devices = 1;
  std::string cluster;
  int repeats = 10;
  int threads = 1;
  bool fastest = false;
};

void run(const ProfileArgs& args) {
  const Cluster base = unwrap(load_cluster(args.cluster));
  if (base.find(args.device) == kNone) fail(fmt::format("{}: no device named '{}' (--device)", args.cluster, args.device));
  std::vector<std::string> names;
  for (int i = 0; i < args.devices; ++i) names.push_back(args.devices == 1 ? args.device : fmt::format("{}{}", args.device, i));

  ProfileOptions options;
  options.model = args.model;
  options.fusion = args.fusion;
  options.max_nodes = args.max_nodes;
  options.dims = unwrap(parse_dims(args.dims));
  options.device = args.device;
  options.cluster = args.cluster;
  options.runtime.repeats = args.repeats;
  options.runtime.warmup = 2;
  options.runtime.fastest = args.fastest;
  options.runtime.threads = args.threads;
  const ProfileResult result = unwrap(profile_model(options));
  const Cluster measured = unwrap(measured_cluster(result, base, args.device, names));
  std::cout << format_profile(result);

  std::error_code ec;
  fs::create_directories(args.out, ec);
  if (ec) fail(fmt::format("{}: cannot create the output directory: {}", args.out, ec.message()));
  const std::string profile_path = (fs::path(args.out) / "profile.json").string();
  const std::string cluster_path = (fs::path(args.out) / "cluster.json").string();
  if (auto s = write_file_atomic(profile_path, profile_json(result, names)); !s) fail(s.error().message);
  if (auto s = write_file_atomic(cluster_path, cluster_json(measured)); !s) fail(s.error().message);
  std::cout << fmt::format("wrote {} ({} operators) and {} ({} device(s): {} thread(s), stage overhead {:.1f} us)\n",
                           profile_path, result.ops.size(), cluster_path, names.size(), args.threads,
                           result.stage_overhead_ms * 1000.0);
}

const bool registered = register_command(55, [](CLI::App& app) {
  auto args = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("profile", "Measure every (coarse) operator and the per-stage overhead on this CPU");
  cmd->footer(
      "Runs every coarse operator (the groups 'moirai place' sees with the same --fusion and --max-nodes) as its\n"
      "own ONNX Runtime session with --threads intra-op threads, on the values it really receives (warm-up, then\n"
      "the median of --repeats), and a call probe (an Identity on one number) run the same way: its time is the\n"
      "per-stage overhead the executor pays once per stage. What the groups take beyond the whole model in one\n"
      "session and their calls, per activation byte they receive and send, is the hand-off cost of crossing a\n"
      "session boundary. An operator's compute time is its time minus one session call and its hand-offs.\n"
      "\n"
      "Writes into DIR:\n"
      "  profile.json  version 2: threads, stage_overhead_ms per device, ops {OP: {DEVICE: compute ms}}\n"
      "  cluster.json  --devices copies of --device of --cluster (named DEVICE, or DEVICE0, DEVICE1... when\n"
      "                --devices > 1), each with the measured stage_overhead_us, threads and this machine's\n"
      "                memory; the links between them are in-process hand-offs (out of one session and into the\n"
      "                next, latency 0), as in 'moirai run'.\n"
      "\n"
      "Example:\n"
      "  moirai profile models/squeezenet1_1.weights.onnx -c clusters/local-cpu.json --threads 1 --devices 2 --out m/\n"
      "  moirai place models/squeezenet1_1.onnx -c m/cluster.json --profile m/profile.json -m heft --out plan/");
  cmd->add_option("model", args->model, "ONNX model with weights")->required();
  cmd->add_option("--out,-o", args->out, "Directory to write profile.json and cluster.json into")->check(non_empty())->required();
  cmd->add_option("--cluster,-c", args->cluster,
                  "Cluster whose --device describes this CPU: its analytic times are compared, its figures copied")
      ->check(non_empty())->required();
  cmd->add_option("--device", args->device, "Device of --cluster that this CPU is")->capture_default_str();
  cmd->add_option("--devices", args->devices, "Workers of this machine to write into cluster.json (1..64)")
      ->check(within(1, 64, true))->capture_default_str();
  cmd->add_option("--threads", args->threads, "Intra-op threads of every session (1..1024)")
      ->check(within(1, 1024, true))->capture_default_str();
  cmd->add_option("--fusion", args->fusion,
                  "Fusion rules: onnxruntime, tensorrt, tvm, none, or onnxruntime-runtime[:LEVEL] (ONNX Runtime's own "
                  "groups)")->capture_default_str();
  cmd->add_option("--max-nodes", args->max_nodes, "Coarsening node budget")->check(within(0, 1e7, true));
  cmd->add_option("--dim", args->dims, "Fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--repeats,-r", args->repeats, "Timed repetitions per operator (1..100000, median)")
      ->check(within(1, 1e5, true))->capture_default_str();
  cmd->add_flag("--fastest", args->fastest, "Keep the fastest repetition instead of the median (busy machines)");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
