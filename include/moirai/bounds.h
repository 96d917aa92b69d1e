// Lower bounds on the makespan of every plan that fits memory, each named by where it comes from, so that a
// reported gap can be trusted: a plan within 5% of a bound is within 5% of the best plan there is.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "moirai/cost.h"

namespace moirai {

struct BoundOptions {
  bool contention = true;     ///< ports queue (as the simulator does by default)
  double upper_bound = 0;     ///< a known makespan: the relaxation searches below it (0: a serial schedule's)
  double time_limit_s = 5;    ///< CBC budget of the assignment relaxation; 0 skips it
  int threads = 1;
};

struct LowerBound {
  double ms = 0;
  /// "critical path" (fastest device per operator, free transfers), "device load" (an LP: every operator
  /// placed once, memory capacities, T >= each device's work; beyond 40,000 operator x device pairs "total
  /// work": the fastest times shared by all devices), "assignment relaxation" (the MILP without order
  /// binaries, solved by CBC within the time cap), or "exact MILP" (CBC's bound of the full model).
  std::string source;
};

struct LowerBounds {
  LowerBound best;                ///< the largest
  std::vector<LowerBound> each;   ///< every bound computed, in the order above
};

/// Computes the bounds; each is <= the simulated makespan of every plan whose peak memory fits.
LowerBounds lower_bounds(const CostTable& table, const BoundOptions& options = {});

/// Adds one more bound and updates `best`.
void add_bound(LowerBounds& bounds, LowerBound bound);

}  // namespace moirai
