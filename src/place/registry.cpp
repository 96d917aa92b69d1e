// Registry of placement methods: the CLI and the bench loop over this list.
#include <utility>

#include "moirai/placer.h"
#include "placers.h"

namespace moirai {
namespace {

using Factory = std::unique_ptr<Placer> (*)();

struct Method {
  std::string name;
  Factory make;
  /// Builds its plan in one pass (no search that fills a time budget): cheap enough to run them all as the
  /// MILP's warm starts and as GenEFlow's seeds.
  bool heuristic = true;
};

// Order = the order users see them in (cheap baselines first, the MILP last).
const std::vector<Method>& methods() {
  static const std::vector<Method> list = {
      // METHODS (one line per method: {"name", make_x_placer[, false when it searches]},)
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
      {"placeto", make_placeto_placer, false},
      {"milp", make_milp_placer, false},
  };
  return list;
}

constexpr std::pair<PlanStatus, const char*> kPlanStatusNames[] = {
    {PlanStatus::ok, "ok"},
    {PlanStatus::optimal, "optimal"},
    {PlanStatus::feasible, "feasible"},
    {PlanStatus::time_limit, "time limit"},
    {PlanStatus::infeasible, "infeasible"},
    {PlanStatus::no_solution, "no solution"},
    {PlanStatus::crashed, "solver crashed"},
    {PlanStatus::heuristic_kept, "heuristic kept"},
    {PlanStatus::imported, "imported"},
};

}  // namespace

const char* plan_status_name(PlanStatus status) {
  for (const auto& [s, name] : kPlanStatusNames)
    if (s == status) return name;
  return "?";
}

std::optional<PlanStatus> plan_status_from_name(std::string_view name) {
  for (const auto& [s, n] : kPlanStatusNames)
    if (n == name) return s;
  return std::nullopt;
}

std::vector<std::string> placer_names() {
  std::vector<std::string> names;
  for (const auto& m : methods()) names.push_back(m.name);
  return names;
}

std::vector<std::string> heuristic_placer_names() {
  std::vector<std::string> names;
  for (const auto& m : methods())
    if (m.heuristic) names.push_back(m.name);
  return names;
}

Expected<std::unique_ptr<Placer>> make_placer(const std::string& name) {
  for (const auto& m : methods())
    if (m.name == name) return m.make();
  std::string list;
  for (const auto& known : placer_names()) list += (list.empty() ? "" : ", ") + known;
  return Error{"unknown method '" + name + "' (known: " + list + ")"};
}

}  // namespace moirai
