// Link fits beyond cluster.h's fit_link (private to the stages that measure links: src/run's profile).
#pragma once

#include <vector>

#include "moirai/cluster.h"

namespace moirai {

/// fit_link minimizing relative errors (each sample weighted by 1 / ms^2; r2 is weighted too): every size counts
/// alike, so a noisy large transfer on a busy machine does not swamp the latency the small ones show.
Expected<LinkFit> fit_link_relative(const std::vector<TransferSample>& samples);

}  // namespace moirai
