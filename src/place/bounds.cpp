// Lower bounds on the makespan (include/moirai/bounds.h): the critical path, the device-load LP and the
// assignment relaxation of the Moirai MILP (milp_formulation.h with `relaxation`), solved by CBC in a child.
#include "moirai/bounds.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "lp.h"
#include "milp_cbc.h"
#include "milp_formulation.h"

namespace moirai {
namespace {

constexpr double kMaxDeviceLoadColumns = 40000;

// min T: every operator split over devices (fractions sum to 1), T >= each device's work, parameters within
// capacity. Any plan that fits memory is a 0/1 point of it.
double device_load_bound(const CostTable& t, double seconds) {
  const int n = t.num_ops(), K = t.num_devices();
  place::LinearProgram lp;
  const int T = lp.add_column(0, place::kLpInf, 1);
  std::vector<std::vector<std::pair<int, double>>> work(static_cast<size_t>(K)), mem(static_cast<size_t>(K));
  for (OpId i = 0; i < n; ++i) {
    std::vector<std::pair<int, double>> once;
    for (DeviceId k = 0; k < K; ++k) {
      const double cap = t.capacity[static_cast<size_t>(k)], p = t.param_bytes[static_cast<size_t>(i)];
      if (cap > 0 && p > cap * (1 + 1e-12)) continue;
      const int x = lp.add_column(0, 1, 0);
      once.push_back({x, 1});
      work[static_cast<size_t>(k)].push_back({x, -t.time(i, k)});
      if (cap > 0 && p > 0) mem[static_cast<size_t>(k)].push_back({x, p});
    }
    if (once.empty()) return 0;  // fits nowhere: no plan, nothing to bound
    lp.add_row(once, 1, 1);
  }
  for (DeviceId k = 0; k < K; ++k) {
    auto& row = work[static_cast<size_t>(k)];
    row.push_back({T, 1});
    lp.add_row(row, 0, place::kLpInf);
    if (!mem[static_cast<size_t>(k)].empty()) lp.add_row(mem[static_cast<size_t>(k)], -place::kLpInf, t.capacity[static_cast<size_t>(k)]);
  }
  const auto r = lp.solve(seconds);
  return r.optimal ? r.objective : 0;
}

// The device-load LP without memory rows, relaxed further: the devices share the total work at each operator's
// fastest time. Linear time, for graphs whose LP would not solve within the budget.
double total_work_bound(const CostTable& t) {
  double work = 0;
  for (OpId i = 0; i < t.num_ops(); ++i) {
    double fastest = std::numeric_limits<double>::infinity();
    for (DeviceId k = 0; k < t.num_devices(); ++k) fastest = std::min(fastest, t.time(i, k));
    work += fastest;
  }
  return t.num_devices() > 0 ? work / t.num_devices() : 0;
}

// Every operator on its slowest device one after another, every tensor over its slowest link: no plan is
// slower, so the relaxation loses nothing by searching below it.
double serial_upper_bound(const CostTable& t) {
  double total = 0;
  for (OpId i = 0; i < t.num_ops(); ++i) {
    double worst = 0;
    for (DeviceId k = 0; k < t.num_devices(); ++k) worst = std::max(worst, t.time(i, k));
    total += worst;
  }
  for (const auto& d : t.data) {
    double worst = 0;
    for (double v : d.transfer_ms) worst = std::max(worst, v);
    total += worst * static_cast<double>(std::max<size_t>(1, d.consumers.size()));
  }
  return std::max(total, 1e-9);
}

// Keeps the relaxation to models CBC's root LP handles in a fraction of a minute: the precedence-load rows grow
// with n^2 K nonzeros and the transfer columns with edges x K^2.
bool relaxation_fits(const CostTable& t, size_t edges) {
  const double n = t.num_ops(), K = t.num_devices();
  return n * n * K <= 4e6 && static_cast<double>(edges) * K * K <= 4e5;
}

}  // namespace

void add_bound(LowerBounds& bounds, LowerBound bound) {
  if (!std::isfinite(bound.ms) || bound.ms <= 0) return;
  if (bound.ms > bounds.best.ms) bounds.best = bound;
  bounds.each.push_back(std::move(bound));
}

LowerBounds lower_bounds(const CostTable& t, const BoundOptions& o) {
  LowerBounds out;
  add_bound(out, {critical_path_bound(t), "critical path"});
  // CLP needs seconds for the LP's n x K columns on large graphs (and overruns its limit on a loaded machine).
  if (static_cast<double>(t.num_ops()) * t.num_devices() <= kMaxDeviceLoadColumns)
    add_bound(out, {device_load_bound(t, std::max(1.0, o.time_limit_s)), "device load"});
  else
    add_bound(out, {total_work_bound(t), "total work"});
  const auto edges = milp_edges(t);
  if (o.time_limit_s <= 0 || !relaxation_fits(t, edges.size())) return out;
  FormulationOptions fo;
  fo.contention = o.contention;
  fo.relaxation = true;
  fo.upper_bound = o.upper_bound > 0 ? o.upper_bound : serial_upper_bound(t);
  auto f = build_formulation(t, fo);
  if (!f.ok()) return out;
  MilpSolveOptions so;
  so.time_limit_s = o.time_limit_s;
  so.threads = o.threads;
  so.gap = 1e-6;
  // CBC can overrun its limit inside the root's cut loop, and the root bound is most of what this solve is for:
  // allow it more slack than a search (the caller's budget absorbs it: bounds come first).
  so.kill_margin_s = std::max(1.0, 0.5 * o.time_limit_s);
  const auto r = solve_with_cbc(f->model, so);
  // The model is restricted to T <= upper bound. With an incumbent, CBC's bound is checked against it (and equals
  // it when proven optimal). Without one, the plan that set the upper bound satisfies every row, so neither
  // "infeasible" nor a bound at the cutoff can be a proof: only a bound below the cutoff counts. (Once, while the
  // memory rows were scaled to capacity units, GoogLeNet's relaxation certified its cutoff 1.475 where a 1.381
  // plan exists; not reproduced since, but a wrong certificate must not be possible.)
  const bool below = r.bound < fo.upper_bound * (1 - 1e-9);
  if (r.status != SolveStatus::crashed && r.status != SolveStatus::infeasible && (r.has_solution || below))
    add_bound(out, {std::min(r.bound, fo.upper_bound), "assignment relaxation"});
  return out;
}

}  // namespace moirai
