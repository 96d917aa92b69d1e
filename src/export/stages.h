// Stage assignment (private to src/export): splits each device's operators into stages so that the graph of
// stages is acyclic and stage creation order is a valid run order.
#pragma once

#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai::export_detail {

struct StageInput {
  std::vector<std::string> names;    ///< per operator (for errors)
  std::vector<std::string> device;   ///< per operator
  std::vector<double> start_ms;      ///< per operator: preferred order
  std::vector<std::vector<int>> preds;  ///< per operator: distinct predecessor operators
};

struct Stages {
  std::vector<int> stage;            ///< per operator
  std::vector<std::string> device;   ///< per stage
  std::vector<std::vector<int>> ops; ///< per stage, operators in run order
};

/// Walks the operators in a topological order that follows the planned start times and keeps an operator in
/// its device's open stage only when all its predecessors sit in that stage or an earlier one; otherwise it
/// opens a new stage. Every stage edge then goes from a lower to a higher index, so the stages are acyclic.
/// `source` names the plan in the error for operators that depend on each other in a cycle.
Expected<Stages> assign_stages(const StageInput& input, const std::string& source);

}  // namespace moirai::export_detail
