// `single`: the whole model on one device, the one with the lowest total time among those whose capacity holds
// the model (parameters plus the peak of live activations). The baseline every split must beat. The peak is the
// smaller of the list schedule's and the memory-optimal order's (BTSearch): a model that fits only when its
// operators run in a good order is placed, with that order, instead of rejected.
#include <fmt/format.h>

#include <algorithm>

#include "moirai/schedule.h"
#include "placers.h"

namespace moirai {
namespace {

class SinglePlacer final : public Placer {
 public:
  std::string name() const override { return "single"; }
  std::string summary() const override {
    return "everything on the fastest device whose memory holds the whole model";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    const int n = table.num_ops(), k = table.num_devices();
    DeviceId best = -1;
    double best_time = 0, least_need = -1;
    std::vector<OpId> memory_order;  // BTSearch's order, computed once: it does not depend on the device
    double memory_order_peak = -1;
    for (DeviceId d = 0; d < k; ++d) {
      Placement p;
      p.device.assign(static_cast<size_t>(n), d);
      const Schedule s = simulate(table, p, options.sim);
      double need = s.peak_memory[static_cast<size_t>(d)];
      if (need > table.capacity[static_cast<size_t>(d)] * (1 + 1e-12)) {
        if (memory_order_peak < 0) {
          SearchOptions search;
          search.time_limit_s = std::min(10.0, options.time_limit_s);
          OrderResult r = btsearch(table, {}, search);
          memory_order = std::move(r.order);
          memory_order_peak = r.peak_bytes;
        }
        need = std::min(need, memory_order_peak);
      }
      if (least_need < 0 || need < least_need) least_need = need;
      double total = 0;
      for (OpId op = 0; op < n; ++op) total += table.time(op, d);
      if (need > table.capacity[static_cast<size_t>(d)] * (1 + 1e-12)) continue;
      if (best < 0 || total < best_time) {
        best = d;
        best_time = total;
      }
    }
    if (best < 0) {
      std::string caps;
      for (DeviceId d = 0; d < k; ++d)
        caps += fmt::format("{}{} {}", caps.empty() ? "" : ", ", table.device_names[static_cast<size_t>(d)],
                            table.capacity[static_cast<size_t>(d)]);
      return Error{fmt::format("single: '{}' needs {} bytes on one device (parameters and peak activations) but no "
                               "device holds it (capacities: {})",
                               table.name, least_need, caps)};
    }
    PlaceResult result;
    result.placement.device.assign(static_cast<size_t>(n), best);
    result.objective_ms = best_time;
    Placement list;
    list.device = result.placement.device;
    if (simulate(table, list, options.sim).peak_memory[static_cast<size_t>(best)] >
        table.capacity[static_cast<size_t>(best)] * (1 + 1e-12)) {
      result.placement.order.assign(static_cast<size_t>(k), {});
      result.placement.order[static_cast<size_t>(best)] = memory_order;
      result.mode = "memory-optimal order";
    }
    return result;
  }
};

}  // namespace

std::unique_ptr<Placer> make_single_placer() { return std::make_unique<SinglePlacer>(); }

}  // namespace moirai
