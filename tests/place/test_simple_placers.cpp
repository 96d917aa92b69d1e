// The two baseline placers: `single` (fastest device that holds the model) and `memory-proportional` (fill
// devices in order along the topological order, as accelerate's device_map="auto").
#include <algorithm>
#include <numeric>

#include <gtest/gtest.h>

#include "moirai/placer.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::random_table;
using testing::source_path;

using testing::instance;

Expected<PlaceResult> run(const std::string& method, const CostTable& t) {
  auto placer = make_placer(method);
  if (!placer.ok()) return placer.error();
  return (*placer)->place(t, PlaceOptions{});
}

TEST(SimplePlacers, Registered) {
  const auto names = placer_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "single"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "memory-proportional"), names.end());
  EXPECT_EQ((*make_placer("single"))->name(), "single");
  EXPECT_EQ((*make_placer("memory-proportional"))->name(), "memory-proportional");
}

TEST(SimplePlacers, SingleOnGoogLeNetPicksDeviceZero) {
  const CostTable t = instance("GoogLeNet");
  auto r = run("single", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& dev = r->placement.device;
  EXPECT_TRUE(std::all_of(dev.begin(), dev.end(), [](DeviceId d) { return d == 0; }));
  // The instance's known best single device: device 0 at 2.336 ms.
  const Schedule s = simulate(t, r->placement);
  EXPECT_NEAR(s.makespan_ms, 2.336, 1e-9);
  EXPECT_TRUE(validate(t, r->placement, s).empty());
}

TEST(SimplePlacers, SingleSkipsADeviceThatIsTooSmall) {
  CostTable t = random_table(5, {.ops = 30, .devices = 3});
  std::vector<double> total(3, 0.0);
  for (int op = 0; op < t.num_ops(); ++op)
    for (int d = 0; d < 3; ++d) total[static_cast<size_t>(d)] += t.time(op, d);
  const auto fastest = static_cast<DeviceId>(std::min_element(total.begin(), total.end()) - total.begin());
  auto r = run("single", t);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->placement.device[0], fastest);
  t.capacity[static_cast<size_t>(fastest)] = 10;  // less than the parameters alone
  r = run("single", t);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->placement.device[0], fastest);
  EXPECT_TRUE(simulate(t, r->placement).over_capacity(t).empty());
}

TEST(SimplePlacers, SingleFailsWhenNothingHoldsTheModel) {
  const CostTable t = instance("example-1");  // 44 units of operator memory, capacities 14, 14, 16
  auto r = run("single", t);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "single: 'example-1' needs 44 bytes on one device (parameters and peak activations) but no device holds it "
            "(capacities: dev0 14, dev1 14, dev2 16)");
}

// Two branches, each making a 100-byte tensor that its next operator shrinks. The list schedule (earliest ready
// first, ties by id) starts both branches before finishing either, so both big tensors are live at once (peak
// >= 200); running one branch to its end first keeps the peak at 1 + 100 + 1 + 1 = 103.
CostTable two_branches(double capacity) {
  CostTable t;
  t.name = "two-branches";
  t.device_names = {"dev0"};
  t.capacity = {capacity};
  const std::vector<std::string> names = {"in", "x1", "y1", "x2", "y2", "out"};
  for (const auto& n : names) {
    t.op_names.push_back(n);
    t.op_types.push_back("Test");
    t.op_origin.push_back({n});
    t.time_ms.push_back(1.0);
    t.param_bytes.push_back(0);
    t.flops.push_back(0);
  }
  auto item = [&](const std::string& name, OpId producer, std::vector<OpId> consumers, double bytes) {
    t.data.push_back(DataItem{name, producer, std::move(consumers), bytes, {0.0}});
  };
  item("s", 0, {1, 2}, 1);
  item("X", 1, {3}, 100);
  item("Y", 2, {4}, 100);
  item("x", 3, {5}, 1);
  item("y", 4, {5}, 1);
  EXPECT_TRUE(t.finalize().ok());
  return t;
}

TEST(SimplePlacers, SinglePlacesAModelThatFitsOnlyInAMemoryOptimalOrder) {
  const CostTable t = two_branches(150);
  Placement list;
  list.device.assign(6, 0);
  ASSERT_GT(simulate(t, list).peak_memory[0], 150);  // the list order does not fit
  auto single = make_placer("single");
  ASSERT_TRUE(single.ok());
  auto r = (*single)->place(t, PlaceOptions{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->mode, "memory-optimal order");
  const Schedule s = simulate(t, r->placement);
  EXPECT_LE(s.peak_memory[0], 150);
  EXPECT_TRUE(validate(t, r->placement, s).empty());
  // Below the optimal order's peak, nothing fits.
  EXPECT_FALSE((*single)->place(two_branches(100), PlaceOptions{}).ok());
}

TEST(SimplePlacers, MemoryProportionalFillsInOrder) {
  CostTable t = random_table(11, {.ops = 60, .devices = 4});
  const double params = std::accumulate(t.param_bytes.begin(), t.param_bytes.end(), 0.0);
  for (auto& c : t.capacity) c = params * 0.45;  // about three devices' worth is needed
  auto r = run("memory-proportional", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& dev = r->placement.device;
  // Contiguous along the topological order, devices in order.
  for (size_t i = 1; i < t.topo_order.size(); ++i)
    EXPECT_LE(dev[static_cast<size_t>(t.topo_order[i - 1])], dev[static_cast<size_t>(t.topo_order[i])]);
  EXPECT_GE(*std::max_element(dev.begin(), dev.end()), 2);
  const Schedule s = simulate(t, r->placement);
  EXPECT_TRUE(s.over_capacity(t).empty());
  EXPECT_TRUE(validate(t, r->placement, s).empty());
  // Everything fits on the first device: everything goes there.
  auto all = run("memory-proportional", instance("heft-example"));
  ASSERT_TRUE(all.ok());
  for (DeviceId d : all->placement.device) EXPECT_EQ(d, 0);
}

TEST(SimplePlacers, MemoryProportionalLeavesRoomForActivations) {
  // Parameters fill dev0 exactly, but the activations between the operators need room as well: the placer
  // lowers dev0's budget until the simulated peak fits.
  CostTable t = random_table(17, {.ops = 20, .devices = 2});
  double params = 0;
  for (int op = 0; op < 12; ++op) params += t.param_bytes[static_cast<size_t>(op)];
  t.capacity = {params, 1e9};
  auto r = run("memory-proportional", t);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Schedule s = simulate(t, r->placement);
  EXPECT_TRUE(s.over_capacity(t).empty());
  EXPECT_LT(std::count(r->placement.device.begin(), r->placement.device.end(), 0), 12);
}

TEST(SimplePlacers, MemoryProportionalFailsWithBytesAndCapacities) {
  // Topological fill of example-1: dev0 takes 0+5+2+4 = 11 (op6's 5 does not fit), dev1 5+3+4+2 = 14, dev2
  // 1+4+6+5 = 16, and op23 (3) is left over.
  auto r = run("memory-proportional", instance("example-1"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "memory-proportional: 'example-1' does not fit when filling devices in order: 44 bytes of parameters plus "
            "live activations, capacities dev0 14, dev1 14, dev2 16 (total 44)");
}

}  // namespace
}  // namespace moirai
