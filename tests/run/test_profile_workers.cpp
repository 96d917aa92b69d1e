// `moirai profile --local|--workers`: the cost model measured through the workers. On a tiny model with real
// weights (made here) two local workers give a profile.json and cluster.json that `place` and `simulate`
// accept, with a positive stage overhead per worker, links with finite positive fitted bandwidth and latency
// in both directions, and the coordinator's links to and from each worker; running workers (--workers) are the
// devices, with their own thread count, and need no -c; an unreachable worker is one error line, quickly, and
// no output.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "cli/cli_support.h"
#include "run/measure.h"
#include "run/run_support.h"

namespace moirai {
namespace {

using namespace clitest;  // moirai(), quote(), src(), TempDir, expect_clean_error
namespace fs = std::filesystem;

void value_info(onnx::ValueInfoProto* v, const std::string& name, std::vector<int64_t> shape) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t->mutable_shape()->add_dim()->set_dim_value(d);
}

/// x [1, 64] -> MatMul W0 -> Relu -> MatMul W1 -> Sigmoid -> MatMul W2 -> y [1, 8], with seeded weights.
void write_tiny_mlp(const fs::path& file) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("moirai test");
  model.add_opset_import()->set_version(17);
  onnx::GraphProto* g = model.mutable_graph();
  g->set_name("tiny_mlp");
  value_info(g->add_input(), "x", {1, 64});
  value_info(g->add_output(), "y", {1, 8});
  uint32_t seed = 7;
  auto weight = [&](const std::string& name, int64_t rows, int64_t cols) {
    onnx::TensorProto* w = g->add_initializer();
    w->set_name(name);
    w->set_data_type(onnx::TensorProto::FLOAT);
    w->add_dims(rows);
    w->add_dims(cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
      seed = seed * 1664525u + 1013904223u;
      w->add_float_data(static_cast<float>(seed >> 8) / 16777216.0f - 0.5f);
    }
  };
  auto node = [&](const std::string& type, std::vector<std::string> in, const std::string& out) {
    onnx::NodeProto* n = g->add_node();
    n->set_op_type(type);
    n->set_name(out + "_" + type);
    for (const auto& i : in) n->add_input(i);
    n->add_output(out);
  };
  weight("w0", 64, 64);
  weight("w1", 64, 64);
  weight("w2", 64, 8);
  node("MatMul", {"x", "w0"}, "h0");
  node("Relu", {"h0"}, "a0");
  node("MatMul", {"a0", "w1"}, "h1");
  node("Sigmoid", {"h1"}, "a1");
  node("MatMul", {"a1", "w2"}, "y");
  std::ofstream out(file, std::ios::binary);
  ASSERT_TRUE(model.SerializeToOstream(&out));
}

nlohmann::json read_json(const fs::path& path) { return nlohmann::json::parse(read_text(path)); }

// The whole model's request calibrates the coordinator's fetch: push 1 ms + 1 MB at 1 GB/s (2 ms) and fetch
// 0.1 ms + 1 MB (1.1 ms) fit 3.1 ms; a request that handed off 4 ms adds 0.9 ms to the fetch latency, one within
// the fit adds nothing.
TEST(ProfileWorkers, WholeRequestBeyondTheFitBecomesFetchLatency) {
  ProfiledLink push{kCoordinator, "cpu0", {{1.0, 1000.0}, 1, 4}, {}};
  ProfiledLink fetch{"cpu0", kCoordinator, {{1.0, 100.0}, 1, 4}, {}};
  run_detail::calibrate_fetch(push, fetch, {{1e6}, 1e6, 4.0});
  EXPECT_NEAR(fetch.request_excess_ms, 0.9, 1e-9);
  EXPECT_NEAR(fetch.fit.link.latency_us, 1000.0, 1e-6);
  EXPECT_NEAR(push.fit.link.latency_us, 1000.0, 1e-9);
  ProfiledLink within{"cpu0", kCoordinator, {{1.0, 100.0}, 1, 4}, {}};
  run_detail::calibrate_fetch(push, within, {{1e6}, 1e6, 3.0});
  EXPECT_EQ(within.request_excess_ms, 0);
  EXPECT_EQ(within.fit.link.latency_us, 100.0);
}

// Two local workers measured the same groups 1.0 / 3.0 ms and 2.0 / 2.0 ms, the whole model 3 / 5 ms: both
// devices get the means (2.0, 2.0 and 4 ms), so neither looks faster than the other.
TEST(ProfileWorkers, LocalWorkersArePooledToTheirMean) {
  auto device = [](const char* name, double a, double b, double whole, double overhead) {
    DeviceProfile d{name, {}};
    d.result.ops = {OpProfile{"a", "Conv", a + 0.1, 0, a, -1}, OpProfile{"b", "Relu", b + 0.1, 0, b, -1}};
    d.result.original_ms = whole;
    d.result.stage_overhead_ms = overhead;
    return d;
  };
  std::vector<DeviceProfile> devices{device("cpu0", 1.0, 2.0, 3.0, 0.2), device("cpu1", 3.0, 2.0, 5.0, 0.4)};
  run_detail::pool_identical_devices(devices);
  for (const auto& d : devices) {
    EXPECT_DOUBLE_EQ(d.result.ops[0].compute_ms, 2.0) << d.device;
    EXPECT_DOUBLE_EQ(d.result.ops[0].measured_ms, 2.1) << d.device;
    EXPECT_DOUBLE_EQ(d.result.ops[1].compute_ms, 2.0) << d.device;
    EXPECT_DOUBLE_EQ(d.result.original_ms, 4.0) << d.device;
    EXPECT_NEAR(d.result.stage_overhead_ms, 0.3, 1e-12) << d.device;
  }
  EXPECT_EQ(devices[1].device, "cpu1");
}

TEST(ProfileWorkers, LocalWorkersGiveAProfileAndClusterThatPlaceAndSimulateUse) {
  TempDir dir;
  const fs::path model = dir / "tiny_mlp.onnx";
  write_tiny_mlp(model);
  const auto r = moirai(fmt::format("profile {} -c {} --local --repeats 3 --out {}", quote(model),
                                    quote(src("clusters/local-cpu.json")), quote(dir / "m")));
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.out.find("link cpu0 -> cpu1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link cpu1 -> cpu0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link coordinator -> cpu0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("link cpu1 -> coordinator"), std::string::npos) << r.out;

  const auto profile = read_json(dir / "m/profile.json");
  EXPECT_EQ(profile["version"], 2);
  EXPECT_EQ(profile["threads"], 1);
  for (const char* d : {"cpu0", "cpu1"}) {
    // The overhead through a worker: a session call and the hand-off to the next stage, more than the call.
    EXPECT_GT(profile["stage_overhead_ms"][d].get<double>(), 0) << d;
    EXPECT_GE(profile["stage_overhead_ms"][d].get<double>(), profile["per_device"][d]["call_ms"].get<double>()) << d;
    EXPECT_GT(profile["per_device"][d]["whole_model_ms"].get<double>(), 0) << d;
  }
  ASSERT_FALSE(profile["ops"].empty());
  for (const auto& [op, per] : profile["ops"].items()) {
    ASSERT_EQ(per.size(), 2u) << op;
    for (const auto& [d, ms] : per.items()) EXPECT_GE(ms.get<double>(), 0) << op << " on " << d;
  }

  const auto cluster = read_json(dir / "m/cluster.json");
  ASSERT_EQ(cluster["devices"].size(), 2u);
  for (const auto& d : cluster["devices"]) {
    EXPECT_EQ(d["threads"], 1) << d;
    EXPECT_GT(d["stage_overhead_us"].get<double>(), 0) << d;
    for (const char* way : {"from_coordinator", "to_coordinator"}) {  // measured per worker, both ways
      ASSERT_TRUE(d.contains(way)) << d;
      const double bw = d[way]["bandwidth_gbps"].get<double>(), lat = d[way]["latency_us"].get<double>();
      EXPECT_TRUE(std::isfinite(bw) && bw > 0) << d;
      EXPECT_TRUE(std::isfinite(lat) && lat >= 0) << d;
    }
  }
  // Both directions measured: the default link and, unless equal, one pair override.
  std::vector<nlohmann::json> links{cluster["links"]["default"]};
  if (cluster["links"].contains("pairs"))
    for (const auto& p : cluster["links"]["pairs"]) links.push_back(p);
  for (const auto& l : links) {
    const double bw = l["bandwidth_gbps"].get<double>(), lat = l["latency_us"].get<double>();
    EXPECT_TRUE(std::isfinite(bw) && bw > 0) << l;
    EXPECT_TRUE(std::isfinite(lat) && lat > 0) << l;  // a 4-byte push costs a round trip
  }

  const auto placed = moirai(fmt::format("place {} -c {} --profile {} -m heft --out {}", quote(model),
                                         quote(dir / "m/cluster.json"), quote(dir / "m/profile.json"),
                                         quote(dir / "plan")));
  ASSERT_EQ(placed.rc, 0) << placed.describe();
  // The coordinator's pushes and fetches make a request longer than the schedule.
  const auto plan = read_json(dir / "plan/plan.json");
  EXPECT_GT(plan["predicted_request_ms"].get<double>(), plan["makespan_ms"].get<double>()) << plan["makespan_ms"];
  const auto simulated = moirai(fmt::format("simulate {}", quote(dir / "plan/plan.json")));
  EXPECT_EQ(simulated.rc, 0) << simulated.describe();
}

TEST(ProfileWorkers, RunningWorkersAreTheDevicesWithTheirOwnThreadsAndMemory) {
  TempDir dir;
  const fs::path model = dir / "tiny_mlp.onnx";
  write_tiny_mlp(model);
  runtest::WorkerProcess a("a"), b("b");
  // No -c: the workers give the cluster, the devices get the whole model's measured rates.
  const auto r = moirai(fmt::format("profile {} --workers left={},right={} --repeats 1 --threads 4 --out {}",
                                    quote(model), a.address(), b.address(), quote(dir / "m")));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto cluster = read_json(dir / "m/cluster.json");
  ASSERT_EQ(cluster["devices"].size(), 2u);
  EXPECT_EQ(cluster["devices"][0]["name"], "left");
  EXPECT_EQ(cluster["devices"][1]["name"], "right");
  for (const auto& d : cluster["devices"]) {
    EXPECT_EQ(d["threads"], 1) << d;  // the workers' own count (moirai worker's default), not --threads
    EXPECT_GT(d["memory_gib"].get<double>(), 0.1) << d;
    EXPECT_GT(d["peak_gflops"].get<double>(), 0) << d;
    EXPECT_GT(d["mem_bandwidth_gbps"].get<double>(), 0) << d;
  }
  const auto profile = read_json(dir / "m/profile.json");
  EXPECT_TRUE(profile["stage_overhead_ms"].contains("left") && profile["stage_overhead_ms"].contains("right"));
}

TEST(ProfileWorkers, UnreachableWorkerIsOneLineWithinTheDeadlineAndWritesNothing) {
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = moirai(fmt::format("profile {} -c {} --workers a=127.0.0.1:1,b=127.0.0.1:1 --out {}",
                                    quote(src("models/squeezenet1_1.weights.onnx")),
                                    quote(src("clusters/local-cpu.json")), quote(dir / "m")));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  expect_clean_error(r, {"measuring the per-stage overhead of a: worker 127.0.0.1:1 (device a)", "not reachable"});
  EXPECT_LT(seconds, 30) << "the connection bound is 5 s per worker";
  EXPECT_FALSE(fs::exists(dir / "m")) << r.describe();
}

TEST(ProfileWorkers, BadArgumentsAreOneLine) {
  TempDir dir;
  const std::string common = fmt::format("profile {} -c {} --out {}", quote(src("models/squeezenet1_1.weights.onnx")),
                                         quote(src("clusters/local-cpu.json")), quote(dir / "m"));
  expect_clean_error(moirai(common + " --local --workers a=127.0.0.1:1"), {"at most one of --local and --workers"});
  expect_clean_error(moirai(common + " --workers a=127.0.0.1:1 --devices 2"), {"--devices is for --local"});
  expect_clean_error(moirai(common + " --workers a127.0.0.1"), {"--workers: 'a127.0.0.1' is not DEVICE=HOST:PORT"});
  expect_clean_error(moirai(fmt::format("profile {} --out {}", quote(src("models/squeezenet1_1.weights.onnx")),
                                        quote(dir / "m"))),
                     {"moirai profile needs -c CLUSTER in process (with --local or --workers the workers give the cluster)"});
  EXPECT_FALSE(fs::exists(dir / "m"));
}

}  // namespace
}  // namespace moirai
