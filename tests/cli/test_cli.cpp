// End-to-end tests of the `moirai` CLI: help text, inspect, coarsen, schedule, place (one method, all methods,
// GenEFlow with split operators, --no-contention), simulate of a written and a hand-edited plan.
// Bad input is in test_cli_errors.cpp. Every command runs the built binary (MOIRAI_CLI) in a shell.
#include <gtest/gtest.h>

#include <functional>

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

#include "cli/cli_support.h"

namespace moirai::clitest {
namespace {

TEST(CliHelp, ListsEverySubcommand) {
  const RunResult r = moirai("--help");
  ASSERT_EQ(r.rc, 0) << r.describe();
  for (const char* cmd : {"inspect", "coarsen", "place", "simulate", "schedule", "export", "profile", "run", "bench"})
    EXPECT_NE(r.out.find(std::string("\n  ") + cmd), std::string::npos) << cmd << "\n" << r.out;
}

TEST(CliHelp, PlaceDocumentsMethods) {
  const RunResult r = moirai("place --help");
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.out.find("--method"), std::string::npos) << r.out;
  const auto names = methods_from_help();
  for (const char* m : {"heft", "cpop", "milp", "single", "memory-proportional", "placeto", "geneflow"})
    EXPECT_NE(std::find(names.begin(), names.end(), m), names.end()) << "method " << m << " not in --help\n" << r.out;
}

TEST(CliHelp, NoSubcommandIsAnError) {
  const RunResult r = moirai("");
  EXPECT_NE(r.rc, 0) << r.describe();
}

TEST(CliInspect, Resnet50Json) {
  const RunResult r = moirai("inspect " + quote(src("models/resnet50.onnx")) + " --json");
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto j = parse_json(r.out);
  ASSERT_TRUE(j.contains("operators") && j.contains("parameter_bytes") && j.contains("flops")) << r.out;
  int ops = 0;
  ASSERT_TRUE(j["operators"].is_object());
  for (const auto& [type, count] : j["operators"].items()) ops += count.get<int>();
  EXPECT_EQ(ops, j["operator_count"].get<int>());
  EXPECT_GE(ops, 100);  // about 120 operators (Conv, BN folded or not, Relu, Add, pooling, Gemm)
  EXPECT_LE(ops, 200);
  EXPECT_GT(j["operators"].value("Conv", 0), 50);
  // 25.557 M fp32 parameters = 102.2 MB, within 1%.
  const double params = j["parameter_bytes"].get<double>();
  EXPECT_NEAR(params, 25.557e6 * 4, 0.01 * 25.557e6 * 4);
  // About 4.1 G multiply-adds = about 8.2 GFLOPs at batch 1.
  const double flops = j["flops"].get<double>();
  EXPECT_GT(flops, 7.0e9);
  EXPECT_LT(flops, 9.5e9);
}

TEST(CliInspect, ClusterPrintsEveryDevice) {
  for (const char* file : {"clusters/hetero-gpu-server.json", "clusters/edge-cpu-4.json", "clusters/dgx-a100-8.json"}) {
    const RunResult r = moirai("inspect --cluster " + quote(src(file)));
    ASSERT_EQ(r.rc, 0) << r.describe();
    const auto cluster = parse_json(read_text(src(file)));
    for (const auto& d : cluster["devices"])
      EXPECT_NE(r.out.find(d["name"].get<std::string>()), std::string::npos) << file << ": " << d["name"];
  }
}

// A JSON file given where the model goes: a cluster is inspected as with --cluster, an instance is named.
TEST(CliInspect, JsonInTheModelsPlace) {
  const std::string cluster = src("clusters/edge-4.json");
  const RunResult as_model = moirai("inspect " + quote(cluster));
  const RunResult as_cluster = moirai("inspect --cluster " + quote(cluster));
  ASSERT_EQ(as_model.rc, 0) << as_model.describe();
  EXPECT_EQ(as_model.out, as_cluster.out);
  const std::string instance = src("instances/example-1.json");
  const RunResult r = moirai("inspect " + quote(instance));
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "moirai: error: inspect: " + instance + " is JSON, not an ONNX model (a profiled instance is placed "
                   "directly: moirai place " + instance + " --method all)\n");
}

TEST(CliCoarsen, Resnet50Json) {
  const RunResult r = moirai("coarsen " + quote(src("models/resnet50.onnx")) + " --fusion onnxruntime --json");
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto j = parse_json(r.out);
  ASSERT_TRUE(j.contains("steps") && j["steps"].is_array() && !j["steps"].empty()) << r.out;
  const auto& s = j["steps"][0];
  EXPECT_EQ(s["nodes_before"].get<int>(), 122) << r.out;
  EXPECT_EQ(s["nodes_after"].get<int>(), 57) << r.out;
  EXPECT_NE(s["name"].get<std::string>().find("onnxruntime"), std::string::npos);
}

TEST(CliCoarsen, MaxNodesIsASecondStep) {
  const RunResult r =
      moirai("coarsen " + quote(src("models/resnet50.onnx")) + " --max-nodes 20 -c " +
             quote(src("clusters/hetero-gpu-server.json")) + " --json");
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto j = parse_json(r.out);
  ASSERT_EQ(j["steps"].size(), 2u) << r.out;
  EXPECT_EQ(j["steps"][1]["nodes_before"], j["steps"][0]["nodes_after"]);
  EXPECT_LE(j["steps"][1]["nodes_after"].get<int>(), 20);
}

TEST(CliSchedule, JsonListsEveryOrder) {
  const RunResult r = moirai("schedule " + quote(src("models/googlenet.onnx")) + " --time-limit 2 --json");
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto j = parse_json(r.out);
  ASSERT_TRUE(j.contains("orders") && j["orders"].is_array()) << r.out;
  std::set<std::string> methods;
  double bt = -1, best_baseline = 1e300;
  for (const auto& o : j["orders"]) {
    methods.insert(o["method"].get<std::string>());
    EXPECT_GT(o["peak_bytes"].get<double>(), 0);
    EXPECT_TRUE(o.contains("time_s") && o.contains("optimal"));
    if (o["method"] == "btsearch") bt = o["peak_bytes"].get<double>();
    else best_baseline = std::min(best_baseline, o["peak_bytes"].get<double>());
  }
  EXPECT_EQ(methods, (std::set<std::string>{"file", "dfs", "bfs", "greedy", "btsearch"})) << r.out;
  // BTSearch is seeded with the greedy order; a search cut short still never loses to greedy.
  double greedy = 0;
  for (const auto& o : j["orders"])
    if (o["method"] == "greedy") greedy = o["peak_bytes"].get<double>();
  EXPECT_LE(bt, greedy + 1e-6) << r.out;
  // The lower bound is below every order's peak.
  EXPECT_LE(j["lower_bound_bytes"].get<double>(), std::min(bt, best_baseline) + 1e-6) << r.out;
}

TEST(CliSchedule, OutWritesEveryOperatorOnce) {
  TempDir tmp;
  const RunResult r = moirai("schedule " + quote(src("models/googlenet.onnx")) + " --time-limit 2 --out " +
                             quote(tmp / "order.json"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto order = parse_json(read_text(tmp / "order.json"));
  std::set<std::string> names;
  for (const auto& n : order["order"]) names.insert(n.get<std::string>());
  EXPECT_EQ(names.size(), order["order"].size()) << "an operator appears twice";
  // googlenet coarsens to 82 operators with the default onnxruntime rules (the same count `schedule --json` shows).
  const auto j = parse_json(moirai("schedule " + quote(src("models/googlenet.onnx")) + " --time-limit 2 --json").out);
  EXPECT_EQ(static_cast<int>(names.size()), j["operators"].get<int>());
  EXPECT_GT(order["peak_bytes"].get<double>(), 0);
}

/// Places example-1 with HEFT into `dir` and returns the run.
RunResult place_example(const std::string& dir, const std::string& extra = "") {
  return moirai("place " + quote(src("instances/example-1.json")) + " --method heft --out " + quote(dir) + " " + extra);
}

double makespan_of(const std::string& plan_path) { return parse_json(read_text(plan_path))["makespan_ms"].get<double>(); }

TEST(CliPlace, WritesOutputsAndSimulateAgrees) {
  TempDir tmp;
  const std::string out = tmp / "plan";
  const RunResult r = place_example(out);
  ASSERT_EQ(r.rc, 0) << r.describe();
  for (const char* f : {"plan.json", "trace.json", "gantt.svg", "report.html"}) {
    ASSERT_TRUE(fs::exists(fs::path(out) / f)) << f;
    EXPECT_GT(fs::file_size(fs::path(out) / f), 100u) << f;
  }
  const auto plan = parse_json(read_text(out + "/plan.json"));
  for (const char* key : {"version", "model", "cluster", "method", "makespan_ms", "placement_time_s", "devices", "ops",
                          "transfers", "contention"})
    EXPECT_TRUE(plan.contains(key)) << key;
  EXPECT_EQ(plan["method"], "heft");
  EXPECT_EQ(plan["ops"].size(), 14u);
  EXPECT_EQ(plan["devices"].size(), 3u);
  const double makespan = plan["makespan_ms"].get<double>();
  EXPECT_GT(makespan, 0);
  for (const auto& op : plan["ops"]) EXPECT_LE(op["end_ms"].get<double>(), makespan + 1e-9);
  EXPECT_NO_THROW(parse_json(read_text(out + "/trace.json")));
  EXPECT_NE(read_text(out + "/gantt.svg").find("<svg"), std::string::npos);
  EXPECT_NE(read_text(out + "/report.html").find("<svg"), std::string::npos);  // self-contained: Gantt inline

  // Re-simulating the written plan gives the same makespan, and writes its own outputs on request.
  const std::string again = tmp / "again";
  const RunResult s = moirai("simulate " + quote(out + "/plan.json") + " --out " + quote(again));
  ASSERT_EQ(s.rc, 0) << s.describe();
  EXPECT_NE(s.out.find("valid"), std::string::npos) << s.out;
  EXPECT_NEAR(makespan_of(again + "/plan.json"), makespan, 1e-9 * std::max(1.0, makespan));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(s.out, m, std::regex("plan file said ([0-9.]+) ms; re-simulated ([0-9.]+) ms"))) << s.out;
  EXPECT_EQ(m[1].str(), m[2].str()) << s.out;
}

TEST(CliPlace, HandEditedPlanSimulates) {
  TempDir tmp;
  const std::string out = tmp / "plan";
  ASSERT_EQ(place_example(out).rc, 0);
  auto plan = parse_json(read_text(out + "/plan.json"));
  // Move one operator to another device by hand: the plan as written is now inconsistent (its times and
  // transfers are for the old device), so simulate fails, but re-simulates it from its order and writes that.
  std::vector<std::string> devices;
  for (const auto& d : plan["devices"]) devices.push_back(d["name"].get<std::string>());
  auto& op = plan["ops"][1];
  const std::string from = op["device"].get<std::string>();
  const std::string to = from == devices[0] ? devices[1] : devices[0];
  op["device"] = to;
  write_text(out + "/plan.json", plan.dump(1));
  const std::string again = tmp / "again";
  const RunResult s = moirai("simulate " + quote(out + "/plan.json") + " --out " + quote(again));
  expect_clean_error(s, {out + "/plan.json", "invalid as written"});
  EXPECT_NE(s.out.find("as written: INVALID"), std::string::npos) << s.describe();
  EXPECT_NE(s.out.find("ops[1]."), std::string::npos) << s.describe();
  if (s.out.find("re-simulated from its order: ") != std::string::npos &&
      s.err.find("re-simulated (") == std::string::npos) {
    const auto re = parse_json(read_text(again + "/plan.json"));
    EXPECT_EQ(re["ops"][1]["device"], to);
    // The re-simulated plan is consistent as written.
    EXPECT_EQ(moirai("simulate " + quote(again + "/plan.json")).rc, 0);
  } else {
    // Allowed only as a capacity complaint naming a device.
    EXPECT_NE(s.out.find("capacity"), std::string::npos) << s.describe();
    EXPECT_TRUE(absent_or_empty(again));
  }
}

TEST(CliPlace, HandEditedPlanOverCapacityIsReported) {
  // Everything on one 14-unit device of example-1 (the model needs 44): simulate must say so, naming the device.
  TempDir tmp;
  const std::string out = tmp / "plan";
  ASSERT_EQ(place_example(out).rc, 0);
  auto plan = parse_json(read_text(out + "/plan.json"));
  const std::string dev0 = plan["devices"][0]["name"].get<std::string>();
  for (auto& op : plan["ops"]) op["device"] = dev0;
  write_text(out + "/plan.json", plan.dump(1));
  const std::string again = tmp / "again";
  const RunResult s = moirai("simulate " + quote(out + "/plan.json") + " --out " + quote(again));
  ASSERT_NE(s.rc, 0) << "a plan far over capacity must not be reported valid\n" << s.describe();
  expect_clean_error(s, {out + "/plan.json", "re-simulated"});
  EXPECT_NE(s.out.find("device '" + dev0 + "': peak memory"), std::string::npos) << s.describe();
  EXPECT_TRUE(absent_or_empty(again));
}

TEST(CliPlace, SimulateChecksThePlanAsWritten) {
  // Issue 15: a plan whose own schedule is broken was reported valid because only its re-simulation was judged.
  TempDir tmp;
  const std::string out = tmp / "plan";
  ASSERT_EQ(place_example(out).rc, 0);
  const auto plan = parse_json(read_text(out + "/plan.json"));
  size_t op7 = 0;
  while (plan["ops"][op7]["name"] != "op7") ++op7;
  const std::string at = "ops[" + std::to_string(op7) + "]";
  struct Case {
    std::string name;
    std::function<void(nlohmann::json&)> edit;
    std::string field;  ///< named by one of the violation lines
  };
  const std::vector<Case> cases = {
      {"op7 overlaps op6 on dev0", [&](nlohmann::json& p) { p["ops"][op7]["start_ms"] = 3.0; p["ops"][op7]["end_ms"] = 8.0; },
       at + ".start_ms/end_ms"},
      {"end before start", [&](nlohmann::json& p) { p["ops"][op7]["end_ms"] = p["ops"][op7]["start_ms"].get<double>() - 1; },
       at + ".start_ms/end_ms/device"},
      {"makespan edited", [](nlohmann::json& p) { p["makespan_ms"] = 10; }, "makespan_ms: "},
      {"transfer deleted", [](nlohmann::json& p) { p["transfers"].erase(0); }, "transfers: "},
      {"transfer to an unknown device", [](nlohmann::json& p) { p["transfers"][0]["dst"] = "nowhere"; },
       "transfers[0].dst: unknown device 'nowhere'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    nlohmann::json bad = plan;
    c.edit(bad);
    const std::string path = tmp / "bad.json";
    write_text(path, bad.dump(1));
    const RunResult s = moirai("simulate " + quote(path));
    expect_clean_error(s, {path, "invalid as written"});
    EXPECT_NE(s.out.find("as written: INVALID ("), std::string::npos) << s.describe();
    EXPECT_NE(s.out.find("\n  " + c.field), std::string::npos) << s.describe();
    EXPECT_NE(s.out.find("re-simulated from its order: "), std::string::npos) << s.describe();
  }
  // The untouched plan: both verdicts valid.
  const RunResult ok = moirai("simulate " + quote(out + "/plan.json"));
  ASSERT_EQ(ok.rc, 0) << ok.describe();
  EXPECT_NE(ok.out.find("as written: valid\n"), std::string::npos) << ok.describe();
  EXPECT_NE(ok.out.find("re-simulated from its order: 33.0000 ms, valid\n"), std::string::npos) << ok.describe();
}

TEST(CliPlace, AllMethodsOneRowEach) {
  const auto methods = methods_from_help();
  ASSERT_FALSE(methods.empty());
  const RunResult r = moirai("place " + quote(src("instances/heft-example.json")) +
                             " --method all --time-limit 2 --episodes 20 --generations 5 --population 8");
  ASSERT_EQ(r.rc, 0) << r.describe();
  for (const auto& m : methods) {
    if (m == "all") continue;
    const std::regex row("(^|\\n)\\s*" + std::regex_replace(m, std::regex("[-]"), "\\-") + "\\s");
    int rows = 0;
    for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), row); it != std::sregex_iterator(); ++it) ++rows;
    EXPECT_EQ(rows, 1) << "method " << m << "\n" << r.out;
  }
}

TEST(CliPlace, AllMethodsWritesTheBestPlan) {
  TempDir tmp;
  const RunResult r = moirai("place " + quote(src("instances/example-1.json")) +
                             " --method all --time-limit 2 --episodes 20 --generations 5 --population 8 --out " +
                             quote(tmp / "p"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto plan = parse_json(read_text(tmp / "p/plan.json"));
  const double best = plan["makespan_ms"].get<double>();
  // The best row of the table (the first one: best latency first) is the written plan's method.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("-{20,}\\n\\s*([A-Za-z0-9_-]+)"))) << r.out;
  const std::string first = m[1].str();
  const RunResult one = moirai("place " + quote(src("instances/example-1.json")) + " --method " + first +
                               " --time-limit 2 --episodes 20 --generations 5 --population 8 --out " + quote(tmp / "one"));
  ASSERT_EQ(one.rc, 0) << one.describe();
  EXPECT_NEAR(makespan_of(tmp / "one/plan.json"), best, 1e-6 * best) << first << "\n" << r.out;
  const RunResult s = moirai("simulate " + quote(tmp / "p/plan.json"));
  EXPECT_EQ(s.rc, 0) << s.describe();
}

TEST(CliPlace, NoContentionChangesPlanField) {
  TempDir tmp;
  ASSERT_EQ(place_example(tmp / "with").rc, 0);
  const RunResult r = place_example(tmp / "without", "--no-contention");
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_EQ(parse_json(read_text(tmp / "with/plan.json"))["contention"], true);
  EXPECT_EQ(parse_json(read_text(tmp / "without/plan.json"))["contention"], false);
  // simulate keeps the plan's model: the re-simulated makespan equals the written one.
  const RunResult s = moirai("simulate " + quote(tmp / "without/plan.json") + " --out " + quote(tmp / "resim"));
  ASSERT_EQ(s.rc, 0) << s.describe();
  EXPECT_EQ(parse_json(read_text(tmp / "resim/plan.json"))["contention"], false);
  EXPECT_NEAR(makespan_of(tmp / "resim/plan.json"), makespan_of(tmp / "without/plan.json"), 1e-9);
}

TEST(CliPlace, HeftExampleWithoutContentionIs80) {
  // Topcuoglu et al. 2002: HEFT's schedule length on this example is 80 under the classic model.
  TempDir tmp;
  const RunResult r = moirai("place " + quote(src("instances/heft-example.json")) + " --method heft --no-contention --out " +
                             quote(tmp / "p"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NEAR(makespan_of(tmp / "p/plan.json"), 80.0, 1e-9);
}

TEST(CliPlace, ModelPlanRoundTripsThroughSimulate) {
  // A real model: the plan lists original ONNX node names, and simulate rebuilds the problem from plan.inputs.
  TempDir tmp;
  const RunResult r = moirai("place " + quote(src("models/squeezenet1_1.onnx")) + " -c " +
                             quote(src("clusters/edge-4.json")) + " --method heft --out " + quote(tmp / "p"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto plan = parse_json(read_text(tmp / "p/plan.json"));
  size_t origins = 0;
  for (const auto& op : plan["ops"]) origins += op["origin"].size();
  EXPECT_GT(origins, plan["ops"].size());  // fusion contracted some nodes
  const RunResult s = moirai("simulate " + quote(tmp / "p/plan.json") + " --out " + quote(tmp / "s"));
  ASSERT_EQ(s.rc, 0) << s.describe();
  EXPECT_NEAR(makespan_of(tmp / "s/plan.json"), plan["makespan_ms"].get<double>(), 1e-9 * plan["makespan_ms"].get<double>());
}

// Changes the working directory for one scope.
struct InDirectory {
  explicit InDirectory(const fs::path& dir) : before_(fs::current_path()) { fs::current_path(dir); }
  ~InDirectory() { fs::current_path(before_); }
  fs::path before_;
};

TEST(CliPlace, PlanInputsResolveFromThePlansDirectory) {
  // Placed with paths relative to the source tree, re-simulated from another working directory.
  TempDir tmp;
  {
    InDirectory in(MOIRAI_SOURCE_DIR);
    const RunResult r = moirai("place models/squeezenet1_1.onnx -c clusters/edge-4.json --method heft --out " +
                               quote(tmp / "p"));
    ASSERT_EQ(r.rc, 0) << r.describe();
  }
  const auto plan = parse_json(read_text(tmp / "p/plan.json"));
  const std::string model = plan["inputs"]["model"].get<std::string>();
  EXPECT_NE(model, "models/squeezenet1_1.onnx");
  EXPECT_TRUE(fs::exists(fs::path(tmp / "p") / model)) << model;  // relative to the plan's directory
  InDirectory in(tmp.path());
  const RunResult s = moirai("simulate p/plan.json");
  EXPECT_EQ(s.rc, 0) << s.describe();
}

TEST(CliPlace, GeneflowSplitsOperatorsOnEdgeBoards) {
  TempDir tmp;
  const RunResult r = moirai("place " + quote(src("models/vgg19.onnx")) + " -c " + quote(src("clusters/edge-cpu-4.json")) +
                             " --method geneflow --generations 5 --population 8 --time-limit 10 --out " +
                             quote(tmp / "p"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto plan = parse_json(read_text(tmp / "p/plan.json"));
  std::set<std::string> devices;
  for (const auto& d : plan["devices"]) devices.insert(d["name"].get<std::string>());
  for (const auto& d : plan["devices"])
    EXPECT_LE(d["peak_memory_bytes"].get<double>(), d["capacity_bytes"].get<double>()) << d;
  int split = 0;
  const double makespan = plan["makespan_ms"].get<double>();
  for (const auto& op : plan["ops"]) {
    EXPECT_TRUE(devices.count(op["device"].get<std::string>())) << op;
    if (!op.contains("parts")) continue;
    ++split;
    double share = 0;
    std::set<std::string> on;
    for (const auto& p : op["parts"]) {
      EXPECT_TRUE(devices.count(p["device"].get<std::string>())) << p;
      on.insert(p["device"].get<std::string>());
      EXPECT_GT(p["share"].get<double>(), 0);
      EXPECT_LE(p["start_ms"].get<double>(), p["end_ms"].get<double>());
      EXPECT_LE(p["end_ms"].get<double>(), makespan + 1e-9);
      share += p["share"].get<double>();
    }
    EXPECT_NEAR(share, 1.0, 1e-9) << op["name"];
    EXPECT_GE(on.size(), 2u) << op["name"] << ": a split operator runs on at least two devices";
  }
  EXPECT_GT(split, 0) << "GenEFlow split no operator of vgg19 on four edge boards";
  EXPECT_GT(makespan, 0);
  EXPECT_EQ(plan["method"], "geneflow");
}

TEST(CliPlace, GeneflowPlanResimulatesToSameMakespan) {
  // `moirai simulate` on a plan with split operators must re-simulate the plan that was written (its parts),
  // not the whole-operator view of it.
  // simulate must judge the plan in the file, split parts included (it once re-simulated the whole-operator view).
  TempDir tmp;
  const RunResult r = moirai("place " + quote(src("models/vgg19.onnx")) + " -c " + quote(src("clusters/edge-cpu-4.json")) +
                             " --method geneflow --generations 5 --population 8 --time-limit 10 --out " +
                             quote(tmp / "p"));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const double makespan = makespan_of(tmp / "p/plan.json");
  const RunResult s = moirai("simulate " + quote(tmp / "p/plan.json") + " --out " + quote(tmp / "s"));
  ASSERT_EQ(s.rc, 0) << s.describe();
  EXPECT_NE(s.out.find("as written: valid"), std::string::npos) << s.out;
  EXPECT_NEAR(makespan_of(tmp / "s/plan.json"), makespan, 1e-9 * makespan) << s.out;

  // The parts are judged as written: one part moved later no longer matches the schedule's precedence or its
  // device's timeline, and the message names that part's field.
  auto plan = parse_json(read_text(tmp / "p/plan.json"));
  size_t i = 0;
  while (!plan["ops"][i].contains("parts")) ++i;
  auto& part = plan["ops"][i]["parts"][0];
  part["start_ms"] = part["start_ms"].get<double>() + 0.5 * makespan;
  part["end_ms"] = part["end_ms"].get<double>() + 0.5 * makespan;
  std::ofstream(tmp / "p/plan.json") << plan.dump(1);
  const RunResult t = moirai("simulate " + quote(tmp / "p/plan.json"));
  EXPECT_NE(t.rc, 0) << t.describe();
  EXPECT_NE(t.out.find("as written: INVALID"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("ops[" + std::to_string(i) + "].parts[0]"), std::string::npos) << t.out;
}

}  // namespace
}  // namespace moirai::clitest
