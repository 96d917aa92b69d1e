// `memory-proportional`: a sequential device map for any DAG (the idea of accelerate's device_map="sequential",
// applied operator by operator; `accelerate` is the faithful version for layered LLMs). Walk the operators in
// topological order and fill the devices in device order, each up to its capacity, moving to the next device
// when the next operator's parameters no longer fit. Unlike accelerate, a device's budget also has to hold the
// activations the simulator finds live on it, so when the simulated peak overflows a device, that device's
// weight budget is lowered by the overflow and the fill is redone.
#include <fmt/format.h>

#include "placers.h"

namespace moirai {
namespace {

class MemoryProportionalPlacer final : public Placer {
 public:
  std::string name() const override { return "memory-proportional"; }
  std::string summary() const override {
    return "fill devices in order up to their memory along the topological order (any DAG)";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    const int n = table.num_ops(), k = table.num_devices();
    std::vector<double> budget = table.capacity;
    // Each round lowers at least one budget by a positive overflow; a bounded number of rounds keeps it cheap.
    for (int round = 0; round < 4 * k + 8; ++round) {
      Placement p;
      p.device.assign(static_cast<size_t>(n), 0);
      DeviceId d = 0;
      double used = 0;
      bool placed_all = true;
      for (OpId op : table.topo_order) {
        const double need = table.param_bytes[static_cast<size_t>(op)];
        while (d < k && used + need > budget[static_cast<size_t>(d)]) {
          ++d;
          used = 0;
        }
        if (d == k) {
          placed_all = false;
          break;
        }
        p.device[static_cast<size_t>(op)] = d;
        used += need;
      }
      if (!placed_all) break;
      const Schedule s = simulate(table, p, options.sim);
      const auto over = s.over_capacity(table);
      if (over.empty()) {
        PlaceResult result;
        result.placement = std::move(p);
        return result;
      }
      for (DeviceId o : over)
        budget[static_cast<size_t>(o)] -= s.peak_memory[static_cast<size_t>(o)] - table.capacity[static_cast<size_t>(o)];
    }
    double params = 0;
    for (double b : table.param_bytes) params += b;
    std::string caps;
    double total = 0;
    for (DeviceId d = 0; d < k; ++d) {
      caps += fmt::format("{}{} {}", caps.empty() ? "" : ", ", table.device_names[static_cast<size_t>(d)],
                          table.capacity[static_cast<size_t>(d)]);
      total += table.capacity[static_cast<size_t>(d)];
    }
    return Error{fmt::format("memory-proportional: '{}' does not fit when filling devices in order: {} bytes of "
                             "parameters plus live activations, capacities {} (total {})",
                             table.name, params, caps, total)};
  }
};

}  // namespace

std::unique_ptr<Placer> make_memory_proportional_placer() { return std::make_unique<MemoryProportionalPlacer>(); }

}  // namespace moirai
