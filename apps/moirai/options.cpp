#include "options.h"

#include <fmt/format.h>

#include "commands.h"

namespace moirai::cli {

void add_problem_options(CLI::App& cmd, ProblemArgs& args) {
  cmd.add_option("--cluster,-c", args.cluster, "Cluster file (devices and links), e.g. clusters/edge-4.json");
  cmd.add_option("--fusion", args.fusion,
                 "Fusion rules to coarsen with: onnxruntime, tensorrt, tvm, none, or onnxruntime-runtime[:LEVEL] (the "
                 "groups ONNX Runtime really fuses)")
      ->capture_default_str();
  cmd.add_option("--max-nodes", args.max_nodes, "After fusion, merge further until at most N nodes remain (0: off)")
      ->check(within(0, 1e7, true));
  cmd.add_option("--dim", args.dims, "Fix a dynamic dimension, NAME=VALUE (repeatable), e.g. --dim batch=8");
  cmd.add_option("--profile", args.profile, "Measured operator times (JSON) that override the analytic model");
  cmd.add_option("--context", args.context,
                 "Decode models: tokens in the KV cache (the model's 'context' dimension, 1 to 1e7); `place` also "
                 "takes 'max', the largest context that fits");
}

ProblemOptions problem_options(const ProblemArgs& args, bool allow_max) {
  ProblemOptions options;
  options.input = args.input;
  options.cluster_path = args.cluster;
  options.dims = parse_dims(args.dims);
  if (args.context == "max" && !allow_max) fail("--context max: only `place` searches for the largest context");
  if (!args.context.empty() && args.context != "max") {
    const auto context = positive_integer(args.context);
    if (!context || *context > 10000000)
      fail("--context: expected a number of tokens from 1 to 1e7 or 'max', got '" + args.context + "'");
    if (auto it = options.dims.find(kContextDim); it != options.dims.end() && it->second != *context)
      fail(fmt::format("--context {} contradicts --dim context={}", args.context, it->second));
    options.dims[kContextDim] = *context;
  }
  options.coarsen.fusion = args.fusion;
  options.coarsen.max_nodes = args.max_nodes;
  options.profile_path = args.profile;
  return options;
}

void add_place_options(CLI::App& cmd, PlaceOptions& options, bool& no_contention) {
  // Ranges: generous but finite, so that no absurd figure reaches the solver or a loop bound.
  cmd.add_option("--time-limit", options.time_limit_s, "Seconds a search-based method may run (MILP, Placeto, GenEFlow)")
      ->capture_default_str()
      ->check(within(1e-3, 1e6));
  cmd.add_option("--gap", options.gap, "MILP: stop at this relative optimality gap")->capture_default_str()->check(within(0, 1));
  cmd.add_option("--threads", options.threads, "MILP: solver threads")->capture_default_str()->check(within(1, 1024, true));
  cmd.add_option("--seed", options.seed, "Seed of the randomised methods (Placeto, GenEFlow)")->capture_default_str();
  cmd.add_option("--episodes", options.episodes, "Placeto: training episodes")->capture_default_str()->check(within(1, 1e6, true));
  cmd.add_option("--generations", options.generations, "GenEFlow: generations")
      ->capture_default_str()
      ->check(within(1, 1e6, true));
  cmd.add_option("--population", options.population, "GenEFlow: population size")
      ->capture_default_str()
      ->check(within(1, 1e5, true));
  cmd.add_flag("--no-contention", no_contention,
               "Transfers never queue on ports (the classic list-scheduling model, e.g. HEFT's paper)");
}

void add_stream_options(CLI::App& cmd, StreamOptions& options) {
  cmd.add_option("--requests", options.requests,
                 "Stream: requests simulated to measure throughput and latency percentiles (the first quarter of "
                 "completions is warm-up; memory grows with requests x operators)")
      ->capture_default_str()
      ->check(within(1, 1e4, true));
  cmd.add_option("--arrival", options.arrival_rps, "Stream: requests per second arriving (default: all at once, back to back)")
      ->check(within(1e-6, 1e9));
  cmd.add_option("--in-flight", options.max_in_flight,
                 "Stream: requests admitted at once, whose activations memory must hold; for a decode model each is a "
                 "sequence holding its own KV cache (default: twice the number of devices; with --objective "
                 "throughput, the count whose plan serves the most requests per second)")
      ->check(within(1, 1e5, true));
}

void add_verbosity_options(CLI::App& cmd, Verbosity& verbosity) {
  auto* quiet = cmd.add_flag_callback("-q,--quiet", [&verbosity] { verbosity = Verbosity::quiet; },
                                      "No progress on stderr, errors only");
  auto* verbose = cmd.add_flag_callback("-v,--verbose", [&verbosity] { verbosity = Verbosity::verbose; },
                                        "Every progress line the methods report, and how the model was coarsened");
  quiet->excludes(verbose);
}

}  // namespace moirai::cli
