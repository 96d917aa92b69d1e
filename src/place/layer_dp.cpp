// `layer-dp`: the exact optimum among layer-contiguous plans of a chain of blocks (layer_chain.h): each device
// takes at most one contiguous range of blocks, in any device order, and the hidden state crosses the link
// between consecutive ranges. Dynamic programming over (next block, set of devices used, last device):
//   T(j, S + {d}, d) = min over i < j, last device l of  T(i, S, l) + boundary(i-1, l -> d) + sum_{b in [i,j)} t(b, d)
// subject to the range fitting d: its weights and KV cache, its graph outputs, plus the largest activation
// footprint of one of its blocks. A chain runs one block at a time, so the sum is the time of one decode step
// (or of the prefill) under the simulator's clock; it is exact for the family when every item crossing a block
// boundary is produced in the block just before it (LayerChain::adjacent_only; the plan's mode says so).
// O(B^2 k^2 2^k) for B blocks and k devices, so up to 12 devices. The plan is simulated; if a device still
// overflows (activations the footprint bound missed), its budget is lowered by the overflow and the DP reruns.
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "layer_chain.h"
#include "placers.h"

namespace moirai {
namespace {

constexpr int kMaxDevices = 12;
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kGiB = 1024.0 * 1024 * 1024;

// The DP proper: the device of each block, or empty when no layer-contiguous plan fits `budget`.
std::vector<DeviceId> solve(const CostTable& t, const place::LayerChain& c, const std::vector<double>& budget,
                            double* best_ms) {
  const int B = static_cast<int>(c.blocks.size()), k = t.num_devices();
  const size_t sets = size_t{1} << k;
  // cost[(i * sets + S) * k + l]: least time for blocks [0, i) on the devices of S, the last range on l.
  auto at = [&](int i, size_t S, int l) { return (static_cast<size_t>(i) * sets + S) * static_cast<size_t>(k) + static_cast<size_t>(l); };
  std::vector<double> cost(static_cast<size_t>(B + 1) * sets * static_cast<size_t>(k), kInf);
  std::vector<int> from(cost.size(), -1);  // packed (i, l) of the previous state
  for (int i = 0; i < B; ++i)
    for (size_t S = 0; S < sets; ++S)
      for (int l = 0; l < k; ++l) {
        double base = 0;
        if (i > 0) {
          if (!(S >> l & 1)) continue;
          base = cost[at(i, S, l)];
          if (base == kInf) continue;
        } else if (S != 0 || l != 0) {
          continue;  // the start state is (0, {}, any l): stored once, at l = 0
        }
        for (int d = 0; d < k; ++d) {
          if (S >> d & 1) continue;
          const double cap = budget[static_cast<size_t>(d)];
          double time = base + (i > 0 ? c.boundary_ms(t, i - 1, l, d) : 0.0), resident = 0, act = 0;
          for (int j = i + 1; j <= B; ++j) {
            const place::Block& b = c.blocks[static_cast<size_t>(j - 1)];
            time += b.time_ms[static_cast<size_t>(d)];
            resident += b.param_bytes + b.persist_bytes;
            act = std::max(act, b.act_bytes);
            if (resident + act > cap * (1 + 1e-12)) break;
            const size_t idx = at(j, S | size_t{1} << d, d);
            if (time < cost[idx]) {
              cost[idx] = time;
              from[idx] = i * k + l;
            }
          }
        }
      }
  double best = kInf;
  size_t best_s = 0;
  int best_l = -1;
  for (size_t S = 1; S < sets; ++S)
    for (int l = 0; l < k; ++l)
      if (cost[at(B, S, l)] < best) {
        best = cost[at(B, S, l)];
        best_s = S;
        best_l = l;
      }
  if (best_l < 0) return {};
  *best_ms = best;
  std::vector<DeviceId> device(static_cast<size_t>(B), 0);
  for (int j = B, l = best_l; j > 0;) {
    const int prev = from[at(j, best_s, l)];
    const int i = prev / k;
    for (int b = i; b < j; ++b) device[static_cast<size_t>(b)] = l;
    best_s &= ~(size_t{1} << l);
    j = i;
    l = prev % k;
  }
  return device;
}

class LayerDpPlacer final : public Placer {
 public:
  std::string name() const override { return "layer-dp"; }
  std::string summary() const override {
    return "exact dynamic program over contiguous layer ranges (decode step or prefill latency under memory)";
  }
  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    auto chain = place::find_layer_chain(table);
    if (!chain.ok()) return Error{"layer-dp: " + chain.error().message};
    if (table.num_devices() > kMaxDevices)
      return Error{fmt::format("layer-dp: {} devices; the dynamic program handles at most {}", table.num_devices(),
                               kMaxDevices)};
    std::vector<double> budget = table.capacity;
    bool lowered = false;
    for (int round = 0; round < 4 * table.num_devices() + 8; ++round) {
      double ms = 0;
      const std::vector<DeviceId> device = solve(table, *chain, budget, &ms);
      if (device.empty()) break;
      PlaceResult result;
      result.placement = place::place_blocks(table, *chain, device);
      const Schedule s = simulate(table, result.placement, options.sim);
      const auto over = s.over_capacity(table);
      if (over.empty()) {
        result.objective_ms = ms;
        result.mode = !chain->adjacent_only ? "chain model (items skip blocks)"
                      : lowered            ? "exact under lowered budgets"
                                           : "exact";
        return result;
      }
      for (DeviceId d : over)
        budget[static_cast<size_t>(d)] -= s.peak_memory[static_cast<size_t>(d)] - table.capacity[static_cast<size_t>(d)];
      lowered = true;
    }
    double resident = 0;
    std::string caps;
    for (double b : table.param_bytes) resident += b;
    for (DeviceId d = 0; d < table.num_devices(); ++d)
      caps += fmt::format("{}{} {:.3g}", d ? ", " : "", table.device_names[static_cast<size_t>(d)],
                          table.capacity[static_cast<size_t>(d)] / kGiB);
    return Error{fmt::format("layer-dp: no layer-contiguous plan of '{}' fits: {:.3g} GiB of weights and KV cache "
                             "plus each range's activations; usable GiB: {}", table.name, resident / kGiB, caps)};
  }
};

}  // namespace

std::unique_ptr<Placer> make_layer_dp_placer() { return std::make_unique<LayerDpPlacer>(); }

}  // namespace moirai
