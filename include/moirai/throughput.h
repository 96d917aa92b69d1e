// Placement for throughput (serving a stream of requests): minimise the period, the largest per-request busy
// time of any device, send port or receive port (moirai/stream.h), subject to memory for the requests in
// flight (parameters once, activations per request) and optionally to a bound on the latency of one request.
//  - stage_dp: exact over "stages", contiguous ranges of the topological order each on its own device, in any
//    device order (the PipeDream / Alpa stage DP with heterogeneous devices and links). On a chain the DP's cost
//    model is the period model exactly; on a DAG a tensor crossing several stages is charged at every cut it
//    crosses (as if forwarded stage by stage), so the DP is a heuristic there and the plan is re-measured.
//  - period_milp: any assignment (not only stages), min T with T >= the load of every device and port,
//    memory rows, on CBC in its crash-isolated child, warm-started with a plan.
//  - place_for_throughput: the in-flight count (choose_in_flight), the DP, then the MILP warm-started by it;
//    the plan serving a simulated stream faster that meets memory and the latency bound (one request simulated).
#pragma once

#include <memory>
#include <string>

#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/placement.h"
#include "moirai/placer.h"

namespace moirai {

struct ThroughputOptions {
  /// Requests in flight that memory must hold. 0 = place_for_throughput chooses (choose_in_flight); elsewhere
  /// 0 = twice the number of devices.
  int in_flight = 0;
  double max_latency_ms = 0;  ///< bound on one request's simulated makespan; 0 = none
  bool milp = true;           ///< place_for_throughput: improve the DP's plan with the period MILP
  bool contiguous = false;    ///< period_milp: restrict to the DP's space (each device one range of topo_order)
};

struct ThroughputResult {
  Placement placement;
  double period_ms = 0;          ///< period_loads() of the plan
  double model_period_ms = 0;    ///< the method's own objective (DP value or MILP objective)
  double latency_ms = 0;         ///< one request, simulated
  double lower_bound_ms = 0;     ///< proven lower bound on the period (MILP), 0 when none
  PlanStatus status = PlanStatus::ok;  ///< stage_dp: optimal (among stage plans); MILP and place_for_throughput: CBC's
  std::string source;            ///< "stage-dp" or "period-milp"
  int in_flight = 0;             ///< the in-flight count the plan's memory holds
};

/// Resolved in-flight count for `devices` devices.
int throughput_in_flight(const ThroughputOptions& options, int devices);

/// Exact stage DP (see above). Error when no stage plan fits in memory or meets the latency bound.
Expected<ThroughputResult> stage_dp(const CostTable& table, const PlaceOptions& place, const ThroughputOptions& options);

/// More requests in flight keep a pipeline busier but need more memory, which can force a worse split. Tries
/// every count from 1 to twice the number of devices with the stage DP, simulates each plan serving `requests`
/// requests with that many in flight, and returns the count of the highest throughput (ties: the smaller).
/// Once half of place.time_limit_s is spent and some count has a plan, it stops there (large models on many
/// devices). Error when no count admits a stage plan.
Expected<int> choose_in_flight(const CostTable& table, const PlaceOptions& place, const ThroughputOptions& options,
                               int requests = 64);

/// Period MILP, warm-started with `warm` when given (it must be complete). Error when CBC finds no plan.
Expected<ThroughputResult> period_milp(const CostTable& table, const PlaceOptions& place,
                                       const ThroughputOptions& options, const Placement* warm = nullptr);

/// The throughput placer: stage DP, then (options.milp) the period MILP warm-started by it, for at most
/// place.time_limit_s in all (the MILP's child is stopped early enough for its overrun margin, freeing its model
/// and measuring its plan to fit; with less than 0.3 s left the MILP is skipped and the status is "time limit");
/// of the two plans (both fit and meet the bound) returns the one whose stream of 64 requests is served faster
/// (the period bounds the rate; a plan not made of stages may need more requests in flight to reach it).
Expected<ThroughputResult> place_for_throughput(const CostTable& table, const PlaceOptions& place,
                                                const ThroughputOptions& options);

/// place_for_throughput behind the Placer interface (name "throughput"; not in the method registry: it
/// optimises another objective). PlaceResult: objective_ms = the period, mode = the plan's source and, for the
/// MILP, its proven lower bound on the period; lower_bound_ms stays 0 (it bounds makespans).
std::unique_ptr<Placer> make_throughput_placer(const ThroughputOptions& options);

}  // namespace moirai
