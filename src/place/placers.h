// Factories of the placement methods (internal to src/place); registry.cpp lists them by name.
#pragma once

#include <memory>

#include "moirai/placer.h"

namespace moirai {

std::unique_ptr<Placer> make_single_placer();
std::unique_ptr<Placer> make_memory_proportional_placer();
std::unique_ptr<Placer> make_heft_placer();
std::unique_ptr<Placer> make_cpop_placer();
std::unique_ptr<Placer> make_mtopo_placer();
std::unique_ptr<Placer> make_metf_placer();
std::unique_ptr<Placer> make_msct_placer();
std::unique_ptr<Placer> make_getf_placer();
std::unique_ptr<Placer> make_placeto_placer();
std::unique_ptr<Placer> make_milp_placer();

}  // namespace moirai
