// Tests of the MILP at scale: the contraction of a cost table (acyclic, conserves work, respects the target),
// projection of coarse plans (never slower than the coarse plan when every tensor has one reader), the LNS
// window model (the chain-reduced rows still hold the incumbent, and its answers are real schedules), and the
// multilevel + LNS placer end to end (valid plan, never worse than its warm start, bound below it).
#include <gtest/gtest.h>

#include <random>

#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "place/milp_cbc.h"
#include "place/milp_multilevel.h"
#include "support/random_table.h"

namespace moirai {
namespace {

double total_time(const CostTable& t, DeviceId k) {
  double s = 0;
  for (OpId i = 0; i < t.num_ops(); ++i) s += t.time(i, k);
  return s;
}

// A list schedule in topological order on random devices: some valid plan of the table.
MilpPlan random_plan(const CostTable& t, uint64_t seed, bool contention) {
  std::mt19937_64 rng(seed);
  const auto edges = milp_edges(t);
  std::vector<DeviceId> dev(static_cast<size_t>(t.num_ops()));
  for (auto& d : dev) d = static_cast<DeviceId>(rng() % static_cast<uint64_t>(t.num_devices()));
  std::vector<double> key(dev.size()), edge_key;
  for (int p = 0; p < t.num_ops(); ++p) key[static_cast<size_t>(t.topo_order[static_cast<size_t>(p)])] = p;
  for (const auto& e : edges) edge_key.push_back(key[static_cast<size_t>(e.from)]);
  auto plan = evaluate_milp_plan(t, edges, dev, key, edge_key, contention);
  EXPECT_TRUE(plan.has_value());
  return *plan;
}

TEST(Contract, AcyclicConservesWorkAndMeetsTarget) {
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    testing::RandomTableSpec spec;
    spec.ops = 90;
    spec.devices = 3;
    spec.edge_probability = 0.15;
    const auto t = testing::random_table(seed, spec);
    for (int target : {60, 30, 12}) {
      const auto c = contract_table(t, target);  // finalize() inside checks acyclicity
      EXPECT_LE(c.table.num_ops(), target) << "seed " << seed;
      for (DeviceId k = 0; k < t.num_devices(); ++k) EXPECT_NEAR(total_time(c.table, k), total_time(t, k), 1e-6);
      for (OpId i = 0; i < t.num_ops(); ++i) {
        const OpId g = c.group[static_cast<size_t>(i)];
        ASSERT_GE(g, 0);
        ASSERT_LT(g, c.table.num_ops());
        for (OpId s : t.successors(i))  // precedence between groups follows the coarse topological order
          if (c.group[static_cast<size_t>(s)] != g) {
            const auto& succ = c.table.successors(g);
            EXPECT_TRUE(std::find(succ.begin(), succ.end(), c.group[static_cast<size_t>(s)]) != succ.end());
          }
      }
    }
  }
}

TEST(Contract, ProjectionIsNeverSlowerThanTheCoarsePlan) {
  // The GoogLeNet instance: every tensor has one reader, so the coarse MILP model charges what the fine one does.
  const auto t = testing::instance("GoogLeNet");
  const auto edges = milp_edges(t);
  for (bool contention : {true, false}) {
    const auto c = contract_table(t, 40);
    EXPECT_LE(c.table.num_ops(), 40);
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      const MilpPlan coarse = random_plan(c.table, seed, contention);
      const auto fine = project_plan(t, edges, c, coarse, contention);
      ASSERT_TRUE(fine.has_value()) << "seed " << seed;
      EXPECT_LE(fine->makespan, coarse.makespan * (1 + 1e-9)) << "seed " << seed;
      for (OpId i = 0; i < t.num_ops(); ++i)
        EXPECT_EQ(fine->device[static_cast<size_t>(i)], coarse.device[static_cast<size_t>(c.group[static_cast<size_t>(i)])]);
    }
  }
}

// GoogLeNet (every edge its own item) and a random table whose items feed up to four consumers on 4 devices
// (shared transfers, and one item sent to several devices from one port).
class LnsWindow : public ::testing::TestWithParam<bool> {};

TEST_P(LnsWindow, ModelHoldsTheIncumbentAndDecodesToRealSchedules) {
  testing::RandomTableSpec spec;
  spec.ops = 120;
  spec.devices = 4;
  spec.edge_probability = 0.05;
  spec.max_fanout = 4;
  const auto t = GetParam() ? testing::random_table(5, spec) : testing::instance("GoogLeNet");
  const auto edges = milp_edges(t);
  const MilpPlan inc = random_plan(t, 3, true);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 3; ++trial) {
    FormulationOptions fo;
    fo.upper_bound = inc.makespan * (1 + 1e-7) + 1e-9;
    fo.incumbent = &inc;
    fo.free_op.assign(static_cast<size_t>(t.num_ops()), 0);
    fo.near = fo.free_op;
    const int from = static_cast<int>(rng() % 100);
    for (int p = from; p < from + 16; ++p) {
      const auto i = static_cast<size_t>(t.topo_order[static_cast<size_t>(p)]);
      fo.free_op[i] = fo.near[i] = 1;
    }
    auto f = build_formulation(t, fo);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->model.violation(plan_to_values(*f, inc), 1e-7), "") << "trial " << trial;
    MilpSolveOptions so;
    so.time_limit_s = 3;
    so.start = plan_to_values(*f, inc);
    so.preprocess = false;
    const auto r = solve_with_cbc(f->model, so);
    ASSERT_TRUE(r.has_solution) << status_name(r.status);
    const MilpPlan got = values_to_plan(*f, r.values);
    // The answer's orders give a real schedule no slower than the model claims.
    const auto real = tighten(t, edges, got.device, got.start, got.comm_start, true);
    ASSERT_TRUE(real.has_value());
    EXPECT_LE(real->makespan, r.objective * (1 + 1e-6) + 1e-9);
    EXPECT_LE(r.objective, inc.makespan * (1 + 1e-6));
  }
}

INSTANTIATE_TEST_SUITE_P(Tables, LnsWindow, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "FanOut" : "GoogLeNet"; });

TEST(Milp, MultilevelPlanIsValidAndNeverWorseThanItsWarmStart) {
  // Above the exact model's 150 operators, and wide enough that no bound proves the warm start optimal.
  const auto t = testing::layered_table(240, 4, 20);
  auto placer = make_placer("milp");
  ASSERT_TRUE(placer.ok());
  PlaceOptions o;
  o.time_limit_s = 10;
  const auto r = (*placer)->place(t, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->mode.rfind("multilevel + lns", 0), 0u) << r->mode;
  ASSERT_FALSE(r->levels.empty());
  EXPECT_LE(r->levels.front().ops, 40);
  EXPECT_EQ(r->levels.back().ops, t.num_ops());
  const Schedule s = simulate(t, r->placement, o.sim);
  EXPECT_TRUE(validate(t, r->placement, s, o.sim).empty());
  EXPECT_LE(r->polished_ms, r->warm_start_ms * (1 + 1e-9));
  for (const char* h : {"heft", "cpop", "m-etf", "getf"}) {  // never slower than a heuristic it started from
    const auto hr = (*make_placer(h))->place(t, o);
    ASSERT_TRUE(hr.ok()) << h;
    EXPECT_LE(s.makespan_ms, simulate(t, hr->placement, o.sim).makespan_ms * (1 + 1e-9)) << h;
  }
  EXPECT_GT(r->lower_bound_ms, 0);
  EXPECT_LE(r->lower_bound_ms, s.makespan_ms * (1 + 1e-9));
  EXPECT_FALSE(r->lower_bound_source.empty());
}

}  // namespace
}  // namespace moirai
