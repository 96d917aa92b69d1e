// Stages: how the executor groups a plan's operators into runnable units. A stage is a maximal run of one
// device's operators that can execute as one ONNX Runtime session call: export writes one sub-model per stage,
// and the simulator (with a per-stage overhead) runs one stage as one task. Both call assign_stages, so the
// simulated and the exported stages are the same by construction.
#pragma once

#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai {

struct StageInput {
  std::vector<std::string> names;       ///< per operator (for errors)
  std::vector<int> device;              ///< per operator: device (or any stage key), a small non-negative integer
  std::vector<double> start_ms;         ///< per operator: planned start, the preferred order
  std::vector<std::vector<int>> preds;  ///< per operator: distinct predecessor operators
};

struct Stages {
  std::vector<int> stage;             ///< per operator
  std::vector<int> device;            ///< per stage
  std::vector<std::vector<int>> ops;  ///< per stage, operators in run order

  int size() const { return static_cast<int>(device.size()); }
};

/// Walks the operators in a topological order that follows the planned start times (ties by index) and keeps an
/// operator in its device's open stage only when all its predecessors sit in that stage or an earlier one;
/// otherwise it opens a new stage. Every stage edge then goes from a lower to a higher index, so the stages are
/// acyclic and their index order is a valid run order. `source` names the plan in the error for operators that
/// depend on each other in a cycle.
Expected<Stages> assign_stages(const StageInput& input, const std::string& source);

}  // namespace moirai
