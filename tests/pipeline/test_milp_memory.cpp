// The MILP's activation reserve on a model that fits no single GPU: llama2_13b (about 26 GB of fp16 weights)
// over workstation-mixed (24 + 24 + 12 GiB GPUs and a 64 GiB CPU). The plan the MILP returns, and the warm
// start it begins from, must simulate with every device's peak (parameters + live activations) within capacity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <stdlib.h>
#include <string>
#include <vector>

#include "moirai/pipeline.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "support/random_table.h"

namespace moirai {
namespace {

Problem llama_on_workstation() {
  ProblemOptions po;
  po.input = testing::source_path("models/llama2_13b.onnx");
  po.cluster_path = testing::source_path("clusters/workstation-mixed.json");
  po.coarsen.fusion = "onnxruntime";
  po.coarsen.max_nodes = 80;  // small enough that the exact model is tried within a short limit
  auto p = load_problem(po);
  if (!p.ok()) throw std::runtime_error(p.error().message);
  return std::move(*p);
}

void expect_within_capacity(const CostTable& t, const PlaceResult& r, const SimOptions& sim, const std::string& what) {
  const Schedule s = simulate(t, r.placement, sim);
  EXPECT_TRUE(validate(t, r.placement, s, sim).empty()) << what;
  ASSERT_EQ(s.peak_memory.size(), static_cast<size_t>(t.num_devices()));
  for (DeviceId k = 0; k < t.num_devices(); ++k) {
    const auto sk = static_cast<size_t>(k);
    if (t.capacity[sk] > 0) {
      EXPECT_LE(s.peak_memory[sk], t.capacity[sk]) << what << " on " << t.device_names[sk];
    }
  }
  EXPECT_TRUE(s.over_capacity(t).empty()) << what;
  // The model is spread: more than one device holds parameters.
  std::vector<double> held(static_cast<size_t>(t.num_devices()), 0);
  for (OpId i = 0; i < t.num_ops(); ++i) held[static_cast<size_t>(r.placement.device[static_cast<size_t>(i)])] += t.param_bytes[static_cast<size_t>(i)];
  EXPECT_GE(std::count_if(held.begin(), held.end(), [](double b) { return b > 0; }), 2) << what;
  std::printf("llama2_13b/workstation-mixed, %s: %d ops, status %s (%s), objective %.6g ms, simulated %.6g ms, bound %.6g ms\n",
              what.c_str(), t.num_ops(), plan_status_name(r.status), r.mode.c_str(), r.objective_ms, s.makespan_ms, r.lower_bound_ms);
}

TEST(MilpMemory, Llama13bPlanFitsEveryDevice) {
  const Problem problem = llama_on_workstation();
  const CostTable& t = problem.table;
  ASSERT_GT(t.num_devices(), 1);
  double params = 0;
  for (double b : t.param_bytes) params += b;
  // The premise: no single GPU holds the parameters.
  for (DeviceId k = 0; k < t.num_devices(); ++k)
    if (problem.cluster->devices[static_cast<size_t>(k)].kind == "gpu") {
      EXPECT_GT(params, t.capacity[static_cast<size_t>(k)]);
    }

  PlaceOptions o;
  o.time_limit_s = 15;
  std::vector<std::string> lines;
  o.progress = [&](const std::string& l) { lines.push_back(l); };
  auto placer = make_placer("milp");
  ASSERT_TRUE(placer.ok());
  auto r = (*placer)->place(t, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const bool warm_from_milp_model =
      std::any_of(lines.begin(), lines.end(), [](const std::string& l) { return l.find("warm start from") != std::string::npos; });
  EXPECT_TRUE(warm_from_milp_model) << "no warm start satisfied the MILP's memory reserve";
  EXPECT_NE(r->status, PlanStatus::no_solution);

  expect_within_capacity(t, *r, o.sim, "MILP plan");

  // The warm start alone (the solver child fails at once, so the placer returns what it started from).
  ::setenv("MOIRAI_MILP_INJECT_FAULT", "exit", 1);
  lines.clear();
  auto warm = (*placer)->place(t, o);
  ::unsetenv("MOIRAI_MILP_INJECT_FAULT");
  ASSERT_TRUE(warm.ok()) << warm.error().message;
  EXPECT_EQ(warm->status, PlanStatus::crashed);
  expect_within_capacity(t, *warm, o.sim, "warm start");
  EXPECT_LE(r->objective_ms, warm->objective_ms + 1e-9);
}

}  // namespace
}  // namespace moirai
