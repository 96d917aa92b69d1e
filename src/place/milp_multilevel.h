// Multilevel solve for the Moirai MILP (as METIS and KaHIP do for partitioning): contract the problem until
// the exact MILP proves it quickly, solve it there, then project the plan one level finer and improve it by
// local search, down to the original table (contraction: contract_table in moirai/coarsen.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moirai/coarsen.h"
#include "moirai/placer.h"
#include "milp_formulation.h"

namespace moirai {

/// The fine plan that runs each group on its coarse device, in the coarse start order (members in topological
/// order). nullopt when the orders contradict the precedences.
std::optional<MilpPlan> project_plan(const CostTable& fine, const std::vector<MilpEdge>& fine_edges,
                                     const Contraction& c, const MilpPlan& coarse, bool contention);

using LevelResult = PlaceResult::Level;

/// Runs the multilevel solve within `seconds`; `exact` solves one level's exact MILP from a start plan.
/// Returns the plan on the original table (or nullopt when no level produced one that fits memory).
using ExactSolve = std::function<std::pair<std::optional<MilpPlan>, std::string>(
    const CostTable&, const MilpPlan& start, double seconds)>;
std::optional<MilpPlan> milp_multilevel(const CostTable& table, const MilpPlan& incumbent, const PlaceOptions& options,
                                        double seconds, int coarsest, const ExactSolve& exact,
                                        std::vector<LevelResult>& levels);

}  // namespace moirai
