// Discrete-event simulator: turns any Placement into a Schedule under one clock, so every placer is judged
// the same way. Model: one operator at a time per device; a cross-device data item is one transfer per
// destination device that holds the source's send port and the destination's receive port.
#pragma once

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

  /// Devices whose peak exceeds their capacity.
  std::vector<DeviceId> over_capacity(const CostTable& table) const;
};

/// Simulates a placement. Requires a complete placement (checked); with Placement::order given it is obeyed.
Schedule simulate(const CostTable& table, const Placement& placement, const SimOptions& options = {});

/// Checks a schedule against every invariant (precedence, no overlap per device / send port / receive
/// port, durations match the cost table, memory within capacity, every operator placed once, makespan = last
/// finish). Returns one message per violation, with the numbers; empty means valid.
std::vector<std::string> validate(const CostTable& table, const Placement& placement, const Schedule& schedule,
                                  const SimOptions& options = {});

/// Checks that a placement is complete and names only existing devices; returns the first problem.
Status check_placement(const CostTable& table, const Placement& placement);

}  // namespace moirai
