// Placement: which device runs each operator, optionally in what order each device runs its operators and in
// what order the ports carry transfers. The simulator turns it into a Schedule.
#pragma once

#include <map>
#include <utility>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/graph.h"

namespace moirai {

struct Placement {
  std::vector<DeviceId> device;          ///< per operator
  std::vector<std::vector<OpId>> order;  ///< per device; empty = the simulator's list policy decides
  /// Optional transfer order: priority of the transfer of data item `first` to device `second` (lower goes
  /// first on both its send and its receive port). Empty = transfers go in order of readiness. Given with
  /// `order`, the simulator builds the earliest schedule that keeps all these orders (a semi-active schedule),
  /// so a MILP solution's own orders reproduce its makespan or better.
  std::map<std::pair<int, DeviceId>, double> transfer_priority;
};

/// One piece of an operator split across devices (intra-operator partitioning): `share` of its work on
/// `device`, from `start_ms` to `end_ms`. GenEFlow produces them, the report shows them.
struct OpPart {
  DeviceId device = 0;
  double share = 0;  ///< fraction of the operator's work, in (0, 1]
  double start_ms = 0;
  double end_ms = 0;
};

}  // namespace moirai
