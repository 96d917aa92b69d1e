// Placement for throughput (serving a stream of requests): minimise the period, the largest per-request busy
// time of any device, send port or receive port (moirai/stream.h), subject to memory for the requests in
// flight (parameters once, activations per request) and optionally to a bound on the latency of one request.
//  - stage_dp: exact over "stages", contiguous ranges of the topological order each on its own device, in any
//    device order (the PipeDream / Alpa stage DP with heterogeneous devices and links). On a chain the DP's cost
//    model is the period model exactly; on a DAG a tensor crossing several stages is charged at every cut it
//    crosses (as if forwarded stage by stage), so the DP is a heuristic there and the plan is re-measured.
//  - period_milp: any assignment (not only stages), min T with T >= the load of every device and port,
//    memory rows, on CBC in its crash-isolated child, warm-started with a plan.
//  - place_for_throughput: the DP, then the MILP warm-started by it; the best plan by period that meets memory
//    and the latency bound (checked by simulating one request).
#pragma once

#include <memory>
#include <string>

#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/placement.h"
#include "moirai/placer.h"

namespace moirai {

struct ThroughputOptions {
  int in_flight = 0;          ///< requests in flight that memory must hold; 0 = twice the number of devices
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
  std::string status = "ok";     ///< DP: "optimal"; MILP: CBC's status
  std::string source;            ///< "stage-dp" or "period-milp"
};

/// Resolved in-flight count for `devices` devices.
int throughput_in_flight(const ThroughputOptions& options, int devices);

/// Exact stage DP (see above). Error when no stage plan fits in memory or meets the latency bound.
Expected<ThroughputResult> stage_dp(const CostTable& table, const PlaceOptions& place, const ThroughputOptions& options);

/// Period MILP, warm-started with `warm` when given (it must be complete). Error when CBC finds no plan.
Expected<ThroughputResult> period_milp(const CostTable& table, const PlaceOptions& place,
                                       const ThroughputOptions& options, const Placement* warm = nullptr);

/// The throughput placer: stage DP, then (options.milp) the period MILP warm-started by it, for at most
/// place.time_limit_s in all; returns the plan of least period among those that fit and meet the bound.
Expected<ThroughputResult> place_for_throughput(const CostTable& table, const PlaceOptions& place,
                                                const ThroughputOptions& options);

/// place_for_throughput behind the Placer interface (name "throughput"; not in the method registry: it
/// optimises another objective). PlaceResult: objective_ms = the period, mode = the plan's source and, for the
/// MILP, its proven lower bound on the period; lower_bound_ms stays 0 (it bounds makespans).
std::unique_ptr<Placer> make_throughput_placer(const ThroughputOptions& options);

}  // namespace moirai
