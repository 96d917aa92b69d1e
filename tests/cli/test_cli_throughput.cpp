// `--objective throughput` and the stream options through the CLI: the plan's stream fields, the throughput plan
// beating the latency plan's rate on 8 equal GPUs, `simulate --requests`, decode streams in tokens/s (and
// bench --context), and one-line errors for bad options.
#include <gtest/gtest.h>

#include <regex>

#include "cli/cli_support.h"

namespace moirai::clitest {
namespace {

const std::string kResnet = src("models/resnet50.onnx");
const std::string kDgx = src("clusters/dgx-a100-8.json");

TEST(CliThroughput, PlanFieldsAndTheThroughputPlanOutpacesTheLatencyPlan) {
  TempDir tmp;
  const RunResult lat = moirai("place " + quote(kResnet) + " -c " + quote(kDgx) + " -m heft --out " + quote(tmp / "lat"));
  ASSERT_EQ(lat.rc, 0) << lat.describe();
  const RunResult thr = moirai("place " + quote(kResnet) + " -c " + quote(kDgx) +
                               " --objective throughput --time-limit 5 --threads 1 --out " + quote(tmp / "thr"));
  ASSERT_EQ(thr.rc, 0) << thr.describe();
  EXPECT_NE(thr.out.find("objective throughput"), std::string::npos) << thr.out;
  EXPECT_NE(thr.out.find("requests/s"), std::string::npos) << thr.out;
  const auto a = parse_json(read_text(tmp / "lat/plan.json"));
  const auto b = parse_json(read_text(tmp / "thr/plan.json"));
  EXPECT_EQ(a["objective"], "latency");
  EXPECT_EQ(b["objective"], "throughput");
  EXPECT_EQ(b["method"], "throughput");
  for (const auto* plan : {&a, &b})
    for (const char* key : {"throughput_rps", "latency_p50_ms", "latency_p90_ms", "stream"})
      EXPECT_TRUE(plan->contains(key)) << key;
  EXPECT_EQ(b["stream"]["requests"], 64);
  EXPECT_GE(b["stream"]["in_flight"].get<int>(), 1);  // the count the placer chose
  EXPECT_LE(b["stream"]["in_flight"].get<int>(), 16);
  EXPECT_EQ(a["stream"]["in_flight"], 16);  // twice the devices
  EXPECT_LE(b["latency_p50_ms"].get<double>(), b["latency_p90_ms"].get<double>());
  // 8 equal GPUs: the pipeline serves several times the rate of a plan made for one request.
  EXPECT_GT(b["throughput_rps"].get<double>(), 3 * a["throughput_rps"].get<double>());
  // The period bounds the rate.
  EXPECT_LE(b["throughput_rps"].get<double>(), 1000.0 / b["stream"]["period_ms"].get<double>() * 1.05);
  EXPECT_NE(read_text(tmp / "thr/report.html").find("throughput"), std::string::npos);

  // simulate --requests 1: one request alone, so the rate is 1 / latency.
  const RunResult one = moirai("simulate " + quote(tmp / "thr/plan.json") + " --requests 1");
  ASSERT_EQ(one.rc, 0) << one.describe();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(one.out, m, std::regex("throughput +([0-9.e+]+) requests/s"))) << one.out;
  EXPECT_NEAR(std::stod(m[1].str()), 1000.0 / b["makespan_ms"].get<double>(), 1e-3 * std::stod(m[1].str()));
  EXPECT_NE(one.out.find("stream utilisation:"), std::string::npos) << one.out;
}

// A decode model serves tokens: the stream's rate is tokens/s with every sequence in flight holding its cache.
// bench --context reaches the decode model and leaves the others alone.
TEST(CliThroughput, DecodeStreamsReportTokensPerSecond) {
  TempDir tmp;
  const std::string decode = src("models/decode/llama2_7b_decode.onnx"), mixed = src("clusters/workstation-mixed.json");
  const RunResult thr = moirai("place " + quote(decode) + " -c " + quote(mixed) +
                               " --context 256 --objective throughput --time-limit 3 --threads 1 --out " + quote(tmp / "dec"));
  ASSERT_EQ(thr.rc, 0) << thr.describe();
  const auto plan = parse_json(read_text(tmp / "dec/plan.json"));
  EXPECT_EQ(plan["stream"]["tokens_per_s"].get<double>(), plan["throughput_rps"].get<double>());
  EXPECT_EQ(plan["stream"]["sequences"], plan["stream"]["in_flight"]);  // 64 requests > sequences in flight
  EXPECT_NE(thr.out.find("tokens/s (64 decode steps, " + std::to_string(plan["stream"]["sequences"].get<int>()) +
                         " sequences in flight"),
            std::string::npos) << thr.out;
  const RunResult bench = moirai("bench --models " + quote(decode) + " " + quote(kResnet) + " --clusters " + quote(mixed) +
                                 " --methods single --context 256 --in-process --out " + quote(tmp / "bench"));
  ASSERT_EQ(bench.rc, 0) << bench.describe();
  const std::string csv = read_text(tmp / "bench/results.csv");
  EXPECT_EQ(csv.find("failed"), std::string::npos) << csv;
  EXPECT_NE(csv.find("llama2_7b_decode"), std::string::npos) << csv;
  EXPECT_NE(read_text(tmp / "bench/rows.jsonl").find("context=256"), std::string::npos);  // in the settings
}

TEST(CliThroughput, BadOptionsAreOneLineErrors) {
  TempDir tmp;
  const std::string base = "place " + quote(kResnet) + " -c " + quote(kDgx) + " --out " + quote(tmp / "out");
  expect_clean_error(moirai(base + " --objective throughput -m heft"), {"--method", "--objective throughput"});
  expect_clean_error(moirai(base + " --max-latency-ms 5"), {"--max-latency-ms", "--objective throughput"});
  expect_clean_error(moirai(base + " --objective speed"), {"--objective", "speed"});
  expect_clean_error(moirai(base + " --requests 0"), {"--requests"});
  expect_clean_error(moirai(base + " --objective throughput --max-latency-ms 0.001 --time-limit 2"),
                     {"the latency bound of 0.001 ms", "(--max-latency-ms)"});
  EXPECT_TRUE(absent_or_empty(tmp / "out"));
}

}  // namespace
}  // namespace moirai::clitest
