// Registry of placement methods: the CLI and the bench loop over this list.
#include <utility>

#include "moirai/placer.h"
#include "placers.h"

namespace moirai {
namespace {

using Factory = std::unique_ptr<Placer> (*)();

// Order = the order users see them in (cheap baselines first, the MILP last).
const std::vector<std::pair<std::string, Factory>>& methods() {
  static const std::vector<std::pair<std::string, Factory>> list = {
      // METHODS (one line per method: {"name", make_x_placer},)
      {"heft", make_heft_placer},
      {"cpop", make_cpop_placer},
      {"m-topo", make_mtopo_placer},
      {"m-etf", make_metf_placer},
      {"m-sct", make_msct_placer},
      {"getf", make_getf_placer},
      {"single", make_single_placer},
      {"memory-proportional", make_memory_proportional_placer},
      {"accelerate", make_accelerate_placer},
      {"llama-cpp", make_llama_cpp_placer},
      {"exo", make_exo_placer},
      {"layer-dp", make_layer_dp_placer},
      {"placeto", make_placeto_placer},
      {"milp", make_milp_placer},
  };
  return list;
}

}  // namespace

std::vector<std::string> placer_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : methods()) names.push_back(name);
  return names;
}

Expected<std::unique_ptr<Placer>> make_placer(const std::string& name) {
  for (const auto& [known, factory] : methods())
    if (known == name) return factory();
  std::string list;
  for (const auto& known : placer_names()) list += (list.empty() ? "" : ", ") + known;
  return Error{"unknown method '" + name + "' (known: " + list + ")"};
}

}  // namespace moirai
