// `llama-cpp`: llama.cpp's layer split (`-sm layer`, no `--tensor-split`), as llama_model::load_tensors in
// src/llama-model.cpp does it: the L blocks and the output layer are L+1 slots; the last `n_gpu_layers` slots go
// to the GPUs, split contiguously in proportion to each GPU's free memory (slot il goes to the first GPU whose
// cumulative share exceeds (il - i_gpu_start) / n_gpu_layers); earlier slots stay on the CPU, and so does the
// token embedding. Each layer's KV cache lives with its layer; nothing is held back beyond the free memory.
// llama.cpp itself does not choose n_gpu_layers: users lower `-ngl` until the model loads. Here that is the
// largest count whose plan fits (every count is simulated), which is what a user ends up with.
#include <algorithm>

#include <fmt/format.h>

#include "layer_chain.h"
#include "placers.h"

namespace moirai {
namespace {

class LlamaCppPlacer final : public Placer {
 public:
  std::string name() const override { return "llama-cpp"; }
  std::string summary() const override {
    return "llama.cpp -sm layer: layers split over the GPUs by free memory, embedding on the CPU, -ngl as large as fits";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    auto chain = place::find_layer_chain(table);
    if (!chain.ok()) return Error{"llama-cpp: " + chain.error().message};
    const std::vector<DeviceId> gpus = place::devices_of_kind(table, "gpu");
    const std::vector<DeviceId> cpus = place::devices_of_kind(table, "cpu");
    if (gpus.empty() && cpus.empty()) return Error{"llama-cpp: the cluster has no device of kind gpu or cpu"};
    const DeviceId cpu = cpus.empty() ? gpus.front() : cpus.front();  // no CPU device: the host is not modelled
    const int n_layer = chain->num_layers();
    const size_t head = chain->blocks.size() - 1;  // the output slot (final norm + LM head)

    std::vector<double> split;  // cumulative shares of free memory
    double total = 0;
    for (DeviceId g : gpus) total += table.capacity[static_cast<size_t>(g)];
    for (DeviceId g : gpus) split.push_back((split.empty() ? 0.0 : split.back()) + table.capacity[static_cast<size_t>(g)] / total);

    auto plan_for = [&](int ngl) {
      std::vector<DeviceId> device(chain->blocks.size(), cpu);
      const int start = std::max(n_layer + 1 - ngl, 0), active = std::min(ngl, n_layer + 1);
      for (int il = 0; il <= n_layer; ++il) {
        if (il < start || gpus.empty()) continue;
        const float at = static_cast<float>(il - start) / static_cast<float>(active);
        auto g = static_cast<size_t>(std::upper_bound(split.begin(), split.end(), at) - split.begin());
        device[il == n_layer ? head : static_cast<size_t>(il + 1)] = gpus[std::min(g, gpus.size() - 1)];
      }
      return place::place_blocks(table, *chain, device);
    };
    for (int ngl = gpus.empty() ? 0 : n_layer + 1; ngl >= 0; --ngl) {
      Placement p = plan_for(ngl);
      if (simulate(table, p, options.sim).over_capacity(table).empty() || ngl == 0) {
        PlaceResult result;
        result.placement = std::move(p);
        result.mode = fmt::format("-ngl {}", ngl);
        return result;
      }
    }
    return Error{"llama-cpp: unreachable"};
  }
};

}  // namespace

std::unique_ptr<Placer> make_llama_cpp_placer() { return std::make_unique<LlamaCppPlacer>(); }

}  // namespace moirai
