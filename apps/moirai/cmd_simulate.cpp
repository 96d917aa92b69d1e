// `moirai simulate PLAN.json`: re-simulate a plan (for example after editing placements by hand) and validate it.
#include <fmt/format.h>

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
};

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
  MethodRun run = unwrap(resimulate(problem, file, sim));
  run.result.status = run.violations.empty() ? "valid" : "invalid";
  const Plan plan = plan_of(problem, run, sim,
                            PlanInputs{options.input, options.cluster_path, options.coarsen.fusion,
                                       options.coarsen.max_nodes, options.dims, options.profile_path});
  const auto& violations = run.violations;
  const Schedule& schedule = run.schedule;
  std::cout << format_plan_summary(plan);
  if (file.makespan_ms > 0)
    std::cout << fmt::format("plan file said {:.4f} ms; re-simulated {:.4f} ms\n", file.makespan_ms,
                             schedule.makespan_ms);
  if (!violations.empty()) {
    for (const auto& v : violations) std::cerr << "violation: " << v << "\n";
    fail(fmt::format("{}: the plan is invalid ({} violations)", args.plan, violations.size()));
  }
  std::cout << "valid: every invariant holds\n";
  if (!args.out.empty()) {
    if (auto status = write_plan_outputs(plan, args.out); !status) fail(status.error().message);
    std::cout << fmt::format("wrote {}/plan.json, trace.json, gantt.svg, report.html\n", args.out);
  }
}

const bool registered = register_command(30, [](CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand("simulate", "Re-simulate and validate a plan.json (e.g. after editing it by hand)");
  cmd->add_option("plan", args->plan, "plan.json written by 'moirai place'")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out,-o", args->out, "Write the re-simulated plan, trace, Gantt and report here");
  cmd->add_flag("--no-contention", args->no_contention, "Transfers never queue on ports");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
