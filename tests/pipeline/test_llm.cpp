// LLM decode with a KV cache, on a tiny decoder (tests/support/tiny_decoder.h):
// cache bytes per layer by hand, the cache counted as resident state of the operator that appends to it, the
// in-place append, the per-device reserve, the largest context a plan fits (fits at N, not at 2N), and the LLM
// figures of plan.json.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/pipeline.h"
#include "moirai/report.h"
#include "support/tiny_decoder.h"
#include "support/random_table.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;
using testing::tiny_decoder;

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("moirai_test_llm_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// One GPU of `memory_gib` keeping `reserved_gib` back.
std::string one_gpu(double memory_gib, double reserved_gib) {
  const std::string path = (temp_dir() / fmt::format("gpu-{}-{}.json", memory_gib, reserved_gib)).string();
  std::ofstream(path) << fmt::format(R"({{"name": "one-gpu", "devices": [{{"name": "g", "kind": "gpu",
    "peak_gflops": 1000, "mem_bandwidth_gbps": 100, "memory_gib": {}, "reserved_gib": {}}}],
    "links": {{"default": {{"bandwidth_gbps": 10}}}}}})", memory_gib, reserved_gib);
  return path;
}

ProblemOptions options(const std::string& model, const std::string& cluster, int64_t context) {
  ProblemOptions o;
  o.input = model;
  o.cluster_path = cluster;
  o.dims[kContextDim] = context;
  o.coarsen.fusion = "none";  // one operator per node: the hand arithmetic below is per ONNX node
  return o;
}

Problem load(const ProblemOptions& o) {
  auto p = load_problem(o);
  if (!p.ok()) throw std::runtime_error(p.error().message);
  return std::move(*p);
}

constexpr double kGiB = 1024.0 * 1024 * 1024;

TEST(Llm, CacheBytesPerLayerByHand) {
  const std::string model = tiny_decoder(temp_dir());
  const Problem p = load(options(model, one_gpu(1, 0), 1000));
  // past_key.L: 1 x 2 heads x 1000 tokens x 4 x 4 bytes (FP32) = 32,000 bytes; four caches.
  const auto caches = find_kv_caches(*p.graph);
  ASSERT_EQ(caches.size(), 4u);
  for (size_t i = 0; i < caches.size(); ++i) {
    EXPECT_EQ(caches[i].bytes, 32000);
    EXPECT_EQ(caches[i].layer, static_cast<int>(i / 2));
    EXPECT_EQ(caches[i].axis, 2);
    EXPECT_EQ(p.graph->tensor(caches[i].present).shape, (std::vector<int64_t>{1, 2, 1001, 4}));
    EXPECT_EQ(p.graph->op(caches[i].op).type, "Concat");
  }
  // The cost table: each cache is state of its Concat, resident like parameters; `present` adds only the new
  // token (16 bytes of FP32 per head pair: 2 x 1 x 4 x 4 = 32 bytes) on that device.
  const CostTable& t = p.table;
  double state = 0;
  for (OpId op = 0; op < t.num_ops(); ++op) {
    const bool cat = t.op_types[static_cast<size_t>(op)] == "Concat";
    EXPECT_EQ(t.state_bytes[static_cast<size_t>(op)], cat ? 32000.0 : 0.0) << t.op_names[static_cast<size_t>(op)];
    state += t.state_bytes[static_cast<size_t>(op)];
  }
  EXPECT_EQ(state, 128000.0);
  const OpId cat = testing::op_named(t, "layers.1/value_cache");
  EXPECT_EQ(t.param_bytes[static_cast<size_t>(cat)], 32000.0);
  for (const DataItem& d : t.data)
    if (d.name.rfind("present_", 0) == 0) {
      EXPECT_EQ(d.bytes, 32032.0);
      EXPECT_EQ(d.in_place_bytes, 32000.0);
    }
  // The append moves only the new token: 32 bytes read, 32 written, at 45% of 100 GB/s (data movement on a GPU).
  EXPECT_NEAR(t.time(cat, 0), 64.0 / (100e9 * 0.45) * 1e3, 1e-15);
  // The whole cache at context C is 4 x 32 C bytes: the graph holds it once, not twice.
  Placement all;
  all.device.assign(static_cast<size_t>(t.num_ops()), 0);
  const Schedule s = simulate(t, all, {});
  double params = 0;
  for (double b : t.param_bytes) params += b;
  EXPECT_GE(s.peak_memory[0], params);
  EXPECT_LT(s.peak_memory[0], params + 2 * 32032.0);  // a layer's scores and probabilities are 8 KB each
}

TEST(Llm, ReserveDecidesWhetherThePlanFits) {
  const std::string model = tiny_decoder(temp_dir());
  const int64_t n = 4096;  // cache 4 x 32 x 4096 = 512 KiB; with activations about 0.56 MiB in all
  const Problem roomy = load(options(model, one_gpu(0.75 / 1024, 0), n));
  const Problem tight = load(options(model, one_gpu(0.75 / 1024, 0.25 / 1024), n));
  EXPECT_DOUBLE_EQ(tight.table.capacity[0], 0.5 / 1024 * kGiB);
  EXPECT_DOUBLE_EQ(tight.table.reserved[0], 0.25 / 1024 * kGiB);
  for (const char* method : {"single", "memory-proportional", "layer-dp", "llama-cpp"}) {
    PlaceOptions po;
    const MethodRun ok = run_method(roomy, method, po);
    EXPECT_TRUE(ok.ok() && ok.fits) << method << " " << ok.error;
    const MethodRun over = run_method(tight, method, po);
    EXPECT_FALSE(over.ok() && over.fits) << method;
  }
  // The validator judges against capacity minus reserve.
  Placement all;
  all.device.assign(static_cast<size_t>(tight.table.num_ops()), 0);
  const Schedule s = simulate(tight.table, all, {});
  const auto v = validate(tight.table, all, s, {});
  ASSERT_FALSE(v.empty());
  EXPECT_NE(v.front().find("exceeds its capacity"), std::string::npos) << v.front();
}

TEST(Llm, FitsAtContextNButNotAt2N) {
  const std::string model = tiny_decoder(temp_dir());
  const std::string gpu = one_gpu(0.8 / 1024, 0);  // 838,861 bytes
  const int64_t n = 4096;
  const Problem at_n = load(options(model, gpu, n));
  const MethodRun run = run_method(at_n, "layer-dp", PlaceOptions{});
  ASSERT_TRUE(run.ok() && run.fits) << run.error;
  const Problem at_2n = load(options(model, gpu, 2 * n));
  const MethodRun over = run_method(at_2n, "layer-dp", PlaceOptions{});
  EXPECT_FALSE(over.ok() && over.fits);
  auto best = largest_context(options(model, gpu, n), at_n, run.result.placement, {});
  ASSERT_TRUE(best.ok()) << best.error().message;
  EXPECT_GE(*best, n);
  EXPECT_LT(*best, 2 * n);
  // Exactly the largest: it fits at the answer and not one token later.
  for (int64_t c : {*best, *best + 1}) {
    const Problem p = load(options(model, gpu, c));
    Placement all;
    all.device.assign(static_cast<size_t>(p.table.num_ops()), 0);
    EXPECT_EQ(simulate(p.table, all, {}).over_capacity(p.table).empty(), c == *best) << c;
  }
}

// `place --context max`: bisection over the context with the method re-placed at each probe.
TEST(Llm, LargestContextTheMethodPlaces) {
  const std::string model = tiny_decoder(temp_dir());
  const std::string gpu = one_gpu(0.8 / 1024, 0);
  int probes = 0;
  auto found = place_at_largest_context(options(model, gpu, 1), "layer-dp", PlaceOptions{}, false,
                                        [&](const std::string&) { ++probes; });
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_GE(found->context, 4096);  // fits at N and not at 2N (above)
  EXPECT_LT(found->context, 8192);
  EXPECT_EQ(found->options.dims.at(kContextDim), found->context);
  EXPECT_TRUE(found->run.ok() && found->run.fits);
  EXPECT_LE(probes, 30);
  // One token more and the method finds nothing that fits.
  const MethodRun above = run_method(load(options(model, gpu, found->context + 1)), "layer-dp", PlaceOptions{});
  EXPECT_FALSE(above.ok() && above.fits);
  // Its placement holds at least that long a context.
  auto reach = largest_context(found->options, found->problem, found->run.result.placement, {});
  ASSERT_TRUE(reach.ok());
  EXPECT_GE(*reach, found->context);
}

TEST(Llm, PlanJsonCarriesTheLlmFigures) {
  const std::string model = tiny_decoder(temp_dir());
  const Problem p = load(options(model, one_gpu(1, 0), 1000));
  const MethodRun run = run_method(p, "layer-dp", PlaceOptions{});
  ASSERT_TRUE(run.ok()) << run.error;
  PlanInputs inputs;
  inputs.dims[kContextDim] = 1000;
  Plan plan = plan_of(p, run, {}, inputs);
  plan.max_context = 12345;
  const auto j = nlohmann::json::parse(plan_json(plan));
  EXPECT_EQ(j["phase"], "decode");
  EXPECT_EQ(j["context"], 1000);
  EXPECT_DOUBLE_EQ(j["tokens_per_s"].get<double>(), 1000.0 / run.schedule.makespan_ms);
  EXPECT_DOUBLE_EQ(j["ms_per_token"].get<double>(), run.schedule.makespan_ms);
  EXPECT_EQ(j["kv_cache_bytes"], 128000.0);
  EXPECT_EQ(j["devices"][0]["kv_cache_bytes"], 128000.0);
  EXPECT_EQ(j["devices"][0]["reserved_bytes"], 0.0);
  EXPECT_EQ(j["max_context"], 12345);
  EXPECT_FALSE(j.contains("time_to_first_token_ms"));
}

}  // namespace
}  // namespace moirai
