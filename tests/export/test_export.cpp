// Tests of the export stage: plans on 2, 3 and 4 devices (contiguous chunks and alternating devices) exported
// into sub-models that pass the ONNX checker, carry only their own weights, and, run with ONNX Runtime
// (tools/run_plan.mjs), reproduce the original model's outputs; bad plans, models and manifests fail cleanly
// without leaving an output directory.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/coarsen.h"
#include "moirai/export.h"
#include "moirai/import.h"
#include "moirai/report.h"
#include "support/random_table.h"

namespace moirai {
namespace {

namespace fs = std::filesystem;
using testing::source_path;

std::string cluster_text(int k) {
  std::string devices;
  for (int d = 0; d < k; ++d)
    devices += fmt::format(R"({}{{"name": "d{}", "kind": "cpu", "peak_gflops": {}, "mem_bandwidth_gbps": 10,
                               "memory_gib": 8, "kernel_launch_us": 5}})", d ? "," : "", d, 50 + 10 * d);
  return fmt::format(R"({{"name": "test-{}", "devices": [{}], "links": {{"default": {{"bandwidth_gbps": 1,
                        "latency_us": 10}}}}}})", k, devices);
}

/// A temporary directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / fmt::format("moirai-export-test-{}-{}", ::getpid(), counter()++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

/// models/NAME.onnx (weight-stripped) with seeded random weights, made once per test run as `moirai materialize`
/// makes it: the repository bundles real weights for squeezenet only.
std::string materialized(const std::string& name) {
  static TempDir dir;
  const fs::path out = dir.path / (name + ".weights.onnx");
  if (fs::exists(out)) return out.string();
  if (auto r = materialize_weights(source_path("models/" + name + ".onnx"), out.string(), 1); !r)
    ADD_FAILURE() << r.error().message;
  return out.string();
}

enum class Split { Contiguous, Alternating };

/// Writes plan.json for `model` placed on k devices: contiguous topological chunks, or devices in turn (four
/// operators at a time in topological order), which gives every device several stages.
std::string write_plan(const std::string& model, int k, Split split, const fs::path& dir) {
  auto graph = import_onnx(model);
  EXPECT_TRUE(graph.ok()) << graph.error().message;
  auto cluster = parse_cluster(cluster_text(k), "test cluster");
  EXPECT_TRUE(cluster.ok()) << cluster.error().message;
  auto coarse = coarsen(*graph, *cluster, CoarsenOptions{});
  EXPECT_TRUE(coarse.ok()) << coarse.error().message;
  auto table = build_cost_table(coarse->graph, *cluster);
  EXPECT_TRUE(table.ok()) << table.error().message;
  table->name = fs::path(model).stem().string();
  PlaceResult result;
  result.status = PlanStatus::imported;
  const int n = table->num_ops();
  result.placement.device.assign(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) {
    const OpId op = table->topo_order[static_cast<size_t>(i)];
    result.placement.device[static_cast<size_t>(op)] = split == Split::Contiguous ? i * k / n : (i / 4) % k;
  }
  const Schedule schedule = simulate(*table, result.placement);
  const Plan plan = make_plan(*table, result, schedule, "test", 0, SimOptions{},
                              PlanInputs{model, "", "onnxruntime", 0, {}, ""});
  const std::string path = (dir / fmt::format("plan-{}-{}.json", k, split == Split::Contiguous ? "c" : "a")).string();
  EXPECT_TRUE(write_file_atomic(path, plan_json(plan)).ok());
  return path;
}

Manifest export_plan(const std::string& plan_path, const std::string& model, const fs::path& out) {
  auto plan = read_plan(plan_path);
  EXPECT_TRUE(plan.ok()) << plan.error().message;
  auto request = export_request(*plan, model);
  EXPECT_TRUE(request.ok()) << request.error().message;
  auto manifest = export_submodels(*request, out.string());
  EXPECT_TRUE(manifest.ok()) << manifest.error().message;
  return manifest.ok() ? *manifest : Manifest{};
}

/// Why the runtime check cannot run here, or empty.
std::string runtime_missing() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not on PATH";
  if (!fs::exists(source_path("node_modules/onnxruntime-node")))
    return "node_modules/onnxruntime-node is missing (run scripts/setup)";
  return {};
}

RuntimeOptions runtime_options() {
  RuntimeOptions o;
  o.script = source_path("tools/run_plan.mjs");
  o.repeats = 1;
  o.warmup = 0;
  return o;
}

int64_t dir_bytes(const fs::path& dir, const std::string& ext) {
  int64_t total = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ext) total += static_cast<int64_t>(e.file_size());
  return total;
}

/// Structural checks of a manifest against its plan: every plan operator in exactly one sub-model.
void check_structure(const Manifest& m, const std::string& plan_path, const fs::path& out) {
  auto plan = read_plan(plan_path);
  ASSERT_TRUE(plan.ok());
  std::map<std::string, int> seen;
  for (const auto& s : m.submodels) {
    EXPECT_TRUE(fs::exists(out / s.file)) << s.file;
    for (const auto& op : s.ops) ++seen[op];
    for (const auto& in : s.inputs) {
      if (!in.from.empty()) {
        EXPECT_NE(in.from, s.name);
      }
    }
  }
  EXPECT_EQ(seen.size(), plan->ops.size());
  for (const auto& op : plan->ops) EXPECT_EQ(seen[op.name], 1) << op.name;
  // The manifest on disk reads back, and its run order respects the data flow.
  auto back = read_manifest((out / "manifest.json").string());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->submodels.size(), m.submodels.size());
}

/// Exports `model` on 2, 3 and 4 devices, checks the structure and runs each split against the original.
void split_and_run(const std::string& model) {
  const std::string missing = runtime_missing();
  TempDir tmp;
  const int64_t model_bytes = static_cast<int64_t>(fs::file_size(model));
  // Contiguous chunks on 2, 3 and 4 devices; alternating devices on 3 (dozens of stages: slower to run).
  for (auto [k, split] : {std::pair{2, Split::Contiguous}, std::pair{3, Split::Contiguous},
                          std::pair{4, Split::Contiguous}, std::pair{3, Split::Alternating}}) {
    SCOPED_TRACE(fmt::format("{} on {} devices, {}", model, k, split == Split::Contiguous ? "contiguous" : "alternating"));
    const std::string plan = write_plan(model, k, split, tmp.path);
    const fs::path out = tmp.path / fmt::format("out-{}-{}", k, static_cast<int>(split));
    const auto t0 = std::chrono::steady_clock::now();
    const Manifest m = export_plan(plan, model, out);  // the checker runs on every sub-model
    const auto t1 = std::chrono::steady_clock::now();
    if (split == Split::Contiguous) {
      EXPECT_EQ(static_cast<int>(m.submodels.size()), k);  // one stage per device
      // Each sub-model carries only its own weights: together about the original's size.
      EXPECT_LT(dir_bytes(out, ".onnx"), model_bytes * 11 / 10);
    } else {
      EXPECT_GT(static_cast<int>(m.submodels.size()), k);
    }
    check_structure(m, plan, out);
    if (!missing.empty()) continue;
    auto run = run_manifest(m.path, runtime_options());
    ASSERT_TRUE(run.ok()) << run.error().message;
    EXPECT_TRUE(run->match) << "max |diff| " << run->max_abs_diff << " of max |reference| " << run->max_reference;
    EXPECT_GT(run->max_reference, 0);
    std::cerr << fmt::format("  {} devices {}: {} sub-models, export {:.0f} ms, run {:.0f} ms, max |diff| {:.2g}\n", k,
                             split == Split::Contiguous ? "contiguous" : "alternating", m.submodels.size(),
                             std::chrono::duration<double, std::milli>(t1 - t0).count(),
                             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count(),
                             run->max_abs_diff);
  }
  if (!missing.empty()) GTEST_SKIP() << "exported and checked, but not run: " << missing;
}

TEST(Export, SqueezenetSplitsRunLikeTheOriginal) { split_and_run(source_path("models/squeezenet1_1.weights.onnx")); }
TEST(Export, GptTinySplitsRunLikeTheOriginal) { split_and_run(materialized("gpt_tiny")); }
TEST(Export, LlamaTinySplitsRunLikeTheOriginal) { split_and_run(materialized("llama_tiny")); }

// `moirai profile` end to end on squeezenet (1 thread, one repeat): every coarse group timed, the call probes
// give a per-call cost, the groups beyond the whole model a hand-off speed, and compute times are net of both.
TEST(Export, ProfileMeasuresGroupsAndTheStageOverhead) {
  if (const std::string missing = runtime_missing(); !missing.empty()) GTEST_SKIP() << missing;
  ProfileOptions options;
  options.model = source_path("models/squeezenet1_1.weights.onnx");
  options.cluster = source_path("clusters/local-cpu.json");
  options.runtime = runtime_options();
  options.runtime.threads = 1;
  auto r = profile_model(options);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->ops.size(), 39u);  // the coarse graph `place` sees (onnxruntime fusion)
  EXPECT_EQ(r->threads, 1);
  EXPECT_GE(r->call_ms, 0);
  EXPECT_GT(r->handoff_gbps, 0);
  EXPECT_GE(r->stage_overhead_ms, r->call_ms);  // the runner's loop around a call comes on top
  EXPECT_LT(r->stage_overhead_ms, 5.0);         // an Identity: far below a convolution
  double handoff = 0;
  for (const auto& op : r->ops) {
    EXPECT_GT(op.measured_ms, 0) << op.name;
    EXPECT_NEAR(op.compute_ms,
                r->compute_scale *
                    std::max(0.0, op.measured_ms - r->call_ms - op.handoff_bytes / (r->handoff_gbps * 1e6)),
                1e-4)
        << op.name;
    handoff += op.handoff_bytes;
  }
  // Every activation between groups is handed off twice (out and in); the image and the logits are not counted.
  EXPECT_GT(handoff, 2 * 64 * 111 * 111 * 4);  // at least the first convolution's output, out and in
}

TEST(Export, FoldedShapeNodesAreCopiedIntoSubModels) {
  // gpt_tiny's shape arithmetic (Shape, Gather, Concat...) is folded by the importer: those nodes are in no
  // plan operator, yet the sub-models that reshape need them.
  const std::string model = source_path("models/gpt_tiny.onnx");
  auto graph = import_onnx(model);
  ASSERT_TRUE(graph.ok());
  TempDir tmp;
  const Manifest m = export_plan(write_plan(model, 2, Split::Contiguous, tmp.path), model, tmp.path / "out");
  ASSERT_EQ(m.submodels.size(), 2u);
  EXPECT_FALSE(m.weights);  // weight-stripped: references to an empty weights.absent beside the sub-models
  EXPECT_TRUE(fs::exists(tmp.path / "out" / "weights.absent"));
  // Sub-model inputs are only graph inputs and tensors of real operators (never a folded shape value).
  std::set<std::string> real;
  for (const auto& t : graph->tensors())
    if (t.producer != kNone || t.kind == TensorKind::Input) real.insert(t.name);
  for (const auto& s : m.submodels)
    for (const auto& in : s.inputs) EXPECT_TRUE(real.count(in.name)) << s.name << " receives " << in.name;
}

// ---- bad input ----

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = source_path("models/squeezenet1_1.weights.onnx");
    plan_path_ = write_plan(model_, 2, Split::Contiguous, tmp_.path);
    auto plan = read_plan(plan_path_);
    ASSERT_TRUE(plan.ok());
    plan_ = *plan;
    out_ = tmp_.path / "out";
  }
  /// Exports and expects an error containing `text`, with no output directory and no temporary left.
  void expect_error(const PlanFile& plan, const std::string& model, const std::string& text) {
    auto request = export_request(plan, model);
    std::string message;
    if (!request) {
      message = request.error().message;
    } else {
      auto m = export_submodels(*request, out_.string());
      ASSERT_FALSE(m.ok()) << "expected an error containing: " << text;
      message = m.error().message;
    }
    EXPECT_NE(message.find(text), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(out_));
    for (const auto& e : fs::directory_iterator(tmp_.path))
      EXPECT_EQ(e.path().filename().string().find(".out.tmp"), std::string::npos) << e.path();
  }
  TempDir tmp_;
  std::string model_, plan_path_;
  PlanFile plan_;
  fs::path out_;
};

TEST_F(BadInput, PlanForAnotherModel) {
  const std::string gpt = source_path("models/gpt_tiny.onnx");
  expect_error(plan_, gpt, "the plan is for model 'squeezenet1_1.weights', not for");
  PlanFile renamed = plan_;  // same name, other nodes
  renamed.model = "gpt_tiny";
  expect_error(renamed, gpt, "which " + gpt + " does not have (a plan for another model?)");
}

TEST_F(BadInput, PlanMissingAnOperator) {
  PlanFile plan = plan_;
  const std::string dropped = plan.ops.back().origin.front();
  plan.ops.pop_back();
  expect_error(plan, model_, "ONNX node '" + dropped + "'");
  expect_error(plan, model_, "is in no operator of the plan");
}

TEST_F(BadInput, NodeInTwoOperators) {
  PlanFile plan = plan_;
  plan.ops[1].origin.push_back(plan.ops[0].origin.front());
  expect_error(plan, model_, "is in two operators");
}

TEST_F(BadInput, PlanForAnotherCluster) {
  const fs::path other = tmp_.path / "other.json";
  std::ofstream(other) << cluster_text(3);
  PlanFile plan = plan_;
  plan.inputs.cluster = other.string();
  expect_error(plan, model_, "the plan is for cluster 'test-2', but its cluster file");
}

TEST_F(BadInput, DeviceNotInThePlan) {
  PlanFile plan = plan_;
  plan.ops[0].device = "tpu9";
  expect_error(plan, model_, "is on device 'tpu9', which is not one of the plan's devices");
}

TEST_F(BadInput, MissingModelFile) {
  expect_error(plan_, (tmp_.path / "squeezenet1_1.weights.onnx").string(), "no such file");
}

TEST_F(BadInput, MissingWeightsFile) {
  // The stripped model without the weights.absent file its initializers point to.
  const fs::path copy = tmp_.path / "squeezenet1_1.onnx";
  fs::copy_file(source_path("models/squeezenet1_1.onnx"), copy);
  PlanFile plan = plan_;
  plan.model = "squeezenet1_1";
  expect_error(plan, copy.string(), "which does not exist (missing weights file)");
}

TEST_F(BadInput, ExistingOutputIsReplacedOnlyOnSuccess) {
  fs::create_directories(out_);
  std::ofstream(out_ / "old.txt") << "old";
  PlanFile plan = plan_;
  plan.ops.pop_back();
  auto request = export_request(plan, model_);
  ASSERT_TRUE(request.ok());
  EXPECT_FALSE(export_submodels(*request, out_.string()).ok());
  EXPECT_TRUE(fs::exists(out_ / "old.txt"));  // untouched by the failed export
  auto good = export_request(plan_, model_);
  ASSERT_TRUE(good.ok());
  ASSERT_TRUE(export_submodels(*good, out_.string()).ok());
  EXPECT_FALSE(fs::exists(out_ / "old.txt"));
  EXPECT_TRUE(fs::exists(out_ / "manifest.json"));
}

TEST(Manifest, CycleIsNamed) {
  const std::string text = R"({"model": "m.onnx", "inputs": [], "outputs": [], "run_order": ["a", "b"],
    "submodels": [
      {"name": "a", "file": "a.onnx", "inputs": [{"name": "y", "from": "b"}], "outputs": [{"name": "x"}]},
      {"name": "b", "file": "b.onnx", "inputs": [{"name": "x", "from": "a"}], "outputs": [{"name": "y"}]}]})";
  auto m = parse_manifest(text, "cyc/manifest.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "cyc/manifest.json: the sub-models form a cycle: a -> b -> a");
}

TEST(Manifest, RunOrderMustFollowTheDataFlow) {
  const std::string text = R"({"model": "m.onnx", "inputs": [], "outputs": [], "run_order": ["b", "a"],
    "submodels": [
      {"name": "a", "file": "a.onnx", "inputs": [], "outputs": [{"name": "x"}]},
      {"name": "b", "file": "b.onnx", "inputs": [{"name": "x", "from": "a"}], "outputs": [{"name": "y"}]}]})";
  auto m = parse_manifest(text, "order.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message, "order.json: sub-model 'b' needs 'x' from 'a', which does not run before it");
  EXPECT_NE(parse_manifest("{", "bad.json").error().message.find("bad.json: not JSON"), std::string::npos);
  EXPECT_EQ(read_manifest("/nonexistent/manifest.json").error().message, "/nonexistent/manifest.json: no such file");
}

TEST(Cli, ExportAndRunErrorsExitNonZero) {
  if (!fs::exists(MOIRAI_CLI)) GTEST_SKIP() << "the moirai binary is not built";
  TempDir tmp;
  const std::string plan = write_plan(source_path("models/squeezenet1_1.weights.onnx"), 2, Split::Contiguous, tmp.path);
  const fs::path out = tmp.path / "out";
  const std::string log = (tmp.path / "log.txt").string();
  auto cli = [&](const std::string& args) {
    return std::system(fmt::format("'{}' {} > '{}' 2>&1", MOIRAI_CLI, args, log).c_str());
  };
  auto text = [&] {
    std::ifstream in(log);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  EXPECT_NE(cli(fmt::format("export '{}' '{}' --out '{}'", plan, source_path("models/gpt_tiny.onnx"), out.string())), 0);
  EXPECT_NE(text().find("moirai: error: " + plan + ": the plan is for model"), std::string::npos) << text();
  EXPECT_FALSE(fs::exists(out));
  std::ofstream(tmp.path / "cycle.json") << R"({"model": "m.onnx", "inputs": [], "outputs": [], "run_order": ["a", "b"],
    "submodels": [{"name": "a", "file": "a.onnx", "inputs": [{"name": "y", "from": "b"}], "outputs": [{"name": "x"}]},
                  {"name": "b", "file": "b.onnx", "inputs": [{"name": "x", "from": "a"}], "outputs": [{"name": "y"}]}]})";
  EXPECT_NE(cli(fmt::format("run '{}'", (tmp.path / "cycle.json").string())), 0);
  EXPECT_NE(text().find("the sub-models form a cycle: a -> b -> a"), std::string::npos) << text();
  EXPECT_EQ(cli(fmt::format("export '{}' '{}' --out '{}'", plan, source_path("models/squeezenet1_1.weights.onnx"),
                            out.string())), 0) << text();
  EXPECT_TRUE(fs::exists(out / "manifest.json"));
}

}  // namespace
}  // namespace moirai
