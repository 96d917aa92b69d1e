// A placement made to fit by ordering: the simulator's list order keeps whatever activations its timing leaves
// live, while BTSearch's order of a device's operators keeps the fewest. Overflowing devices get BTSearch's
// order first (the others keep the order they ran in, so their timing is untouched); when that is not enough,
// every device does. The orders are adopted only when the plan then fits, and the relative overflow that
// remains (or that BTSearch's lower bounds prove no order avoids) is reported for searches that rank plans by it.
#include <algorithm>

#include "moirai/schedule.h"
#include "moirai/simulate.h"

namespace moirai {

double relative_overflow(const CostTable& table, const std::vector<double>& peak) {
  double overflow = 0;
  for (DeviceId d = 0; d < table.num_devices(); ++d) {
    const double cap = table.capacity[static_cast<size_t>(d)];
    const double over = peak[static_cast<size_t>(d)] - cap;
    if (over > 1e-9 * std::max(1.0, cap)) overflow += cap > 0 ? over / cap : 1.0;
  }
  return overflow;
}

MemoryFit fit_with_memory_orders(const CostTable& table, Placement& placement, const SimOptions& sim,
                                 const SearchOptions& search, OrderCache* cache) {
  MemoryFit fit;
  fit.schedule = simulate(table, placement, sim);
  fit.overflow = relative_overflow(table, fit.schedule.peak_memory);
  if (fit.overflow == 0) return fit;
  const int k = table.num_devices();
  const std::vector<std::vector<OpId>>& current = placement.order.empty() ? fit.schedule.order : placement.order;
  std::vector<char> flagged(static_cast<size_t>(k), 0);
  for (DeviceId d : fit.schedule.over_capacity(table)) flagged[static_cast<size_t>(d)] = 1;
  const std::vector<char> every(static_cast<size_t>(k), 1);
  bool tried_all = false;
  for (const std::vector<char>* which : {static_cast<const std::vector<char>*>(&flagged), &every}) {
    if (tried_all) break;
    tried_all = std::count(which->begin(), which->end(), 1) == k;
    MemoryOrders orders = memory_orders(table, placement, current, *which, search, cache);
    std::vector<double> bound_peak = fit.schedule.peak_memory;  // devices not searched: as simulated
    for (DeviceId d = 0; d < k; ++d)
      if ((*which)[static_cast<size_t>(d)]) bound_peak[static_cast<size_t>(d)] = orders.lower_bound[static_cast<size_t>(d)];
    fit.bound_overflow = relative_overflow(table, bound_peak);
    Placement ordered = placement;
    ordered.order = std::move(orders.order);
    ordered.transfer_priority.clear();  // priorities were set for the old orders
    Schedule schedule = simulate(table, ordered, sim);
    const double overflow = relative_overflow(table, schedule.peak_memory);
    if (overflow == 0) {
      placement = std::move(ordered);
      fit.schedule = std::move(schedule);
      fit.overflow = 0;
      fit.ordered = true;
      return fit;
    }
    fit.overflow = std::min(fit.overflow, overflow);
    if (fit.bound_overflow > 0) break;  // no order of these devices fits: searching more cannot help
  }
  return fit;
}

}  // namespace moirai
