// Tests of the report stage: plan.json round trip and reader errors, Chrome trace structure, Gantt SVG
// well-formedness, atomic writes, the HTML report and the terminal tables. Fixtures are built by hand so these
// tests do not depend on the simulator; one property test round-trips simulated random plans.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "moirai/report.h"
#include "support/random_table.h"

namespace moirai {
namespace {

namespace fs = std::filesystem;

/// 4 operators on 2 devices; names with XML specials to exercise escaping.
///   conv1 (a100 0-2) -> relu&1 (a100 2-3) -> mm<2> (cpu "x" 4-7, after transfer 3-4) and add (a100 3-5)
Plan fixture() {
  CostTable t;
  t.name = "tiny";
  t.cluster = "duo";
  t.device_names = {"a100", "cpu \"x\""};
  t.capacity = {4096, 1024};
  t.op_names = {"conv1", "relu&1", "mm<2>", "add"};
  t.op_types = {"Conv", "Relu", "MatMul", "Add"};
  t.op_origin = {{"/conv1/Conv"}, {"/relu/Relu"}, {"/mm/MatMul"}, {"/add/Add", "/add/Cast"}};
  t.time_ms = {2, 4, 1, 2, 6, 3, 2, 4};
  t.param_bytes = {100, 0, 200, 0};
  t.flops = {1e9, 1e6, 2e9, 1e6};
  auto item = [&](std::string name, OpId producer, std::vector<OpId> consumers) {
    DataItem d;
    d.name = std::move(name);
    d.producer = producer;
    d.consumers = std::move(consumers);
    d.bytes = 1024;
    d.transfer_ms = {0, 1, 1, 0};
    t.data.push_back(d);
  };
  item("t0", 0, {1});
  item("t1", 1, {2, 3});
  item("t2", 2, {});
  item("t3", 3, {});
  t.op_inputs = {{}, {0}, {1}, {1}};
  t.op_outputs = {{0}, {1}, {2}, {3}};
  t.topo_order = {0, 1, 2, 3};

  PlaceResult r;
  r.placement.device = {0, 0, 1, 0};
  r.status = PlanStatus::optimal;
  r.lower_bound_ms = 6.3;
  Schedule s;
  s.ops = {{0, 2}, {2, 3}, {4, 7}, {3, 5}};
  s.transfers = {{1, 0, 1, 3, 4, 1024}};
  s.makespan_ms = 7;
  s.busy_ms = {5, 3};
  s.peak_memory = {2148, 1224};  // cpu over capacity (1024)
  s.link_bytes = {0, 1024, 0, 0};
  s.order = {{0, 1, 3}, {2}};
  PlanInputs in{"models/tiny.onnx", "clusters/duo.json", "onnxruntime", 60, {{"batch", 4}, {"seq", 128}}, ""};
  return make_plan(t, r, s, "milp", 1.25, SimOptions{false}, in, {{"fusion:onnxruntime", 10, 4}});
}

std::string temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("moirai_test_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PlanJson, RoundTripKeepsPlacementOrderAndFigures) {
  const Plan plan = fixture();
  const std::string text = plan_json(plan);
  const auto j = nlohmann::json::parse(text);
  for (const char* key : {"version", "model", "cluster", "method", "makespan_ms", "placement_time_s", "status",
                          "lower_bound_ms", "gap", "contention", "inputs", "devices", "ops", "transfers"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["version"], 1);
  EXPECT_NEAR(j["gap"].get<double>(), 0.1, 1e-12);
  EXPECT_EQ(j["devices"][1]["capacity_bytes"], 1024.0);
  EXPECT_EQ(j["devices"][0]["peak_memory_bytes"], 2148.0);
  EXPECT_EQ(j["devices"][0]["busy_ms"], 5.0);
  EXPECT_EQ(j["transfers"][0]["tensor"], "t1");
  EXPECT_EQ(j["transfers"][0]["dst"], "cpu \"x\"");
  EXPECT_EQ(j["ops"][3]["origin"].size(), 2u);
  EXPECT_FALSE(j["ops"][0].contains("parts"));

  auto file = parse_plan(text, "p.json");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->model, "tiny");
  EXPECT_EQ(file->cluster, "duo");
  EXPECT_EQ(file->method, "milp");
  EXPECT_EQ(file->status, "optimal");
  EXPECT_DOUBLE_EQ(file->makespan_ms, 7);
  EXPECT_FALSE(file->contention);
  EXPECT_EQ(file->inputs.model, "models/tiny.onnx");
  EXPECT_EQ(file->inputs.cluster, "clusters/duo.json");
  EXPECT_EQ(file->inputs.fusion, "onnxruntime");
  EXPECT_EQ(file->inputs.max_nodes, 60);
  EXPECT_EQ(file->inputs.dims, (std::map<std::string, int64_t>{{"batch", 4}, {"seq", 128}}));
  EXPECT_EQ(file->devices, (std::vector<std::string>{"a100", "cpu \"x\""}));
  const std::vector<std::pair<std::string, std::string>> want{
      {"conv1", "a100"}, {"relu&1", "a100"}, {"mm<2>", "cpu \"x\""}, {"add", "a100"}};
  EXPECT_EQ(file->placement(), want);
  EXPECT_EQ(file->order().at("a100"), (std::vector<std::string>{"conv1", "relu&1", "add"}));
  EXPECT_EQ(file->ops[3].origin, (std::vector<std::string>{"/add/Add", "/add/Cast"}));

  auto placement = resolve_placement(*file, plan.table);
  ASSERT_TRUE(placement.ok()) << placement.error().message;
  EXPECT_EQ(placement->device, plan.result.placement.device);
  EXPECT_EQ(placement->order, plan.schedule.order);
}

TEST(PlanJson, SplitPartsRoundTrip) {
  Plan plan = fixture();
  plan.parts.assign(4, {});
  plan.parts[2] = {{0, 0.25, 4, 5}, {1, 0.75, 4, 7}};
  const std::string text = plan_json(plan);
  auto file = parse_plan(text, "p.json");
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_EQ(file->ops[2].parts.size(), 2u);
  EXPECT_EQ(file->ops[2].parts[0].first, "a100");
  EXPECT_DOUBLE_EQ(file->ops[2].parts[1].second.share, 0.75);
  EXPECT_DOUBLE_EQ(file->ops[2].parts[1].second.end_ms, 7);
  EXPECT_TRUE(file->ops[1].parts.empty());
  // Parts show up in the trace and the Gantt as their own boxes.
  const auto trace = nlohmann::json::parse(trace_json(plan));
  int x = 0;
  for (const auto& e : trace["traceEvents"]) x += e["ph"] == "X";
  EXPECT_EQ(x, 5 + 2);
  const std::string svg = gantt_svg(plan);
  EXPECT_NE(svg.find("part 75.0%"), std::string::npos);
}

TEST(PlanJson, ReaderErrorsNameFileAndProblem) {
  auto msg = [](const std::string& text) {
    auto r = parse_plan(text, "plan.json");
    return r.ok() ? std::string("(accepted)") : r.error().message;
  };
  EXPECT_EQ(msg("{ not json").rfind("plan.json: not JSON: ", 0), 0u) << msg("{ not json");
  EXPECT_EQ(msg("[1, 2]"), "plan.json: a plan must be a JSON object");
  EXPECT_EQ(msg(R"({"model": "m"})"), "plan.json: missing key 'version'");
  EXPECT_EQ(msg(R"({"version": 2})"), "plan.json: unsupported plan version 2 (this moirai reads version 1)");
  EXPECT_EQ(msg(R"({"version": 1, "devices": [], "ops": []})"), "plan.json: missing key 'inputs'");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": []})"), "plan.json: missing key 'ops'");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [], "ops": {}})"),
            "plan.json: 'ops' must be an array");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [], "ops": [{"name": "a", "device": 3}]})"),
            "plan.json: 'ops[0].device' must be a string");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [], "ops": [{"name": "a"}]})"),
            "plan.json: missing key 'ops[0].device'");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [],
                   "ops": [{"name": "a", "device": "d", "parts": [{"device": "d", "share": "half"}]}]})"),
            "plan.json: 'ops[0].parts[0].share' must be a number");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m", "dims": {"batch": "x"}}, "devices": [], "ops": []})"),
            "plan.json: 'inputs.dims.batch' must be an integer");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [],
                   "ops": [{"name": "a", "device": "d"}, {"name": "a", "device": "d"}]})"),
            "plan.json: operator 'a' is listed twice (ops[1])");
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [{"name": "d"}], "ops": []})"), "(accepted)");
  EXPECT_EQ(msg(R"({"version": 1, "makespan_ms": 1e400})").rfind("plan.json: not JSON: ", 0), 0u);  // beyond a double
  EXPECT_EQ(msg(R"({"version": 1, "inputs": {"model": "m"}, "devices": [], "ops": [],
                   "transfers": [{"tensor": "x", "src": "a", "dst": "b", "start_ms": "soon", "end_ms": 1}]})"),
            "plan.json: 'transfers[0].start_ms' must be a number");

  auto missing = read_plan("/nonexistent/plan.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message, "/nonexistent/plan.json: cannot open the plan file");
}

TEST(PlanJson, ResolveReportsUnknownAndMissingNames) {
  const Plan plan = fixture();
  auto file = parse_plan(plan_json(plan), "p.json");
  ASSERT_TRUE(file.ok());
  PlanFile bad_device = *file;
  bad_device.ops[1].device = "tpu";
  auto r = resolve_placement(bad_device, plan.table);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "p.json: operator 'relu&1' is placed on unknown device 'tpu' (devices: a100, cpu \"x\")");
  PlanFile bad_op = *file;
  bad_op.ops[0].name = "conv9";
  r = resolve_placement(bad_op, plan.table);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "p.json: unknown operator 'conv9' (not in model 'tiny')");
  PlanFile short_plan = *file;
  short_plan.ops.erase(short_plan.ops.begin() + 1, short_plan.ops.end());
  r = resolve_placement(short_plan, plan.table);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "p.json: the plan does not place operator 'relu&1' (and 2 more)");
}

TEST(Trace, TracksAndCompleteEvents) {
  const Plan plan = fixture();
  const auto j = nlohmann::json::parse(trace_json(plan));
  ASSERT_TRUE(j["traceEvents"].is_array());
  std::map<std::pair<int, int>, std::string> threads;
  std::map<int, std::string> processes;
  int x = 0;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name") threads[{e["pid"], e["tid"]}] = e["args"]["name"];
    if (e["ph"] == "M" && e["name"] == "process_name") processes[e["pid"]] = e["args"]["name"];
    if (e["ph"] != "X") continue;
    ++x;
    EXPECT_TRUE(threads.count({e["pid"], e["tid"]})) << "event on an unnamed track: " << e.dump();
    if (e["name"] == "mm<2>") {
      EXPECT_EQ(e["ts"], 4000.0);
      EXPECT_EQ(e["dur"], 3000.0);
      EXPECT_EQ(e["args"]["type"], "MatMul");
      EXPECT_EQ(e["pid"], 2);
    }
    if (e["name"] == "t1") {
      EXPECT_EQ(e["args"]["bytes"], 1024.0);
    }
  }
  EXPECT_EQ(x, 4 + 2 * 1);  // every op, every transfer on its send and its receive track
  EXPECT_EQ(processes, (std::map<int, std::string>{{1, "a100"}, {2, "cpu \"x\""}}));
  std::set<std::string> names;
  for (const auto& [k, v] : threads) names.insert(v);
  EXPECT_EQ(names, (std::set<std::string>{"a100", "a100 send", "a100 recv", "cpu \"x\"", "cpu \"x\" send",
                                          "cpu \"x\" recv"}));
}

/// Minimal XML check: tags balance (ignoring the declaration, comments and self-closing tags).
bool balanced(const std::string& xml, std::string& why) {
  std::vector<std::string> stack;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    const size_t end = xml.find('>', i);
    if (end == std::string::npos) return why = "unterminated tag", false;
    const std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty() || tag[0] == '?' || tag[0] == '!') continue;
    if (tag.back() == '/') continue;
    const std::string name = tag.substr(tag[0] == '/' ? 1 : 0, tag.find_first_of(" \n/", 1) - (tag[0] == '/' ? 1 : 0));
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != name) return why = "unexpected </" + name + ">", false;
      stack.pop_back();
    } else {
      stack.push_back(name);
    }
  }
  if (!stack.empty()) return why = "unclosed <" + stack.back() + ">", false;
  return true;
}

TEST(Gantt, WellFormedWithOneBoxAndTitlePerOp) {
  const Plan plan = fixture();
  const std::string svg = gantt_svg(plan);
  std::string why;
  EXPECT_TRUE(balanced(svg, why)) << why;
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t i = svg.find(needle); i != std::string::npos; i = svg.find(needle, i + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<rect class=\"op\""), 4u);
  EXPECT_EQ(count("<rect class=\"send\""), 1u);
  EXPECT_EQ(count("<rect class=\"recv\""), 1u);
  for (const char* name : {"conv1", "relu&amp;1", "mm&lt;2&gt;", "add"})
    EXPECT_TRUE(std::regex_search(svg, std::regex(std::string("<title>") + name + " \\("))) << name;
  // Raw specials never leak into the document.
  EXPECT_EQ(svg.find("mm<2>"), std::string::npos);
  EXPECT_EQ(svg.find("relu&1"), std::string::npos);
  // Title, legend and axis.
  EXPECT_NE(svg.find("tiny on duo"), std::string::npos);
  EXPECT_NE(svg.find("makespan 7.00 ms"), std::string::npos);
  EXPECT_NE(svg.find("MatMul ("), std::string::npos);
  EXPECT_NE(svg.find("time (ms)"), std::string::npos);
  EXPECT_NE(svg.find("over capacity"), std::string::npos);  // the cpu exceeds its 1024 bytes
}

TEST(Gantt, StablePalette) {
  EXPECT_EQ(report_html(fixture()).find("<script src"), std::string::npos);
  const Plan plan = fixture();
  EXPECT_EQ(gantt_svg(plan), gantt_svg(plan));
  EXPECT_NE(gantt_svg(plan).find("fill=\"#4e79a7\""), std::string::npos);  // Conv keeps its colour
}

TEST(PlanJson, SimulatedRandomPlansRoundTrip) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    const CostTable table = testing::random_table(seed, {.ops = 14, .devices = 3});
    PlaceResult result;
    std::mt19937_64 rng(seed);
    for (OpId op = 0; op < table.num_ops(); ++op) result.placement.device.push_back(static_cast<DeviceId>(rng() % 3));
    const SimOptions sim{seed % 2 == 0};
    const Schedule schedule = simulate(table, result.placement, sim);
    const Plan plan = make_plan(table, result, schedule, "random", 0.5, sim);

    auto file = parse_plan(plan_json(plan), "p.json");
    ASSERT_TRUE(file.ok()) << file.error().message;
    EXPECT_EQ(file->contention, sim.contention);
    EXPECT_EQ(file->makespan_ms, schedule.makespan_ms);  // shortest round-trip doubles: exact
    auto placement = resolve_placement(*file, table);
    ASSERT_TRUE(placement.ok()) << placement.error().message;
    EXPECT_EQ(placement->device, result.placement.device) << "seed " << seed;
    // Re-simulating the plan file's placement and order gives the same makespan.
    const Schedule again = simulate(table, *placement, sim);
    EXPECT_NEAR(again.makespan_ms, schedule.makespan_ms, 1e-9) << "seed " << seed;

    const auto trace = nlohmann::json::parse(trace_json(plan));
    size_t x = 0;
    for (const auto& e : trace["traceEvents"]) x += e["ph"] == "X";
    EXPECT_EQ(x, table.op_names.size() + 2 * schedule.transfers.size());
    const std::string svg = gantt_svg(plan);
    std::string why;
    EXPECT_TRUE(balanced(svg, why)) << why;
    size_t boxes = 0;
    for (size_t i = svg.find("<rect class=\"op\""); i != std::string::npos; i = svg.find("<rect class=\"op\"", i + 1))
      ++boxes;
    EXPECT_EQ(boxes, table.op_names.size());
  }
}

TEST(Files, WriteFileAtomicReplacesAndLeavesNoTemp) {
  const std::string dir = temp_dir("atomic");
  const std::string path = dir + "/out.txt";
  ASSERT_TRUE(write_file_atomic(path, "first").ok());
  EXPECT_EQ(slurp(path), "first");
  ASSERT_TRUE(write_file_atomic(path, "second, longer").ok());
  EXPECT_EQ(slurp(path), "second, longer");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "out.txt");
  }
  EXPECT_EQ(files, 1u);
  auto bad = write_file_atomic(dir + "/missing/out.txt", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind(dir + "/missing/out.txt: cannot create a temporary file: ", 0), 0u)
      << bad.error().message;
  fs::remove_all(dir);
}

TEST(Files, WritePlanOutputsWritesFourFiles) {
  const std::string dir = temp_dir("outputs") + "/nested/out";
  const Plan plan = fixture();
  ASSERT_TRUE(write_plan_outputs(plan, dir).ok());
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"gantt.svg", "plan.json", "report.html", "trace.json"}));
  auto back = read_plan(dir + "/plan.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->ops.size(), 4u);
  const std::string html = slurp(dir + "/report.html");
  std::string why;
  EXPECT_TRUE(balanced(html.substr(html.find("<html")), why)) << why;
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);  // inline SVG without declaration
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("a100 &#8594; cpu &quot;x&quot;"), std::string::npos);
  EXPECT_NE(html.find("10.00%"), std::string::npos);  // gap
  fs::remove_all(fs::path(dir).parent_path().parent_path());
}

TEST(Tables, HumanUnits) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.50 KiB");
  EXPECT_EQ(human_bytes(3.0 * 1024 * 1024 * 1024), "3.00 GiB");
  EXPECT_EQ(human_bytes(150.0 * 1024 * 1024), "150 MiB");
  EXPECT_EQ(human_time(0.25), "250 us");
  EXPECT_EQ(human_time(12.34), "12.3 ms");
  EXPECT_EQ(human_time(1250), "1.25 s");
  EXPECT_EQ(human_time(180000), "3.0 min");
}

TEST(Tables, SummaryAndComparison) {
  const Plan plan = fixture();
  const std::string summary = format_plan_summary(plan);
  EXPECT_NE(summary.find("milp (optimal, gap 10.00%)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("7.00 ms"), std::string::npos);
  EXPECT_NE(summary.find("1.20 KiB (over)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("1.25 s"), std::string::npos);

  EXPECT_DOUBLE_EQ(best_single_device_ms(plan.table), 2 + 1 + 6 + 2);  // a100: sum of its times
  ComparisonRow fast = comparison_row(plan);
  fast.method = "fast";
  fast.latency_ms = 5.5;
  fast.fits = true;
  ComparisonRow slow = fast;
  slow.method = "slow";
  slow.latency_ms = 11;
  ComparisonRow over = fast;
  over.method = "over";
  over.latency_ms = 1;
  over.fits = false;
  ComparisonRow failed;
  failed.method = "broken";
  failed.error = "no solution in 1 s";
  const std::string table = format_comparison({failed, slow, over, fast}, plan.table, 11);
  const size_t pf = table.find("fast"), ps = table.find("slow"), po = table.find("over "), pb = table.find("broken");
  ASSERT_NE(pf, std::string::npos);
  EXPECT_LT(pf, ps);
  EXPECT_LT(ps, po);
  EXPECT_LT(po, pb);
  EXPECT_NE(table.find("2.00x"), std::string::npos) << table;
  EXPECT_NE(table.find("1.00x"), std::string::npos);
  EXPECT_NE(table.find("failed (note 1)"), std::string::npos);
  EXPECT_NE(table.find("note 1: broken: no solution in 1 s"), std::string::npos);
  EXPECT_NE(table.find("does not fit"), std::string::npos);
}

}  // namespace
}  // namespace moirai
