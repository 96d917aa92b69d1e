// Bench tests: a tiny bench end to end through the library (2 models x 1 cluster x 2 fast methods): the CSV
// columns and row count, resume (a re-run neither duplicates nor re-runs), rows for failing and killed methods,
// refusal to mix settings, a torn rows.jsonl line; and the summary's arithmetic on hand-made rows.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "moirai/bench.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::source_path;
namespace fs = std::filesystem;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("moirai-bench-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  BenchOptions tiny() const {
    BenchOptions o;
    o.models = {source_path("models/squeezenet1_1.onnx"), source_path("models/googlenet.onnx")};
    o.clusters = {source_path("clusters/hetero-gpu-server.json")};
    o.methods = {"single", "heft"};
    o.out_dir = dir_;
    o.place.time_limit_s = 5;
    return o;
  }

  std::string dir_;
};

TEST_F(BenchTest, TinyBenchWritesEveryOutput) {
  auto result = run_bench(tiny());
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->ran, 4);
  EXPECT_EQ(result->skipped, 0);
  ASSERT_EQ(result->rows.size(), 4u);

  const auto csv = lines_of(read_text(dir_ + "/results.csv"));
  ASSERT_EQ(csv.size(), 5u);  // header + 4 rows
  EXPECT_EQ(csv[0],
            "model,cluster,method,status,latency_ms,placement_time_s,peak_memory,lower_bound_ms,lower_bound_source,"
            "gap,nodes_before,nodes_after,speedup_vs_single,single_device_ms,devices,capacity,mode,warm_start_method,"
            "warm_start_ms,polished_ms,throughput_rps,stream_p50_ms,stream_p90_ms,period_ms,note");
  // Output order: cluster, model, method in registry order (heft before single).
  EXPECT_EQ(csv[1].substr(0, csv[1].find(",ok")), "googlenet,hetero-gpu-server,heft");
  EXPECT_EQ(csv[4].substr(0, csv[4].find(",ok")), "squeezenet1_1,hetero-gpu-server,single");

  for (const auto& r : result->rows) {
    EXPECT_EQ(r.status_text(), "ok") << r.model << " " << r.method << ": " << r.note;
    ASSERT_TRUE(r.has_latency());
    EXPECT_GT(*r.latency_ms, 0);
    EXPECT_EQ(r.peak_memory.size(), r.devices.size());
    EXPECT_EQ(r.capacity.size(), r.devices.size());
    EXPECT_GT(r.nodes_before, 0);
    EXPECT_LE(r.nodes_after, r.nodes_before);
    ASSERT_TRUE(r.speedup_vs_single.has_value());
    EXPECT_NEAR(*r.speedup_vs_single, r.single_device_ms / *r.latency_ms, 1e-12);
    for (size_t d = 0; d < r.devices.size(); ++d) EXPECT_LE(r.peak_memory[d], r.capacity[d]);
  }
  // The single-device method cannot beat the best single device ignoring memory.
  for (const auto& r : result->rows) {
    if (r.method == "single") {
      EXPECT_LE(*r.speedup_vs_single, 1 + 1e-9);
    }
  }

  const auto json = nlohmann::json::parse(read_text(dir_ + "/results.json"));
  ASSERT_EQ(json.at("rows").size(), 4u);
  EXPECT_TRUE(json["rows"][0]["peak_memory"].is_array());

  const std::string md = read_text(dir_ + "/summary.md");
  EXPECT_NE(md.find("## hetero-gpu-server"), std::string::npos);
  EXPECT_NE(md.find("| squeezenet1_1 ("), std::string::npos);
  EXPECT_NE(md.find("**"), std::string::npos);
  for (const char* svg : {"latency-hetero-gpu-server.svg", "speedup.svg", "placement-time.svg"})
    EXPECT_EQ(read_text(dir_ + "/" + svg).rfind("<svg", 0), 0u) << svg;
}

TEST_F(BenchTest, ResumeSkipsWhatIsDone) {
  ASSERT_TRUE(run_bench(tiny()).ok());
  const auto first = read_bench_rows(dir_);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 4u);

  auto again = run_bench(tiny());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->ran, 0);
  EXPECT_EQ(again->skipped, 4);
  const auto second = read_bench_rows(dir_);
  ASSERT_EQ(second->size(), 4u);  // nothing appended
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(bench_row_json((*first)[i]), bench_row_json((*second)[i]));
  EXPECT_EQ(lines_of(read_text(dir_ + "/results.csv")).size(), 5u);

  // A new method runs only the new combinations.
  BenchOptions more = tiny();
  more.methods.push_back("m-topo");
  auto third = run_bench(more);
  ASSERT_TRUE(third.ok()) << third.error().message;
  EXPECT_EQ(third->ran, 2);
  EXPECT_EQ(third->skipped, 4);
  EXPECT_EQ(lines_of(read_text(dir_ + "/results.csv")).size(), 7u);
}

TEST_F(BenchTest, TornLastLineIsDroppedAndRerun) {
  BenchOptions o = tiny();
  o.models.pop_back();
  ASSERT_TRUE(run_bench(o).ok());
  {
    std::ofstream out(dir_ + "/rows.jsonl", std::ios::app);
    out << R"({"model":"squeezenet1_1","cluster":"hetero-gpu-se)";  // a write cut off by a kill
  }
  auto again = run_bench(tiny());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->ran, 2);  // googlenet's two methods
  EXPECT_EQ(lines_of(read_text(dir_ + "/rows.jsonl")).size(), 4u);
}

TEST_F(BenchTest, FailingMethodGetsARow) {
  BenchOptions o = tiny();
  o.models.pop_back();
  o.methods = {"heft", "no-such-method"};
  auto result = run_bench(o);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 2u);
  const BenchRow& bad = result->rows[1];
  EXPECT_EQ(bad.method, "no-such-method");
  EXPECT_EQ(bad.status.outcome, RowOutcome::failed);
  EXPECT_EQ(bad.status.reason.rfind("unknown method 'no-such-method'", 0), 0u) << bad.status.reason;
  EXPECT_FALSE(bad.has_latency());
  EXPECT_EQ(bad.devices.size(), 4u);  // the problem's figures are there even without a plan
  const std::string csv = read_text(dir_ + "/results.csv");
  EXPECT_NE(csv.find("squeezenet1_1,hetero-gpu-server,no-such-method,\"failed: unknown method"), std::string::npos);
  EXPECT_NE(read_text(dir_ + "/summary.md").find("## Rows without a plan"), std::string::npos);

  // Failed rows count as done, unless asked to retry them.
  o.retry_failed = true;
  auto retried = run_bench(o);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->ran, 1);
  EXPECT_EQ(read_bench_rows(dir_)->size(), 2u);
}

TEST_F(BenchTest, InProcessRunGivesTheSameRows) {
  BenchOptions o = tiny();
  o.models.pop_back();
  o.methods = {"heft", "no-such-method"};
  auto forked = run_bench(o);
  ASSERT_TRUE(forked.ok()) << forked.error().message;
  o.isolate = false;
  o.out_dir = dir_ + "/in-process";
  auto in_process = run_bench(o);
  ASSERT_TRUE(in_process.ok()) << in_process.error().message;
  ASSERT_EQ(in_process->rows.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(in_process->rows[i].status_text(), forked->rows[i].status_text());
    EXPECT_EQ(in_process->rows[i].latency_ms, forked->rows[i].latency_ms);
    EXPECT_EQ(in_process->rows[i].peak_memory, forked->rows[i].peak_memory);
  }
}

TEST_F(BenchTest, ModelThatFitsNowhereGetsDoesNotFitRows) {
  fs::create_directories(dir_);
  const std::string cluster = dir_ + "/tiny-memory.json";
  std::ofstream(cluster) << R"({"name": "tiny-memory", "devices": [
    {"name": "a", "kind": "gpu", "peak_gflops": 1000, "mem_bandwidth_gbps": 100, "memory_gib": 0.001},
    {"name": "b", "kind": "cpu", "peak_gflops": 100, "mem_bandwidth_gbps": 20, "memory_gib": 0.001}],
    "links": {"default": {"bandwidth_gbps": 10, "latency_us": 10}}})";
  BenchOptions o = tiny();
  o.models.pop_back();
  o.clusters = {cluster};
  o.methods = {"heft", "single", "memory-proportional"};
  auto result = run_bench(o);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 3u);
  for (const auto& r : result->rows) {
    EXPECT_EQ(r.status.outcome, RowOutcome::does_not_fit) << r.method << ": " << r.note;
    EXPECT_FALSE(r.note.empty());
    EXPECT_FALSE(r.has_latency());
  }
  EXPECT_NE(read_text(dir_ + "/summary.md").find("| does not fit | does not fit | does not fit |"), std::string::npos);
}

TEST_F(BenchTest, OverrunningMethodIsKilledWithARow) {
  BenchOptions o = tiny();
  o.models.pop_back();
  o.methods = {"placeto"};
  o.place.episodes = 100000000;
  o.place.time_limit_s = 60;
  o.kill_after_s = 0.3;
  auto result = run_bench(o);
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->rows.size(), 1u);
  EXPECT_EQ(result->rows[0].status.outcome, RowOutcome::killed) << result->rows[0].status_text();
  EXPECT_EQ(result->rows[0].status_text().rfind("failed: killed after", 0), 0u) << result->rows[0].status_text();
}

TEST_F(BenchTest, MissingModelAndOtherSettingsAreRefused) {
  BenchOptions o = tiny();
  o.models.push_back(source_path("models/nope.onnx"));
  auto missing = run_bench(o);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("nope.onnx: no such model file or directory"), std::string::npos);

  o = tiny();
  o.models.pop_back();
  o.methods = {"heft"};
  ASSERT_TRUE(run_bench(o).ok());
  o.place.time_limit_s = 7;
  auto mixed = run_bench(o);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.error().message.find("holds results made with other settings"), std::string::npos);
}

TEST(BenchModels, DirectoryExpandsToModelsWithoutWeights) {
  auto models = expand_models({source_path("models")});
  ASSERT_TRUE(models.ok()) << models.error().message;
  EXPECT_EQ(models->size(), 17u);
  for (const auto& m : *models) EXPECT_EQ(m.find(".weights."), std::string::npos) << m;
  EXPECT_TRUE(std::is_sorted(models->begin(), models->end()));
}

BenchRow row(const std::string& model, const std::string& method, std::optional<double> ms,
             const std::string& status = "ok") {
  BenchRow r;
  r.model = model;
  r.cluster = "c";
  r.method = method;
  r.latency_ms = ms;
  r.status = *parse_row_status(status);
  return r;
}

TEST(BenchSummary, BoldBestSpeedupsAndDoesNotFit) {
  std::vector<BenchRow> rows{row("a", "milp", 1.0, "optimal"), row("a", "heft", 2.0),
                             row("b", "milp", 2.0, "optimal"), row("b", "heft", 16.0),
                             row("c", "milp", 3.0, "optimal"), row("c", "heft", std::nullopt, "does not fit")};
  sort_bench_rows(rows);
  const std::string md = bench_summary_md(rows, "milp");
  EXPECT_NE(md.find("| a (0 → 0) | 2.00 | **1.00** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| c (0 → 0) | does not fit | **3.00** |"), std::string::npos) << md;
  EXPECT_NE(md.find("| a | 2.00× |"), std::string::npos) << md;
  EXPECT_NE(md.find("| c | milp only |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **geometric mean** | 4.00× |"), std::string::npos) << md;  // sqrt(2 x 8)
  EXPECT_NE(md.find("| **maximum** | 8.00× |"), std::string::npos) << md;
  EXPECT_NE(md.find("| c | 4.00× / 8.00× |"), std::string::npos) << md;  // headline per cluster
  EXPECT_NE(bench_speedup_svg(rows, "milp").find("<title>b on c: 8× over heft</title>"), std::string::npos);
}

TEST(BenchSummary, BestBaselineHeadlineAndAblation) {
  std::vector<BenchRow> rows{row("a", "milp", 1.0), row("a", "m-etf", 3.0), row("a", "m-sct", 2.0), row("a", "heft", 1.5),
                             row("b", "milp", 2.0), row("b", "m-topo", 8.0), row("b", "heft", 2.0)};
  rows[0].warm_start_method = "heft";
  rows[0].warm_start_ms = 1.6;
  rows[0].polished_ms = 1.2;
  rows[0].lower_bound_ms = 0.8;
  rows[0].lower_bound_source = "assignment relaxation";
  rows[0].gap = 0.2;
  sort_bench_rows(rows);
  const std::string md = bench_summary_md(rows, "milp");
  // a: 2.0 / 1.0 and b: 8.0 / 2.0 against the paper's baselines; a: 1.5 / 1.0 and b: 2.0 / 2.0 against any.
  EXPECT_NE(md.find("| best of m-topo, m-etf, m-sct | 2 | 2.828× | 2.000× | 4.000× |"), std::string::npos) << md;
  EXPECT_NE(md.find("| best other whole-operator method | 2 | 1.225× | 1.000× | 1.500× |"), std::string::npos) << md;
  EXPECT_NE(md.find("| a | heft | 1.60 | 1.20 | 1.00 | 0.800 | assignment relaxation | 20.0% |"), std::string::npos) << md;
  EXPECT_EQ(md.find("| b | heft |"), std::string::npos) << md;  // no ablation fields: no row
}

TEST(BenchRows, JsonLineRoundTrips) {
  BenchRow r = row("m", "heft", 1.5);
  r.peak_memory = {1, 2};
  r.gap = 0.25;
  r.note = "a \"quoted\", note";
  auto back = parse_bench_row(bench_row_json(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(bench_row_json(*back), bench_row_json(r));
  EXPECT_NE(bench_csv({r}).find(",\"a \"\"quoted\"\", note\"\n"), std::string::npos);
  EXPECT_FALSE(parse_bench_row("{\"model\": 1}").ok());
}

// Every outcome survives rows.jsonl (resume reads it back), and the text is what the tables always showed.
TEST(BenchRows, StatusRoundTripsThroughItsText) {
  const std::vector<std::pair<RowStatus, std::string>> cases{
      {{RowOutcome::planned, PlanStatus::ok, ""}, "ok"},
      {{RowOutcome::planned, PlanStatus::time_limit, ""}, "time limit"},
      {{RowOutcome::planned, PlanStatus::heuristic_kept, ""}, "heuristic kept"},
      {{RowOutcome::does_not_fit, PlanStatus::ok, ""}, "does not fit"},
      {{RowOutcome::failed, PlanStatus::ok, "crashed (Aborted)"}, "failed: crashed (Aborted)"},
      {{RowOutcome::killed, PlanStatus::ok, "killed after 12 s (time limit 10 s)"},
       "failed: killed after 12 s (time limit 10 s)"},
      {{RowOutcome::invalid, PlanStatus::ok, "op3 starts before op2 ends"}, "invalid: op3 starts before op2 ends"}};
  for (const auto& [status, text] : cases) {
    EXPECT_EQ(row_status_text(status), text);
    auto back = parse_row_status(text);
    ASSERT_TRUE(back.ok()) << text;
    EXPECT_EQ(back->outcome, status.outcome) << text;
    EXPECT_EQ(back->plan, status.plan) << text;
    EXPECT_EQ(back->reason, status.reason) << text;
  }
  const auto unknown = parse_row_status("splendid");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().message, "unknown status 'splendid'");
}

}  // namespace
}  // namespace moirai
