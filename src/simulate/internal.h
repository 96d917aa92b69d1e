// Private to src/simulate.
#pragma once

#include "moirai/simulate.h"

namespace moirai {

/// The operator-level simulator (simulator.cpp): every operator is its own task, no stage overhead. simulate()
/// calls it directly when no device pays a stage overhead, and on the stage graph otherwise.
Schedule simulate_ops(const CostTable& table, const Placement& placement, const SimOptions& options);

}  // namespace moirai
