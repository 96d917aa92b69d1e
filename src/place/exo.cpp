// `exo`: exo's ring memory-weighted partitioning (exo src/exo/topology/ring_memory_weighted_partitioning_strategy.py
// and src/exo/master/placement_utils.py): the devices, sorted by memory (largest first), form the ring; each gets
// a contiguous range of layers in proportion to its memory (floor rounding; the last device takes the rest). The
// token embedding goes with the first shard, the final norm and LM head with the last. Speed is not considered,
// and nothing is held back beyond the free memory.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "layer_chain.h"
#include "placers.h"

namespace moirai {
namespace {

class ExoPlacer final : public Placer {
 public:
  std::string name() const override { return "exo"; }
  std::string summary() const override {
    return "exo's ring: devices by memory, largest first, each a layer range in proportion to its memory";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions&) const override {
    auto chain = place::find_layer_chain(table);
    if (!chain.ok()) return Error{"exo: " + chain.error().message};
    const int k = table.num_devices(), n_layer = chain->num_layers();
    std::vector<DeviceId> ring(static_cast<size_t>(k));
    std::iota(ring.begin(), ring.end(), 0);
    std::stable_sort(ring.begin(), ring.end(), [&](DeviceId a, DeviceId b) {
      return table.capacity[static_cast<size_t>(a)] > table.capacity[static_cast<size_t>(b)];
    });
    double total = 0;
    for (double c : table.capacity) total += c;
    std::vector<DeviceId> device(chain->blocks.size(), ring.front());
    int next = 0;  // next layer to assign
    DeviceId last = ring.front();
    for (size_t r = 0; r < ring.size() && next < n_layer; ++r) {
      const DeviceId d = ring[r];
      const int count = r + 1 == ring.size()
                            ? n_layer - next
                            : static_cast<int>(std::floor(n_layer * table.capacity[static_cast<size_t>(d)] / total));
      for (int i = 0; i < count && next < n_layer; ++i, ++next) device[static_cast<size_t>(next + 1)] = d;
      if (count > 0) last = d;
    }
    device.front() = device[1];  // embedding with the first shard
    device.back() = last;        // norm and head with the last
    PlaceResult result;
    result.placement = place::place_blocks(table, *chain, device);
    return result;
  }
};

}  // namespace

std::unique_ptr<Placer> make_exo_placer() { return std::make_unique<ExoPlacer>(); }

}  // namespace moirai
