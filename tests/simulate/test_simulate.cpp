// Simulator and validator: hand-computed schedules on the bundled instances, port contention, memory peaks,
// given orders, and property tests (every simulated schedule of random problems passes the validator; broken
// schedules are caught with the expected message).
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "moirai/simulate.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::random_table;
using testing::RandomTableSpec;
using testing::source_path;

using testing::instance;
using testing::op_named;

// Places the named operators (file ids) on `device`; the others stay where `p` has them.
void put(const CostTable& t, Placement& p, DeviceId device, std::initializer_list<int> ids) {
  for (int id : ids) p.device[static_cast<size_t>(op_named(t, "op" + std::to_string(id)))] = device;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

TEST(Simulate, Example1AllOnDeviceZero) {
  const CostTable t = instance("example-1");
  Placement p;
  p.device.assign(static_cast<size_t>(t.num_ops()), 0);
  // Device 0 runs everything back to back: 0+8+7+8+5+5+3+6+1+7+2+7+6+0 = 65.
  for (bool contention : {true, false}) {
    const Schedule s = simulate(t, p, {contention});
    EXPECT_DOUBLE_EQ(s.makespan_ms, 65.0);
    EXPECT_DOUBLE_EQ(s.busy_ms[0], 65.0);
    EXPECT_TRUE(s.transfers.empty());
    // Operator memory is 44 in total against a capacity of 14: the validator says so, and only that.
    EXPECT_DOUBLE_EQ(s.peak_memory[0], 44.0);
    EXPECT_EQ(s.over_capacity(t), std::vector<DeviceId>{0});
    const auto v = validate(t, p, s, {contention});
    ASSERT_EQ(v.size(), 1u) << joined(v);
    EXPECT_EQ(v[0], "device 'dev0': peak memory 44 exceeds its capacity 14 (at 0 ms)");
  }
}

TEST(Simulate, Example1CrossDevicePlacementByHand) {
  CostTable t = instance("example-1");
  t.capacity = {100, 100, 100};  // this test is about time; memory is tested elsewhere
  Placement p;
  p.device.assign(static_cast<size_t>(t.num_ops()), 0);
  put(t, p, 1, {2, 6, 13, 19, 22});
  put(t, p, 2, {7, 18});
  // By hand (list scheduling; the zero-cost edges out of op0 are sent one after another at t=0):
  //  dev2: op7 [0,3], op18 [3,9]            dev1: op2 [0,6], op6 [6,14], op13 [14,21], op19 [21,26], op22 [26,31]
  //  dev0: op1 [0,8], op5 [8,16] (op2's output arrives [6,7]), op11 [16,19] (op6's arrives [14,15]),
  //        op14 [19,20], op23 [20,26], op26 [31,31] after op22's output arrives (zero time).
  //  op18 -> op22 crosses dev2 -> dev1 in [9,13]; op14 -> op19 crosses dev0 -> dev1 in [20,21].
  for (bool contention : {true, false}) {
    const Schedule s = simulate(t, p, {contention});
    EXPECT_DOUBLE_EQ(s.makespan_ms, 31.0) << contention;
    const auto span = [&](int id) { return s.ops[static_cast<size_t>(op_named(t, "op" + std::to_string(id)))]; };
    EXPECT_DOUBLE_EQ(span(5).start_ms, 8.0);
    EXPECT_DOUBLE_EQ(span(11).start_ms, 16.0);
    EXPECT_DOUBLE_EQ(span(13).start_ms, 14.0);
    EXPECT_DOUBLE_EQ(span(19).start_ms, 21.0);
    EXPECT_DOUBLE_EQ(span(22).start_ms, 26.0);
    EXPECT_DOUBLE_EQ(span(23).end_ms, 26.0);
    const auto is = [&](const TransferSpan& x, const char* name) { return t.data[static_cast<size_t>(x.data)].name == name; };
    const auto tr = std::find_if(s.transfers.begin(), s.transfers.end(), [&](const auto& x) { return is(x, "op18->op22"); });
    ASSERT_NE(tr, s.transfers.end());
    EXPECT_DOUBLE_EQ(tr->start_ms, 9.0);
    EXPECT_DOUBLE_EQ(tr->end_ms, 13.0);
    EXPECT_EQ(s.transfers.size(), 11u);  // 5 zero-cost edges out of op0 + 6 cross-device edges
    EXPECT_TRUE(validate(t, p, s, {contention}).empty()) << joined(validate(t, p, s, {contention}));
    EXPECT_EQ(s.order[2], (std::vector<OpId>{op_named(t, "op7"), op_named(t, "op18")}));
  }
}

TEST(Simulate, HeftExampleFixedPlacementByHand) {
  const CostTable t = instance("heft-example");
  Placement p;
  p.device.assign(static_cast<size_t>(t.num_ops()), 0);
  put(t, p, 2, {1});
  // n1 runs on P2 in [0,9]; its five outputs go to P0 as five transfers (18, 12, 9, 11, 14).
  // Without contention they arrive at 27, 21, 18, 20, 23, and P0 runs (earliest ready first):
  //   n4 [18,31] n5 [31,43] n3 [43,54] n6 [54,67] n2 [67,80] n7 [80,87] n8 [87,92] n9 [92,110] n10 [110,131].
  const Schedule free = simulate(t, p, {false});
  EXPECT_DOUBLE_EQ(free.makespan_ms, 131.0);
  EXPECT_DOUBLE_EQ(free.ops[static_cast<size_t>(op_named(t, "op2"))].start_ms, 67.0);
  EXPECT_TRUE(validate(t, p, free, {false}).empty()) << joined(validate(t, p, free, {false}));
  // With one send port they queue in data order: arrivals 27, 39, 48, 59, 73. P0 runs
  //   n2 [27,40] n3 [40,51] n4 [51,64] n7 [64,71] n5 [71,83] n6 [83,96] n9 [96,114] n8 [114,119] n10 [119,140].
  const Schedule busy = simulate(t, p, {true});
  EXPECT_DOUBLE_EQ(busy.makespan_ms, 140.0);
  EXPECT_DOUBLE_EQ(busy.ops[static_cast<size_t>(op_named(t, "op9"))].start_ms, 96.0);
  EXPECT_TRUE(validate(t, p, busy, {true}).empty()) << joined(validate(t, p, busy, {true}));
  // The contention-free schedule breaks the port rule, and the validator says where.
  const auto v = validate(t, p, free, {true});
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v[0], "receive port of 'dev0': transfer of 'op1->op5' to 'dev0' [9, 20] overlaps transfer of 'op1->op4' to 'dev0' [9, 18]");
}

// A on dev0 feeds B on dev1 and C on dev2 through two items of 2 ms each.
CostTable fan_out() {
  CostTable t;
  t.name = "fan-out";
  t.device_names = {"dev0", "dev1", "dev2"};
  t.capacity = {1e9, 1e9, 1e9};
  t.op_names = {"A", "B", "C"};
  t.time_ms = {1, 1, 1, 5, 5, 5, 5, 5, 5};
  for (const auto& [name, consumer] : {std::pair{"x", 1}, std::pair{"y", 2}}) {
    DataItem item;
    item.name = name;
    item.producer = 0;
    item.consumers = {consumer};
    item.transfer_ms.assign(9, 2.0);
    t.data.push_back(item);
  }
  if (!t.finalize().ok()) throw std::logic_error("fan_out");
  return t;
}

TEST(Simulate, TwoTransfersShareASendPort) {
  const CostTable t = fan_out();
  const Placement p{{0, 1, 2}, {}, {}};
  const Schedule busy = simulate(t, p, {true});
  ASSERT_EQ(busy.transfers.size(), 2u);
  EXPECT_DOUBLE_EQ(busy.transfers[0].start_ms, 1.0);  // x first (lower data id)
  EXPECT_DOUBLE_EQ(busy.transfers[1].start_ms, 3.0);  // y waits for the send port
  EXPECT_DOUBLE_EQ(busy.makespan_ms, 10.0);           // C: [5, 10]
  const Schedule free = simulate(t, p, {false});
  EXPECT_DOUBLE_EQ(free.transfers[1].start_ms, 1.0);
  EXPECT_DOUBLE_EQ(free.makespan_ms, 8.0);
  EXPECT_TRUE(validate(t, p, busy, {true}).empty());
  EXPECT_TRUE(validate(t, p, free, {false}).empty());
  // A priority puts y first on the port.
  Placement q = p;
  q.order = {{0}, {1}, {2}};
  q.transfer_priority = {{{1, 2}, 0.0}, {{0, 1}, 1.0}};
  const Schedule swapped = simulate(t, q, {true});
  EXPECT_DOUBLE_EQ(swapped.ops[2].start_ms, 3.0);
  EXPECT_DOUBLE_EQ(swapped.ops[1].start_ms, 5.0);
  EXPECT_TRUE(validate(t, q, swapped, {true}).empty());
  // With only y prioritized, x goes after it.
  q.transfer_priority = {{{1, 2}, 5.0}};
  EXPECT_DOUBLE_EQ(simulate(t, q, {true}).ops[1].start_ms, 5.0);
  // Overlapping transfers are caught.
  Schedule broken = busy;
  broken.transfers[1].start_ms = 2.0;
  broken.transfers[1].end_ms = 4.0;
  const auto v = validate(t, p, broken, {true});
  ASSERT_EQ(v.size(), 1u) << joined(v);
  EXPECT_EQ(v[0], "send port of 'dev0': transfer of 'y' to 'dev2' [2, 4] overlaps transfer of 'x' to 'dev1' [1, 3]");
  // The same transfer time mis-stated.
  broken = busy;
  broken.transfers[0].end_ms = 2.5;
  EXPECT_EQ(validate(t, p, broken, {true}).at(0), "transfer of 'x' from 'dev0' to 'dev1' lasts 1.5 ms ([1, 2.5]), its transfer time is 2 ms");
}

TEST(Simulate, SharedCopyAndMemoryPeakByHand) {
  // A (dev0) -> x (10 bytes) -> B (dev0), C and D (dev1): one transfer to dev1 serves C and D.
  // B -> y (5 bytes), a graph output. Parameters: A 1, B 2, C 4, D 0.
  CostTable t;
  t.name = "memory";
  t.device_names = {"dev0", "dev1"};
  t.capacity = {17, 100};
  t.op_names = {"A", "B", "C", "D"};
  t.time_ms = {1, 1, 2, 2, 1, 1, 1, 1};
  t.param_bytes = {1, 2, 4, 0};
  DataItem x{"x", 0, {1, 2, 3}, 10, {0, 3, 3, 0}};
  DataItem y{"y", 1, {}, 5, {0, 1, 1, 0}};
  t.data = {x, y};
  ASSERT_TRUE(t.finalize().ok());
  const Placement p{{0, 0, 1, 1}, {}, {}};
  const Schedule s = simulate(t, p, {true});
  // A [0,1]; B [1,3]; x to dev1 [1,4]; C [4,5]; D [5,6].
  ASSERT_EQ(s.transfers.size(), 1u);
  EXPECT_DOUBLE_EQ(s.makespan_ms, 6.0);
  EXPECT_DOUBLE_EQ(s.link_bytes[0 * 2 + 1], 10.0);
  // dev0: params 3 + x [0,4) + y [1,6) -> 18 during [1,4). dev1: params 4 + copy of x [1,6) -> 14.
  EXPECT_DOUBLE_EQ(s.peak_memory[0], 18.0);
  EXPECT_DOUBLE_EQ(s.peak_memory[1], 14.0);
  EXPECT_EQ(s.over_capacity(t), std::vector<DeviceId>{0});
  const auto v = validate(t, p, s, {true});
  ASSERT_EQ(v.size(), 1u) << joined(v);
  EXPECT_EQ(v[0], "device 'dev0': peak memory 18 exceeds its capacity 17 (at 1 ms)");
  // A shifted operator breaks precedence.
  Schedule broken = s;
  broken.ops[2] = {3.0, 4.0};
  const auto w = validate(t, p, broken, {true});
  ASSERT_GE(w.size(), 2u) << joined(w);
  EXPECT_EQ(w[0], "operator 'C' on 'dev1' starts at 3 ms, before its input 'x' is there at 4 ms");
  // A missing transfer and a wrong makespan.
  broken = s;
  broken.transfers.clear();
  broken.makespan_ms = 7;
  const auto u = validate(t, p, broken, {true});
  EXPECT_NE(std::find(u.begin(), u.end(), "'x' is read by 'C' on 'dev1' but never sent there from 'dev0'"), u.end()) << joined(u);
  EXPECT_NE(std::find(u.begin(), u.end(), "makespan is 7 ms but the last event ends at 6 ms"), u.end()) << joined(u);
}

TEST(Simulate, BadPlacementsAndOrders) {
  const CostTable t = fan_out();
  EXPECT_EQ(check_placement(t, Placement{{0, 1}, {}, {}}).error().message,
            "the placement gives a device for 2 operators, the table 'fan-out' has 3");
  EXPECT_EQ(check_placement(t, Placement{{0, 3, 1}, {}, {}}).error().message,
            "operator 'B' is placed on device 3, but there are 3 devices (0..2)");
  EXPECT_EQ(check_placement(t, Placement{{0, 1, 1}, {{0}, {1}, {2}}, {}}).error().message,
            "the order of device 'dev2' lists operator 'C', which is placed on 'dev1'");
  EXPECT_THROW(simulate(t, Placement{{0, 5, 1}, {}, {}}), std::logic_error);
  // An order that breaks precedence deadlocks: a clear internal error, not a hang.
  const Placement p{{0, 0, 0}, {{1, 0, 2}, {}, {}}, {}};
  try {
    simulate(t, p);
    FAIL() << "expected a deadlock";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("deadlock after 0 of 3 operators: device 'dev0' waits to run 'B'"),
              std::string::npos)
        << e.what();
  }
  // An op placed twice / not at all cannot be expressed; a schedule with the wrong size is reported.
  Schedule s = simulate(t, Placement{{0, 1, 2}, {}, {}});
  s.ops.pop_back();
  EXPECT_EQ(validate(t, Placement{{0, 1, 2}, {}, {}}, s).at(0), "schedule: 2 operator spans for 3 operators");
}

// A random topological order (Kahn with random tie-breaks) gives per-device orders and transfer priorities
// that can never deadlock.
Placement random_orders(const CostTable& t, Placement p, std::mt19937_64& rng, bool priorities) {
  const int n = t.num_ops();
  std::vector<int> indeg(static_cast<size_t>(n));
  for (OpId op = 0; op < n; ++op) indeg[static_cast<size_t>(op)] = static_cast<int>(t.predecessors(op).size());
  std::vector<OpId> ready, order;
  for (OpId op = 0; op < n; ++op)
    if (indeg[static_cast<size_t>(op)] == 0) ready.push_back(op);
  while (!ready.empty()) {
    const size_t pick = std::uniform_int_distribution<size_t>(0, ready.size() - 1)(rng);
    const OpId op = ready[pick];
    ready.erase(ready.begin() + static_cast<std::ptrdiff_t>(pick));
    order.push_back(op);
    for (OpId s : t.successors(op))
      if (--indeg[static_cast<size_t>(s)] == 0) ready.push_back(s);
  }
  p.order.assign(static_cast<size_t>(t.num_devices()), {});
  std::vector<int> pos(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    p.order[static_cast<size_t>(p.device[static_cast<size_t>(order[static_cast<size_t>(i)])])].push_back(order[static_cast<size_t>(i)]);
    pos[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
  }
  if (priorities)
    for (int i = 0; i < static_cast<int>(t.data.size()); ++i)
      for (OpId c : t.data[static_cast<size_t>(i)].consumers)
        // Every transfer gets one: transfers without a priority wait behind all prioritized ones on their
        // ports, which may deadlock by design when the priorities depend on them.
        p.transfer_priority[{i, p.device[static_cast<size_t>(c)]}] = pos[static_cast<size_t>(t.data[static_cast<size_t>(i)].producer)];
  return p;
}

// A random table (fan-out 1 to 4 by seed) and a random device per operator.
std::pair<CostTable, Placement> random_problem(uint64_t seed, int ops, int devices, std::mt19937_64& rng) {
  RandomTableSpec spec;
  spec.ops = ops;
  spec.devices = devices;
  spec.max_fanout = 1 + static_cast<int>(seed % 4);
  CostTable t = random_table(seed, spec);
  Placement p;
  for (int op = 0; op < t.num_ops(); ++op) p.device.push_back(static_cast<DeviceId>(rng() % static_cast<uint64_t>(devices)));
  return {std::move(t), std::move(p)};
}

TEST(SimulateProperty, RandomProblemsPassTheValidator) {
  int checked = 0;
  for (uint64_t seed = 1; seed <= 24; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    const auto [t, p] = random_problem(seed, 20 + static_cast<int>(seed % 5) * 15, 1 + static_cast<int>(seed % 8), rng);
    for (bool contention : {true, false}) {
      const SimOptions opt{contention};
      const Schedule list = simulate(t, p, opt);
      ASSERT_TRUE(validate(t, p, list, opt).empty()) << "seed " << seed << "\n" << joined(validate(t, p, list, opt));
      // The list schedule's own orders reproduce it exactly (a semi-active schedule of a non-delay one).
      Placement same = p;
      same.order = list.order;
      int rank = 0;
      for (const auto& x : list.transfers) same.transfer_priority[{x.data, x.dst}] = rank++;
      const Schedule again = simulate(t, same, opt);
      EXPECT_DOUBLE_EQ(again.makespan_ms, list.makespan_ms) << "seed " << seed;
      for (int op = 0; op < t.num_ops(); ++op)
        EXPECT_LE(again.ops[static_cast<size_t>(op)].start_ms, list.ops[static_cast<size_t>(op)].start_ms + 1e-9);
      ASSERT_TRUE(validate(t, same, again, opt).empty()) << "seed " << seed;
      // Random given orders, with and without transfer priorities.
      for (bool priorities : {false, true}) {
        const Placement q = random_orders(t, p, rng, priorities);
        const Schedule s = simulate(t, q, opt);
        ASSERT_TRUE(validate(t, q, s, opt).empty()) << "seed " << seed << "\n" << joined(validate(t, q, s, opt));
        for (int d = 0; d < t.num_devices(); ++d) EXPECT_EQ(s.order[static_cast<size_t>(d)], q.order[static_cast<size_t>(d)]);
        ++checked;
      }
      // A deliberately shifted operator is caught: start the last operator in topological order 0.5 ms early.
      if (t.num_ops() > 1) {
        Schedule broken = list;
        const OpId last = t.topo_order.back();
        broken.ops[static_cast<size_t>(last)].start_ms -= 0.5;
        const auto v = validate(t, p, broken, opt);
        ASSERT_FALSE(v.empty()) << "seed " << seed;
        EXPECT_NE(v[0].find("operator '" + t.op_names[static_cast<size_t>(last)] + "'"), std::string::npos) << v[0];
      }
    }
  }
  EXPECT_EQ(checked, 24 * 2 * 2);
}

TEST(SimulateProperty, ContentionNeverHelpsTheListScheduleOnAChain) {
  // On a chain every transfer is alone on its ports, so contention changes nothing.
  RandomTableSpec spec;
  spec.ops = 40;
  spec.devices = 4;
  spec.edge_probability = 0;
  const CostTable t = random_table(99, spec);
  Placement p;
  for (int op = 0; op < t.num_ops(); ++op) p.device.push_back(op % 4);
  EXPECT_DOUBLE_EQ(simulate(t, p, {true}).makespan_ms, simulate(t, p, {false}).makespan_ms);
}

}  // namespace
}  // namespace moirai

namespace moirai {
namespace {

// The validator's memory accounting (peak_memory_from_spans) is computed independently of the simulator's, so
// the two must agree on every random plan; a figure that disagrees with the spans is a violation.
TEST(SimulateProperty, ValidatorMemoryAgreesWithTheSimulator) {
  int compared = 0;
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed * 104729);
    const auto [t, p] = random_problem(seed, 10 + static_cast<int>(seed % 4) * 10, 1 + static_cast<int>(seed % 5), rng);
    for (bool contention : {true, false}) {
      const SimOptions opt{contention};
      for (const Placement& q : {p, random_orders(t, p, rng, true)}) {
        const Schedule s = simulate(t, q, opt);
        const MemoryPeaks derived = peak_memory_from_spans(t, q, s);
        ASSERT_EQ(derived.peak.size(), s.peak_memory.size());
        for (size_t d = 0; d < derived.peak.size(); ++d)
          EXPECT_NEAR(derived.peak[d], s.peak_memory[d], 1e-9 * std::max(1.0, s.peak_memory[d])) << "seed " << seed << " device " << d;
        ++compared;
        // A wrong memory figure for one device is caught and named.
        Schedule wrong = s;
        const size_t d = rng() % wrong.peak_memory.size();
        wrong.peak_memory[d] += seed % 2 ? 1.0 : -1.0;
        const auto v = validate(t, q, wrong, opt);
        ASSERT_EQ(v.size(), 1u) << "seed " << seed << "\n" << joined(v);
        EXPECT_EQ(v[0].rfind("device '" + t.device_names[d] + "': the schedule says its peak memory is", 0), 0u) << v[0];
      }
    }
  }
  EXPECT_EQ(compared, 30 * 2 * 2);
}

}  // namespace
}  // namespace moirai
