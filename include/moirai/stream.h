// Serving a stream of requests with one placement: a pipelined discrete-event simulation (many requests in
// flight, each device and port serving work first-in first-out in request arrival order) and the period model
// the throughput placers optimise (the largest per-request busy time of any device, send port or receive port).
#pragma once

#include <string>
#include <vector>

#include "moirai/cost.h"
#include "moirai/placement.h"
#include "moirai/simulate.h"

namespace moirai {

struct StreamOptions {
  int requests = 1;          ///< requests simulated
  double arrival_rps = 0;    ///< arrival rate (requests per second); 0 = all waiting at time 0 (back to back)
  /// Requests admitted at once (a request enters when one in flight finishes); 0 = twice the number of devices,
  /// enough for every device and every link of a pipeline to hold one request.
  int max_in_flight = 0;
  double warmup_fraction = 0.25;  ///< completions ignored by the steady-state throughput
};

/// Resolved admission limit of `options` for a table with `devices` devices.
int stream_in_flight(const StreamOptions& options, int devices);

struct StreamResult {
  int requests = 0;
  int in_flight = 0;                ///< admission limit used
  /// Sequences in flight, min(in_flight, requests): for a decode graph each admission slot is one sequence
  /// whose steps follow one another, and each holds its own KV cache (CostTable::state_bytes) all along.
  int sequences = 0;
  std::vector<double> arrival_ms;   ///< per request: when it arrived (it may wait for admission)
  std::vector<double> finish_ms;    ///< per request: end of its last operator
  std::vector<double> latency_ms;   ///< finish - arrival
  double makespan_ms = 0;           ///< last finish
  /// Steady state: completions after the warm-up fraction, (count - 1) / (time between the first and the last
  /// of them); with fewer than two such completions, requests / makespan.
  double throughput_rps = 0;
  double latency_p50_ms = 0, latency_p90_ms = 0, latency_max_ms = 0;  ///< nearest-rank percentiles
  std::vector<double> busy_ms;      ///< per device, all requests
  std::vector<double> utilisation;  ///< per device: busy / makespan
  /// Per device: parameters once, one KV cache per sequence (decode graphs), live activations of every request.
  std::vector<double> peak_memory;
  /// Spans of every request, request-major: ops[r * num_ops + op]; transfers in start order (data ids are the
  /// table's, `transfer_request` gives each one's request).
  std::vector<OpSpan> ops;
  std::vector<TransferSpan> transfers;
  std::vector<int> transfer_request;

  /// Devices whose peak exceeds their capacity.
  std::vector<DeviceId> over_capacity(const CostTable& table) const;
};

/// Simulates `options.requests` copies of the model under one placement. Each device runs, among its ready
/// operators, the one of the earliest request (then earliest ready, then topological position); with
/// Placement::order each device repeats its order request after request; ports likewise (transfer priorities
/// repeat per request). When devices pay a per-stage overhead (CostTable::models_stages) it runs simulate()'s
/// stages, each device its stages in order, request after request. With one request the result equals
/// simulate() exactly: both run one event loop (spans, makespan; peak memory too, to rounding with stages,
/// where simulate() takes validate()'s accounting of the same rule).
StreamResult simulate_stream(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim = {});

/// Per-request busy time of every resource under a placement: device compute, send port and receive port (one
/// transfer per data item and remote device, as the simulator sends them). The period is their maximum (ports
/// only with contention); no pipelined schedule serves requests faster than one per period.
struct PeriodLoads {
  std::vector<double> device_ms, send_ms, recv_ms;
  double period_ms = 0;
  std::string bottleneck;  ///< "device NAME", "send port NAME" or "receive port NAME"
};
PeriodLoads period_loads(const CostTable& table, const Placement& placement, const SimOptions& sim = {});

/// Memory a device needs to serve `in_flight` requests at once, an upper bound the throughput placers plan
/// with: its parameters once, one KV cache per request in flight (decode graphs: each is a sequence), plus,
/// per request, every activation it produces or receives (as if all were live together; an in-place append
/// adds only its new part on its producer's device).
std::vector<double> stream_memory_bound(const CostTable& table, const Placement& placement, int in_flight);

/// Memory an operator holds for the whole run with `sequences` sequences in flight: its parameters once and its
/// state (CostTable::state_bytes, a KV cache; param_bytes holds one) once per sequence.
double resident_bytes(const CostTable& table, OpId op, int sequences);

/// What a plan reports about serving a stream: the stream simulation's figures and the period model's.
struct StreamFigures {
  int requests = 0, in_flight = 0;
  double arrival_rps = 0;  ///< 0 = back to back
  double throughput_rps = 0, latency_p50_ms = 0, latency_p90_ms = 0, latency_max_ms = 0;
  double period_ms = 0;  ///< period_loads(): 1000 / period_ms bounds throughput_rps
  /// Decode graphs (a KV cache, CostTable::state_bytes): each request is one step of a sequence, which yields
  /// one token, so the whole system's tokens/s is throughput_rps with `sequences` sequences in flight, each
  /// holding its cache. 0 for other models.
  double tokens_per_s = 0;
  int sequences = 0;
  std::string bottleneck;
  std::vector<double> utilisation, peak_memory;  ///< per device, under the stream
};
StreamFigures stream_figures(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim = {});

}  // namespace moirai
