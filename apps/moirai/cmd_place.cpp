// `moirai place`: load a model (or instance), place it with one method or all of them, simulate, validate,
// print a table and write plan.json, trace.json, gantt.svg and report.html.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "moirai/report.h"
#include "moirai/throughput.h"
#include "options.h"

namespace moirai::cli {
namespace {

struct PlaceArgs {
  ProblemArgs problem;
  std::string method = "milp";
  std::string out;
  bool no_contention = false;
  bool partition = false;
  std::string seed_method;
  PlaceOptions options;
  std::string objective = "latency";
  double max_latency_ms = 0;
  StreamOptions stream{64};
  bool method_given = false;
  Verbosity verbosity = Verbosity::normal;
};

PlanInputs plan_inputs(const ProblemOptions& p) {
  return PlanInputs{p.input, p.cluster_path, p.coarsen.fusion, p.coarsen.max_nodes, p.dims, p.profile_path};
}

// The line a method's task ends with: its makespan and status. Why a method failed is said once, by the error
// line (one method) or the comparison table (all).
std::string outcome(const MethodRun& run) {
  if (!run.error.empty()) return "failed";
  if (!run.violations.empty()) return "invalid schedule";
  if (!run.fits) return fmt::format("{:.4f} ms, does not fit in memory", run.schedule.makespan_ms);
  return fmt::format("{:.4f} ms ({})", run.schedule.makespan_ms, plan_status_name(run.result.status));
}

bool is_decode(const Problem& problem) {
  for (double b : problem.table.state_bytes)
    if (b > 0) return true;
  return false;
}

// --context max: the library bisects over the context; here only the printing.
void run_context_max(const PlaceArgs& args, const PlaceOptions& options, Progress& progress) {
  if (args.method == "all") fail("--context max needs one method (--method METHOD), not all");
  const auto task = progress.start(args.method + " --context max");
  auto found_or = place_at_largest_context(problem_options(args.problem, true), args.method, options, args.partition,
                                           task.reporter());
  if (found_or) task.finish(fmt::format("largest context {} tokens", found_or->context));
  else task.drop();
  const ContextSearch found = unwrap(std::move(found_or));
  Plan plan = plan_of(found.problem, found.run, options.sim, plan_inputs(found.options));
  plan.max_context = unwrap(largest_context(found.options, found.problem, found.run.result.placement, options.sim));
  std::cout << fmt::format("largest context at which {} finds a plan that fits: {} tokens\n", args.method,
                           found.context);
  std::cout << format_plan_summary(plan);
  if (!args.out.empty()) {
    if (auto status = write_plan_outputs(plan, args.out); !status) fail(status.error());
    std::cout << fmt::format("wrote {}/plan.json, trace.json, gantt.svg, report.html ({} plan)\n", args.out, plan.method);
  }
}

void run(const PlaceArgs& args) {
  Progress progress(args.verbosity, stderr_sink());
  PlaceOptions options = args.options;
  options.sim.contention = !args.no_contention;
  if (args.problem.context == "max") return run_context_max(args, options, progress);
  const ProblemOptions problem_opts = problem_options(args.problem);
  const Problem problem = unwrap(load_problem(problem_opts));

  std::vector<std::string> methods{args.method};
  if (args.method == "all") methods = method_names();  // geneflow last: it refines the best plan of the others
  if (!args.seed_method.empty() && args.method != "geneflow")
    fail("--seed-method applies to --method geneflow only (with --method all GenEFlow starts from the best plan "
         "of every other method)");
  const bool throughput = args.objective == "throughput";
  if (throughput && args.method_given)
    fail("--method chooses a latency method; --objective throughput has its own placer (stage DP + period MILP)");
  if (!throughput && args.max_latency_ms > 0) fail("--max-latency-ms applies to --objective throughput");
  if (throughput) methods = {"throughput"};
  ThroughputOptions topts;
  topts.in_flight = args.stream.max_in_flight;
  topts.max_latency_ms = args.max_latency_ms;
  for (const auto& step : problem.steps)
    progress.detail(fmt::format("coarsen {}: {} -> {} nodes", step.name, step.nodes_before, step.nodes_after));

  std::vector<ComparisonRow> rows;
  std::optional<Plan> best;
  // GenEFlow's seed under --method all: the best whole-operator plan, or with --partition the one whose
  // refinement was best (GenEFlow's search is deterministic per --seed, so it can only match or improve on it).
  std::optional<MethodRun> best_whole;
  double best_key = 0;
  for (const auto& method : methods) {
    const auto task = progress.start(method, options.time_limit_s);
    options.progress = task.reporter();
    MethodRun run;
    if (throughput) {
      run = run_placer(problem, *make_throughput_placer(topts), options);
    } else if (methods.size() > 1 && method == "geneflow") {
      if (!best_whole) {
        task.finish("skipped: no other method produced a plan that fits");
        rows.push_back(ComparisonRow{method, "no other method produced a plan that fits to start from", "failed", 0, 0, {}, false});
        continue;
      }
      run = geneflow_from(problem, *best_whole, options);
    } else if (methods.size() > 1) {
      run = run_method(problem, method, options);
      if (run.ok() && run.fits) {
        MethodRun whole = run;
        if (args.partition) run = refine_run(problem, std::move(run), options);
        const double key = run.ok() && run.fits ? run.schedule.makespan_ms : whole.schedule.makespan_ms;
        if (!best_whole || key < best_key) best_whole = std::move(whole), best_key = key;
      }
    } else {
      run = run_method(problem, method, options, args.partition, args.seed_method);
    }
    task.finish(outcome(run));
    if (!run.error.empty()) {
      if (methods.size() == 1) fail(Error{run.error, run.error_setting});
      rows.push_back(ComparisonRow{method, run.error, "failed", 0, run.placement_time_s, {}, false});
      continue;
    }
    Plan plan = plan_of(problem, run, options.sim, plan_inputs(problem_opts));
    plan.objective = args.objective;
    if (!run.partition) {  // the stream simulator takes whole-operator plans
      StreamOptions stream = args.stream;
      if (stream.max_in_flight == 0) stream.max_in_flight = run.result.in_flight;  // what a throughput plan holds
      plan.stream = stream_figures(problem.table, run.result.placement, stream, options.sim);
    }
    if (!run.fits) {
      std::string msg = fmt::format("{}: the plan does not fit in memory:", method);
      for (DeviceId d : run.schedule.over_capacity(plan.table))
        msg += fmt::format(" {} needs {} of {};", plan.table.device_names[d],
                           human_memory(plan.table, run.schedule.peak_memory[d]),
                           human_memory(plan.table, plan.table.capacity[d]));
      if (methods.size() == 1) fail(msg);
      ComparisonRow row = comparison_row(plan);
      row.status = "does not fit";
      rows.push_back(std::move(row));
      continue;
    }
    if (!run.violations.empty())  // a placer bug, never a user error: say it loudly
      fail(fmt::format("{} produced an invalid schedule: {}", method, run.violations.front()));
    rows.push_back(comparison_row(plan));
    if (!best || plan.schedule.makespan_ms < best->schedule.makespan_ms) best = std::move(plan);
  }

  // A decode plan also says how long a context its placement holds (the problem rebuilt at other lengths).
  if (best && is_decode(problem))
    best->max_context = unwrap(largest_context(problem_opts, problem, best->result.placement, options.sim));
  if (methods.size() == 1) {
    std::cout << format_plan_summary(*best);
  } else {
    std::cout << format_comparison(rows, problem.table, best_single_device_ms(problem.table));
  }
  if (!best) fail("no method produced a plan that fits");
  if (!args.out.empty()) {
    if (auto status = write_plan_outputs(*best, args.out); !status) fail(status.error());
    std::cout << fmt::format("wrote {}/plan.json, trace.json, gantt.svg, report.html ({} plan)\n", args.out,
                             best->method);
  }
}

const bool registered = register_command(20, [](CLI::App& app) {
  auto args = std::make_shared<PlaceArgs>();
  auto* cmd = app.add_subcommand("place", "Place a model (or a profiled instance) on a cluster and simulate the plan");
  std::string methods = "Methods:\n";
  for (const auto& n : placer_names())
    if (auto placer = make_placer(n)) methods += fmt::format("  {:<20} {}\n", n, (*placer)->summary());
  methods += fmt::format("  {:<20} {}\n\n", "geneflow",
                         "GenEFlow (MemoriaNova): the best plan of the heuristics and the MILP (--seed-method; "
                         "with --method all, of every other method), refined by splitting single operators");
  cmd->footer(
      methods +
      "Examples:\n"
      "  moirai place models/resnet50.onnx -c clusters/hetero-gpu-server.json --method milp --out plan/\n"
      "  moirai place instances/example-1.json --method all\n"
      "  moirai place models/decode/llama2_7b_decode.onnx -c clusters/workstation-mixed.json --context 2048 -m layer-dp\n"
      "  moirai place models/decode/llama2_13b_decode.onnx -c clusters/edge-4.json --context max -m layer-dp\n"
      "  moirai place models/bert_base.onnx -c clusters/dgx-a100-8.json --objective throughput --max-latency-ms 20\n"
      "  moirai place models/decode/llama2_7b_decode.onnx -c clusters/workstation-mixed.json --context 2048 "
      "--objective throughput\n"
      "A decode model (KV-cache inputs past_*/outputs present_*) reports tokens/s and the largest context its plan\n"
      "holds (one sequence); under the stream, tokens/s of the whole system with --in-flight sequences, each\n"
      "holding its own KV cache. A prefill model with a 'logits' output reports the time to first token.\n"
      "A model is coarsened with the fusion rules first; the plan lists the original ONNX node names.");
  cmd->add_option("model", args->problem.input, "ONNX model, or a profiled instance (.json)")->required();
  add_problem_options(*cmd, args->problem);
  std::string names;
  for (const auto& n : method_names()) names += (names.empty() ? "" : ", ") + n;
  cmd->add_option("--method,-m", args->method, "Placement method, or 'all' to compare every method: " + names)
      ->capture_default_str();
  cmd->add_option("--objective", args->objective,
                  "latency: one request as fast as possible (every --method); throughput: most requests per second "
                  "under a stream (stage DP, then the period MILP); both report the stream's throughput and latency")
      ->capture_default_str()
      ->check(CLI::IsMember({"latency", "throughput"}));
  cmd->add_option("--max-latency-ms", args->max_latency_ms,
                  "Throughput: the simulated latency of one request must stay within this bound")
      ->check(within(1e-9, 1e9));
  add_stream_options(*cmd, args->stream);
  cmd->add_option("--out,-o", args->out, "Directory for plan.json, trace.json, gantt.svg, report.html")->check(non_empty());
  add_place_options(*cmd, args->options, args->no_contention);
  cmd->add_flag("--partition", args->partition,
                "Let GenEFlow refine each method's plan by splitting single operators across devices; the plan's "
                "lower bound is then the split relaxation's (work divisible across devices, free transfers)");
  std::string seeds;
  for (const auto& n : placer_names()) seeds += (seeds.empty() ? "" : ", ") + n;
  cmd->add_option("--seed-method", args->seed_method,
                  "GenEFlow (--method geneflow) refines this method's plan: 'best' (default: the best of the "
                  "one-pass heuristics and the MILP), 'heuristics' (the heuristics only: every method but placeto "
                  "and milp) or a method: " + seeds);
  cmd->add_option("--export-mps", args->options.export_mps, "MILP: also write the model as an MPS file");
  cmd->add_option("--import-solution", args->options.import_solution,
                  "MILP: read a solution (name value lines) instead of solving");
  add_verbosity_options(*cmd, args->verbosity);
  cmd->callback([args, cmd] {
    args->method_given = cmd->get_option("--method")->count() > 0;
    run(*args);
  });
});

}  // namespace
}  // namespace moirai::cli
