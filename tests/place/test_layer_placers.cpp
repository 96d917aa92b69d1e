// Layer-wise placers on hand-built chains of transformer blocks (embedding, layers.0..L-1, head; two operators
// per block): the layer DP equals brute force over every layer-contiguous plan (6 layers, 3 devices, random times,
// links and memory), and the practical splits (accelerate, llama.cpp, exo) give the maps their code gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "place/layer_chain.h"

namespace moirai {
namespace {

struct ChainSpec {
  int layers = 6;
  std::vector<std::string> kinds = {"gpu", "gpu", "cpu"};
  std::vector<double> capacity = {1e9, 1e9, 1e9};
  std::vector<double> block_params;  ///< per block (embedding, layers, head); empty = 0
  double hidden_bytes = 0;           ///< the activation between operators
};

// Block b has operators "<name>/a" -> "<name>/b"; b's "/b" feeds block b+1's "/a". Times and links random per seed.
CostTable chain(const ChainSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> time(0.5, 3.0), link(0.05, 1.5);
  const int k = static_cast<int>(spec.kinds.size()), blocks = spec.layers + 2;
  CostTable t;
  t.name = "chain";
  for (int d = 0; d < k; ++d) t.device_names.push_back("d" + std::to_string(d));
  t.device_kinds = spec.kinds;
  t.capacity = spec.capacity;
  std::vector<double> speed(static_cast<size_t>(k));
  for (auto& s : speed) s = time(rng);
  std::vector<double> link_ms(static_cast<size_t>(k * k), 0.0);
  for (int a = 0; a < k; ++a)
    for (int c = 0; c < k; ++c)
      if (a != c) link_ms[static_cast<size_t>(a * k + c)] = link(rng);
  for (int b = 0; b < blocks; ++b) {
    const std::string name = b == 0 ? "embed" : b == blocks - 1 ? "lm_head" : "layers." + std::to_string(b - 1);
    for (const char* part : {"/a", "/b"}) {
      t.op_names.push_back(name + part);
      t.op_origin.push_back({name + part});
      t.op_types.push_back("Test");
      for (int d = 0; d < k; ++d) t.time_ms.push_back(speed[static_cast<size_t>(d)] * time(rng));
      t.param_bytes.push_back(part[1] == 'a' && !spec.block_params.empty() ? spec.block_params[static_cast<size_t>(b)] : 0.0);
    }
  }
  const int n = 2 * blocks;
  for (OpId op = 0; op + 1 < n; ++op) {
    DataItem item{"t" + std::to_string(op), op, {op + 1}, spec.hidden_bytes, link_ms};
    t.data.push_back(item);
  }
  EXPECT_TRUE(t.finalize().ok());
  return t;
}

Expected<PlaceResult> place(const std::string& method, const CostTable& t) {
  auto placer = make_placer(method);
  if (!placer.ok()) return placer.error();
  return (*placer)->place(t, PlaceOptions{});
}

// Device of each block of a plan (checks that a block is never split).
std::vector<DeviceId> block_devices(const CostTable& t, const Placement& p) {
  auto c = place::find_layer_chain(t);
  EXPECT_TRUE(c.ok());
  std::vector<DeviceId> out;
  for (const auto& b : c->blocks) {
    out.push_back(p.device[static_cast<size_t>(b.ops.front())]);
    for (OpId op : b.ops) EXPECT_EQ(p.device[static_cast<size_t>(op)], out.back()) << b.name;
  }
  return out;
}

TEST(LayerChain, BlocksAndCuts) {
  const CostTable t = chain(ChainSpec{}, 1);
  auto c = place::find_layer_chain(t);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c->blocks.size(), 8u);
  EXPECT_EQ(c->blocks[0].name, "embedding");
  EXPECT_EQ(c->blocks[3].name, "layers.2");
  EXPECT_EQ(c->blocks[7].name, "head");
  EXPECT_EQ(c->num_layers(), 6);
  EXPECT_TRUE(c->adjacent_only);
  for (size_t b = 0; b + 1 < c->blocks.size(); ++b) EXPECT_EQ(c->cut[b], (std::vector<int>{static_cast<int>(2 * b + 1)}));
  // No layer names: not a chain.
  CostTable plain = t;
  for (auto& o : plain.op_origin) o = {"op"};
  EXPECT_EQ(place::find_layer_chain(plain).error().message,
            "'chain' has no layers: no operator name carries a layer index (\"layers.N\", \"h.N\", \"blocks.N\")");
}

// Every plan that gives each device at most one contiguous range of blocks, simulated: the least makespan among
// those that fit.
double brute_force(const CostTable& t, int blocks) {
  const int k = t.num_devices();
  auto c = place::find_layer_chain(t);
  double best = -1;
  std::vector<DeviceId> device(static_cast<size_t>(blocks), 0);
  for (long code = 0, total = static_cast<long>(std::pow(k, blocks)); code < total; ++code) {
    long x = code;
    for (int b = 0; b < blocks; ++b, x /= k) device[static_cast<size_t>(b)] = static_cast<DeviceId>(x % k);
    std::vector<int> runs(static_cast<size_t>(k), 0);
    for (int b = 0; b < blocks; ++b)
      if (b == 0 || device[static_cast<size_t>(b)] != device[static_cast<size_t>(b - 1)]) ++runs[static_cast<size_t>(device[static_cast<size_t>(b)])];
    if (*std::max_element(runs.begin(), runs.end()) > 1) continue;
    const Placement p = place::place_blocks(t, *c, device);
    const Schedule s = simulate(t, p);
    if (!s.over_capacity(t).empty()) continue;
    if (best < 0 || s.makespan_ms < best) best = s.makespan_ms;
  }
  return best;
}

TEST(LayerDp, EqualsBruteForceOnSixLayersThreeDevices) {
  int binding = 0;
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    ChainSpec spec;
    std::mt19937_64 rng(seed * 7919);
    std::uniform_real_distribution<double> bytes(1, 10);
    for (int b = 0; b < 8; ++b) spec.block_params.push_back(bytes(rng));
    // Memory binds: each device holds about a third to a half of the model.
    double total = 0;
    for (double b : spec.block_params) total += b;
    spec.capacity = {total * 0.45, total * 0.4, total * 0.5};
    // Activations take no memory here, so memory is the weights alone and the DP's fit test is the simulator's
    // (with activations the DP budgets a block's whole activation footprint, a safe bound).
    const CostTable t = chain(spec, seed);
    const double brute = brute_force(t, 8);
    auto r = place("layer-dp", t);
    if (brute < 0) {
      EXPECT_FALSE(r.ok()) << "seed " << seed;
      continue;
    }
    ASSERT_TRUE(r.ok()) << "seed " << seed << ": " << r.error().message;
    const Schedule s = simulate(t, r->placement);
    EXPECT_TRUE(s.over_capacity(t).empty()) << "seed " << seed;
    EXPECT_NEAR(s.makespan_ms, brute, 1e-9) << "seed " << seed;
    EXPECT_NEAR(r->objective_ms, s.makespan_ms, 1e-9) << "seed " << seed;  // the DP's clock is the simulator's
    EXPECT_EQ(r->mode, "exact");
    // Memory bound the choice: the fastest device alone cannot hold everything.
    binding += std::set<DeviceId>(r->placement.device.begin(), r->placement.device.end()).size() > 1;
  }
  EXPECT_GE(binding, 10);
}

// 6 layers of 2 bytes, embedding and head 2 bytes each (16 in all); GPUs of 10 and 6, a CPU of 100.
ChainSpec practical() {
  ChainSpec spec;
  spec.capacity = {10, 6, 100};
  spec.block_params.assign(8, 2.0);
  return spec;
}

TEST(PracticalSplits, AccelerateFillsGpusInOrderWithItsBudgets) {
  // GPU 0: min(10, 16 / 2 + 1.25 x 2) = 10, minus the largest remaining module (2) as GPU 0 is a main device:
  // embedding, layers 0-2. GPU 1 (the last GPU keeps its free memory, 6): layers 3-5. The head goes to the CPU.
  const CostTable t = chain(practical(), 3);
  auto r = place("accelerate", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(block_devices(t, r->placement), (std::vector<DeviceId>{0, 0, 0, 0, 1, 1, 1, 2}));
}

TEST(PracticalSplits, LlamaCppSplitsSlotsByFreeMemory) {
  // 7 slots over GPUs of 10 and 6 (cumulative shares 0.625, 1): slots 0-4 (i/7 < 0.625) on GPU 0, slot 5 and the
  // output slot on GPU 1; the embedding on the CPU.
  const CostTable t = chain(practical(), 3);
  auto r = place("llama-cpp", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(block_devices(t, r->placement), (std::vector<DeviceId>{2, 0, 0, 0, 0, 0, 1, 1}));
  EXPECT_EQ(r->mode, "-ngl 7");
  // GPU 0 too small for its share: fewer slots offloaded, the first layers stay on the CPU.
  ChainSpec small = practical();
  small.capacity = {5, 6, 100};
  const CostTable s = chain(small, 3);
  auto fewer = place("llama-cpp", s);
  ASSERT_TRUE(fewer.ok());
  EXPECT_TRUE(simulate(s, fewer->placement).over_capacity(s).empty());
  EXPECT_NE(fewer->mode, "-ngl 7");
}

TEST(PracticalSplits, ExoRingByMemoryLargestFirst) {
  // Ring: CPU (100), GPU 0 (10), GPU 1 (6) of 116: floor(6 x 100 / 116) = 5 layers, floor(6 x 10 / 116) = 0, the
  // last takes the rest (1). Embedding with the first shard, head with the last.
  const CostTable t = chain(practical(), 3);
  auto r = place("exo", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(block_devices(t, r->placement), (std::vector<DeviceId>{2, 2, 2, 2, 2, 2, 1, 1}));
}

}  // namespace
}  // namespace moirai
