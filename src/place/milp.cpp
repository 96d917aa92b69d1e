// The "milp" placer: the Moirai MILP (milp_formulation.h) solved with CBC, always warm-started from the best
// heuristic plan in the registry (or a list schedule of our own), exact for small models and a large-
// neighbourhood search (re-solve a window of operators with the rest fixed) for large ones. The returned
// placement carries the MILP's device orders and transfer priorities, so the simulator rebuilds its schedule.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "moirai/bounds.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "milp_cbc.h"
#include "milp_formulation.h"
#include "milp_multilevel.h"
#include "placers.h"

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

Placement to_placement(const CostTable& t, const std::vector<MilpEdge>& edges, const MilpPlan& p) {
  Placement out;
  out.device = p.device;
  out.order.assign(static_cast<size_t>(t.num_devices()), {});
  std::vector<int> pos(static_cast<size_t>(t.num_ops()));
  for (int i = 0; i < t.num_ops(); ++i) pos[static_cast<size_t>(t.topo_order[static_cast<size_t>(i)])] = i;
  std::vector<OpId> ops(t.topo_order.begin(), t.topo_order.end());
  std::stable_sort(ops.begin(), ops.end(), [&](OpId a, OpId b) {
    const double sa = rounded_key(p.start[static_cast<size_t>(a)]), sb = rounded_key(p.start[static_cast<size_t>(b)]);
    return sa != sb ? sa < sb : pos[static_cast<size_t>(a)] < pos[static_cast<size_t>(b)];
  });
  for (OpId i : ops) out.order[static_cast<size_t>(p.device[static_cast<size_t>(i)])].push_back(i);
  for (size_t q = 0; q < edges.size(); ++q) {
    const auto& e = edges[q];
    const DeviceId dst = p.device[static_cast<size_t>(e.to)];
    if (p.device[static_cast<size_t>(e.from)] == dst) continue;
    auto [it, fresh] = out.transfer_priority.try_emplace({e.data, dst}, p.comm_start[q]);
    if (!fresh) it->second = std::min(it->second, p.comm_start[q]);
  }
  return out;
}

// The MILP-model schedule that keeps a plan's orders: ops by start, edges by start (their data's transfer).

std::optional<MilpPlan> from_schedule(const CostTable& t, const std::vector<MilpEdge>& edges, const Placement& pl,
                                      const Schedule& s, bool contention) {
  std::vector<double> op_start(static_cast<size_t>(t.num_ops()));
  for (OpId i = 0; i < t.num_ops(); ++i) op_start[static_cast<size_t>(i)] = s.ops[static_cast<size_t>(i)].start_ms;
  std::map<std::pair<int, DeviceId>, double> sent;
  for (const auto& tr : s.transfers) {
    auto [it, fresh] = sent.try_emplace({tr.data, tr.dst}, tr.start_ms);
    if (!fresh) it->second = std::min(it->second, tr.start_ms);
  }
  std::vector<double> edge_start;
  for (const auto& e : edges) {
    auto it = sent.find({e.data, pl.device[static_cast<size_t>(e.to)]});
    edge_start.push_back(it != sent.end() ? it->second : s.ops[static_cast<size_t>(e.from)].end_ms);
  }
  return tighten(t, edges, canonical_devices(t, pl.device), op_start, edge_start, contention);
}

// Earliest-finish-time list schedule in the MILP's model (used when no heuristic is registered).
std::optional<MilpPlan> list_schedule(const CostTable& t, const std::vector<MilpEdge>& edges, bool contention) {
  const int n = t.num_ops(), K = t.num_devices();
  const auto ws = working_sets(t);
  std::vector<double> avail(static_cast<size_t>(K), 0), params(avail), reserve(avail);
  std::vector<double> start(static_cast<size_t>(n)), finish(static_cast<size_t>(n));
  std::vector<DeviceId> dev(static_cast<size_t>(n), 0);
  std::vector<std::vector<int>> in(static_cast<size_t>(n));
  for (size_t q = 0; q < edges.size(); ++q) in[static_cast<size_t>(edges[q].to)].push_back(static_cast<int>(q));
  for (OpId i : t.topo_order) {
    const auto s = static_cast<size_t>(i);
    double best = std::numeric_limits<double>::infinity();
    for (DeviceId k = 0; k < K; ++k) {
      const auto sk = static_cast<size_t>(k);
      const double cap = t.capacity[sk];
      if (cap > 0 && params[sk] + t.param_bytes[s] + std::max(reserve[sk], ws[s]) > cap) continue;
      double ready = avail[sk];
      for (int q : in[s]) {
        const auto& e = edges[static_cast<size_t>(q)];
        ready = std::max(ready, finish[static_cast<size_t>(e.from)] + t.transfer(e.data, dev[static_cast<size_t>(e.from)], k));
      }
      if (ready + t.time(i, k) < best) best = ready + t.time(i, k), dev[s] = k, start[s] = ready;
    }
    if (!std::isfinite(best)) return std::nullopt;
    const auto sk = static_cast<size_t>(dev[s]);
    finish[s] = best, avail[sk] = best, params[sk] += t.param_bytes[s], reserve[sk] = std::max(reserve[sk], ws[s]);
  }
  std::vector<double> edge_start;
  for (const auto& e : edges) edge_start.push_back(finish[static_cast<size_t>(e.from)]);
  return tighten(t, edges, canonical_devices(t, dev), start, edge_start, contention);
}

// True when every plan that fits memory in simulation satisfies the MILP's reserve rows: no operator with a
// working set takes zero time on a device with a capacity.
bool reserve_rows_valid(const CostTable& t) {
  const auto ws = working_sets(t);
  for (OpId i = 0; i < t.num_ops(); ++i)
    for (DeviceId k = 0; k < t.num_devices(); ++k)
      if (ws[static_cast<size_t>(i)] > 0 && t.capacity[static_cast<size_t>(k)] > 0 && t.time(i, k) <= 0) return false;
  return true;
}

// Improves the warm start by iterated local search (milp_polish.cpp), then renames identical devices into the
// order the symmetry-breaking rows require.
MilpPlan polish(const CostTable& t, const std::vector<MilpEdge>& edges, const MilpPlan& start, bool contention,
                double seconds, uint64_t seed) {
  MilpPlan plan = improve_milp_plan(t, edges, start, contention, seconds, seed);
  auto canon = canonical_devices(t, plan.device);
  if (canon != plan.device)
    if (auto next = tighten(t, edges, canon, plan.start, plan.comm_start, contention)) plan = *next;
  return plan;
}

struct WarmStart {
  std::optional<MilpPlan> plan;        // best in the MILP model that fits the memory rows, polished
  std::string plan_from;
  double unpolished_ms = 0;
  std::optional<Placement> fallback;   // best simulated, feasible placement
  double fallback_ms = std::numeric_limits<double>::infinity();
  std::string fallback_from;
  double simulate_s = 0;  // the longest simulation of a heuristic's plan: the final checks need three
};

WarmStart warm_start(const CostTable& t, const std::vector<MilpEdge>& edges, const PlaceOptions& options) {
  WarmStart w;
  auto consider = [&](const std::string& from, const std::optional<MilpPlan>& plan) {
    if (!plan || !fits_memory_reserve(t, plan->device)) return;
    if (!w.plan || plan->makespan < w.plan->makespan) w.plan = plan, w.plan_from = from;
  };
  const auto t0 = Clock::now();
  // On huge graphs the heuristics alone can eat the budget: once one plan fits, stop at 30% of it (the ETF
  // family, stopped mid-way, places its remaining operators by upward rank in one pass).
  auto out_of_time = [&] { return w.fallback && since(t0) > 0.3 * options.time_limit_s; };
  for (const auto& name : heuristic_placer_names()) {
    if (out_of_time()) break;
    auto placer = make_placer(name);
    if (!placer.ok()) continue;
    PlaceOptions sub = options;
    sub.progress = nullptr;
    sub.stop = out_of_time;
    // Their LPs (GETF, m-SCT) share the warm start's 30%.
    sub.time_limit_s = std::max(0.1, 0.3 * options.time_limit_s - since(t0));
    auto r = (*placer)->place(t, sub);
    if (!r.ok() || !check_placement(t, r->placement).ok()) continue;
    const auto simulated_from = Clock::now();
    const Schedule s = simulate(t, r->placement, options.sim);
    w.simulate_s = std::max(w.simulate_s, since(simulated_from));
    if (s.over_capacity(t).empty() && s.makespan_ms < w.fallback_ms)
      w.fallback = r->placement, w.fallback_ms = s.makespan_ms, w.fallback_from = name;
    consider(name, from_schedule(t, edges, r->placement, s, options.sim.contention));
  }
  consider("list schedule", list_schedule(t, edges, options.sim.contention));
  if (w.plan) {
    const double before = w.unpolished_ms = w.plan->makespan;
    w.plan = polish(t, edges, *w.plan, options.sim.contention, std::min(5.0, 0.05 * options.time_limit_s), options.seed);
    if (w.plan->makespan < before && options.progress)
      options.progress(fmt::format("milp: local search improved the {} warm start from {:.6g} to {:.6g}", w.plan_from,
                                   before, w.plan->makespan));
  }
  return w;
}

struct ExactRun {
  MilpPlan plan;  // never worse than the start
  MilpSolveResult solve;
};

// CBC on a built exact model, warm-started from a complete plan; the answer is tightened in the MILP's schedule
// model and kept only when it beats the start.
ExactRun solve_exact(const CostTable& t, const std::vector<MilpEdge>& edges, const Formulation& f, const MilpPlan& start,
                     const PlaceOptions& options, double seconds, bool report_progress) {
  MilpSolveOptions so;
  so.gap = options.gap;
  so.threads = options.threads;
  // Preprocessing off: measured faster on the published examples, and CglPreProcess is where CBC crashed.
  so.preprocess = false;
  so.time_limit_s = std::max(0.5, seconds);
  so.start = plan_to_values(f, start);
  if (report_progress) so.progress = options.progress;
  ExactRun out{start, solve_with_cbc(f.model, so)};
  if (out.solve.has_solution) {
    const MilpPlan got = values_to_plan(f, out.solve.values);
    const auto tight = tighten(t, edges, got.device, got.start, got.comm_start, options.sim.contention);
    if (tight && tight->makespan < start.makespan) out.plan = *tight;
  }
  return out;
}

Expected<MilpPlan> read_solution(const CostTable& t, const std::vector<MilpEdge>& edges, const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{path + ": cannot open the solution file"};
  const int n = t.num_ops(), K = t.num_devices();
  MilpPlan p;
  p.device.assign(static_cast<size_t>(n), kNone);
  p.start.assign(static_cast<size_t>(n), -1);
  p.comm_start.assign(edges.size(), -1);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> tok;
    for (std::string w; ls >> w;) tok.push_back(w);
    if (tok.empty() || tok[0][0] == '#') continue;
    // "name value" or CBC's "index name value reduced-cost".
    size_t at = (tok.size() >= 3 && std::all_of(tok[0].begin(), tok[0].end(), ::isdigit)) ? 1 : 0;
    if (tok.size() < at + 2) continue;
    double value = 0;
    try {
      value = std::stod(tok[at + 1]);
    } catch (const std::invalid_argument&) {
      continue;  // a header line such as "Optimal - objective value 30"
    } catch (const std::out_of_range&) {
      return Error{fmt::format("{}: value '{}' of column {} is out of range", path, tok[at + 1], tok[at])};
    }
    int a = 0, b = 0;
    char rest = 0;
    const std::string& name = tok[at];
    if (std::sscanf(name.c_str(), "x_%d_%d%c", &a, &b, &rest) == 2) {
      if (a < 0 || a >= n || b < 0 || b >= K) return Error{fmt::format("{}: column {} names no operator/device", path, name)};
      if (value > 0.5) p.device[static_cast<size_t>(a)] = b;
    } else if (std::sscanf(name.c_str(), "S_%d%c", &a, &rest) == 1 && a >= 0 && a < n) {
      p.start[static_cast<size_t>(a)] = value;
    } else if (std::sscanf(name.c_str(), "CS_%d%c", &a, &rest) == 1 && a >= 0 && a < static_cast<int>(edges.size())) {
      p.comm_start[static_cast<size_t>(a)] = value;
    } else if (name == "T") {
      p.makespan = value;
    }
  }
  for (OpId i = 0; i < n; ++i)
    if (p.device[static_cast<size_t>(i)] == kNone)
      return Error{fmt::format("{}: operator '{}' has no x_{}_k column at 1", path, t.op_names[static_cast<size_t>(i)], i)};
  return p;
}

}  // namespace

// Defined in milp_lns.cpp.
MilpPlan milp_lns(const CostTable& t, const MilpPlan& warm, const PlaceOptions& options, double seconds, int& windows,
                  int& crashes);

// The exact MILP proves optima of this size in seconds on the bundled clusters: the multilevel solve's coarsest level.
constexpr int kCoarsestLevel = 40;
constexpr int kCycles = 3;
constexpr size_t kMaxExactEdges = 400;
// Contraction costs up to O(n^2) path checks: beyond this size it would eat the budget (measured: 20,000
// operators, 11 s).
constexpr int kMaxMultilevelOps = 5000;

class MilpPlacer : public Placer {
 public:
  std::string name() const override { return "milp"; }
  std::string summary() const override {
    return "Moirai MILP on CBC: warm-started from the best heuristic, exact on small graphs, multilevel + LNS on "
           "large ones; reports a certified lower bound";
  }
  Expected<PlaceResult> place(const CostTable& t, const PlaceOptions& options) const override;
};

Expected<PlaceResult> MilpPlacer::place(const CostTable& t, const PlaceOptions& options) const {
  const auto t0 = Clock::now();
  const auto edges = milp_edges(t);
  const bool contention = options.sim.contention;
  auto say = [&](const std::string& s) {
    if (options.progress) options.progress(s);
  };
  PlaceResult result;
  // Without a solve, the bounds that take no search (critical path, device-load LP).
  auto quick_bound = [&](PlaceResult& r) {
    BoundOptions bo;
    bo.contention = contention;
    bo.time_limit_s = 0;
    const auto b = lower_bounds(t, bo).best;
    r.lower_bound_ms = b.ms, r.lower_bound_source = b.source;
  };
  if (!options.import_solution.empty()) {
    MOIRAI_ASSIGN_OR_RETURN(auto plan, read_solution(t, edges, options.import_solution));
    // Keep the file's orders where given; topological order otherwise.
    std::vector<double> op_key(plan.start), edge_key(plan.comm_start);
    auto tight = evaluate_milp_plan(t, edges, plan.device, op_key, edge_key, contention);
    if (!tight) return Error{options.import_solution + ": the solution's start times contradict the precedences"};
    result.placement = to_placement(t, edges, *tight);
    result.status = PlanStatus::imported;
    result.objective_ms = tight->makespan;
    quick_bound(result);
    result.mode = "import";
    return result;
  }

  WarmStart warm = warm_start(t, edges, options);
  if (!warm.plan && !warm.fallback) return Error{"milp: no plan fits the memory capacities: " + t.memory_summary()};
  if (!warm.plan) {  // nothing satisfies the MILP's memory reserve: the heuristic is all we have
    result.placement = *warm.fallback;
    result.status = PlanStatus::no_solution;
    result.objective_ms = warm.fallback_ms;
    quick_bound(result);
    result.mode = "exact";
    return result;
  }
  say(fmt::format("milp: warm start from {}: {:.6g} (MILP model)", warm.plan_from, warm.plan->makespan));
  result.warm_start_method = warm.plan_from;
  result.warm_start_ms = warm.unpolished_ms;
  result.polished_ms = warm.plan->makespan;
  const double ub = warm.plan->makespan * (1 + 1e-7) + 1e-9;
  // Bounds first (a capped share of the budget): they certify whatever the search below returns.
  BoundOptions bo;
  bo.contention = contention;
  const double best_known = std::min(warm.plan->makespan, warm.fallback_ms);
  bo.upper_bound = std::min(ub, warm.fallback_ms);
  bo.threads = options.threads;
  bo.time_limit_s = std::min(10.0, 0.15 * options.time_limit_s);
  LowerBounds bounds = lower_bounds(t, bo);
  for (const auto& b : bounds.each) say(fmt::format("milp: lower bound {:.6g} ({})", b.ms, b.source));
  const double remaining = std::max(0.5, options.time_limit_s - since(t0));
  const bool proven = bounds.best.ms >= best_known * (1 - 1e-9);  // the warm start already meets the bound

  // Size of the exact model: order binaries grow with the unordered pairs.
  FormulationOptions fo;
  fo.contention = contention;
  fo.upper_bound = ub;
  MilpPlan best = *warm.plan;
  const bool small = t.num_ops() <= 150;
  std::optional<Formulation> exact;
  if (small || !options.export_mps.empty()) {
    MOIRAI_ASSIGN_OR_RETURN(auto f, build_formulation(t, fo));
    exact = std::move(f);
    if (!options.export_mps.empty()) {
      MOIRAI_TRY(exact->model.write_mps(options.export_mps));
    }
  }
  const bool use_exact = exact && small && exact->model.num_integer() <= 800;  // beyond this the root LP alone eats the budget
  if (proven) {
    result.mode = "bound";  // nothing to search: the warm start meets a proven lower bound
    say(fmt::format("milp: the warm start meets the {} bound: optimal", bounds.best.source));
  } else if (use_exact) {
    result.mode = "exact";
    say(fmt::format("milp: exact model, {} columns ({} integer), {} rows", exact->model.num_cols(),
                    exact->model.num_integer(), exact->model.num_rows()));
    const auto run = solve_exact(t, edges, *exact, best, options, options.time_limit_s - since(t0), true);
    const auto& r = run.solve;
    best = run.plan;
    result.status = plan_status(r.status);
    say(fmt::format("milp: CBC {} after {:.1f} s, {} nodes, objective {:.6g}, bound {:.6g}", status_name(r.status), r.seconds,
                    r.nodes, r.objective, r.bound));
    // The model charges transfers as the simulator does, and a plan that fits memory in simulation fits the
    // reserve rows (an operator's inputs and outputs are live while it runs), so CBC's bound bounds every
    // simulated plan; except where an operator takes no time (no instant holds its working set). Only with an
    // incumbent (the warm start satisfies every row, so "infeasible" is a numerical artefact, not a proof).
    if (r.has_solution && reserve_rows_valid(t)) add_bound(bounds, {r.bound, "exact MILP"});
    // The warm start stands, and the status says what CBC said: "infeasible" here means the warm start broke a
    // row of the model (a bug to report), not a feasible plan.
    if (r.status == SolveStatus::crashed)
      say(fmt::format("milp: CBC crashed ({}); keeping the warm start from {} ({:.6g})", r.diagnostic, warm.plan_from,
                      best.makespan));
  } else {
    result.mode = "multilevel + lns";
    // Multilevel first (a share of the time): a global reassignment the windows below cannot make.
    auto exact_at = [&](const CostTable& level, const MilpPlan& start, double seconds) {
      // Transfer pairs grow with the square of the edges: beyond this the model alone outgrows the budget.
      if (milp_edges(level).size() > kMaxExactEdges)
        return std::pair<std::optional<MilpPlan>, std::string>{start, "too many edges for the exact model"};
      FormulationOptions lo;
      lo.contention = contention;
      lo.upper_bound = start.makespan * (1 + 1e-7) + 1e-9;
      auto f = build_formulation(level, lo);
      if (!f.ok()) return std::pair<std::optional<MilpPlan>, std::string>{std::nullopt, f.error().message};
      const auto run = solve_exact(level, milp_edges(level), *f, start, options, seconds, false);
      return std::pair<std::optional<MilpPlan>, std::string>{run.plan, status_name(run.solve.status)};
    };
    // V-cycles (as in KaHIP): each lifts the incumbent, solves the coarsest level and projects back; the next
    // starts from the improved plan with another seed; a cycle without a gain ends them.
    const double cycle_s = 0.4 * remaining / kCycles;
    for (int cycle = 0; cycle < kCycles && t.num_ops() <= kMaxMultilevelOps; ++cycle) {
      std::vector<LevelResult> levels;
      PlaceOptions co = options;
      co.seed = options.seed + static_cast<uint64_t>(cycle);
      const auto multi = milp_multilevel(t, best, co, cycle_s, kCoarsestLevel, exact_at, levels);
      for (const auto& l : levels)
        say(fmt::format("milp: multilevel cycle {}, {} operators: {:.6g} ({})", cycle + 1, l.ops, l.makespan_ms, l.status));
      result.levels.insert(result.levels.end(), levels.begin(), levels.end());
      if (!multi || multi->makespan >= best.makespan * (1 - 1e-9)) break;
      best = *multi;
    }
    int windows = 0, crashes = 0;
    best = milp_lns(t, best, options, options.time_limit_s - since(t0) - 3 * warm.simulate_s, windows, crashes);
    result.status = crashes > 0 && crashes == windows ? PlanStatus::crashed : PlanStatus::feasible;
    say(fmt::format("milp: LNS over {} windows ({} solver crashes): {:.6g}", windows, crashes, best.makespan));
  }
  result.placement = to_placement(t, edges, best);
  result.objective_ms = best.makespan;
  const Schedule s = simulate(t, result.placement, options.sim);
  if (warm.fallback && (s.makespan_ms > warm.fallback_ms + 1e-9 || !s.over_capacity(t).empty())) {
    say(fmt::format("milp: keeping {} (simulated {:.6g} < {:.6g})", warm.fallback_from, warm.fallback_ms, s.makespan_ms));
    result.placement = *warm.fallback;
    result.objective_ms = warm.fallback_ms;
    result.status = PlanStatus::heuristic_kept;
    result.mode += ", plan of " + warm.fallback_from;
  }
  result.lower_bound_ms = bounds.best.ms;
  result.lower_bound_source = bounds.best.source;
  const double simulated = simulate(t, result.placement, options.sim).makespan_ms;
  MOIRAI_CHECK(result.lower_bound_ms <= simulated * (1 + 1e-6) + 1e-9,
               fmt::format("milp: lower bound {} ({}) above the plan's simulated {}", result.lower_bound_ms,
                           result.lower_bound_source, simulated));
  // "optimal" is a claim about the simulated plan: it meets a proven bound (CBC's proof of the exact model is one).
  if (result.lower_bound_ms >= simulated * (1 - 1e-9)) result.status = PlanStatus::optimal;
  return result;
}

std::unique_ptr<Placer> make_milp_placer() { return std::make_unique<MilpPlacer>(); }

}  // namespace moirai
