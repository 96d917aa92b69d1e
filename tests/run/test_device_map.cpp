// The device map (moirai export --device-map): a plan of the pipeline written as Hugging Face accelerate's
// device_map and llama.cpp's --tensor-split, read back. Here, not in tests/export, because it needs a placed plan
// (the pipeline stage) as well as export: run is the stage that links both.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "moirai/export.h"
#include "moirai/pipeline.h"
#include "moirai/report.h"
#include "support/tiny_decoder.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;

fs::path temp_dir() {
  fs::path dir = fs::temp_directory_path() / ("moirai_test_device_map_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// llama.cpp's split of a 4-layer decoder over two equal GPUs (5 slots, shares 0.5 / 1): layers 0-2 on cuda:0,
// layer 3 and the output layer on cuda:1, the embedding on the CPU. Exported as a device map and read back, every
// module names the device the plan put its operators on, and --tensor-split 3,2 reproduces the same split.
TEST(DeviceMap, RoundTripsToThePlansDevices) {
  const std::string model = testing::tiny_decoder(temp_dir(), 4);
  const std::string cluster = (temp_dir() / "two-gpus.json").string();
  std::ofstream(cluster) << R"({"name": "two-gpus", "devices": [
    {"name": "cpu0", "kind": "cpu", "peak_gflops": 100, "mem_bandwidth_gbps": 20, "memory_gib": 8},
    {"name": "gpuA", "kind": "gpu", "peak_gflops": 1000, "mem_bandwidth_gbps": 100, "memory_gib": 2},
    {"name": "gpuB", "kind": "gpu", "peak_gflops": 1000, "mem_bandwidth_gbps": 100, "memory_gib": 2}],
    "links": {"default": {"bandwidth_gbps": 10}}})";
  ProblemOptions o;
  o.input = model;
  o.cluster_path = cluster;
  o.dims[kContextDim] = 64;
  o.coarsen.fusion = "none";  // one operator per ONNX node, so each names its module
  auto loaded = load_problem(o);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  const Problem& p = *loaded;
  const MethodRun run = run_method(p, "llama-cpp", PlaceOptions{});
  ASSERT_TRUE(run.ok()) << run.error;
  const fs::path dir = temp_dir() / "plan";
  fs::create_directories(dir);
  PlanInputs inputs{o.input, o.cluster_path, o.coarsen.fusion, 0, o.dims, ""};
  const std::string plan_path = (dir / "plan.json").string();
  std::ofstream(plan_path) << plan_json(plan_of(p, run, {}, inputs), dir.string());
  auto plan = read_plan(plan_path);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto map = device_map(*plan);
  ASSERT_TRUE(map.ok()) << map.error().message;
  EXPECT_EQ(map->tensor_split, (std::vector<int>{3, 2}));
  EXPECT_EQ(map->n_gpu_layers, 5);
  EXPECT_TRUE(map->tensor_split_exact);
  EXPECT_TRUE(map->split_layers.empty());
  auto back = parse_device_map(device_map_json(*map), "device_map.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  std::map<std::string, std::string> module_device;  // module -> plan device name, through the file
  for (const auto& [module, device] : back->modules) module_device[module] = back->devices.at(device);
  EXPECT_EQ(module_device.size(), 6u);  // embed_tokens, 4 layers, lm_head (this model has no final norm)
  EXPECT_EQ(module_device.at("model.embed_tokens"), "cpu0");
  EXPECT_EQ(module_device.at("model.layers.2"), "gpuA");
  EXPECT_EQ(module_device.at("model.layers.3"), "gpuB");
  EXPECT_EQ(module_device.at("lm_head"), "gpuB");
  int checked = 0;
  for (const auto& op : plan->ops) {
    const int layer = layer_index(op.origin.front());
    const std::string module = layer >= 0 ? "model.layers." + std::to_string(layer)
                               : op.origin.front() == "embed" ? "model.embed_tokens" : "lm_head";
    EXPECT_EQ(module_device.at(module), op.device) << op.name;
    ++checked;
  }
  EXPECT_EQ(checked, p.table.num_ops());
  EXPECT_EQ(parse_device_map(R"({"device_map": {"lm_head": "cuda:7"}, "devices": {"cpu": "x"}})", "m.json").error().message,
            "m.json: device_map.lm_head must name one of the devices");
}

}  // namespace
}  // namespace moirai
