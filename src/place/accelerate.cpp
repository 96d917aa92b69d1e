// `accelerate`: Hugging Face accelerate's device_map="auto", as its code does it (accelerate
// src/accelerate/utils/modeling.py: get_max_memory, get_balanced_memory, infer_auto_device_map).
//  - Budgets: each device's free memory (here: its capacity minus its reserve). With one GPU, 90% of it; with
//    several (get_balanced_memory), every GPU but the last gets min(free, model bytes / #GPUs + 1.25 x the
//    largest unsplittable module).
//  - Whole modules in definition order (token embedding, decoder layers 0..L-1, then the final norm with the LM
//    head: one block here) fill GPU 0, then GPU 1, ..., then the CPU. On GPU 0 and on the CPU (the "main
//    devices") the largest module still to place is kept free as a reserve for offloading.
//  - Module sizes are weights only: accelerate does not budget the KV cache or activations, so its map can
//    overflow a device once the cache grows; the simulator then reports "does not fit", as a real run would
//    end out of memory.
#include <algorithm>

#include <fmt/format.h>

#include "layer_chain.h"
#include "placers.h"

namespace moirai {
namespace {

class AcceleratePlacer final : public Placer {
 public:
  std::string name() const override { return "accelerate"; }
  std::string summary() const override {
    return "Hugging Face accelerate device_map=\"auto\": whole layers fill the GPUs in order, then the CPU";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions&) const override {
    auto chain = place::find_layer_chain(table);
    if (!chain.ok()) return Error{"accelerate: " + chain.error().message};
    const auto& blocks = chain->blocks;
    std::vector<DeviceId> order = place::devices_of_kind(table, "gpu");
    const size_t gpus = order.size();
    const std::vector<DeviceId> cpus = place::devices_of_kind(table, "cpu");
    if (!cpus.empty()) order.push_back(cpus.front());
    if (order.empty()) return Error{"accelerate: the cluster has no device of kind gpu or cpu"};

    std::vector<double> size(blocks.size());
    double model = 0, largest = 0;
    for (size_t b = 0; b < blocks.size(); ++b) {
      size[b] = blocks[b].param_bytes - blocks[b].state_bytes;  // weights only
      model += size[b];
      largest = std::max(largest, size[b]);
    }
    std::vector<double> budget;
    for (DeviceId d : order) budget.push_back(table.capacity[static_cast<size_t>(d)]);
    if (gpus == 1) budget[0] *= 0.9;
    if (gpus > 1)
      for (size_t g = 0; g + 1 < gpus; ++g)
        budget[g] = std::min(budget[g], model / static_cast<double>(gpus) + 1.25 * largest);
    auto main_device = [&](size_t i) { return i == 0 || (!cpus.empty() && i + 1 == order.size()); };

    std::vector<DeviceId> device(blocks.size(), order.front());
    size_t at = 0;
    double used = 0;
    for (size_t b = 0; b < blocks.size(); ++b) {
      const double reserve = *std::max_element(size.begin() + static_cast<std::ptrdiff_t>(b), size.end());
      while (at < order.size() && used + size[b] > budget[at] - (main_device(at) ? reserve : 0.0)) {
        ++at;
        used = 0;
      }
      if (at == order.size())
        return Error{fmt::format("accelerate: '{}' does not fit: module {} ({:g} bytes) would be offloaded to disk",
                                 table.name, blocks[b].name, size[b])};
      device[b] = order[at];
      used += size[b];
    }
    PlaceResult result;
    result.placement = place::place_blocks(table, *chain, device);
    return result;
  }
};

}  // namespace

std::unique_ptr<Placer> make_accelerate_placer() { return std::make_unique<AcceleratePlacer>(); }

}  // namespace moirai
