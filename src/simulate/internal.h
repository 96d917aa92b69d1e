// Private to src/simulate: the one event loop behind simulate() and simulate_stream().
#pragma once

#include <vector>

#include "moirai/simulate.h"
#include "moirai/stages.h"

namespace moirai {

/// The operator-level simulator (simulator.cpp): every operator is its own task, no stage overhead. simulate()
/// calls it directly when no device pays a stage overhead, and on the stage graph otherwise.
Schedule simulate_ops(const CostTable& table, const Placement& placement, const SimOptions& options);

/// The stages of a placement as a problem of their own (staged.cpp): one task per stage costing its device's
/// overhead plus its operators' times, the data crossing stages (renamed; `original` maps back), and a placement
/// running each device's stages in index order, with the transfer priorities carried over.
struct StageGraph {
  Stages stages;
  CostTable table;
  Placement placement;
  std::vector<int> original;  ///< stage-graph data id -> table data id
};
StageGraph stage_graph(const CostTable& table, const Placement& placement, Stages stages);

/// The stage graph simulate() settles on (its fixed point) when the table models stages.
StageGraph simulated_stages(const CostTable& table, const Placement& placement, const SimOptions& options);

/// Turns the stage graph's spans of `requests` requests (request-major) into operator spans: each stage's
/// operators one after another from its start plus its device's overhead. Renames `transfers`' data back.
void expand_stage_spans(const CostTable& table, const StageGraph& g, int requests, const std::vector<OpSpan>& stage_spans,
                        std::vector<TransferSpan>& transfers, std::vector<OpSpan>& ops);

/// Cross-device transfers of one request: one per (data item, remote device with a reader), CSR by data item
/// (`begin` has one entry per item plus one), destinations ascending within an item.
struct Transfers {
  std::vector<int> begin, data, dst;
  int size() const { return static_cast<int>(data.size()); }
};
Transfers transfers_of(const CostTable& table, const Placement& placement);

/// Requests entering the event loop: when each arrives, and how many may be inside at once (the next one is
/// admitted when one finishes, not before its arrival).
struct Arrivals {
  std::vector<double> arrival_ms;
  int in_flight = 1;
};

/// What the event loop did. Work is numbered request-major: operator op of request r is r * num_ops + op,
/// transfer x of request r is r * xs.size() + x.
struct EventTrace {
  Transfers xs;
  std::vector<OpSpan> ops;                ///< per operator of every request
  std::vector<TransferSpan> transfers;    ///< in start order
  std::vector<int> transfer_request;      ///< per entry of `transfers`: its request
  std::vector<int> transfer_span;         ///< per transfer of every request: its index in `transfers`
  std::vector<std::vector<OpId>> order;   ///< per device: operators in the order they ran (every request)
  std::vector<double> busy_ms;            ///< per device: sum of operator times
  std::vector<double> link_bytes;         ///< k x k, [src * k + dst]
  std::vector<double> finish_ms;          ///< per request: end of its last operator (admission when it has none)
};

/// Runs requests of the model through one placement (see simulator.cpp for the policies). Throws (an internal
/// error) when given orders deadlock.
EventTrace run_events(const CostTable& table, const Placement& placement, const Arrivals& arrivals,
                      const SimOptions& options);

/// Peak memory per device of a trace. Resident: parameters once, and the state (KV cache) of each of
/// `sequences` sequences (param_bytes holds one). Per request: an activation lives on its producer's device
/// from the producer's start until its last local reader and its outgoing transfers end (an unread output until
/// its request finishes), minus the part written in place (DataItem::in_place_bytes); a received copy from its
/// transfer's start until its last reader there ends. Intervals are half-open; at one instant, frees come first.
std::vector<double> trace_peak_memory(const CostTable& table, const Placement& placement, const EventTrace& trace,
                                      int sequences);

}  // namespace moirai
