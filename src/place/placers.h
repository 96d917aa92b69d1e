// Factories of the placement methods (internal to src/place); registry.cpp lists them by name.
#pragma once

#include <memory>
#include <vector>

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
std::unique_ptr<Placer> make_accelerate_placer();
std::unique_ptr<Placer> make_llama_cpp_placer();
std::unique_ptr<Placer> make_exo_placer();
std::unique_ptr<Placer> make_layer_dp_placer();

namespace place {
/// GETF's rounding of one operator's LP shares over the speed groups (fastest first): the first group whose
/// cumulative share reaches 1/2.
int getf_group(const std::vector<double>& share);
}  // namespace place

}  // namespace moirai
