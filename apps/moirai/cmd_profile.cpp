// `moirai profile MODEL.onnx --out profile.json`: measures every coarse operator on this CPU with ONNX Runtime
// (one sub-model per operator, warm-up, median of repeats) and compares with the analytic model of a cluster.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/pipeline.h"

namespace moirai::cli {
namespace {

struct ProfileArgs {
  std::string model, out;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::vector<std::string> dims;
  std::string device = "cpu";
  std::string cluster;
  int repeats = 10;
  bool fastest = false;
};

void run(const ProfileArgs& args) {
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
  const ProfileResult result = unwrap(profile_model(options));
  std::cout << format_profile(result);
  if (auto status = write_file_atomic(args.out, profile_json(result, args.device)); !status) fail(status.error().message);
  std::cout << fmt::format("wrote {} ({} operators on device '{}')\n", args.out, result.ops.size(), args.device);
}

const bool registered = register_command(55, [](CLI::App& app) {
  auto args = std::make_shared<ProfileArgs>();
  auto* cmd = app.add_subcommand("profile", "Measure every (coarse) operator on this CPU with ONNX Runtime");
  cmd->footer(
      "Example:\n"
      "  moirai profile models/squeezenet1_1.weights.onnx --out sq.profile.json -c clusters/local-cpu.json\n"
      "  moirai place models/squeezenet1_1.onnx -c clusters/local-cpu.json --profile sq.profile.json -m single\n"
      "The operators are those 'moirai place' sees with the same --fusion and --max-nodes, so the profile\n"
      "(JSON {\"ops\": {OP: {DEVICE: ms}}}) replaces the analytic times of that device.");
  cmd->add_option("model", args->model, "ONNX model with weights")->required();
  cmd->add_option("--out,-o", args->out, "profile.json to write")->check(non_empty())->required();
  cmd->add_option("--fusion", args->fusion, "Fusion rules: onnxruntime, tensorrt, tvm or none")->capture_default_str();
  cmd->add_option("--max-nodes", args->max_nodes, "Coarsening node budget (needs --cluster)")
      ->check(within(0, 1e7, true));
  cmd->add_option("--dim", args->dims, "Fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--device", args->device, "Device name written into the profile")->capture_default_str();
  cmd->add_option("--cluster,-c", args->cluster, "Cluster whose --device gives the analytic times to compare with");
  cmd->add_option("--repeats,-r", args->repeats, "Timed repetitions per operator (median)")->capture_default_str();
  cmd->add_flag("--fastest", args->fastest, "Keep the fastest repetition instead of the median (busy machines)");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
