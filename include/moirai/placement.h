// Placement: which device runs each operator, and optionally in what order each device runs its operators.
#pragma once

#include <vector>

#include "moirai/cluster.h"
#include "moirai/graph.h"

namespace moirai {

struct Placement {
  std::vector<DeviceId> device;            ///< per operator
  std::vector<std::vector<OpId>> order;    ///< per device; empty = let the simulator's list policy decide
};

}  // namespace moirai
