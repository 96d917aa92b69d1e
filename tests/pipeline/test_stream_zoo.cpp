// With one request the stream simulator is today's simulator on every bundled model and on the decode graph
// (its KV cache appended in place; workstation-mixed, a plan of blocks of topological positions spread over every
// device).
#include <filesystem>

#include <gtest/gtest.h>

#include "moirai/pipeline.h"
#include "moirai/stream.h"
#include "support/random_table.h"

namespace moirai {
namespace {

TEST(StreamZoo, OneRequestEqualsTheSimulatorOnEveryModel) {
  std::vector<std::string> models;
  for (const auto& entry : std::filesystem::directory_iterator(testing::source_path("models")))
    if (entry.path().extension() == ".onnx") models.push_back(entry.path().string());
  std::sort(models.begin(), models.end());
  ASSERT_GE(models.size(), 17u);
  models.push_back(testing::source_path("models/decode/llama2_7b_decode.onnx"));
  for (const auto& path : models) {
    SCOPED_TRACE(path);
    ProblemOptions po;
    po.input = path;
    if (path.find("_decode") != std::string::npos) po.dims[kContextDim] = 256;
    po.cluster_path = testing::source_path("clusters/workstation-mixed.json");
    auto problem = load_problem(po);
    ASSERT_TRUE(problem.ok()) << problem.error().message;
    const CostTable& t = problem->table;
    Placement p;  // blocks of the topological order over the devices: every device and link carries work
    p.device.assign(static_cast<size_t>(t.num_ops()), 0);
    for (int i = 0; i < t.num_ops(); ++i)
      p.device[static_cast<size_t>(t.topo_order[static_cast<size_t>(i)])] = (i * 7 / std::max(1, t.num_ops() / 3)) % t.num_devices();
    for (bool contention : {true, false}) {
      const Schedule s = simulate(t, p, {contention});
      const StreamResult r = simulate_stream(t, p, {}, {contention});
      ASSERT_EQ(r.ops.size(), s.ops.size());
      for (size_t op = 0; op < s.ops.size(); ++op) ASSERT_EQ(r.ops[op].end_ms, s.ops[op].end_ms) << op;
      EXPECT_EQ(r.makespan_ms, s.makespan_ms);
      EXPECT_EQ(r.peak_memory, s.peak_memory);
      EXPECT_EQ(r.transfers.size(), s.transfers.size());
    }
  }
}

}  // namespace
}  // namespace moirai
