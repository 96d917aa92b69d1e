// Discrete-event simulator: turns any Placement into a Schedule under one clock, so every placer is judged
// the same way. It models what the executor does, term by term:
//  - compute: an operator occupies its device for CostTable::time (analytic roofline or measured; a measured
//    profile of version 2 gives the time net of the per-call overhead), one operator at a time per device;
//  - per-stage overhead: the executor runs one runtime session per stage (a maximal run of one device's
//    operators, moirai/stages.h, the same function export uses). When some device has a stage overhead > 0
//    (CostTable::stage_overhead_ms, from the cluster's `stage_overhead_us` or the profile), the simulator
//    schedules stages, not operators: a stage starts once all the data it receives has arrived, costs
//    overhead + the sum of its operators' times, and its outputs leave when it ends. With all overheads 0 the
//    operators are scheduled one by one (every earlier result is unchanged);
//  - transfers on links: a cross-device data item is one transfer per destination device (shared by every
//    consumer there), latency + bytes / bandwidth of the directed link;
//  - ports: with contention a transfer holds the source's send port and the destination's receive port for its
//    whole duration (one transfer at a time on each); without, transfers never queue.
// Memory is accounted from the finished schedule (parameters resident, activations while live).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "moirai/cost.h"
#include "moirai/placement.h"

namespace moirai {

struct SimOptions {
  bool contention = true;  ///< false: ports never queue (the classic list-scheduling model, e.g. HEFT)
};

struct OpSpan {
  double start_ms = 0;
  double end_ms = 0;
};

struct TransferSpan {
  int data = 0;  ///< DataItem id
  DeviceId src = 0;
  DeviceId dst = 0;
  double start_ms = 0;
  double end_ms = 0;
  double bytes = 0;
};

struct Schedule {
  std::vector<OpSpan> ops;  ///< per operator
  std::vector<TransferSpan> transfers;  ///< in start order
  double makespan_ms = 0;
  std::vector<double> busy_ms;      ///< per device: sum of operator times
  std::vector<double> peak_memory;  ///< per device: parameters + live activations at the worst instant
  std::vector<double> link_bytes;   ///< n x n, [src * n + dst]
  std::vector<std::vector<OpId>> order;  ///< per device, operators in the order they ran
  /// When the table models stages (CostTable::models_stages): per operator its stage, and per stage its device,
  /// exactly the stages export derives from this schedule's start times. Empty otherwise.
  std::vector<int> stage, stage_device;

  /// Devices whose peak exceeds their capacity.
  std::vector<DeviceId> over_capacity(const CostTable& table) const;
};

/// Simulates a placement. Requires a complete placement (checked); with Placement::order given it is obeyed
/// (when stages are modelled: it decides the first timeline, then each device runs its stages in stage order).
Schedule simulate(const CostTable& table, const Placement& placement, const SimOptions& options = {});

/// How validate() names a schedule's entries when they come from a file: per operator, per transfer (index in
/// Schedule::transfers) and per device, the field path to fix ("ops[3]", "transfers[5]", "devices[0]"). With
/// names, each message starts with the fields it is about ("ops[3].start_ms/end_ms/device: ...").
struct FieldNames {
  std::vector<std::string> ops, transfers, devices;
  std::string makespan = "makespan_ms";
};

/// Checks a schedule against every invariant (precedence, no overlap per device / send port / receive
/// port, durations match the cost table, memory within capacity, every operator placed once, makespan = last
/// finish, Schedule::peak_memory (when given) equal to peak_memory_from_spans). Returns one message per
/// violation, with the numbers; empty means valid.
std::vector<std::string> validate(const CostTable& table, const Placement& placement, const Schedule& schedule,
                                  const SimOptions& options = {}, const FieldNames* names = nullptr);

/// Peak memory per device derived from the schedule's spans alone, independently of simulate()'s accounting:
/// parameters always resident; an activation on its producer's device from the producer's start to the end of
/// its last local reader and of its outgoing transfers (to the makespan when nobody reads it); a received copy
/// from its transfer's start to the end of its last reader there. Intervals are half-open. Also returns, per
/// device, the first instant the peak is reached. Requires a complete placement with valid devices.
struct MemoryPeaks {
  std::vector<double> peak, when;
};
MemoryPeaks peak_memory_from_spans(const CostTable& table, const Placement& placement, const Schedule& schedule);

/// The coordinator's part of one request, as `moirai run` performs it (src/run/run.cpp): before any stage runs it
/// pushes each graph input to every device that reads it, one push after another (the next starts when the
/// last is acknowledged); each device that runs operators answers once its operators and its outgoing
/// transfers have ended, returning the graph outputs it produced over its `to_coordinator` link.
struct HandOff {
  double push_ms = 0;            ///< all pushes, one after another
  std::vector<double> fetch_ms;  ///< per device: returning its graph outputs (the link's latency when none)
};

/// The hand-off of `placement` over the cluster's coordinator links (Cluster::push_ms, fetch_ms); `graph` is the
/// (coarse) graph the cost table was built from, so its operator ids are the placement's. Graph inputs are
/// pushed in tensor order, each to its reading devices in ascending order.
HandOff hand_off(const Graph& graph, const Cluster& cluster, const Placement& placement);

/// A request as `moirai run` measures it, from sending the inputs to the last answer: push_ms, then the schedule,
/// then the latest over devices with operators of (its last operator's or outgoing transfer's end + its fetch).
/// The schedule is shifted by the whole push: exact for one graph input (every bundled model has one), an upper
/// bound for several (a stage reading only the first input could start before the others have arrived).
double request_ms(const Schedule& schedule, const Placement& placement, const HandOff& hand_off);

/// Checks that a placement is complete and names only existing devices; returns the first problem.
Status check_placement(const CostTable& table, const Placement& placement);

/// When Placement::order contradicts precedence (simulate() would deadlock), the first operator that can never
/// start at the head of its device's order and the input (data id) it waits for; nullopt when the orders can run.
/// Requires a valid placement (check_placement); transfer priorities are not considered.
struct OrderDeadlock {
  OpId op = kNone;
  int data = 0;
};
std::optional<OrderDeadlock> order_deadlock(const CostTable& table, const Placement& placement);

}  // namespace moirai
