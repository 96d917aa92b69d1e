// Tests of the lower bounds (moirai/bounds.h): every bound stays at or below the proven optima of the published
// instances, the brute-force optimum of tiny DAGs (memory binding), and every method's simulated plan on random
// DAGs with ports contended; the assignment relaxation is strictly stronger than the critical path where it
// should be.
#include <gtest/gtest.h>

#include <random>

#include <string>
#include <vector>

#include "moirai/bounds.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "place/milp_formulation.h"
#include "support/brute_force.h"
#include "support/random_table.h"

namespace moirai {
namespace {

LowerBounds bounds_of(const CostTable& t, bool contention, double upper = 0) {
  BoundOptions o;
  o.contention = contention;
  o.upper_bound = upper;
  o.time_limit_s = 10;
  return lower_bounds(t, o);
}

double bound_named(const LowerBounds& b, const std::string& source) {
  for (const auto& x : b.each)
    if (x.source == source) return x.ms;
  return 0;
}

void expect_all_below(const LowerBounds& b, double makespan, const std::string& what) {
  ASSERT_FALSE(b.each.empty()) << what;
  for (const auto& x : b.each) EXPECT_LE(x.ms, makespan * (1 + 1e-9) + 1e-9) << what << ": " << x.source;
  EXPECT_LE(b.best.ms, makespan * (1 + 1e-9) + 1e-9) << what;
}

TEST(Bounds, BelowPublishedOptima) {
  struct Case {
    const char* instance;
    bool contention;
    double optimum;
  };
  for (const Case& c : {Case{"example-1", true, 30}, Case{"example-1", false, 30}, Case{"heft-example", true, 83},
                        Case{"heft-example", false, 73}}) {
    const auto t = testing::instance(c.instance);
    const auto b = bounds_of(t, c.contention);
    expect_all_below(b, c.optimum, c.instance);
    EXPECT_GT(bound_named(b, "assignment relaxation"), 0) << c.instance;
    EXPECT_GE(b.best.ms, bound_named(b, "critical path")) << c.instance;
  }
}

// `count` independent operators, each taking `times` (one per device) and holding `param_bytes`.
CostTable independent_ops(const std::string& name, std::vector<std::string> devices, std::vector<double> capacity,
                          int count, const std::vector<double>& times, double param_bytes) {
  CostTable t;
  t.name = name;
  t.device_names = std::move(devices);
  t.capacity = std::move(capacity);
  for (int i = 0; i < count; ++i) {
    t.op_names.push_back("op" + std::to_string(i));
    t.op_types.push_back("X");
    t.op_origin.push_back({t.op_names.back()});
    t.time_ms.insert(t.time_ms.end(), times.begin(), times.end());
    t.param_bytes.push_back(param_bytes);
    t.flops.push_back(0);
  }
  return t;
}

TEST(Bounds, RelaxationBeatsCriticalPathWhenOneDeviceMustDoTheWork) {
  // Four independent operators, only device 0 holds their parameters: the critical path sees one operator
  // (2 ms); device 0 must run all four (8 ms), which the load LP and the relaxation both know.
  CostTable t = independent_ops("one-device", {"big", "small"}, {100, 1}, 4, {2, 1}, 10);
  ASSERT_TRUE(t.finalize().ok());
  const auto b = bounds_of(t, true);
  EXPECT_DOUBLE_EQ(bound_named(b, "critical path"), 2);
  EXPECT_NEAR(bound_named(b, "device load"), 8, 1e-6);
  EXPECT_NEAR(bound_named(b, "assignment relaxation"), 8, 1e-6);
  EXPECT_NEAR(b.best.ms, 8, 1e-6);
}

TEST(Bounds, TotalWorkReplacesTheLoadLpOnLargeGraphs) {
  // 20,001 independent operators x 2 devices (1 ms on "fast", 3 ms on "slow") is past the LP's 40,000 pairs: the
  // devices share the fastest total, 20,001 / 2 ms (the best plan, 15,001 on fast and 5,000 on slow, takes 15,001).
  CostTable t = independent_ops("wide", {"fast", "slow"}, {0, 0}, 20001, {1, 3}, 0);
  ASSERT_TRUE(t.finalize().ok());
  const auto b = bounds_of(t, true);
  EXPECT_DOUBLE_EQ(bound_named(b, "total work"), 10000.5);
  EXPECT_EQ(bound_named(b, "device load"), 0);
  EXPECT_EQ(b.best.source, "total work");
}

TEST(Bounds, BelowBruteForceWithMemoryBinding) {
  int checked = 0;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    testing::RandomTableSpec spec;
    spec.ops = 6;
    spec.devices = seed % 2 ? 2 : 3;
    auto t = testing::random_table(seed, spec);
    double params = 0;
    for (double p : t.param_bytes) params += p;
    for (auto& c : t.capacity) c = 0.6 * params + 120;  // no device holds every operator's parameters
    const double best = testing::brute_force(t);
    if (best >= 1e300) continue;  // nothing fits
    ++checked;
    expect_all_below(bounds_of(t, false), best, "seed " + std::to_string(seed));
  }
  EXPECT_GE(checked, 6);  // the capacities bind without making most problems infeasible
}

TEST(Bounds, BelowEveryMethodOnRandomDags) {
  int checked = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    testing::RandomTableSpec spec;
    spec.ops = 24;
    spec.devices = 3 + static_cast<int>(seed % 2);
    spec.edge_probability = 0.4;
    auto t = testing::random_table(seed, spec);
    double params = 0;
    for (double p : t.param_bytes) params += p;
    const auto roomy = t.capacity;  // every plan fits
    for (bool tight : {false, true})
    for (bool contention : {true, false}) {
      if (tight) for (auto& c : t.capacity) c = 0.5 * params + 200;  // memory binds: few heuristics fit
      else t.capacity = roomy;
      const auto b = bounds_of(t, contention);
      for (const auto& name : placer_names()) {
        if (name == "placeto" || name == "milp" || name == "geneflow") continue;  // slow; the MILP checks itself
        auto placer = make_placer(name);
        ASSERT_TRUE(placer.ok());
        PlaceOptions o;
        o.sim.contention = contention;
        o.time_limit_s = 2;
        auto r = (*placer)->place(t, o);
        if (!r.ok()) continue;
        const Schedule s = simulate(t, r->placement, o.sim);
        if (!s.over_capacity(t).empty()) continue;
        ++checked;
        expect_all_below(b, s.makespan_ms, name + " seed " + std::to_string(seed));
      }
    }
  }
  EXPECT_GE(checked, 80);  // every roomy plan (5 x 2 x 8) and some tight ones: the comparison is not vacuous
}

// The relaxation's rows hold for every schedule of the simulator's model (random devices, topological keys),
// on the GoogLeNet instance (every edge its own item) and on tables whose items feed several consumers.
TEST(Bounds, RelaxationHoldsEverySchedule) {
  testing::RandomTableSpec spec;
  spec.ops = 30;
  spec.devices = 4;
  spec.max_fanout = 4;
  for (const auto& t : {testing::instance("GoogLeNet"), testing::random_table(3, spec)}) {
    const auto edges = milp_edges(t);
    for (bool contention : {true, false}) {
      FormulationOptions fo;
      fo.contention = contention;
      fo.relaxation = true;
      fo.upper_bound = 1e6;
      auto f = build_formulation(t, fo);
      ASSERT_TRUE(f.ok());
      std::mt19937_64 rng(5);
      for (int trial = 0; trial < 5; ++trial) {
        std::vector<DeviceId> dev(static_cast<size_t>(t.num_ops()));
        for (auto& d : dev) d = static_cast<DeviceId>(rng() % static_cast<uint64_t>(t.num_devices()));
        std::vector<double> key(dev.size()), edge_key;
        for (int p = 0; p < t.num_ops(); ++p) key[static_cast<size_t>(t.topo_order[static_cast<size_t>(p)])] = p;
        for (const auto& e : edges) edge_key.push_back(key[static_cast<size_t>(e.from)]);
        const auto plan = evaluate_milp_plan(t, edges, dev, key, edge_key, contention);
        ASSERT_TRUE(plan.has_value());
        EXPECT_EQ(f->model.violation(plan_to_values(*f, *plan), 1e-7), "") << t.name << " trial " << trial;
      }
    }
  }
}

}  // namespace
}  // namespace moirai
