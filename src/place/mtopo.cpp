// m-TOPO: memory-balanced topological placement.
// Follows Baechi (Jeon et al., SoCC 2020, "m-TOPO"): walk the operators in topological order and fill the
// devices one after another, each up to a per-device limit of (total memory / number of devices + the largest
// operator's memory) and never beyond its capacity, so the model is cut into consecutive, memory-balanced chunks.
// Departures:
//  - memory per operator is the MemoryGuard's conservative count (parameters + activations held or received);
//  - when the balanced cut leaves operators over (tight capacities), a second pass cuts by capacity alone,
//    taking the devices from the largest capacity down; when that fails too (no consecutive cut fits), the
//    operators go where a memory packing puts them (the chunks are then no longer consecutive);
//  - heterogeneous devices: the chunking ignores speed, as in Baechi (it is a memory-only method); each device
//    runs its chunk in topological order.
#include <algorithm>
#include <numeric>

#include "list_schedule.h"
#include "placers.h"

namespace moirai {
namespace {

using place::MemoryGuard;

class MtopoPlacer final : public Placer {
 public:
  std::string name() const override { return "m-topo"; }
  std::string summary() const override {
    return "m-TOPO (Baechi 2020): topological order cut into memory-balanced consecutive chunks";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions&) const override {
    const int k = table.num_devices();
    {
      MemoryGuard guard(table);
      MOIRAI_TRY(guard.check_model(name()));
    }
    // Total = parameters + every data item once (what one device holding everything would count).
    double total = 0, largest = 0;
    {
      MemoryGuard guard(table);
      for (OpId op = 0; op < table.num_ops(); ++op) {
        total += table.param_bytes[static_cast<size_t>(op)];
        largest = std::max(largest, guard.standalone(op));
      }
      for (const auto& item : table.data) total += item.bytes;
    }
    std::vector<DeviceId> by_index(static_cast<size_t>(k));
    std::iota(by_index.begin(), by_index.end(), 0);
    std::vector<DeviceId> by_capacity = by_index;
    std::stable_sort(by_capacity.begin(), by_capacity.end(), [&](DeviceId a, DeviceId b) {
      return table.capacity[static_cast<size_t>(a)] > table.capacity[static_cast<size_t>(b)];
    });
    std::vector<DeviceId> device;
    PlaceResult result;
    if (cut(table, by_index, k > 0 ? total / k + largest : 0, device)) result.mode = "balanced chunks";
    else if (cut(table, by_capacity, -1, device)) result.mode = "chunks by capacity";
    else {
      device = MemoryGuard(table).packing();
      if (device.size() != static_cast<size_t>(table.num_ops()))
        return Error{"m-topo: no consecutive cut and no packing of the operators fits the capacities (activations "
                     "counted as never freed): " + table.memory_summary()};
      result.mode = "memory packing (no consecutive cut fits)";
    }
    auto& pl = result.placement;
    pl.device = device;
    pl.order.assign(static_cast<size_t>(k), {});
    for (OpId op : table.topo_order) pl.order[static_cast<size_t>(device[static_cast<size_t>(op)])].push_back(op);
    return result;
  }

 private:
  // Consecutive chunks over `devices` in that order, each up to min(limit, capacity); limit < 0: capacity only.
  static bool cut(const CostTable& table, const std::vector<DeviceId>& devices, double limit,
                  std::vector<DeviceId>& device) {
    MemoryGuard guard(table);
    device.assign(static_cast<size_t>(table.num_ops()), kNone);
    size_t cur = 0;
    for (OpId op : table.topo_order) {
      while (cur < devices.size()) {
        const DeviceId d = devices[cur];
        // The last device takes the rest up to its capacity (operators read from other chunks add bytes
        // that the balanced share does not foresee).
        const bool last = cur + 1 == devices.size();
        const bool under_limit = limit < 0 || last || guard.used(d) + guard.added(op, d) <= limit || guard.used(d) == 0;
        if (under_limit && guard.fits_now(op, d)) break;
        ++cur;
      }
      if (cur == devices.size()) return false;
      guard.place(op, devices[cur]);
      device[static_cast<size_t>(op)] = devices[cur];
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Placer> make_mtopo_placer() { return std::make_unique<MtopoPlacer>(); }

}  // namespace moirai
