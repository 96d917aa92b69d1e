// Cost model: the roofline of one convolution on an A100 by hand, transfer times, FP16 peaks, profile overrides
// and their errors, every bundled instance, and CostTable::finalize's checks.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "moirai/cost.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::source_path;

Cluster cluster(const std::string& name) {
  auto c = load_cluster(source_path("clusters/" + name + ".json"));
  if (!c.ok()) throw std::logic_error(c.error().message);
  return std::move(*c);
}

// x [1,64,56,56] -> Conv (w [64,64,3,3], same padding) -> y -> Relu -> z (graph output).
Graph conv_relu(DType type) {
  const int64_t es = type == DType::Float16 ? 2 : 4;
  Graph g;
  g.name = "conv-relu";
  const TensorId x = g.add_tensor({"x", type, {1, 64, 56, 56}, TensorKind::Input, kNone, {}, false});
  const TensorId w = g.add_tensor({"w", type, {64, 64, 3, 3}, TensorKind::Parameter, kNone, {}, false});
  const TensorId y = g.add_tensor({"y", type, {1, 64, 56, 56}, TensorKind::Activation, kNone, {}, false});
  const TensorId z = g.add_tensor({"z", type, {1, 64, 56, 56}, TensorKind::Activation, kNone, {}, true});
  Operator conv;
  conv.name = "conv";
  conv.type = "Conv";
  conv.inputs = {x, w};
  conv.outputs = {y};
  conv.flops = 2.0 * 64 * 56 * 56 * 64 * 3 * 3;  // 231,211,008: a multiply-add per weight per output pixel
  conv.bytes_read = static_cast<double>((64 * 56 * 56 + 64 * 64 * 9) * es);
  conv.bytes_written = static_cast<double>(64 * 56 * 56 * es);
  conv.param_bytes = 64 * 64 * 9 * es;
  conv.origin = {"/layer1/conv"};
  g.add_op(conv);
  Operator relu;
  relu.name = "relu";
  relu.type = "Relu";
  relu.inputs = {y};
  relu.outputs = {z};
  relu.flops = 64.0 * 56 * 56;
  relu.bytes_read = relu.bytes_written = static_cast<double>(64 * 56 * 56 * es);
  g.add_op(relu);
  return g;
}

TEST(Cost, RooflineOfOneConvOnA100ByHand) {
  const Cluster c = cluster("hetero-gpu-server");
  auto t = build_cost_table(conv_relu(DType::Float32), c);
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->num_ops(), 2);
  ASSERT_EQ(t->num_devices(), 4);
  // A100: 19,500 GFLOP/s FP32 x 0.70 (dense) and 1,555 GB/s x 0.85; launch 5 us.
  //   compute: 231,211,008 / (19,500e9 x 0.70) = 16.938 us
  //   memory:  (950,272 + 802,816) bytes / (1,555e9 x 0.85) = 1.326 us  -> compute bound
  //   time = 0.005 + 0.016938 ms = 0.021938 ms
  EXPECT_NEAR(t->time(0, 0), 0.005 + 231211008.0 / (19500e9 * 0.70) * 1e3, 1e-15);
  EXPECT_NEAR(t->time(0, 0), 0.021938, 1e-6);
  // Xeon (CPU): 2,400 GFLOP/s x 0.60 -> 160.56 us; launch 2 us.
  EXPECT_NEAR(t->time(0, 3), 0.002 + 231211008.0 / (2400e9 * 0.60) * 1e3, 1e-15);
  // Relu on the A100 is memory bound: 2 x 802,816 bytes / (1,555e9 x 0.85) = 1.2148 us, plus 5 us.
  EXPECT_NEAR(t->time(1, 0), 0.005 + 1605632.0 / (1555e9 * 0.85) * 1e3, 1e-15);
  // Data: y (conv -> relu) and the graph output z; the graph input x is free (present everywhere).
  ASSERT_EQ(t->data.size(), 2u);
  EXPECT_EQ(t->data[0].name, "y");
  EXPECT_EQ(t->data[0].consumers, std::vector<OpId>{1});
  EXPECT_DOUBLE_EQ(t->data[0].bytes, 802816.0);
  EXPECT_TRUE(t->data[1].consumers.empty());
  // Transfer y from a100 to xeon: 8 us + 802,816 / 24e9 s = 0.008 + 0.0334507 ms; zero on the same device.
  EXPECT_NEAR(t->transfer(0, 0, 3), 0.008 + 802816.0 / 24e9 * 1e3, 1e-15);
  EXPECT_EQ(t->transfer(0, 2, 2), 0.0);
  EXPECT_DOUBLE_EQ(t->param_bytes[0], 147456.0);
  EXPECT_EQ(t->op_origin[0], std::vector<std::string>{"/layer1/conv"});
  // The v100's usable memory: 16 GiB less the 1 GiB its file reserves.
  EXPECT_DOUBLE_EQ(t->capacity[1], 15.0 * 1024 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(t->reserved[1], 1.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(t->device_kinds[3], "cpu");
  EXPECT_EQ(t->op_inputs[1], std::vector<int>{0});
  EXPECT_EQ(t->topo_order, (std::vector<OpId>{0, 1}));
  EXPECT_EQ(t->cluster, "hetero-gpu-server");
}

TEST(Cost, Fp16UsesTheFp16Peak) {
  const Cluster c = cluster("hetero-gpu-server");
  auto half = build_cost_table(conv_relu(DType::Float16), c);  // mostly FP16: chosen automatically
  ASSERT_TRUE(half.ok()) << half.error().message;
  // A100 FP16: 312,000 GFLOP/s x 0.70 -> 1.0586 us of compute; memory (475,136 + 401,408) / (1,555e9 x 0.85)
  // = 0.6632 us: compute still binds.
  EXPECT_NEAR(half->time(0, 0), 0.005 + 231211008.0 / (312000e9 * 0.70) * 1e3, 1e-15);
  // The Xeon has no FP16 figure: it keeps its FP32 peak.
  EXPECT_NEAR(half->time(0, 3), 0.002 + 231211008.0 / (2400e9 * 0.60) * 1e3, 1e-15);
  auto forced = build_cost_table(conv_relu(DType::Float32), c, CostOptions{true});
  ASSERT_TRUE(forced.ok());
  // FP16 peak on FP32 tensors: 1.0586 us of compute, but 1,753,088 bytes / (1,555e9 x 0.85) = 1.3264 us of memory.
  EXPECT_NEAR(forced->time(0, 0), 0.005 + 1753088.0 / (1555e9 * 0.85) * 1e3, 1e-15);
}

TEST(Cost, DevicesWithoutFiguresCannotCostAModel) {
  auto t = build_cost_table(conv_relu(DType::Float32), cluster("moirai-sample-4dev"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message,
            "cluster 'moirai-sample-4dev': device 'dev0' has no peak_gflops/mem_bandwidth_gbps, so it cannot cost a "
            "model analytically (use a profiled instance or a cluster with device figures)");
}

TEST(Cost, ProfileOverridesAndErrors) {
  auto built = build_cost_table(conv_relu(DType::Float32), cluster("hetero-gpu-server"));
  ASSERT_TRUE(built.ok());
  CostTable t = *built;
  const CostTable before = t;
  ASSERT_TRUE(apply_profile(t, source_path("tests/fixtures/cost/profile_ok.json")).ok());
  EXPECT_EQ(t.time(0, 0), 0.5);
  EXPECT_EQ(t.time(0, 3), 2.25);
  EXPECT_EQ(t.time(1, 2), 0.125);
  EXPECT_EQ(t.time(0, 1), before.time(0, 1));  // not in the profile: analytic figure kept

  t = before;
  const std::string bad_op = source_path("tests/fixtures/cost/profile_unknown_op.json");
  auto s = apply_profile(t, bad_op);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, bad_op + ": unknown operator 'no_such_op' (not in conv-relu, which has 2 operators)");
  EXPECT_EQ(t.time_ms, before.time_ms);  // unchanged, although 'conv' came first and was valid

  const std::string bad_dev = source_path("tests/fixtures/cost/profile_unknown_device.json");
  s = apply_profile(t, bad_dev);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, bad_dev + ": ops.conv: unknown device 'h100' (devices: a100, v100, t4, xeon)");
  EXPECT_EQ(t.time_ms, before.time_ms);

  s = apply_profile(t, source_path("tests/fixtures/cost/missing.json"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot open the profile file"), std::string::npos);
}

TEST(Cost, EveryInstanceLoads) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_path("instances"))) {
    if (entry.path().extension() != ".json") continue;
    auto t = load_instance(entry.path().string());
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_TRUE(t->per_edge_data);
    EXPECT_EQ(t->topo_order.size(), static_cast<size_t>(t->num_ops()));
    for (const auto& item : t->data) {
      EXPECT_EQ(item.consumers.size(), 1u);
      EXPECT_EQ(item.bytes, 0.0);
    }
    ++count;
  }
  EXPECT_EQ(count, 3);
}

TEST(Cost, Example1Instance) {
  auto t = load_instance(source_path("instances/example-1.json"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->name, "example-1");
  EXPECT_EQ(t->num_ops(), 14);
  EXPECT_EQ(t->num_devices(), 3);
  EXPECT_EQ(t->data.size(), 19u);
  EXPECT_EQ(t->device_names, (std::vector<std::string>{"dev0", "dev1", "dev2"}));
  EXPECT_EQ(t->capacity, (std::vector<double>{14, 14, 16}));
  EXPECT_EQ(t->op_names[3], "op5");  // sparse file ids map to dense ids in file order
  EXPECT_EQ(t->time(3, 1), 5.0);
  EXPECT_EQ(t->param_bytes[3], 4.0);
  EXPECT_EQ(t->data[6].name, "op1->op5");
  EXPECT_EQ(t->transfer(6, 0, 2), 4.0);
  EXPECT_EQ(t->transfer(6, 2, 1), 2.0);
  EXPECT_EQ(t->predecessors(6), (std::vector<OpId>{3, 4, 5}));  // op11 <- op5, op6, op7
  EXPECT_EQ(t->successors(0), (std::vector<OpId>{1, 2, 4, 5, 7, 9}));
  auto g = load_instance(source_path("instances/GoogLeNet.json"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->num_ops(), 141);  // 140 operators + the virtual source
  EXPECT_EQ(g->num_devices(), 4);
}

TEST(Cost, BadInstances) {
  const std::string cycle = source_path("tests/fixtures/cost/instance_cycle.json");
  auto t = load_instance(cycle);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, cycle + ": cycle: the operators form a cycle through 'op7'");
  const std::string edge = source_path("tests/fixtures/cost/instance_bad_edge.json");
  t = load_instance(edge);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message, edge + ": edges[0].dst names unknown operator 5");
  t = load_instance(source_path("tests/fixtures/cost/none.json"));
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("cannot open the instance file"), std::string::npos);
}

// Absurd figures in instances and profiles are rejected where they are read, naming the file and the field.
TEST(Cost, AbsurdFiguresAreRejected) {
  const auto dir = std::filesystem::temp_directory_path() / ("moirai-cost-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto load = [&](const std::string& text) {
    const std::string path = (dir / "i.json").string();
    std::ofstream(path) << text;
    auto t = load_instance(path);
    return t.ok() ? std::string("(no error)") : t.error().message.substr(path.size() + 2);
  };
  auto instance = [](const std::string& name, const std::string& device_memory, const std::string& op_time) {
    return R"({)" + name + R"("devices": [{"memory": )" + device_memory + R"(}], "ops": [{"id": 0, "time": [)" + op_time +
           R"(]}, {"id": 1, "time": [1]}], "edges": [{"src": 0, "dst": 1, "time": [[0]]}]})";
  };
  EXPECT_EQ(load(instance("", "1", "1")), "(no error)");
  EXPECT_EQ(load(instance("", "1", "1e308")), "field ops[0].time[0] must be a number from 0 to 1e+09 ms, got 1e+308");
  EXPECT_EQ(load(instance("", "1e300", "1")), "field devices[0].memory must be a number from 0 to 1e+15 units, got 1e+300");
  EXPECT_EQ(load(instance(R"("name": 42, )", "1", "1")), "field name must be a non-empty string, got 42");
  EXPECT_EQ(load(instance("", "1e400", "1")).rfind("invalid JSON: ", 0), 0u);

  auto built = build_cost_table(conv_relu(DType::Float32), cluster("hetero-gpu-server"));
  ASSERT_TRUE(built.ok());
  const std::string profile = (dir / "p.json").string();
  std::ofstream(profile) << R"({"ops": {"conv": {"a100": 1e300}}})";
  const Status s = apply_profile(*built, profile);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, profile + ": field ops.conv.a100 must be a number from 0 to 1e+09 ms, got 1e+300");
  std::filesystem::remove_all(dir);
}

// Version 2 profiles (moirai profile --threads): operator times net of the per-stage overhead, which is applied
// with them; old files keep working; every bad field is one line naming the file and the field, table unchanged.
TEST(Cost, ProfileVersion2CarriesTheStageOverhead) {
  auto built = build_cost_table(conv_relu(DType::Float32), cluster("hetero-gpu-server"));
  ASSERT_TRUE(built.ok());
  const CostTable before = *built;
  EXPECT_EQ(before.stage_overhead_ms, std::vector<double>(4, 0.0));
  const auto dir = std::filesystem::temp_directory_path() / ("moirai-profile2-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "p.json").string();
  auto apply = [&](const std::string& text, CostTable& t) {
    std::ofstream(path) << text;
    const Status s = apply_profile(t, path);
    return s.ok() ? std::string("(no error)") : s.error().message.substr(path.size() + 2);
  };
  CostTable t = before;
  EXPECT_EQ(apply(R"({"version": 2, "threads": 1, "stage_overhead_ms": {"xeon": 0.05}, "ops": {"conv": {"xeon": 1.5}}})", t),
            "(no error)");
  EXPECT_EQ(t.time(0, 3), 1.5);
  EXPECT_EQ(t.stage_overhead_ms, (std::vector<double>{0, 0, 0, 0.05}));
  EXPECT_TRUE(t.models_stages());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {R"({"version": 3, "ops": {}})", "field version must be 1 or 2, got 3"},
      {R"({"version": 2, "stage_overhead_ms": {}, "ops": {}})", "missing field threads (a version 2 profile)"},
      {R"({"version": 2, "threads": 1, "ops": {}})", "missing field stage_overhead_ms (a version 2 profile)"},
      {R"({"version": 2, "threads": 1.5, "stage_overhead_ms": {}, "ops": {}})", "field threads must be an integer"},
      {R"({"version": 2, "threads": 0, "stage_overhead_ms": [], "ops": {}})",
       "field stage_overhead_ms must be an object of device: ms"},
      {R"({"version": 2, "threads": 1, "stage_overhead_ms": {"h100": 1}, "ops": {}})",
       "stage_overhead_ms: unknown device 'h100' (devices: a100, v100, t4, xeon)"},
      {R"({"version": 2, "threads": 1, "stage_overhead_ms": {"xeon": 5000}, "ops": {}})",
       "field stage_overhead_ms.xeon must be a number from 0 to 1000 ms, got 5000"},
      {R"({"version": 2, "threads": 2000, "stage_overhead_ms": {}, "ops": {}})",
       "field threads must be a number from 0 to 1024 threads, got 2000"},
  };
  for (const auto& [text, message] : bad) {
    CostTable u = before;
    EXPECT_EQ(apply(text, u), message) << text;
    EXPECT_EQ(u.time_ms, before.time_ms);
    EXPECT_EQ(u.stage_overhead_ms, before.stage_overhead_ms);
  }
  std::filesystem::remove_all(dir);
}

TEST(Cost, FinalizeChecksSizes) {
  CostTable t = testing::random_table(3);
  t.time_ms.pop_back();
  auto s = t.finalize();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "random-3: time table has 29 entries, expected 10 operators x 3 devices");
  t = testing::random_table(3);
  t.data[0].consumers.push_back(0);
  s = t.finalize();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "random-3: operator 'op0' consumes its own output 't0'");
}

}  // namespace
}  // namespace moirai
