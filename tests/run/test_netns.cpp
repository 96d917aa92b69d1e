// A run across two network namespaces (separate network stacks and addresses, a veth pair between them, shaped
// to 1 Gb/s with tc tbf): the closest this machine gets to workers on two hosts. The coordinator runs in the
// first namespace; activations cross the veth from worker to worker. Skipped only where `ip netns` is not
// permitted (no root / no CAP_SYS_ADMIN, e.g. an unprivileged container).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "cli/cli_support.h"
#include "run/netns.h"
#include "run/run_support.h"

namespace moirai {
namespace {

using clitest::quote;
using clitest::src;
using clitest::TempDir;

TEST(RunNetns, TwoWorkersInSeparateNamespacesGiveTheOriginalOutputs) {
  runtest::NetnsPair net("t");
  if (!net.ok()) GTEST_SKIP() << "ip netns is not permitted here (needs root or CAP_SYS_ADMIN): " << net.error();
  ASSERT_TRUE(net.shape("1gbit")) << net.error();
  TempDir dir;
  const auto placed = clitest::moirai(fmt::format("place {} -c {} -m heft --out {}",
                                                  quote(src("models/squeezenet1_1.onnx")),
                                                  quote(src("tests/fixtures/run/local-2.json")), quote(dir / "plan")));
  ASSERT_EQ(placed.rc, 0) << placed.describe();
  runtest::WorkerProcess w0("w0", "10.77.0.2", {"ip", "netns", "exec", net.a()});
  runtest::WorkerProcess w1("w1", "10.77.0.3", {"ip", "netns", "exec", net.b()});
  EXPECT_EQ(w0.address().rfind("10.77.0.2:", 0), 0u) << w0.address();
  EXPECT_EQ(w1.address().rfind("10.77.0.3:", 0), 0u) << w1.address();
  const std::string cmd = net.in_a(fmt::format("{} run {} {} --workers w0={},w1={} --requests 2 --out {} >{} 2>&1",
                                               quote(MOIRAI_CLI), quote(dir / "plan/plan.json"),
                                               quote(src("models/squeezenet1_1.weights.onnx")), w0.address(),
                                               w1.address(), quote(dir / "out"), quote(dir / "log")));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << clitest::read_text(dir / "log");
  const auto run = nlohmann::json::parse(clitest::read_text(dir / "out/run.json"));
  EXPECT_TRUE(run["outputs_match"].get<bool>());
  EXPECT_EQ(run["devices"][1]["worker"], w1.address());
  ASSERT_FALSE(run["links"].empty());
  for (const auto& l : run["links"]) {
    EXPECT_GT(l["bytes_measured"].get<double>(), 0) << l;
    EXPECT_EQ(l["bytes_measured"], l["bytes_predicted"]) << l;
  }
  EXPECT_EQ(run["coordinator"]["tensors_sent"], nlohmann::json::array({"image"}));
}

}  // namespace
}  // namespace moirai
