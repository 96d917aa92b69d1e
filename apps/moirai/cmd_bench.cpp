// `moirai bench`: every (model, cluster, method) combination, resumable, with a progress bar; writes
// results.csv, results.json, summary.md and SVG plots (see include/moirai/bench.h).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <thread>

#include "commands.h"
#include "moirai/bench.h"
#include "options.h"

namespace moirai::cli {
namespace {

struct BenchArgs {
  BenchOptions options;
  std::vector<std::string> methods{"all"};
  bool no_contention = false;
  bool in_process = false;
  Verbosity verbosity = Verbosity::normal;
};

std::vector<std::string> resolve_methods(const std::vector<std::string>& given) {
  const auto known = method_names();
  std::vector<std::string> out;
  for (const auto& m : given) {
    if (m == "all") {
      for (const auto& k : known)
        if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
      continue;
    }
    if (std::find(known.begin(), known.end(), m) == known.end() && m != "throughput") {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(fmt::format("--methods: unknown method '{}' (known: {}, throughput, or all)", m, list));
    }
    if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  return out;
}

void run(BenchArgs& args, bool threads_given) {
  BenchOptions o = args.options;
  o.methods = resolve_methods(args.methods);
  o.place.sim.contention = !args.no_contention;
  o.isolate = !args.in_process;
  o.jobs = std::max(1, o.jobs);
  if (!threads_given && o.jobs > 1)  // the MILP's threads share the cores with the other jobs
    o.place.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / o.jobs);
  Progress progress(args.verbosity, stderr_sink());
  const auto task = progress.start("bench");
  // A terminal shows the bar in place and keeps the combinations without a plan above it; elsewhere every
  // finished combination is one line.
  o.progress = [&progress, task](const BenchProgress& p) {
    if (progress.terminal()) task.report(format_bench_progress(p, true));
    if (p.last && (!progress.terminal() || !p.last->has_latency())) progress.note(format_bench_progress(p, false));
  };
  auto result = run_bench(o);
  if (result) task.finish(fmt::format("{} combinations run, {} already done", result->ran, result->skipped));
  else task.drop();
  const BenchResult r = unwrap(std::move(result));
  std::cout << fmt::format("bench: {} combinations run, {} already done, {} rows in {}/results.csv ({:.1f} s)\n",
                           r.ran, r.skipped, r.rows.size(), o.out_dir, r.elapsed_s);
  std::string files;
  for (const auto& f : r.written) files += (files.empty() ? "" : ", ") + f;
  std::cout << "wrote " << files << "\n";
  if (!r.rows.empty() && std::all_of(r.rows.begin(), r.rows.end(), [](const BenchRow& row) { return row.failed(); }))
    fail(fmt::format("bench: every combination failed ({} rows; the reasons are in {}/results.csv)", r.rows.size(),
                     o.out_dir));
}

const bool registered = register_command(70, [](CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "Run every model x cluster x method and write paper-style results");
  cmd->footer(
      "Examples:\n"
      "  moirai bench --models models/ --clusters clusters/edge-4.json --methods heft,m-sct,milp --time-limit 10 "
      "--out out/bench\n"
      "  bench/default.sh    the standard evaluation (writes docs/results.md)\n"
      "  bench/throughput.sh the serving evaluation: both objectives side by side (writes docs/throughput.md)\n"
      "  moirai bench --models models/decode/llama2_7b_decode.onnx models/bert_base.onnx --clusters "
      "clusters/dgx-a100-8.json --methods single,throughput --context 2048 --out out/decode\n"
      "Every finished combination is appended to OUT/rows.jsonl; re-running with the same --out skips those.");
  cmd->add_option("--models", args->options.models, "ONNX models, profiled instances (.json), or directories of *.onnx")
      ->required();
  cmd->add_option("--clusters", args->options.clusters, "Cluster files (instances ignore them)");
  cmd->add_option("--methods", args->methods,
                  "Comma-separated methods, or all (the latency methods); 'throughput' adds the throughput objective's "
                  "plan (stage DP + period MILP), and OUT/throughput.md compares it with the --reference plan and "
                  "'single'")
      ->delimiter(',')
      ->capture_default_str();
  add_stream_options(*cmd, args->options.stream);
  cmd->add_option("--out,-o", args->options.out_dir, "Output directory (rows.jsonl, results.*, summary.md, *.svg)")
      ->required()
      ->check(non_empty());
  cmd->add_option("--jobs,-j", args->options.jobs, "Combinations run at once (each in its own process)")
      ->capture_default_str()
      ->check(within(1, 256, true));
  cmd->add_option("--fusion", args->options.coarsen.fusion,
                  "Fusion rules: onnxruntime, tensorrt, tvm, none, or onnxruntime-runtime[:LEVEL] (ONNX Runtime's own "
                  "groups)")
      ->capture_default_str();
  cmd->add_option("--max-nodes", args->options.coarsen.max_nodes, "Coarsen every model to at most N nodes (0: off)")
      ->check(within(0, 1e7, true));
  cmd->add_option("--context", args->options.context,
                  "Decode models: tokens in the KV cache (their 'context' dimension, 1 to 1e7); other models ignore it")
      ->check(within(1, 1e7, true));
  add_place_options(*cmd, args->options.place, args->no_contention);
  cmd->add_option("--kill-after", args->options.kill_after_s,
                  "Kill a method still running after S seconds (default 3 x time limit + 60)")
      ->check(within(1e-3, 1e7));
  cmd->add_option("--reference", args->options.reference, "Method whose speed-ups the summary reports")
      ->capture_default_str();
  cmd->add_flag("--retry-failed", args->options.retry_failed, "Re-run combinations whose earlier row says failed");
  cmd->add_flag("--in-process", args->in_process, "Run methods in this process, one at a time (no kill, no crash guard)");
  add_verbosity_options(*cmd, args->verbosity);
  cmd->callback([args, cmd] { run(*args, cmd->count("--threads") > 0); });
});

}  // namespace
}  // namespace moirai::cli
