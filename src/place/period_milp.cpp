// Period MILP for throughput (moirai/throughput.h) and the throughput placer that combines it with the stage DP.
// Columns: x[o][d] (operator o on device d, binary), T (the period, minimised), y[i][d] >= x[c][d] for every
// reader c of tensor i (i is needed on d), w[i][s][d] >= x[p][s] + y[i][d] - 1 for s != d (i is sent from s to
// d, p its producer; only with port contention), u[i][d] >= x[p][d], y[i][d] (i occupies memory on d), and
// for a KV cache's in-place append c[i][d] >= y[i][d] - x[p][d] (a remote copy holds the whole cache).
// Rows: each operator on one device; T >= compute of every device, T >= transfers of every send and receive
// port (one per tensor and remote device, as the simulator sends them); parameters + in_flight x (KV caches +
// activation bytes) <= capacity (the bound of stream_memory_bound). The continuous columns sit at their lower
// bounds in an optimum, so they equal the products they stand for. `contiguous` adds z[j][d] >= x[j][d] - x[j-1][d] over
// positions j of topo_order with sum_j z[j][d] <= 1: each device one range, the stage DP's space.
#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "moirai/stream.h"
#include "moirai/throughput.h"
#include "milp_cbc.h"
#include "milp_model.h"

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;

template <class V>
auto& at(V& v, long i) {
  return v[static_cast<size_t>(i)];
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Of a time limit, what the CBC child may overrun before it is killed (CBC reads its clock only between phases:
// in a large root LP it overruns by seconds), so that the limit covers the overrun too.
double kill_margin(double limit_s) { return std::min(1.0, 0.25 * limit_s); }

// Below this the period MILP (model, CBC start, root LP) has no chance: the DP's plan is returned as it is.
constexpr double kMinMilpSeconds = 0.3;
constexpr double kAfterMilpSlack_s = 0.15;  // a killed child ends up to ~0.1 s after its deadline (measured)

// Requests per second of a plan serving the placer's stream (64 requests, `in_flight` of them admitted).
double stream_rate(const CostTable& table, const Placement& placement, int in_flight, const SimOptions& sim) {
  StreamOptions so;
  so.requests = 64;
  so.max_in_flight = in_flight;
  return simulate_stream(table, placement, so, sim).throughput_rps;
}

struct PeriodModel {
  MilpModel model;
  int T = -1;
  std::vector<int> x;                 // n x k
  std::vector<std::vector<int>> y, u, copy;  // per item: k columns (-1 when absent)
  std::vector<std::vector<int>> w;     // per item: k x k (-1 when absent)
  std::vector<std::vector<int>> z;     // per topo position: k (contiguous only)
};

PeriodModel build(const CostTable& t, bool contention, int in_flight, bool contiguous) {
  const int n = t.num_ops(), k = t.num_devices(), m = static_cast<int>(t.data.size());
  PeriodModel f;
  MilpModel& mm = f.model;
  mm.name = "period";
  f.T = mm.add_col("T", 0, kMilpInf, false, 1.0);
  f.x.resize(static_cast<size_t>(n * k));
  for (int o = 0; o < n; ++o) {
    std::vector<std::pair<int, double>> one;
    for (int d = 0; d < k; ++d) {
      at(f.x, o * k + d) = mm.add_col(fmt::format("x_{}_{}", o, d), 0, 1, true);
      one.emplace_back(at(f.x, o * k + d), 1.0);
    }
    mm.add_row(fmt::format("assign_{}", o), one, 1, 1);
  }
  auto X = [&](int o, int d) { return at(f.x, o * k + d); };
  std::vector<std::vector<std::pair<int, double>>> load(static_cast<size_t>(k)), send(static_cast<size_t>(k)),
      recv(static_cast<size_t>(k)), mem(static_cast<size_t>(k));
  for (int o = 0; o < n; ++o)
    for (int d = 0; d < k; ++d) {
      at(load, d).emplace_back(X(o, d), t.time(o, d));
      at(mem, d).emplace_back(X(o, d), resident_bytes(t, o, in_flight));
    }
  f.y.assign(static_cast<size_t>(m), std::vector<int>(static_cast<size_t>(k), -1));
  f.u = f.y;
  f.copy = f.y;
  f.w.assign(static_cast<size_t>(m), std::vector<int>(static_cast<size_t>(k * k), -1));
  for (int i = 0; i < m; ++i) {
    const DataItem& item = at(t.data, i);
    for (int d = 0; d < k; ++d) {
      if (!item.consumers.empty()) {
        const int y = at(at(f.y, i), d) = mm.add_col(fmt::format("y_{}_{}", i, d), 0, 1, false);
        for (OpId c : item.consumers) mm.add_row(fmt::format("need_{}_{}_{}", i, d, c), {{y, 1}, {X(c, d), -1}}, 0, kMilpInf);
      }
      if (item.bytes > 0 && in_flight > 0) {
        const int u = at(at(f.u, i), d) = mm.add_col(fmt::format("u_{}_{}", i, d), 0, 1, false);
        mm.add_row(fmt::format("held_{}_{}", i, d), {{u, 1}, {X(item.producer, d), -1}}, 0, kMilpInf);
        if (at(at(f.y, i), d) >= 0)
          mm.add_row(fmt::format("read_{}_{}", i, d), {{u, 1}, {at(at(f.y, i), d), -1}}, 0, kMilpInf);
        at(mem, d).emplace_back(u, in_flight * (item.bytes - item.in_place_bytes));
      }
      if (item.in_place_bytes > 0 && in_flight > 0 && at(at(f.y, i), d) >= 0) {  // a copy elsewhere is whole
        const int c = at(at(f.copy, i), d) = mm.add_col(fmt::format("c_{}_{}", i, d), 0, 1, false);
        mm.add_row(fmt::format("copy_{}_{}", i, d), {{c, 1}, {at(at(f.y, i), d), -1}, {X(item.producer, d), 1}}, 0,
                   kMilpInf);
        at(mem, d).emplace_back(c, in_flight * item.in_place_bytes);
      }
    }
    if (!contention || item.consumers.empty()) continue;
    for (int s = 0; s < k; ++s)
      for (int d = 0; d < k; ++d) {
        if (s == d) continue;
        const int w = at(at(f.w, i), s * k + d) = mm.add_col(fmt::format("w_{}_{}_{}", i, s, d), 0, 1, false);
        mm.add_row(fmt::format("sent_{}_{}_{}", i, s, d), {{w, 1}, {X(item.producer, s), -1}, {at(at(f.y, i), d), -1}}, -1,
                   kMilpInf);
        at(send, s).emplace_back(w, t.transfer(i, s, d));
        at(recv, d).emplace_back(w, t.transfer(i, s, d));
      }
  }
  for (int d = 0; d < k; ++d) {
    auto with_T = [&](std::vector<std::pair<int, double>> terms) {
      terms.emplace_back(f.T, -1.0);
      return terms;
    };
    mm.add_row(fmt::format("compute_{}", d), with_T(at(load, d)), -kMilpInf, 0);
    if (contention) {
      mm.add_row(fmt::format("send_{}", d), with_T(at(send, d)), -kMilpInf, 0);
      mm.add_row(fmt::format("recv_{}", d), with_T(at(recv, d)), -kMilpInf, 0);
    }
    mm.add_row(fmt::format("memory_{}", d), at(mem, d), -kMilpInf, at(t.capacity, d));
  }
  if (contiguous) {
    f.z.assign(static_cast<size_t>(n), std::vector<int>(static_cast<size_t>(k), -1));
    for (int d = 0; d < k; ++d) {
      std::vector<std::pair<int, double>> starts;
      for (int j = 0; j < n; ++j) {
        const int z = at(at(f.z, j), d) = mm.add_col(fmt::format("z_{}_{}", j, d), 0, 1, false);
        std::vector<std::pair<int, double>> row{{z, 1}, {X(at(t.topo_order, j), d), -1}};
        if (j > 0) row.emplace_back(X(at(t.topo_order, j - 1), d), 1);
        mm.add_row(fmt::format("begin_{}_{}", j, d), row, 0, kMilpInf);
        starts.emplace_back(z, 1);
      }
      mm.add_row(fmt::format("one_range_{}", d), starts, -kMilpInf, 1);
    }
  }
  return f;
}

// Column values of a complete placement (continuous columns at their least feasible values).
std::vector<double> values_of(const CostTable& t, const PeriodModel& f, const Placement& p, const SimOptions& sim) {
  const int n = t.num_ops(), k = t.num_devices(), m = static_cast<int>(t.data.size());
  std::vector<double> v(static_cast<size_t>(f.model.num_cols()), 0.0);
  for (int o = 0; o < n; ++o) at(v, at(f.x, o * k + at(p.device, o))) = 1;
  for (int i = 0; i < m; ++i) {
    const DataItem& item = at(t.data, i);
    const DeviceId s = at(p.device, item.producer);
    std::vector<char> needed(static_cast<size_t>(k), 0);
    for (OpId c : item.consumers) at(needed, at(p.device, c)) = 1;
    for (int d = 0; d < k; ++d) {
      if (at(at(f.y, i), d) >= 0) at(v, at(at(f.y, i), d)) = at(needed, d);
      if (at(at(f.u, i), d) >= 0) at(v, at(at(f.u, i), d)) = (at(needed, d) || d == s) ? 1 : 0;
      if (at(at(f.copy, i), d) >= 0) at(v, at(at(f.copy, i), d)) = at(needed, d) && d != s ? 1 : 0;
      if (d != s && at(at(f.w, i), s * k + d) >= 0) at(v, at(at(f.w, i), s * k + d)) = at(needed, d);
    }
  }
  for (int j = 0; j < static_cast<int>(f.z.size()); ++j)
    for (int d = 0; d < k; ++d) {
      const bool here = at(p.device, at(t.topo_order, j)) == d;
      const bool before = j > 0 && at(p.device, at(t.topo_order, j - 1)) == d;
      at(v, at(at(f.z, j), d)) = here && !before ? 1 : 0;
    }
  at(v, f.T) = period_loads(t, p, sim).period_ms;
  return v;
}

// The stage DP's plan alone (no MILP, or no time left for it): an error when it breaks the latency bound.
Expected<ThroughputResult> stage_plan_only(Expected<ThroughputResult> dp, double max_latency_ms) {
  if (dp.ok() && max_latency_ms > 0 && dp->latency_ms > max_latency_ms)
    return Error{fmt::format("throughput: the stage plan's simulated latency {:.6g} ms exceeds the latency bound of "
                             "{} ms", dp->latency_ms, max_latency_ms), "max_latency_ms"};
  return dp;
}

}  // namespace

Expected<ThroughputResult> period_milp(const CostTable& table, const PlaceOptions& place,
                                       const ThroughputOptions& options, const Placement* warm) {
  const auto t0 = Clock::now();
  const int n = table.num_ops(), k = table.num_devices();
  const int in_flight = throughput_in_flight(options, k);
  const PeriodModel f = build(table, place.sim.contention, in_flight, options.contiguous);
  MilpSolveOptions so;
  so.gap = place.gap;
  so.threads = place.threads;
  // The limit covers building the model, CBC's solve, the child's overrun before it is killed and freeing the
  // model afterwards (measured: about a third of the time building it took).
  const double built_s = seconds_since(t0);
  so.kill_margin_s = kill_margin(place.time_limit_s);
  so.time_limit_s = std::max(0.05, place.time_limit_s - 1.5 * built_s - so.kill_margin_s);
  so.progress = place.progress;
  if (warm) {
    so.start = values_of(table, f, *warm, place.sim);
    // A start that breaks a row (e.g. memory, or contiguity) would be rejected by CBC anyway: do not send it.
    if (!f.model.violation(so.start, 1e-6).empty()) so.start.clear();
  }
  const MilpSolveResult got = solve_with_cbc(f.model, so);
  if (!got.has_solution)
    return Error{fmt::format("throughput: the period MILP found no plan ({}{}{})", status_name(got.status),
                             got.diagnostic.empty() ? "" : ": ", got.diagnostic)};
  ThroughputResult r;
  r.placement.device.assign(static_cast<size_t>(n), 0);
  for (int o = 0; o < n; ++o) {
    DeviceId best = 0;
    for (int d = 1; d < k; ++d)
      if (at(got.values, at(f.x, o * k + d)) > at(got.values, at(f.x, o * k + best))) best = d;
    at(r.placement.device, o) = best;
  }
  r.model_period_ms = got.objective;
  r.lower_bound_ms = got.bound;
  r.period_ms = period_loads(table, r.placement, place.sim).period_ms;
  r.latency_ms = simulate(table, r.placement, place.sim).makespan_ms;
  r.status = plan_status(got.status);
  r.source = "period-milp";
  return r;
}

Expected<ThroughputResult> place_for_throughput(const CostTable& table, const PlaceOptions& place,
                                                const ThroughputOptions& given) {
  const auto t0 = Clock::now();
  ThroughputOptions options = given;
  if (options.in_flight == 0 && table.num_ops() > 0) {
    MOIRAI_ASSIGN_OR_RETURN(auto k, choose_in_flight(table, place, options));
    options.in_flight = k;
    if (place.progress) place.progress(fmt::format("throughput: {} requests in flight", k));
  }
  auto dp = stage_dp(table, place, options);
  if (dp) dp->in_flight = options.in_flight;
  // The DP is a heuristic on DAGs: its latency check there is the simulated one.
  const bool dp_ok = dp.ok() && (options.max_latency_ms <= 0 || dp->latency_ms <= options.max_latency_ms);
  if (place.progress && dp.ok())
    place.progress(fmt::format("throughput: stage DP period {:.6g} ms, latency {:.6g} ms", dp->period_ms, dp->latency_ms));
  if (!options.milp || table.num_ops() == 0) return stage_plan_only(std::move(dp), options.max_latency_ms);
  // The MILP gets what is left once the DP's plan has been measured, less what measuring its own plan (and
  // simulating it once) takes afterwards, about as long again, and a little slack for ending its child.
  const auto measured = Clock::now();
  const double dp_rate = dp_ok ? stream_rate(table, dp->placement, options.in_flight, place.sim) : 0.0;
  PlaceOptions rest = place;
  rest.time_limit_s = place.time_limit_s - seconds_since(t0) - 2 * seconds_since(measured) - kAfterMilpSlack_s;
  if (rest.time_limit_s < kMinMilpSeconds) {
    if (place.progress)
      place.progress(fmt::format("throughput: {:.2f} s of the time limit left, too little for the period MILP",
                                 std::max(0.0, rest.time_limit_s)));
    auto only = stage_plan_only(std::move(dp), options.max_latency_ms);
    if (only) only->status = PlanStatus::time_limit;
    return only;
  }
  auto milp = period_milp(table, rest, options, dp_ok ? &dp->placement : nullptr);
  if (milp) milp->in_flight = options.in_flight;
  const bool milp_ok = milp.ok() && (options.max_latency_ms <= 0 || milp->latency_ms <= options.max_latency_ms);
  // The period bounds the rate; which plan serves faster at this in-flight count is measured: a plan that is
  // not made of stages may need more requests in flight to reach its period.
  if (dp_ok && (!milp_ok || dp_rate >= stream_rate(table, milp->placement, options.in_flight, place.sim))) {
    // The MILP speaks for every plan, the DP only for stage plans: its status is the plan's.
    dp->status = milp.ok() ? milp->status : PlanStatus::ok;
    if (milp.ok()) dp->lower_bound_ms = std::min(milp->lower_bound_ms, dp->period_ms);
    return dp;
  }
  if (milp_ok) return milp;
  if (!dp.ok()) return dp;
  if (!milp.ok()) return milp;
  return Error{fmt::format("throughput: no plan found meets the latency bound of {} ms (stage DP: {:.6g} ms, MILP: "
                           "{:.6g} ms)", options.max_latency_ms, dp->latency_ms, milp->latency_ms), "max_latency_ms"};
}

namespace {

class ThroughputPlacer final : public Placer {
 public:
  explicit ThroughputPlacer(const ThroughputOptions& options) : options_(options) {}
  std::string name() const override { return "throughput"; }
  std::string summary() const override {
    return "least period (requests/s) for a stream: stage DP, then the period MILP warm-started by it";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    MOIRAI_ASSIGN_OR_RETURN(auto r, place_for_throughput(table, options, options_));
    PlaceResult out;
    out.placement = std::move(r.placement);
    out.status = r.status;
    out.objective_ms = r.period_ms;
    out.mode = fmt::format("{}, {} in flight", r.source, r.in_flight);
    out.in_flight = r.in_flight;
    if (r.lower_bound_ms > 0) out.mode += fmt::format(", period lower bound {:.6g} ms", r.lower_bound_ms);
    return out;
  }

 private:
  ThroughputOptions options_;
};

}  // namespace

std::unique_ptr<Placer> make_throughput_placer(const ThroughputOptions& options) {
  return std::make_unique<ThroughputPlacer>(options);
}

}  // namespace moirai
