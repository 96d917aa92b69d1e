// `moirai run MANIFEST`: runs exported sub-models in order on this machine (ONNX Runtime through node), checks
// them against the original model, and puts the measured time next to the simulator's prediction for the same
// machine (every operator on one device of a local cluster file, with a measured profile when given).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/pipeline.h"

namespace moirai::cli {
namespace {

struct RunArgs {
  std::string manifest;
  std::string original;
  std::string cluster = "clusters/local-cpu.json";
  std::string device = "cpu";
  std::string profile;
  int repeats = 10;
  uint64_t seed = 1;
  bool fastest = false;
};

void run(const RunArgs& args) {
  const Manifest manifest = unwrap(read_manifest(args.manifest));
  RuntimeOptions options;
  options.original = args.original;
  options.repeats = args.repeats;
  options.seed = args.seed;
  options.fastest = args.fastest;
  const RuntimeResult r = unwrap(run_manifest(args.manifest, options));
  std::cout << fmt::format("{} sub-models: outputs {} the original (max |diff| {:.3g}, max |reference| {:.3g})\n",
                           manifest.submodels.size(), r.match ? "match" : "DIFFER from", r.max_abs_diff,
                           r.max_reference);
  std::cout << fmt::format("measured ({} of {}): split run {:.3f} ms, original model {:.3f} ms\n",
                           args.fastest ? "fastest" : "median", args.repeats, r.split_ms, r.original_ms);

  ProblemOptions problem;
  problem.input = manifest.model;
  problem.cluster_path = args.cluster;
  problem.coarsen.fusion = manifest.fusion.empty() ? "onnxruntime" : manifest.fusion;
  problem.coarsen.max_nodes = manifest.max_nodes;
  problem.dims = manifest.dims;
  problem.profile_path = args.profile;
  const Problem p = unwrap(load_problem(problem));
  const auto it = std::find(p.table.device_names.begin(), p.table.device_names.end(), args.device);
  if (it == p.table.device_names.end()) fail(fmt::format("{}: no device named '{}' (--device)", args.cluster, args.device));
  Placement placement;
  placement.device.assign(static_cast<size_t>(p.table.num_ops()), static_cast<DeviceId>(it - p.table.device_names.begin()));
  const Schedule schedule = simulate(p.table, placement);
  const double err = r.split_ms > 0 ? (schedule.makespan_ms - r.split_ms) / r.split_ms : 0;
  std::cout << fmt::format("predicted by the simulator ({} on '{}' of {}{}): {:.3f} ms, {:+.0f}% vs the measured "
                           "split run\n", p.table.num_ops(), args.device, args.cluster,
                           args.profile.empty() ? ", analytic costs" : ", measured profile " + args.profile,
                           schedule.makespan_ms, 100 * err);
  if (!r.match) fail(fmt::format("{}: the split run does not match the original model", args.manifest));
}

const bool registered = register_command(60, [](CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Run exported sub-models on this machine and compare with the simulator");
  cmd->footer(
      "Example:\n"
      "  moirai export plan/plan.json models/squeezenet1_1.weights.onnx --out split/\n"
      "  moirai run split/manifest.json --repeats 20 --profile squeezenet.profile.json\n"
      "Needs node and the npm package onnxruntime-node (scripts/setup installs it).");
  cmd->add_option("manifest", args->manifest, "manifest.json written by 'moirai export'")->required();
  cmd->add_option("--original", args->original, "Original model to compare with (default: the one in the manifest)");
  cmd->add_option("--repeats,-r", args->repeats, "Timed repetitions (median reported)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the random inputs")->capture_default_str();
  cmd->add_option("--cluster,-c", args->cluster, "Cluster file describing this machine")->capture_default_str();
  cmd->add_option("--device", args->device, "Device of that cluster that runs everything")->capture_default_str();
  cmd->add_option("--profile", args->profile, "Measured profile (moirai profile) to predict with");
  cmd->add_flag("--fastest", args->fastest, "Report the fastest repetition instead of the median (busy machines)");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
