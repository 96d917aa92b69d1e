// Pipeline front half: files -> cost table (import, coarsen, cost, profile), and one method run end to end.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "moirai/import.h"
#include "moirai/pipeline.h"
#include "moirai/runtime_fusion.h"
#include "moirai/schedule.h"

namespace moirai {
namespace {

bool is_instance(const std::string& path) { return std::filesystem::path(path).extension() == ".json"; }

// A plan over capacity may fit when its devices run their operators in a memory-optimal order (BTSearch): the
// order decides which activations are live together. Adopt the orders only if the plan then fits.
void reorder_for_memory(const CostTable& table, const PlaceOptions& options, MethodRun& run) {
  SearchOptions search;
  search.time_limit_s = std::min(10.0, options.time_limit_s / table.num_devices());
  Placement placement = run.result.placement;
  MemoryFit fit = fit_with_memory_orders(table, placement, options.sim, search);
  if (!fit.ordered) return;
  run.result.placement = std::move(placement);
  run.schedule = std::move(fit.schedule);
  run.fits = true;
  run.memory_ordered = true;
}

}  // namespace

Expected<Problem> load_problem(const ProblemOptions& options) {
  Problem problem;
  if (is_instance(options.input)) {
    MOIRAI_ASSIGN_OR_RETURN(auto table, load_instance(options.input));
    problem.table = std::move(table);
    // No graph to fuse: --max-nodes contracts the table itself (deterministic, so `simulate` rebuilds it).
    if (options.coarsen.max_nodes > 0 && problem.table.num_ops() > options.coarsen.max_nodes) {
      const int before = problem.table.num_ops();
      problem.table = contract_table(problem.table, options.coarsen.max_nodes).table;
      problem.steps.push_back({fmt::format("max-nodes:{}", options.coarsen.max_nodes), before, problem.table.num_ops()});
    }
  } else {
    if (options.cluster_path.empty() && !options.cluster)
      return Error{options.input + ": a model needs a cluster file (e.g. clusters/hetero-gpu-server.json)", "cluster"};
    MOIRAI_ASSIGN_OR_RETURN(auto graph, import_onnx(options.input, ImportOptions{options.dims, options.optional_dims}));
    MOIRAI_ASSIGN_OR_RETURN(auto cluster, options.cluster ? Expected<Cluster>(*options.cluster) : load_cluster(options.cluster_path));
    MOIRAI_ASSIGN_OR_RETURN(auto coarse, coarsen_model(graph, options.input, cluster, options.coarsen));
    auto table = build_cost_table(coarse.graph, cluster);
    if (!table) return Error{options.cluster_path + ": " + table.error().message};  // a device without figures
    problem.table = std::move(*table);
    problem.steps = std::move(coarse.steps);
    problem.coarse = std::move(coarse.graph);
    problem.graph = std::move(graph);
    problem.cluster = std::move(cluster);
  }
  // Name plans after the file (ONNX exporters often leave a generic graph name such as "torch_jit").
  problem.table.name = std::filesystem::path(options.input).stem().string();
  if (!options.profile_path.empty()) {
    MOIRAI_TRY(apply_profile(problem.table, options.profile_path));
  }
  return problem;
}

std::vector<std::string> method_names() {
  auto names = placer_names();
  names.push_back("geneflow");
  return names;
}

namespace {

MethodRun place_whole(const Problem& problem, const std::string& method, const PlaceOptions& options) {
  auto placer = make_placer(method);
  if (!placer) {
    MethodRun run;
    run.method = method;
    run.error = placer.error().message;
    return run;
  }
  MethodRun run = run_placer(problem, **placer, options);
  run.method = method;
  return run;
}

// The best valid plan that fits among the cheap heuristics (and the MILP, with `with_milp`): GenEFlow's seed.
MethodRun best_seed(const Problem& problem, const PlaceOptions& options, bool with_milp) {
  PlaceOptions quiet = options;
  quiet.progress = nullptr;
  MethodRun best;
  best.error = "geneflow: no method produced a plan to start from that fits: " + problem.table.memory_summary();
  // The one-pass heuristics; the default seed adds the MILP (Placeto trains for its whole time limit and has not
  // beaten the MILP's plan in the standard evaluation: refine it with --partition).
  std::vector<std::string> methods = heuristic_placer_names();
  if (with_milp) methods.emplace_back("milp");
  double spent = 0;
  for (const auto& method : methods) {
    MethodRun run = place_whole(problem, method, quiet);
    spent += run.placement_time_s;
    if (run.ok() && run.fits && (!best.error.empty() || run.schedule.makespan_ms < best.schedule.makespan_ms))
      best = std::move(run);
  }
  best.placement_time_s = spent;  // the seed cost every method tried
  return best;
}

// A plan of the split problem (GenEFlow's answer, split or not) is judged against that problem: the seed's
// bound and "optimal" hold for whole operators only, so it gets the split relaxation's bound, and "optimal" only
// when it meets it.
void split_status(const CostTable& table, MethodRun& run) {
  PlaceResult& r = run.result;
  const bool whole_optimum = r.status == PlanStatus::optimal;
  r.lower_bound_ms = split_relaxation_bound(table);
  r.lower_bound_source = "split relaxation";
  r.objective_ms = 0;  // the seed's own objective is not this plan's
  const int split = run.partition ? run.partition->split_ops : 0;
  std::string note = split > 0 ? fmt::format("{} operators split by GenEFlow", split) : "no operator split pays";
  if (run.partition && run.partition->memory_ordered) note += ", BTSearch orders";
  if (whole_optimum) note += split > 0 ? ", seed optimal over whole operators" : ", optimal over whole operators";
  r.mode = r.mode.empty() ? note : r.mode + "; " + note;
  if (run.schedule.makespan_ms <= r.lower_bound_ms * (1 + 1e-9)) r.status = PlanStatus::optimal;
  else if (whole_optimum) r.status = PlanStatus::feasible;
}

// Refines a whole-operator run with GenEFlow: the plan is then one of the split problem.
void refine(const Problem& problem, const PlaceOptions& options, MethodRun& run) {
  if (!problem.coarse) return;  // instances have no operator shapes to split
  const auto start = std::chrono::steady_clock::now();
  auto result = geneflow(problem.table, &*problem.coarse, run.result.placement, options,
                         problem.cluster ? &*problem.cluster : nullptr);
  run.placement_time_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result) {
    run.error = "geneflow: " + result.error().message;
    return;
  }
  if (result->split_ops > 0) {
    auto partition = std::make_shared<PartitionResult>(std::move(*result));
    run.violations = validate(partition->expanded.table, partition->expanded.placement, partition->schedule,
                              options.sim);
    run.fits = partition->schedule.over_capacity(partition->expanded.table).empty();
    run.result.placement = partition->view_placement;
    run.schedule = partition->view_schedule;
    run.memory_ordered = partition->memory_ordered;
    run.partition = std::move(partition);
  }
  split_status(problem.table, run);
}

bool known(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string listed(const std::vector<std::string>& names) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  return list;
}

}  // namespace

std::vector<std::string> seed_method_names() {
  std::vector<std::string> names{"best", "heuristics"};
  for (const auto& n : placer_names()) names.push_back(n);
  return names;
}

MethodRun geneflow_from(const Problem& problem, MethodRun seed, const PlaceOptions& options) {
  MethodRun run = std::move(seed);
  const std::string seed_method = run.method;
  run.method = "geneflow";
  if (!run.error.empty()) return run;
  if (!run.ok() || !run.fits) {
    run.error = fmt::format("geneflow: the seed plan ({}) {}", seed_method,
                            run.fits ? "is invalid: " + run.violations.front() : "does not fit in memory");
    return run;
  }
  // The seed's status and ablation fields describe the seed's own search (a MILP's "solver crashed"...);
  // GenEFlow's are where it started.
  run.result.status = PlanStatus::ok;
  if (!run.result.mode.empty()) run.result.mode = seed_method + " seed: " + run.result.mode;
  run.result.warm_start_method = seed_method;
  run.result.warm_start_ms = run.schedule.makespan_ms;
  run.result.polished_ms = 0;
  run.result.levels.clear();
  refine(problem, options, run);
  return run;
}

MethodRun refine_run(const Problem& problem, MethodRun run, const PlaceOptions& options) {
  if (run.ok() && run.fits) refine(problem, options, run);
  return run;
}

MethodRun run_placer(const Problem& problem, const Placer& placer, const PlaceOptions& options) {
  MethodRun run;
  run.method = placer.name();
  const auto start = std::chrono::steady_clock::now();
  auto result = placer.place(problem.table, options);
  run.placement_time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!result) {
    run.error = result.error().message;
    run.error_setting = result.error().setting;
    return run;
  }
  run.result = std::move(*result);
  if (auto status = check_placement(problem.table, run.result.placement); !status) {
    run.error = run.method + " returned an invalid placement: " + status.error().message;
    return run;
  }
  run.schedule = simulate(problem.table, run.result.placement, options.sim);
  run.fits = run.schedule.over_capacity(problem.table).empty();
  if (!run.fits) reorder_for_memory(problem.table, options, run);
  run.violations = validate(problem.table, run.result.placement, run.schedule, options.sim);
  return run;
}

MethodRun run_method(const Problem& problem, const std::string& method, const PlaceOptions& options,
                     bool refine_with_geneflow, const std::string& seed_method) {
  MethodRun run;
  run.method = method;
  if (!known(method_names(), method)) {
    run.error = "unknown method '" + method + "' (known: " + listed(method_names()) + ")";
    return run;
  }
  if (method == "geneflow") {
    const std::string seed = seed_method.empty() ? "best" : seed_method;
    if (!known(seed_method_names(), seed)) {
      run.error = "unknown seed method '" + seed + "' (known: " + listed(seed_method_names()) + ")";
      return run;
    }
    if (seed == "best" || seed == "heuristics") {
      MethodRun best = best_seed(problem, options, seed == "best");
      if (!best.error.empty()) {
        run.error = best.error;
        return run;
      }
      return geneflow_from(problem, std::move(best), options);
    }
    return geneflow_from(problem, place_whole(problem, seed, options), options);
  }
  run = place_whole(problem, method, options);
  return refine_with_geneflow ? refine_run(problem, std::move(run), options) : run;
}

namespace {

Expected<SplitDim> parse_split_dim(const std::string& name) {
  for (SplitDim dim : {SplitDim::Channels, SplitDim::Rows, SplitDim::Tokens, SplitDim::Heads})
    if (name == split_dim_name(dim)) return dim;
  return Error{"unknown split '" + name + "' (known: channels, rows, tokens, heads)"};
}

/// The plan's split operators (dim None for whole ones); empty when nothing is split.
Expected<std::vector<Split>> splits_of(const PlanFile& plan, const CostTable& table) {
  std::vector<Split> splits(static_cast<size_t>(table.num_ops()));
  bool any_split = false;
  for (const PlanFileOp& op : plan.ops) {
    if (op.parts.empty()) continue;
    const auto id = std::find(table.op_names.begin(), table.op_names.end(), op.name) - table.op_names.begin();
    auto dim = parse_split_dim(op.split_dim);
    if (!dim) return Error{plan.path + ": operator '" + op.name + "': " + dim.error().message};
    Split& split = splits[static_cast<size_t>(id)];
    split.dim = *dim;
    for (const auto& [device, part] : op.parts) {
      const auto d = std::find(table.device_names.begin(), table.device_names.end(), device);
      if (d == table.device_names.end())
        return Error{plan.path + ": operator '" + op.name + "' has a part on unknown device '" + device + "'"};
      split.devices.push_back(static_cast<DeviceId>(d - table.device_names.begin()));
      split.shares.push_back(part.share);
    }
    any_split = true;
  }
  if (!any_split) splits.clear();
  return splits;
}

/// A split plan as its file writes it: every whole operator's and every part's times, mapped onto the expanded
/// problem (one operator per part) and validated there, each message naming the file's field.
Expected<std::vector<std::string>> validate_split_as_written(const Problem& problem, const PlanFile& plan,
                                                             Placement whole, const std::vector<Split>& splits,
                                                             const SimOptions& sim) {
  if (!problem.coarse) return Error{plan.path + ": split operators need the model's graph, not an instance"};
  whole.order.clear();
  whole.transfer_priority.clear();
  auto expanded = expand_splits(problem.table, *problem.coarse, whole, splits, problem.cluster ? &*problem.cluster : nullptr);
  if (!expanded) return Error{plan.path + ": " + expanded.error().message};
  const CostTable& table = problem.table;
  PlanFile flat = plan;  // one entry per expanded operator, named as the expanded table names it
  flat.ops.clear();
  std::vector<std::string> fields;  // per flat entry: its field in the file
  std::vector<std::string> problems;
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const PlanFileOp& op = plan.ops[i];
    const auto at = std::find(table.op_names.begin(), table.op_names.end(), op.name);
    if (at == table.op_names.end()) continue;  // resolve_placement reported it
    const auto& ids = expanded->parts_of[static_cast<size_t>(at - table.op_names.begin())];
    if (op.parts.empty()) {
      flat.ops.push_back(op);
      flat.ops.back().name = expanded->table.op_names[static_cast<size_t>(ids.front())];
      fields.push_back(fmt::format("ops[{}]", i));
      continue;
    }
    if (op.parts.size() != ids.size()) {
      problems.push_back(fmt::format("ops[{}].parts: {} parts, the split makes {}", i, op.parts.size(), ids.size()));
      continue;
    }
    for (size_t k = 0; k < ids.size(); ++k) {
      PlanFileOp part = op;
      part.name = expanded->table.op_names[static_cast<size_t>(ids[k])];
      part.device = op.parts[k].first;
      part.start_ms = op.parts[k].second.start_ms;
      part.end_ms = op.parts[k].second.end_ms;
      part.parts.clear();
      flat.ops.push_back(std::move(part));
      fields.push_back(fmt::format("ops[{}].parts[{}]", i, k));
    }
  }
  WrittenSchedule written = written_schedule(flat, expanded->table);
  for (size_t j = 0; j < flat.ops.size(); ++j) {
    const auto at = std::find(expanded->table.op_names.begin(), expanded->table.op_names.end(), flat.ops[j].name);
    written.names.ops[static_cast<size_t>(at - expanded->table.op_names.begin())] = fields[j];
  }
  for (auto& v : written.problems) problems.push_back(std::move(v));
  for (auto& v : validate(expanded->table, expanded->placement, written.schedule, sim, &written.names))
    problems.push_back(std::move(v));
  return problems;
}

}  // namespace

Expected<MethodRun> resimulate(const Problem& problem, const PlanFile& plan, const SimOptions& sim) {
  const CostTable& table = problem.table;
  MOIRAI_ASSIGN_OR_RETURN(auto placement, resolve_placement(plan, table));
  MethodRun run;
  run.method = plan.method;
  run.result.placement = std::move(placement);
  MOIRAI_ASSIGN_OR_RETURN(auto splits, splits_of(plan, table));
  const bool any_split = !splits.empty();
  if (!any_split) {
    if (auto stuck = order_deadlock(table, run.result.placement)) {
      // The order comes from the start times, so name the operator's start_ms in the file.
      const std::string& name = table.op_names[static_cast<size_t>(stuck->op)];
      const auto at = std::find_if(plan.ops.begin(), plan.ops.end(), [&](const PlanFileOp& o) { return o.name == name; });
      const DataItem& input = table.data[static_cast<size_t>(stuck->data)];
      return Error{fmt::format("{}: ops[{}].start_ms: operator '{}' on '{}' comes before its input '{}' can be produced "
                               "(by '{}'): the start times order the devices against precedence",
                               plan.path, at - plan.ops.begin(), name, at->device, input.name,
                               table.op_names[static_cast<size_t>(input.producer)])};
    }
    run.schedule = simulate(table, run.result.placement, sim);
    run.violations = validate(table, run.result.placement, run.schedule, sim);
    run.fits = run.schedule.over_capacity(table).empty();
    return run;
  }
  if (!problem.coarse) return Error{plan.path + ": split operators need the model's graph, not an instance"};
  Placement whole = run.result.placement;
  whole.order.clear();  // a split changes the operator set: the partition stage orders its parts itself
  whole.transfer_priority.clear();
  // Devices run their operators and parts in the order the file starts them (GenEFlow's plans may keep a seed's
  // order or BTSearch's memory order, which the list policy would not reproduce).
  std::map<std::string, double> start_ms;
  for (const PlanFileOp& op : plan.ops) {
    if (op.parts.empty()) start_ms[op.name] = op.start_ms;
    for (size_t k = 0; k < op.parts.size(); ++k) start_ms[fmt::format("{}#{}", op.name, k)] = op.parts[k].second.start_ms;
  }
  const Cluster* cluster = problem.cluster ? &*problem.cluster : nullptr;
  // Start times that order a device against precedence (a part moved by hand) cannot be re-run as they are:
  // evaluate_splits then uses the list policy, and the as-written verdict names the fields that broke.
  auto result = evaluate_splits(table, *problem.coarse, whole, splits, sim, cluster, &start_ms);
  if (!result) return Error{plan.path + ": " + result.error().message};
  auto partition = std::make_shared<PartitionResult>(std::move(*result));
  run.violations = validate(partition->expanded.table, partition->expanded.placement, partition->schedule, sim);
  run.fits = partition->schedule.over_capacity(partition->expanded.table).empty();
  run.result.placement = partition->view_placement;
  run.schedule = partition->view_schedule;
  run.partition = std::move(partition);
  return run;
}

Expected<std::vector<std::string>> validate_as_written(const Problem& problem, const PlanFile& plan,
                                                       const SimOptions& sim) {
  MOIRAI_ASSIGN_OR_RETURN(auto placement, resolve_placement(plan, problem.table));
  MOIRAI_ASSIGN_OR_RETURN(auto splits, splits_of(plan, problem.table));
  if (!splits.empty()) return validate_split_as_written(problem, plan, std::move(placement), splits, sim);
  const WrittenSchedule written = written_schedule(plan, problem.table);
  auto violations = written.problems;
  for (auto& v : validate(problem.table, placement, written.schedule, sim, &written.names))
    violations.push_back(std::move(v));
  return violations;
}

Plan plan_of(const Problem& problem, const MethodRun& run, const SimOptions& sim, PlanInputs inputs) {
  const CostTable& table = run.partition ? run.partition->view_table : problem.table;
  Plan plan = make_plan(table, run.result, run.schedule, run.method, run.placement_time_s, sim, std::move(inputs),
                        problem.steps);
  if (problem.coarse && problem.cluster && problem.cluster->has_coordinator_links()) {
    const Placement& placement = run.result.placement;
    plan.request_ms = request_ms(run.schedule, placement, hand_off(*problem.coarse, *problem.cluster, placement));
  }
  if (run.partition) {
    plan.parts.assign(static_cast<size_t>(table.num_ops()), {});
    plan.split_dims.assign(static_cast<size_t>(table.num_ops()), {});
    for (size_t op = 0; op < run.partition->splits.size(); ++op)
      if (run.partition->splits[op].dim != SplitDim::None)
        plan.split_dims[op] = split_dim_name(run.partition->splits[op].dim);
    for (size_t op = 0; op < run.partition->parts.size(); ++op)
      plan.parts[op] = run.partition->parts[op];
  }
  return plan;
}

}  // namespace moirai
