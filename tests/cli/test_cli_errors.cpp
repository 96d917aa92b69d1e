// Bad input through the `moirai` CLI: each case must end with exactly one "moirai: error: ..." line naming the
// file or value and the problem, a non-zero exit status (no crash, no internal error), and no output files in
// --out (the directory is absent or empty).
#include <gtest/gtest.h>

#include <random>

#include "cli/cli_support.h"

namespace moirai::clitest {
namespace {

const std::string kExample = src("instances/example-1.json");
const std::string kSqueeze = src("models/squeezenet1_1.onnx");
const std::string kEdge4 = src("clusters/edge-4.json");

/// Writes a valid plan for example-1 (HEFT) into dir/plan and returns its JSON.
nlohmann::json example_plan(const TempDir& tmp) {
  const RunResult r = moirai("place " + quote(kExample) + " --method heft --out " + quote(tmp / "plan"));
  EXPECT_EQ(r.rc, 0) << r.describe();
  return parse_json(read_text(tmp / "plan/plan.json"));
}

TEST(CliErrors, UnknownMethodListsKnownMethods) {
  // The list must include every method `place` accepts, geneflow too.
  TempDir tmp;
  const RunResult r = moirai("place " + quote(kExample) + " --method no-such-method --out " + quote(tmp / "out"));
  expect_clean_error(r, {"no-such-method", "heft", "milp", "single", "placeto", "geneflow"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

TEST(CliErrors, RuntimeFusionOptions) {
  TempDir tmp;
  const std::string model = src("models/squeezenet1_1.onnx");
  expect_clean_error(moirai("coarsen " + quote(model) + " --fusion tensorrt --from-runtime"),
                     {"--from-runtime", "--fusion onnxruntime", "tensorrt"});
  expect_clean_error(moirai("place " + quote(model) + " -c " + quote(src("clusters/edge-4.json")) +
                            " -m heft --fusion onnxruntime-runtime:fast --out " + quote(tmp / "out")),
                     {"onnxruntime-runtime:fast", "unknown ONNX Runtime level 'fast'", "basic, extended, all"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
  const std::string out = tmp / "m.onnx";
  expect_clean_error(moirai("materialize " + quote(tmp / "absent.onnx") + " --out " + quote(out)),
                     {"absent.onnx: cannot open the model"});
  EXPECT_FALSE(fs::exists(out));
}

// Writes an edited plan and checks that `simulate` rejects it with one clear error and writes nothing.
void expect_simulate_rejects(const TempDir& tmp, const nlohmann::json& plan, std::vector<std::string> words) {
  const std::string bad = tmp / "bad.json";
  write_text(bad, plan.dump(1));
  const RunResult r = moirai("simulate " + quote(bad) + " --out " + quote(tmp / "out"));
  words.insert(words.begin(), bad);
  expect_clean_error(r, words);
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

TEST(CliErrors, PlanNamingUnknownDevice) {
  TempDir tmp;
  auto plan = example_plan(tmp);
  plan["ops"][2]["device"] = "no-such-device";
  expect_simulate_rejects(tmp, plan, {"no-such-device"});
}

TEST(CliErrors, PlanMissingAnOperator) {
  TempDir tmp;
  auto plan = example_plan(tmp);
  const std::string missing = plan["ops"][3]["name"].get<std::string>();
  plan["ops"].erase(3);
  expect_simulate_rejects(tmp, plan, {"'" + missing + "'"});
}

TEST(CliErrors, PlanNamingUnknownOperator) {
  TempDir tmp;
  auto plan = example_plan(tmp);
  plan["ops"][3]["name"] = "no_such_operator";
  expect_simulate_rejects(tmp, plan, {"no_such_operator"});
}

TEST(CliErrors, PlanNotJson) {
  TempDir tmp;
  const std::string bad = tmp / "plan.json";
  write_text(bad, "{\"version\": 1, \"ops\": [");
  const RunResult r = moirai("simulate " + quote(bad) + " --out " + quote(tmp / "out"));
  expect_clean_error(r, {bad});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

TEST(CliErrors, ModelFitsNowhere) {
  // Four devices of 1 MiB (4 MiB in all): squeezenet1_1's 4.9 MB of parameters fit on none of them and in no
  // split. Every method must say so with the bytes needed and every device's capacity (issue 4, "Bad input").
  // Every method names the bytes and the capacities.
  TempDir tmp;
  const std::string cluster = src("tests/fixtures/cli/tiny-memory.json");
  for (const char* method : {"heft", "cpop", "single", "memory-proportional", "placeto", "milp", "geneflow"}) {
    const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(cluster) + " --method " + method +
                               " --time-limit 3 --episodes 5 --generations 3 --population 4 --out " +
                               quote(tmp / "out"));
    SCOPED_TRACE(method);
    expect_clean_error(r, {"bytes", "tiny0", "tiny1", "tiny2", "tiny3"});
    EXPECT_TRUE(r.err.find("1048576") != std::string::npos || r.err.find("1.04858e+06") != std::string::npos ||
                r.err.find("1.00 MiB") != std::string::npos)
        << "the capacity (1 MiB) is not in the message\n" << r.describe();
    EXPECT_TRUE(absent_or_empty(tmp / "out"));
  }
}

TEST(CliErrors, NoFalseNoSplitClaim) {
  // Four devices of 4 MiB: squeezenet1_1 does fit when split (the MILP finds such a plan and simulate confirms
  // it). A heuristic that finds no plan may fail, but must not claim "fits on no device and in no split".
  // A conservative packing failure must not be reported as "fits in no split" when a split exists.
  TempDir tmp;
  const std::string cluster = src("tests/fixtures/cli/tiny-4mib.json");
  const RunResult milp = moirai("place " + quote(kSqueeze) + " -c " + quote(cluster) +
                                " --method milp --time-limit 3 --out " + quote(tmp / "milp"));
  ASSERT_EQ(milp.rc, 0) << milp.describe();
  const RunResult check = moirai("simulate " + quote(tmp / "milp/plan.json"));
  ASSERT_EQ(check.rc, 0) << "the MILP's split plan does not re-simulate as valid\n" << check.describe();
  for (const char* method : {"heft", "cpop"}) {
    SCOPED_TRACE(method);
    const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(cluster) + " --method " + method +
                               " --out " + quote(tmp / method));
    if (r.rc == 0) continue;
    expect_clean_error(r, {method});
    EXPECT_EQ(r.err.find("in no split"), std::string::npos) << "false claim: a split that fits exists\n" << r.describe();
    EXPECT_TRUE(absent_or_empty(tmp / method));
  }
}

TEST(CliErrors, ProfileNamingUnknownOperator) {
  TempDir tmp;
  const std::string profile = src("tests/fixtures/cli/profile-unknown-op.json");
  const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " --method heft --profile " +
                             quote(profile) + " --out " + quote(tmp / "out"));
  expect_clean_error(r, {profile, "no_such_operator_xyz"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

// Every command fails with one clear error naming `words` and leaves --out empty.
void expect_all_reject(const TempDir& tmp, const std::vector<std::string>& cmds, const std::vector<std::string>& words) {
  for (const std::string& cmd : cmds) {
    SCOPED_TRACE(cmd);
    expect_clean_error(moirai(cmd), words);
    EXPECT_TRUE(absent_or_empty(tmp / "out"));
  }
}

TEST(CliErrors, MissingModelFile) {
  TempDir tmp;
  const std::string model = tmp / "does-not-exist.onnx";
  expect_all_reject(tmp, {"inspect " + quote(model),
                                "place " + quote(model) + " -c " + quote(kEdge4) + " --out " + quote(tmp / "out")}, {model});
}

TEST(CliErrors, NegativeBandwidthCluster) {
  TempDir tmp;
  const std::string cluster = src("tests/fixtures/cli/negative-bandwidth.json");
  expect_all_reject(tmp, {"inspect --cluster " + quote(cluster),
                                "place " + quote(kSqueeze) + " -c " + quote(cluster) + " --out " + quote(tmp / "out")}, {cluster, "bandwidth", "-2.5"});
}

// A bench whose every combination failed (here: the cluster does not load) exits non-zero, rows and all written.
TEST(CliErrors, BenchWhereEverythingFailed) {
  TempDir tmp;
  const std::string cluster = src("tests/fixtures/cli/negative-bandwidth.json");
  const RunResult r = moirai("bench --models " + quote(kSqueeze) + " --clusters " + quote(cluster) +
                             " --methods heft -q --out " + quote(tmp / "bench"));
  expect_clean_error(r, {"every combination failed", "1 rows", "results.csv"});
  EXPECT_TRUE(fs::exists(fs::path(tmp / "bench") / "results.csv"));
}

// A bench that cannot start writes nothing: not even its output directory.
TEST(CliErrors, BenchWithoutClustersWritesNothing) {
  TempDir tmp;
  const RunResult r = moirai("bench --models " + quote(kSqueeze) + " --methods heft -q --out " + quote(tmp / "bench"));
  expect_clean_error(r, {kSqueeze, "needs a cluster file", "--clusters"});
  EXPECT_FALSE(fs::exists(fs::path(tmp / "bench")));
}

TEST(CliErrors, EmptyOnnxFile) {
  TempDir tmp;
  const std::string model = tmp / "empty.onnx";
  write_text(model, "");
  expect_all_reject(tmp, {"inspect " + quote(model), "coarsen " + quote(model),
                                "place " + quote(model) + " -c " + quote(kEdge4) + " --out " + quote(tmp / "out")}, {model});
}

TEST(CliErrors, RandomBytesOnnxFile) {
  TempDir tmp;
  const std::string model = tmp / "random.onnx";
  std::mt19937 rng(42);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  write_text(model, bytes);
  expect_all_reject(tmp, {"inspect " + quote(model),
                                "place " + quote(model) + " -c " + quote(kEdge4) + " --out " + quote(tmp / "out")}, {model});
}

TEST(CliErrors, TruncatedOnnxFile) {
  TempDir tmp;
  const std::string model = tmp / "truncated.onnx";
  const std::string whole = read_text(kSqueeze);
  write_text(model, whole.substr(0, whole.size() / 2));
  const RunResult r = moirai("inspect " + quote(model));
  expect_clean_error(r, {model});
}

TEST(CliErrors, MalformedDim) {
  TempDir tmp;
  const std::string gpt2 = src("models/gpt2_small.onnx");
  for (const char* dim : {"batch", "=4", "batch=abc", "batch=-1", "batch=0", "batch=4x"}) {
    SCOPED_TRACE(dim);
    for (const std::string& cmd : {"inspect " + quote(gpt2) + " --dim " + quote(dim),
                                  "coarsen " + quote(gpt2) + " --dim " + quote(dim),
                                  "place " + quote(gpt2) + " -c " + quote(kEdge4) + " --dim " + quote(dim) +
                                      " --out " + quote(tmp / "out")}) {
      const RunResult r = moirai(cmd);
      expect_clean_error(r, {"--dim", dim});
      EXPECT_TRUE(absent_or_empty(tmp / "out"));
    }
  }
}

TEST(CliErrors, ModelWithoutCluster) {
  TempDir tmp;
  const RunResult r = moirai("place " + quote(kSqueeze) + " --out " + quote(tmp / "out"));
  expect_clean_error(r, {kSqueeze, "--cluster"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

TEST(CliErrors, UnknownFusionBackend) {
  TempDir tmp;
  const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " --fusion no-such-backend --out " +
                             quote(tmp / "out"));
  expect_clean_error(r, {"no-such-backend", "onnxruntime"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

TEST(CliErrors, OptionValuesOutOfRange) {
  // Each bad value is one line naming the option and the value; nothing runs.
  TempDir tmp;
  const std::string place = "place " + quote(kExample) + " --method heft --out " + quote(tmp / "out") + " ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--time-limit", "-1"},   {"--time-limit", "0"},  {"--time-limit", "nan"},   {"--time-limit", "inf"},
      {"--time-limit", "1e300"}, {"--time-limit", "abc"}, {"--threads", "0"},       {"--threads", "-4"},
      {"--threads", "2.5"},     {"--gap", "-1"},        {"--episodes", "0"},       {"--generations", "-3"},
      {"--population", "0"},    {"--max-nodes", "-5"}};
  for (const auto& [option, value] : cases) {
    SCOPED_TRACE(option + " " + value);
    const RunResult r = moirai(place + option + " " + quote(value));
    expect_clean_error(r, {option, value});
    EXPECT_EQ(r.err.find("Run with --help"), std::string::npos) << r.describe();  // one line, not two
    EXPECT_TRUE(absent_or_empty(tmp / "out"));
  }
  expect_clean_error(moirai("place " + quote(kExample) + " --method heft --out ''"), {"--out", "empty"});
  expect_clean_error(moirai("simulate " + quote(kExample) + " --out ''"), {"--out", "empty"});
  expect_clean_error(moirai("bench --models " + quote(kExample) + " --out " + quote(tmp / "bench") + " --jobs 0"),
                     {"--jobs", "0"});
  expect_clean_error(moirai("bench --models " + quote(kExample) + " --out ''"), {"--out", "empty"});
  expect_clean_error(moirai("bench --models " + quote(kExample) + " --out " + quote(tmp / "bench") + " --max-nodes -1"),
                     {"--max-nodes", "-1"});
  EXPECT_TRUE(absent_or_empty(tmp / "bench"));
}

TEST(CliErrors, AbsurdClusterFigures) {
  // Figures that once reached CLP and aborted it: one line naming the file and the field.
  TempDir tmp;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"bandwidth_gbps": 1, "latency_us": 1e110})", "links.default.latency_us"},
      {R"({"bandwidth_gbps": 1e-300})", "links.default.bandwidth_gbps"}};
  for (const auto& [link, field] : cases) {
    const std::string cluster = tmp / "c.json";
    write_text(cluster, R"({"name": "c", "devices": [{"name": "a", "peak_gflops": 100, "mem_bandwidth_gbps": 10,
      "memory_gib": 8}, {"name": "b", "peak_gflops": 100, "mem_bandwidth_gbps": 10, "memory_gib": 8}],
      "links": {"default": )" + link + "}}");
    const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(cluster) + " --method milp --time-limit 2 --out " +
                               quote(tmp / "out"));
    expect_clean_error(r, {cluster, field});
    EXPECT_TRUE(absent_or_empty(tmp / "out"));
  }
}

TEST(CliErrors, PlanOrderAgainstPrecedence) {
  // Everything on one device, in reverse file order: the order contradicts precedence (once a deadlock check).
  TempDir tmp;
  auto plan = example_plan(tmp);
  const auto dev0 = plan["devices"][0]["name"];
  for (size_t i = 0; i < plan["ops"].size(); ++i) {
    plan["ops"][i]["device"] = dev0;
    plan["ops"][i]["start_ms"] = -static_cast<double>(i);
  }
  expect_simulate_rejects(tmp, plan, {"start_ms", "precedence"});
}

// --context: a number of tokens from 1 to 1e7, or `max` for `place` with one method; --device-map needs a plan
// whose operators carry layer indices and whose cluster gives device kinds.
TEST(CliErrors, ContextAndDeviceMapMisuse) {
  TempDir tmp;
  for (const std::string bad : {"0", "-5", "lots", "20000000"}) {
    const RunResult r = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " -m heft --context " + bad +
                               " --out " + quote(tmp / "out"));
    expect_clean_error(r, {"--context", "from 1 to 1e7", bad});
    EXPECT_TRUE(absent_or_empty(tmp / "out"));
  }
  const RunResult both = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) +
                                " -m heft --context 64 --dim context=128 --out " + quote(tmp / "out"));
  expect_clean_error(both, {"--context 64 contradicts --dim context=128"});
  const RunResult all = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " -m all --context max --out " +
                               quote(tmp / "out"));
  expect_clean_error(all, {"--context max needs one method"});
  const RunResult no_cache = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " -m heft --context max --out " +
                                    quote(tmp / "out"));
  expect_clean_error(no_cache, {kSqueeze, "no dynamic dimension named 'context'"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
  const RunResult schedule = moirai("schedule " + quote(kSqueeze) + " --context max");
  expect_clean_error(schedule, {"--context max", "only `place`"});

  // A plan of a model without layers has no device map; nothing is written.
  const RunResult placed = moirai("place " + quote(kSqueeze) + " -c " + quote(kEdge4) + " -m heft --out " + quote(tmp / "plan"));
  ASSERT_EQ(placed.rc, 0) << placed.describe();
  const RunResult map = moirai("export " + quote(tmp / "plan/plan.json") + " --device-map " + quote(tmp / "map.json"));
  expect_clean_error(map, {"plan.json", "no operator carries a layer index"});
  EXPECT_FALSE(std::filesystem::exists(tmp / "map.json"));
}

}  // namespace
}  // namespace moirai::clitest
