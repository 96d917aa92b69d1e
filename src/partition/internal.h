// Helpers shared by the partition stage's files (not public API).
#pragma once

#include "moirai/partition.h"

namespace moirai {

/// Fills r.view_table, view_placement, view_schedule, parts and split_ops from r.expanded and r.schedule.
void fill_view(const CostTable& table, PartitionResult& r);

/// A PartitionResult (view included) from an expanded problem and its schedule.
PartitionResult finish_partition(const CostTable& table, std::vector<Split> splits, PartitionedProblem expanded,
                                 Schedule schedule, double seed_ms);

}  // namespace moirai
