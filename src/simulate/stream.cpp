// Stream simulator: many requests through the event loop simulate() uses (event_loop.cpp; on simulate()'s stage
// graph when devices pay a per-stage overhead), then the stream's figures: latency percentiles, the steady-state
// rate, utilisation and memory with every request in flight (for decode graphs, one KV cache per sequence in
// flight). Also the period model of the throughput placers.
#include "moirai/stream.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "internal.h"

namespace moirai {
namespace {

template <class V>
auto& at(V& v, long i) {
  return v[static_cast<size_t>(i)];
}

double nearest_rank(std::vector<double> sorted, double q) {
  std::sort(sorted.begin(), sorted.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(rank, 1) - 1];
}

// Latency percentiles and the steady-state rate from the requests' arrivals and finishes.
void summarise(StreamResult& res, double warmup_fraction) {
  const int N = res.requests;
  res.latency_ms.resize(static_cast<size_t>(N));
  for (int r = 0; r < N; ++r) {
    at(res.latency_ms, r) = at(res.finish_ms, r) - at(res.arrival_ms, r);
    res.makespan_ms = std::max(res.makespan_ms, at(res.finish_ms, r));
  }
  res.latency_p50_ms = nearest_rank(res.latency_ms, 0.5);
  res.latency_p90_ms = nearest_rank(res.latency_ms, 0.9);
  res.latency_max_ms = nearest_rank(res.latency_ms, 1.0);
  std::vector<double> done_at = res.finish_ms;
  std::sort(done_at.begin(), done_at.end());
  const int warm = std::min(N - 1, static_cast<int>(std::floor(warmup_fraction * N)));
  const double window = done_at.back() - at(done_at, warm);
  res.throughput_rps = (N - 1 - warm >= 1 && window > 0) ? 1000.0 * (N - 1 - warm) / window
                                                         : (res.makespan_ms > 0 ? 1000.0 * N / res.makespan_ms : 0.0);
  res.utilisation.resize(res.busy_ms.size());
  for (size_t d = 0; d < res.busy_ms.size(); ++d) res.utilisation[d] = res.makespan_ms > 0 ? res.busy_ms[d] / res.makespan_ms : 0.0;
}

// With per-stage overheads (CostTable::models_stages) the stream runs simulate()'s stage graph request after
// request and maps its spans back to operators, so one request is simulate() there too.
EventTrace staged_trace(const CostTable& table, const Placement& placement, const Arrivals& arrivals,
                        const SimOptions& sim) {
  const StageGraph g = simulated_stages(table, placement, sim);
  EventTrace st = run_events(g.table, g.placement, arrivals, sim);
  EventTrace out;
  out.xs = transfers_of(table, placement);
  out.transfers = std::move(st.transfers);
  out.transfer_request = std::move(st.transfer_request);
  const int requests = static_cast<int>(arrivals.arrival_ms.size()), nx = out.xs.size();
  expand_stage_spans(table, g, requests, st.ops, out.transfers, out.ops);
  out.transfer_span.assign(static_cast<size_t>(requests) * static_cast<size_t>(nx), -1);
  for (int j = 0; j < static_cast<int>(out.transfers.size()); ++j) {
    const TransferSpan& tr = at(out.transfers, j);
    int x = at(out.xs.begin, tr.data);
    while (at(out.xs.dst, x) != tr.dst) ++x;  // one transfer per (data item, destination) in both graphs
    at(out.transfer_span, static_cast<long>(at(out.transfer_request, j)) * nx + x) = j;
  }
  out.busy_ms = std::move(st.busy_ms);  // operators plus one overhead per stage, as simulate() counts
  out.link_bytes = std::move(st.link_bytes);
  out.finish_ms = std::move(st.finish_ms);
  return out;
}

}  // namespace

int stream_in_flight(const StreamOptions& options, int devices) {
  return options.max_in_flight > 0 ? options.max_in_flight : 2 * std::max(1, devices);
}

std::vector<DeviceId> StreamResult::over_capacity(const CostTable& table) const {
  Schedule s;
  s.peak_memory = peak_memory;
  return s.over_capacity(table);
}

StreamResult simulate_stream(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim) {
  if (auto status = check_placement(table, placement); !status)
    MOIRAI_CHECK(false, "simulate_stream: " + status.error().message);
  MOIRAI_CHECK(options.requests >= 1, "simulate_stream: at least one request");
  StreamResult res;
  res.requests = options.requests;
  res.in_flight = stream_in_flight(options, table.num_devices());
  res.sequences = std::min(res.in_flight, res.requests);
  Arrivals arrivals{std::vector<double>(static_cast<size_t>(res.requests)), res.in_flight};
  for (int r = 0; r < res.requests; ++r)
    at(arrivals.arrival_ms, r) = options.arrival_rps > 0 ? 1000.0 * r / options.arrival_rps : 0.0;
  EventTrace trace = table.models_stages() ? staged_trace(table, placement, arrivals, sim)
                                            : run_events(table, placement, arrivals, sim);
  res.peak_memory = trace_peak_memory(table, placement, trace, res.sequences);
  res.arrival_ms = std::move(arrivals.arrival_ms);
  res.finish_ms = std::move(trace.finish_ms);
  res.busy_ms = std::move(trace.busy_ms);
  res.ops = std::move(trace.ops);
  res.transfers = std::move(trace.transfers);
  res.transfer_request = std::move(trace.transfer_request);
  summarise(res, options.warmup_fraction);
  return res;
}

PeriodLoads period_loads(const CostTable& table, const Placement& placement, const SimOptions& sim) {
  const int n = table.num_ops(), k = table.num_devices();
  PeriodLoads loads;
  loads.device_ms.assign(static_cast<size_t>(k), 0.0);
  loads.send_ms.assign(static_cast<size_t>(k), 0.0);
  loads.recv_ms.assign(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < n; ++op) at(loads.device_ms, at(placement.device, op)) += table.time(op, at(placement.device, op));
  const Transfers xs = transfers_of(table, placement);
  for (int x = 0; x < xs.size(); ++x) {
    const int i = at(xs.data, x);
    const DeviceId s = at(placement.device, at(table.data, i).producer), d = at(xs.dst, x);
    at(loads.send_ms, s) += table.transfer(i, s, d);
    at(loads.recv_ms, d) += table.transfer(i, s, d);
  }
  auto consider = [&](double v, const char* what, int d) {
    if (v > loads.period_ms) {
      loads.period_ms = v;
      loads.bottleneck = fmt::format("{} {}", what, at(table.device_names, d));
    }
  };
  for (int d = 0; d < k; ++d) consider(at(loads.device_ms, d), "device", d);
  if (sim.contention)
    for (int d = 0; d < k; ++d) {
      consider(at(loads.send_ms, d), "send port", d);
      consider(at(loads.recv_ms, d), "receive port", d);
    }
  return loads;
}

std::vector<double> stream_memory_bound(const CostTable& table, const Placement& placement, int in_flight) {
  const int k = table.num_devices();
  std::vector<double> resident(static_cast<size_t>(k), 0.0), acts(static_cast<size_t>(k), 0.0);
  for (int op = 0; op < table.num_ops(); ++op)
    at(resident, at(placement.device, op)) += resident_bytes(table, op, in_flight);
  std::vector<int> mark(static_cast<size_t>(k), -1);
  for (int i = 0; i < static_cast<int>(table.data.size()); ++i) {
    const DataItem& item = at(table.data, i);
    const DeviceId s = at(placement.device, item.producer);
    at(mark, s) = i;
    at(acts, s) += item.bytes - item.in_place_bytes;  // an in-place append: its cache is resident already
    for (OpId c : item.consumers) {
      const DeviceId d = at(placement.device, c);
      if (at(mark, d) != i) {
        at(mark, d) = i;
        at(acts, d) += item.bytes;
      }
    }
  }
  for (int d = 0; d < k; ++d) at(resident, d) += in_flight * at(acts, d);
  return resident;
}

double resident_bytes(const CostTable& table, OpId op, int sequences) {
  return at(table.param_bytes, op) + (sequences - 1) * at(table.state_bytes, op);
}

StreamFigures stream_figures(const CostTable& table, const Placement& placement, const StreamOptions& options,
                             const SimOptions& sim) {
  const StreamResult r = simulate_stream(table, placement, options, sim);
  const PeriodLoads loads = period_loads(table, placement, sim);
  StreamFigures f;
  f.requests = r.requests;
  f.in_flight = r.in_flight;
  f.arrival_rps = options.arrival_rps;
  f.throughput_rps = r.throughput_rps;
  f.latency_p50_ms = r.latency_p50_ms;
  f.latency_p90_ms = r.latency_p90_ms;
  f.latency_max_ms = r.latency_max_ms;
  f.period_ms = loads.period_ms;
  f.sequences = r.sequences;
  if (std::any_of(table.state_bytes.begin(), table.state_bytes.end(), [](double b) { return b > 0; }))
    f.tokens_per_s = r.throughput_rps;
  f.bottleneck = loads.bottleneck;
  f.utilisation = r.utilisation;
  f.peak_memory = r.peak_memory;
  return f;
}

}  // namespace moirai
