// `moirai run PLAN.json MODEL.onnx (--workers ...|--local)`: runs a plan for real, one gRPC worker per device
// (src/run), and compares the measured latency, busy times and transfers with the plan's predictions.
// `moirai run MANIFEST`: runs exported sub-models in order in one process (ONNX Runtime through node), checks
// them against the original model, and puts the measured time next to the simulator's prediction for the same
// machine (every operator on one device of a local cluster file, with a measured profile when given).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <sstream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/pipeline.h"
#include "moirai/run.h"
#include "options.h"

namespace moirai::cli {
namespace {

struct RunArgs {
  std::vector<std::string> inputs;  // MANIFEST, or PLAN MODEL
  std::string manifest;
  std::string workers;
  RunOptions plan;
  std::string original;
  std::string cluster = "clusters/local-cpu.json";
  std::string device = "cpu";
  std::string profile;
  int repeats = 10;
  uint64_t seed = 1;
  bool fastest = false;
  Verbosity verbosity = Verbosity::normal;
};

void run_distributed(RunArgs args) {
  RunOptions& o = args.plan;
  o.plan_path = args.inputs[0];
  o.model_path = args.inputs[1];
  o.seed = args.seed;
  o.argv0 = "/proc/self/exe";
  if (o.local == !args.workers.empty()) fail("moirai run PLAN MODEL needs exactly one of --workers and --local");
  if (o.out_dir.empty()) fail("moirai run PLAN MODEL needs --out DIR");
  if (!o.local) o.workers = parse_workers(args.workers);
  Progress progress(args.verbosity, stderr_sink());
  o.progress = [&progress](const std::string& line) { progress.note(line); };
  const auto task = progress.start("run");
  auto summary = run_plan(o);
  if (summary) task.finish(fmt::format("{} requests, outputs {}", o.requests, summary->outputs_match ? "match" : "differ"));
  else task.drop();
  const RunSummary r = unwrap(std::move(summary));
  for (size_t i = 0; i + 1 < r.attempts.size(); ++i)
    std::cout << fmt::format("plan {} failed: {}\n", r.attempts[i].plan, r.attempts[i].error);
  if (r.attempts.size() > 1) std::cout << fmt::format("replanned: {}\n", r.attempts.back().plan);
  std::cout << r.table << fmt::format("wrote {}\n", r.run_json);
  if (!r.outputs_match) fail(fmt::format("{}: the outputs differ from the original model", r.run_json));
}

void run(RunArgs args) {
  if (args.inputs.size() == 2) return run_distributed(std::move(args));
  if (args.inputs.size() != 1) fail("moirai run takes MANIFEST, or PLAN.json MODEL.onnx");
  args.manifest = args.inputs[0];
  const Manifest manifest = unwrap(read_manifest(args.manifest));
  RuntimeOptions options;
  options.original = args.original;
  options.repeats = args.repeats;
  options.seed = args.seed;
  options.fastest = args.fastest;
  Progress progress(args.verbosity, stderr_sink());
  const auto task = progress.start("run");
  auto ran = run_manifest(args.manifest, options);
  if (ran) task.finish(fmt::format("{} sub-models, outputs {}", manifest.submodels.size(), ran->match ? "match" : "differ"));
  else task.drop();
  const RuntimeResult r = unwrap(std::move(ran));
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
  auto* cmd = app.add_subcommand("run", "Run a plan on one worker per device (or exported sub-models in one process)");
  cmd->footer(
      "Two forms:\n"
      "  moirai run PLAN.json MODEL.onnx (--workers DEV=HOST:PORT,... | --local) --out DIR\n"
      "    exports the plan into DIR/submodels, loads each device's stages on its worker (moirai worker), sends\n"
      "    --warmup then --requests requests of seeded random inputs (--concurrency at once), and checks every\n"
      "    output against the original model, which the first worker runs in one session. Workers send\n"
      "    activations to each other directly; the coordinator sends graph inputs and fetches graph outputs only.\n"
      "    Writes DIR/run.json (predicted vs measured latency, per-device busy time, per-link bytes and time,\n"
      "    per-request latency and its phases: push, wait for the first stage, stages, fetch; throughput) and\n"
      "    DIR/trace.json (measured, in the format of 'place's trace), and\n"
      "    prints the comparison. --local starts one worker per device on this machine and stops them at the\n"
      "    end, on error and on Ctrl-C. A worker that is unreachable, dies or misses --deadline-ms ends the run\n"
      "    with one line naming it, its device and the stage; with --replan-on-failure a lost device is dropped,\n"
      "    the model placed again on the others with the plan's method (DIR/replanN/plan.json) and the run retried.\n"
      "  moirai run MANIFEST\n"
      "    runs the sub-models of 'moirai export' in order in one process and compares with the simulator.\n"
      "Examples:\n"
      "  moirai place models/squeezenet1_1.onnx -c cluster.json -m heft --out plan/\n"
      "  moirai run plan/plan.json models/squeezenet1_1.weights.onnx --local --requests 50 --out run/\n"
      "  moirai run plan/plan.json models/squeezenet1_1.weights.onnx --workers a=10.0.0.2:7000,b=10.0.0.3:7000 --out run/\n"
      "Needs node and the npm packages of package.json (scripts/setup installs them).");
  cmd->add_option("inputs", args->inputs, "MANIFEST, or PLAN.json MODEL.onnx")->required()->expected(1, 2);
  cmd->add_option("--workers", args->workers, "DEVICE=HOST:PORT,... : the worker of each device of the plan");
  cmd->add_flag("--local", args->plan.local, "Start one worker per device of the plan on this machine");
  cmd->add_option("--out,-o", args->plan.out_dir, "Output directory (run.json, trace.json, submodels/)");
  cmd->add_option("--requests", args->plan.requests, "Measured requests")->capture_default_str()->check(within(1, 1e6, true));
  cmd->add_option("--warmup", args->plan.warmup, "Requests run before measuring")->capture_default_str()->check(within(0, 1e6, true));
  cmd->add_option("--concurrency", args->plan.concurrency, "Requests in flight at once")->capture_default_str()->check(within(1, 1024, true));
  cmd->add_option("--threads", args->plan.threads, "Intra-op threads of each --local worker")->capture_default_str()->check(within(1, 1024, true));
  cmd->add_option("--provider", args->plan.provider, "Execution provider of --local workers: cpu or cuda:K")->capture_default_str();
  cmd->add_option("--deadline-ms", args->plan.deadline_ms, "Deadline of each request in ms (connecting: 5 s; loading and the reference run: 120 s)")->capture_default_str()->check(within(1, 1e9));
  cmd->add_option("--tol", args->plan.tolerance, "Max |diff| allowed, relative to the largest reference value")->capture_default_str()->check(within(0, 1));
  cmd->add_flag("--replan-on-failure", args->plan.replan_on_failure, "When a device is lost, place again on the others and retry");
  cmd->add_option("--original", args->original, "MANIFEST form: original model to compare with (default: the one in the manifest)");
  cmd->add_option("--repeats,-r", args->repeats, "MANIFEST form: timed repetitions (median reported)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Seed of the random inputs")->capture_default_str();
  cmd->add_option("--cluster,-c", args->cluster, "MANIFEST form: cluster file describing this machine")->capture_default_str();
  cmd->add_option("--device", args->device, "MANIFEST form: device of that cluster that runs everything")->capture_default_str();
  cmd->add_option("--profile", args->profile, "MANIFEST form: measured profile (moirai profile) to predict with");
  cmd->add_flag("--fastest", args->fastest, "MANIFEST form: report the fastest repetition instead of the median");
  add_verbosity_options(*cmd, args->verbosity);
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
