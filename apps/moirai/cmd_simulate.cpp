// `moirai simulate PLAN.json`: validate a plan as written, then re-simulate it from its per-device order (for
// example after editing placements by hand) and validate that too. Fails when either is invalid.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "commands.h"
#include "moirai/report.h"
#include "options.h"

namespace moirai::cli {
namespace {

struct SimulateArgs {
  std::string plan;
  std::string out;
  bool no_contention = false;
  StreamOptions stream{64};
  bool stream_given = false;
};

std::string violations_of(size_t n) { return fmt::format("{} violation{}", n, n == 1 ? "" : "s"); }

// One verdict: "as written: valid", or "as written: INVALID (N violations)" and one indented line per violation.
void print_verdict(const std::string& what, const std::vector<std::string>& violations, const std::string& figure) {
  if (violations.empty()) {
    std::cout << fmt::format("{}: {}valid\n", what, figure);
    return;
  }
  std::cout << fmt::format("{}: {}INVALID ({})\n", what, figure, violations_of(violations.size()));
  for (const auto& v : violations) std::cout << "  " << v << "\n";
}

void run(const SimulateArgs& args) {
  const PlanFile file = unwrap(read_plan(args.plan));
  ProblemOptions options;
  options.input = file.inputs.model;
  options.cluster_path = file.inputs.cluster;
  options.coarsen.fusion = file.inputs.fusion.empty() ? "onnxruntime" : file.inputs.fusion;
  options.coarsen.max_nodes = file.inputs.max_nodes;
  options.dims = file.inputs.dims;
  options.profile_path = file.inputs.profile;
  const Problem problem = unwrap(load_problem(options));
  SimOptions sim;
  sim.contention = file.contention && !args.no_contention;
  // Two separate verdicts: the plan as its file writes it, and the schedule re-simulated from its order.
  const std::vector<std::string> written = unwrap(validate_as_written(problem, file, sim));
  MethodRun run = unwrap(resimulate(problem, file, sim));
  Plan plan = plan_of(problem, run, sim,
                            PlanInputs{options.input, options.cluster_path, options.coarsen.fusion,
                                       options.coarsen.max_nodes, options.dims, options.profile_path});
  plan.verdict = run.violations.empty() ? "valid" : "invalid";
  if (args.stream_given) {
    if (run.partition) fail(fmt::format("{}: --requests/--arrival/--in-flight take plans of whole operators; this plan splits operators", args.plan));
    plan.stream = stream_figures(problem.table, run.result.placement, args.stream, sim);
  }
  std::cout << format_plan_summary(plan);
  if (plan.stream) {
    std::string util;
    for (size_t d = 0; d < plan.stream->utilisation.size(); ++d)
      util += fmt::format("{}{} {:.0f}%", d ? ", " : "", plan.table.device_names[d], plan.stream->utilisation[d] * 100);
    std::cout << fmt::format("stream utilisation: {}\n", util);
    Schedule peaks;  // over_capacity() of the stream's peaks
    peaks.peak_memory = plan.stream->peak_memory;
    for (DeviceId d : peaks.over_capacity(plan.table))
      std::cout << fmt::format("stream: device '{}' needs {} for {} {} in flight, more than its {}\n",
                               plan.table.device_names[static_cast<size_t>(d)],
                               human_memory(plan.table, plan.stream->peak_memory[static_cast<size_t>(d)]),
                               plan.stream->in_flight,
                               plan.stream->tokens_per_s > 0 ? "sequences (each with its KV cache)" : "requests",
                               human_memory(plan.table, plan.table.capacity[static_cast<size_t>(d)]));
  }
  if (file.makespan_ms > 0)
    std::cout << fmt::format("plan file said {:.4f} ms; re-simulated {:.4f} ms\n", file.makespan_ms,
                             run.schedule.makespan_ms);
  print_verdict("as written", written, "");
  print_verdict("re-simulated from its order", run.violations, fmt::format("{:.4f} ms, ", run.schedule.makespan_ms));
  // The re-simulated plan is written whenever it is valid: that is how a hand-edited plan gets consistent times.
  if (run.violations.empty() && !args.out.empty()) {
    if (auto status = write_plan_outputs(plan, args.out); !status) fail(status.error());
    std::cout << fmt::format("wrote the re-simulated plan to {}/plan.json, trace.json, gantt.svg, report.html\n", args.out);
  }
  if (!written.empty() || !run.violations.empty())
    fail(fmt::format("{}: the plan is invalid{}{}", args.plan,
                     written.empty() ? "" : " as written (" + violations_of(written.size()) + ")",
                     run.violations.empty() ? ""
                     : fmt::format("{}re-simulated ({})", written.empty() ? " " : " and ", violations_of(run.violations.size()))));
}

const bool registered = register_command(30, [](CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand("simulate", "Validate a plan.json as written, and re-simulated from its order (e.g. after editing it by hand)");
  cmd->add_option("plan", args->plan, "plan.json written by 'moirai place'")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", args->out, "Write the re-simulated plan, trace, Gantt and report here (whenever the re-simulation is valid)")->check(non_empty());
  cmd->add_flag("--no-contention", args->no_contention, "Transfers never queue on ports");
  add_stream_options(*cmd, args->stream);
  cmd->footer("With --requests, --arrival or --in-flight, also simulates the plan serving that stream: steady-state\n"
              "throughput, latency p50/p90/max, utilisation per device, and any device the stream overflows.\n"
              "Example:\n  moirai simulate out/plan.json --requests 200 --arrival 500");
  cmd->callback([args, cmd] {
    for (const char* name : {"--requests", "--arrival", "--in-flight"})
      args->stream_given = args->stream_given || cmd->get_option(name)->count() > 0;
    run(*args);
  });
});

}  // namespace
}  // namespace moirai::cli
