// Tests of memory-aware ordering: the peak-memory model against a reference written from the header's
// definition and against the simulator, BTSearch against brute force over all topological orders, the
// partitioned search against the unpartitioned one, subsets (one device's operators) and the time limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "moirai/schedule.h"
#include "moirai/simulate.h"

namespace moirai {
namespace {

struct DagSpec {
  int ops = 10;
  double edge_probability = 0.3;
  int max_consumers = 3;
  double two_outputs = 0.3;  ///< chance that an operator has a second output
};

/// A random single-device DAG: operator i feeds only j > i; items have random integer sizes; some items are
/// graph outputs. Elementwise and opaque types are mixed so the in-place rule has something to do.
CostTable random_dag(uint64_t seed, const DagSpec& spec) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  CostTable t;
  t.name = "dag-" + std::to_string(seed);
  t.cluster = "one";
  t.device_names = {"dev0"};
  const char* types[] = {"Conv", "Relu", "Add", "MatMul"};
  for (int i = 0; i < spec.ops; ++i) {
    t.op_names.push_back("op" + std::to_string(i));
    t.op_types.push_back(types[rng() % 4]);
    t.op_origin.push_back({t.op_names.back()});
    t.time_ms.push_back(1.0 + std::floor(9 * unit(rng)));
    t.param_bytes.push_back(std::floor(20 * unit(rng)));
    t.flops.push_back(1e6);
  }
  for (int i = 0; i < spec.ops; ++i) {
    const int outputs = unit(rng) < spec.two_outputs ? 2 : 1;
    for (int k = 0; k < outputs; ++k) {
      DataItem item;
      item.name = "t" + std::to_string(i) + "_" + std::to_string(k);
      item.producer = i;
      for (int j = i + 1; j < spec.ops && static_cast<int>(item.consumers.size()) < spec.max_consumers; ++j)
        if (unit(rng) < spec.edge_probability) item.consumers.push_back(j);
      item.bytes = 1 + std::floor(100 * unit(rng));
      item.transfer_ms = {0.0};
      t.data.push_back(std::move(item));
    }
  }
  t.capacity = {1e12};
  auto status = t.finalize();
  if (!status.ok()) throw std::logic_error(status.error().message);
  return t;
}

/// Reference peak, written from the definition in schedule.h (interval of each item over the order's steps).
double reference_peak(const CostTable& t, const std::vector<OpId>& order, bool in_place = false) {
  const int m = static_cast<int>(order.size());
  std::vector<int> pos(static_cast<size_t>(t.num_ops()), -1);
  for (int k = 0; k < m; ++k) pos[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
  double params = 0;
  for (OpId o : order) params += t.param_bytes[static_cast<size_t>(o)];
  std::vector<double> mem(static_cast<size_t>(m), params);
  std::vector<int> outputs(static_cast<size_t>(t.num_ops()), 0);
  for (const auto& d : t.data) ++outputs[static_cast<size_t>(d.producer)];
  for (const auto& d : t.data) {
    int lo = m, hi = -1;
    const bool local_producer = pos[static_cast<size_t>(d.producer)] >= 0;
    if (local_producer) lo = hi = pos[static_cast<size_t>(d.producer)];
    bool local_consumer = false;
    for (OpId c : d.consumers)
      if (pos[static_cast<size_t>(c)] >= 0) {
        local_consumer = true;
        lo = std::min(lo, pos[static_cast<size_t>(c)]);
        hi = std::max(hi, pos[static_cast<size_t>(c)]);
      }
    if (hi < 0) continue;
    if (local_producer && !local_consumer) hi = m - 1;  // graph output or sent away: until the end
    for (int k = lo; k <= hi; ++k) mem[static_cast<size_t>(k)] += d.bytes;
  }
  if (in_place) {
    for (int k = 0; k < m; ++k) {
      const OpId o = order[static_cast<size_t>(k)];
      const auto& type = t.op_types[static_cast<size_t>(o)];
      if ((type != "Relu" && type != "Add") || outputs[static_cast<size_t>(o)] != 1) continue;
      double out = 0;
      for (const auto& d : t.data)
        if (d.producer == o) out = d.bytes;
      for (const auto& d : t.data)
        if (d.consumers == std::vector<OpId>{o} && pos[static_cast<size_t>(d.producer)] >= 0 && d.bytes >= out) {
          mem[static_cast<size_t>(k)] -= out;
          break;
        }
    }
  }
  return m == 0 ? 0.0 : *std::max_element(mem.begin(), mem.end());
}

/// Ancestor masks of the operators (n <= 64), through any path of the whole graph.
std::vector<uint64_t> ancestors(const CostTable& t) {
  std::vector<uint64_t> anc(static_cast<size_t>(t.num_ops()), 0);
  for (OpId o : t.topo_order)
    for (OpId p : t.predecessors(o)) anc[static_cast<size_t>(o)] |= anc[static_cast<size_t>(p)] | (uint64_t{1} << p);
  return anc;
}

/// Smallest peak over every topological order of `ops` (brute force), or -1 when there are too many orders.
double brute_force(const CostTable& t, const std::vector<OpId>& ops, bool in_place, long long max_orders) {
  const auto anc = ancestors(t);
  uint64_t set = 0;
  for (OpId o : ops) set |= uint64_t{1} << o;
  // Count orders first (DP over executed subsets) so huge cases are skipped, not slow.
  const int m = static_cast<int>(ops.size());
  std::vector<long long> count(size_t{1} << m, 0);
  count[0] = 1;
  for (uint64_t s = 0; s < (uint64_t{1} << m); ++s) {
    if (count[s] == 0) continue;
    uint64_t done = 0;
    for (int i = 0; i < m; ++i)
      if (s >> i & 1U) done |= uint64_t{1} << ops[static_cast<size_t>(i)];
    for (int i = 0; i < m; ++i)
      if (!(s >> i & 1U) && (anc[static_cast<size_t>(ops[static_cast<size_t>(i)])] & set & ~done) == 0)
        count[s | (uint64_t{1} << i)] = std::min(count[s | (uint64_t{1} << i)] + count[s], max_orders + 1);
  }
  if (count.back() > max_orders) return -1;
  double best = 1e300;
  std::vector<OpId> order;
  uint64_t done = 0;
  std::function<void()> rec = [&] {
    if (static_cast<int>(order.size()) == m) {
      best = std::min(best, reference_peak(t, order, in_place));
      return;
    }
    for (OpId o : ops) {
      if (done >> o & 1U) continue;
      if ((anc[static_cast<size_t>(o)] & set & ~done) != 0) continue;
      done |= uint64_t{1} << o;
      order.push_back(o);
      rec();
      order.pop_back();
      done &= ~(uint64_t{1} << o);
    }
  };
  rec();
  return best;
}

/// Every operator of `ops` once, after all its ancestors in `ops` (checked independently of the library).
bool valid(const CostTable& t, const std::vector<OpId>& ops, const std::vector<OpId>& order) {
  if (order.size() != ops.size()) return false;
  const auto anc = ancestors(t);
  uint64_t set = 0, done = 0;
  for (OpId o : ops) set |= uint64_t{1} << o;
  for (OpId o : order) {
    if (!(set >> o & 1U) || (done >> o & 1U)) return false;
    if ((anc[static_cast<size_t>(o)] & set & ~done) != 0) return false;
    done |= uint64_t{1} << o;
  }
  return true;
}

std::vector<OpId> all_ops(const CostTable& t) {
  std::vector<OpId> ops(static_cast<size_t>(t.num_ops()));
  for (int i = 0; i < t.num_ops(); ++i) ops[static_cast<size_t>(i)] = i;
  return ops;
}

void check_against_brute_force(const CostTable& t, const std::vector<OpId>& ops, bool in_place, int& compared) {
  const double truth = brute_force(t, ops, in_place, 100000);
  if (truth < 0) return;
  ++compared;
  const std::vector<OpId> arg = ops.size() == static_cast<size_t>(t.num_ops()) ? std::vector<OpId>{} : ops;
  for (bool partition : {true, false}) {
    SearchOptions options;
    options.memory.in_place = in_place;
    options.partition = partition;
    const auto r = btsearch(t, arg, options);
    SCOPED_TRACE(t.name + " partition=" + std::to_string(partition) + " in_place=" + std::to_string(in_place));
    EXPECT_TRUE(r.optimal);
    EXPECT_DOUBLE_EQ(r.peak_bytes, truth);
    EXPECT_TRUE(valid(t, ops, r.order));
    EXPECT_TRUE(is_topological_order(t, arg, r.order));
    EXPECT_DOUBLE_EQ(order_peak_memory(t, r.order, options.memory), r.peak_bytes);
    EXPECT_DOUBLE_EQ(reference_peak(t, r.order, in_place), r.peak_bytes);
  }
  for (const auto& base : {file_order(t, arg, {in_place}), dfs_order(t, arg, {in_place}),
                           bfs_order(t, arg, {in_place}), greedy_order(t, arg, {in_place})}) {
    EXPECT_TRUE(valid(t, ops, base.order)) << base.method;
    EXPECT_GE(base.peak_bytes, truth) << base.method;
    EXPECT_DOUBLE_EQ(base.peak_bytes, reference_peak(t, base.order, in_place)) << base.method;
  }
}

TEST(BTSearch, EqualsBruteForceOnRandomGraphs) {
  int compared = 0;
  for (uint64_t seed = 0; seed < 120; ++seed) {
    DagSpec spec;
    spec.ops = 4 + static_cast<int>(seed % 9);  // 4..12
    spec.edge_probability = 0.15 + 0.05 * static_cast<double>(seed % 5);
    const auto t = random_dag(seed, spec);
    check_against_brute_force(t, all_ops(t), false, compared);
  }
  EXPECT_GE(compared, 100);
}

TEST(BTSearch, EqualsBruteForceWithInPlaceRule) {
  int compared = 0;
  for (uint64_t seed = 200; seed < 260; ++seed) {
    DagSpec spec;
    spec.ops = 5 + static_cast<int>(seed % 7);
    const auto t = random_dag(seed, spec);
    check_against_brute_force(t, all_ops(t), true, compared);
  }
  EXPECT_GE(compared, 50);
}

TEST(BTSearch, EqualsBruteForceOnSubsets) {
  int compared = 0;
  for (uint64_t seed = 300; seed < 380; ++seed) {
    DagSpec spec;
    spec.ops = 12;
    const auto t = random_dag(seed, spec);
    std::mt19937_64 rng(seed);
    std::vector<OpId> ops;
    for (OpId o = 0; o < t.num_ops(); ++o)
      if (rng() % 3 != 0) ops.push_back(o);
    if (ops.empty()) continue;
    check_against_brute_force(t, ops, false, compared);
  }
  EXPECT_GE(compared, 60);
}

/// Two branches off one source that join in a sink; running one branch to its end first is optimal.
///   s -x(10)-> a1 -A(100)-> a2 -a(1)-> t -out(5)->        s -x-> b1 -B(100)-> b2 -b(1)-> t
CostTable diamond() {
  CostTable t;
  t.name = "diamond";
  t.device_names = {"dev0"};
  t.op_names = {"s", "a1", "a2", "b1", "b2", "t"};
  t.op_types = {"Conv", "Conv", "Relu", "Conv", "Relu", "Add"};
  for (const auto& n : t.op_names) t.op_origin.push_back({n});
  t.time_ms.assign(6, 1.0);
  t.param_bytes.assign(6, 0.0);
  t.flops.assign(6, 1.0);
  auto item = [&](const char* name, OpId producer, std::vector<OpId> consumers, double bytes) {
    t.data.push_back(DataItem{name, producer, std::move(consumers), bytes, {0.0}});
  };
  item("x", 0, {1, 3}, 10);
  item("A", 1, {2}, 100);
  item("a", 2, {5}, 1);
  item("B", 3, {4}, 100);
  item("b", 4, {5}, 1);
  item("out", 5, {}, 5);
  t.capacity = {1e9};
  if (auto status = t.finalize(); !status.ok()) throw std::logic_error(status.error().message);
  return t;
}

TEST(PeakMemory, FollowsTheDocumentedModel) {
  const auto t = diamond();
  EXPECT_EQ(order_memory_profile(t, {0, 1, 2, 3, 4, 5}), (std::vector<double>{10, 110, 111, 111, 102, 7}));
  EXPECT_DOUBLE_EQ(order_peak_memory(t, {0, 1, 3, 2, 4, 5}), 210);  // both 100-byte tensors live at once
  // In place: a2 and b2 (Relu) write into their dying inputs A and B.
  EXPECT_EQ(order_memory_profile(t, {0, 1, 2, 3, 4, 5}, {.in_place = true}),
            (std::vector<double>{10, 110, 110, 111, 101, 7}));
  // Subset {b1, b2, t}: x and a are received copies, live only while their local consumers run.
  EXPECT_EQ(order_memory_profile(t, {3, 4, 5}), (std::vector<double>{110, 101, 7}));
  // Subset {s, a1, a2}: x is freed after its last local consumer; a, read only remotely, stays to the end.
  EXPECT_EQ(order_memory_profile(t, {0, 1, 2}), (std::vector<double>{10, 110, 101}));
  EXPECT_EQ(order_memory_profile(t, {0, 1}), (std::vector<double>{10, 110}));
  EXPECT_EQ(order_memory_profile(t, {0, 1}, {.sent_outputs_until_end = false}), (std::vector<double>{10, 110}));
  EXPECT_EQ(order_memory_profile(t, {1, 3}), (std::vector<double>{110, 210}));
  EXPECT_EQ(order_memory_profile(t, {1, 3}, {.sent_outputs_until_end = false}), (std::vector<double>{110, 110}));
  // Parameters are resident throughout.
  auto with_params = t;
  with_params.param_bytes[3] = 5;
  EXPECT_DOUBLE_EQ(order_peak_memory(with_params, {3, 4, 5}), 115);
  EXPECT_THROW(order_peak_memory(t, {1, 0, 2, 3, 4, 5}), std::logic_error);
  EXPECT_TRUE(is_topological_order(t, {}, {0, 3, 1, 4, 2, 5}));
  EXPECT_FALSE(is_topological_order(t, {}, {0, 3, 1, 4, 5, 2}));
  EXPECT_FALSE(is_topological_order(t, {3, 4, 5}, {3, 4}));
}

TEST(BTSearch, BeatsBreadthFirstOnTheDiamond) {
  const auto t = diamond();
  const auto results = compare_orders(t);
  ASSERT_EQ(results.size(), 5U);
  EXPECT_EQ(results[0].method, "file");
  EXPECT_EQ(results[2].method, "bfs");
  EXPECT_DOUBLE_EQ(results[2].peak_bytes, 210);
  EXPECT_EQ(results[4].method, "btsearch");
  EXPECT_DOUBLE_EQ(results[4].peak_bytes, 111);
  EXPECT_TRUE(results[4].optimal);
}

TEST(PeakMemory, EqualsTheSimulatorOnOneDevice) {
  for (uint64_t seed = 400; seed < 440; ++seed) {
    DagSpec spec;
    spec.ops = 8 + static_cast<int>(seed % 20);
    const auto t = random_dag(seed, spec);
    for (const auto& r : {file_order(t), bfs_order(t), btsearch(t)}) {
      Placement placement;
      placement.device.assign(static_cast<size_t>(t.num_ops()), 0);
      placement.order = {r.order};
      const auto schedule = simulate(t, placement);
      ASSERT_EQ(schedule.peak_memory.size(), 1U);
      EXPECT_DOUBLE_EQ(schedule.peak_memory[0], r.peak_bytes) << t.name << " " << r.method;
      EXPECT_EQ(schedule.order[0], r.order) << t.name << " " << r.method;
    }
  }
}

/// Blocks of random operators joined by one operator each (a cut), with skip edges across blocks so that
/// items cross part boundaries and some live across a whole part.
CostTable blocky_dag(uint64_t seed, int blocks, int block_ops) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  CostTable t;
  t.name = "blocky-" + std::to_string(seed);
  t.device_names = {"dev0"};
  const int n = blocks * block_ops;
  auto block_of = [&](int i) { return i / block_ops; };
  auto is_join = [&](int i) { return i % block_ops == block_ops - 1 && i + 1 < n; };
  for (int i = 0; i < n; ++i) {
    t.op_names.push_back("op" + std::to_string(i));
    t.op_types.push_back(is_join(i) ? "Concat" : "Conv");
    t.op_origin.push_back({t.op_names.back()});
    t.time_ms.push_back(1.0);
    t.param_bytes.push_back(std::floor(10 * unit(rng)));
    t.flops.push_back(1.0);
  }
  for (int i = 0; i < n; ++i) {
    DataItem item{"t" + std::to_string(i), i, {}, 1 + std::floor(100 * unit(rng)), {0.0}};
    const int end = std::min(n, (block_of(i) + 1) * block_ops);
    if (is_join(i)) {
      for (int j = i + 1; j < std::min(n, i + 1 + block_ops); ++j)
        if (j == i + 1 || unit(rng) < 0.4) item.consumers.push_back(j);
    } else {
      for (int j = i + 1; j < end; ++j)
        if (unit(rng) < 0.3 && (is_join(j) || static_cast<int>(item.consumers.size()) < 2))
          item.consumers.push_back(j);
      if (item.consumers.empty() && end < n) item.consumers.push_back(end - 1);  // reach the join
      if (unit(rng) < 0.3 && end + 1 < n) item.consumers.push_back(end + static_cast<int>(rng() % (n - end)));
    }
    std::sort(item.consumers.begin(), item.consumers.end());
    item.consumers.erase(std::unique(item.consumers.begin(), item.consumers.end()), item.consumers.end());
    t.data.push_back(std::move(item));
  }
  // Every operator after a join must descend from it.
  for (int j = block_ops; j < n; ++j) {
    const int join = block_of(j) * block_ops - 1;
    bool reached = false;
    for (const auto& d : t.data)
      if (d.producer >= join && d.producer < j && std::count(d.consumers.begin(), d.consumers.end(), j)) reached = true;
    if (!reached) {
      auto& c = t.data[static_cast<size_t>(join)].consumers;
      c.push_back(j);
      std::sort(c.begin(), c.end());
    }
  }
  t.capacity = {1e12};
  if (auto status = t.finalize(); !status.ok()) throw std::logic_error(status.error().message);
  return t;
}

TEST(BTSearch, PartitionedSearchEqualsWholeSearch) {
  int parted = 0;
  for (uint64_t seed = 500; seed < 530; ++seed) {
    const auto t = blocky_dag(seed, 3 + static_cast<int>(seed % 3), 6 + static_cast<int>(seed % 4));
    const auto parts = order_parts(t);
    if (parts.size() >= 3) ++parted;
    // Each part is closed under precedence given the earlier parts: concatenating any orders of them is valid.
    std::vector<OpId> concat;
    for (const auto& part : parts) concat.insert(concat.end(), part.begin(), part.end());
    EXPECT_TRUE(is_topological_order(t, {}, concat)) << t.name;
    SearchOptions whole_options;
    whole_options.partition = false;
    whole_options.time_limit_s = 30;
    const auto whole = btsearch(t, {}, whole_options);
    const auto split = btsearch(t);
    ASSERT_TRUE(whole.optimal) << t.name;
    EXPECT_TRUE(split.optimal) << t.name;
    EXPECT_EQ(split.parts, static_cast<int>(parts.size()));
    EXPECT_DOUBLE_EQ(split.peak_bytes, whole.peak_bytes) << t.name;
    EXPECT_DOUBLE_EQ(reference_peak(t, split.order), split.peak_bytes) << t.name;
    EXPECT_TRUE(valid(t, all_ops(t), split.order)) << t.name;
  }
  EXPECT_GE(parted, 25);
}

TEST(BTSearch, StopsAtTheTimeLimitWithAValidOrder) {
  DagSpec spec;
  spec.ops = 400;
  spec.edge_probability = 0.01;
  const auto t = random_dag(7, spec);
  SearchOptions options;
  options.time_limit_s = 0.02;
  const auto r = btsearch(t, {}, options);
  EXPECT_FALSE(r.optimal);
  EXPECT_TRUE(is_topological_order(t, {}, r.order));
  EXPECT_DOUBLE_EQ(order_peak_memory(t, r.order), r.peak_bytes);
  EXPECT_LE(r.peak_bytes, greedy_order(t).peak_bytes);
  EXPECT_LE(r.lower_bound, r.peak_bytes);
}

// Two devices, a1 a2 on A and b1 b2 on B, data b2 -> a1 and a2 -> b1. Alone, each device runs the receiver
// first (a2's and b2's outputs, read only remotely, live to the end of the order), so BTSearch's per-device
// orders wait on each other (issue 15).
CostTable crossed_pair() {
  CostTable t;
  t.name = "crossed";
  t.cluster = "two";
  t.device_names = {"A", "B"};
  t.capacity = {1e12, 1e12};
  for (const char* name : {"a1", "a2", "b1", "b2"}) {
    t.op_names.push_back(name);
    t.op_types.push_back("Relu");
    t.op_origin.push_back({name});
    t.time_ms.insert(t.time_ms.end(), {1.0, 1.0});
    t.param_bytes.push_back(0);
    t.flops.push_back(1e6);
  }
  auto item = [&](const char* name, OpId producer, OpId consumer) {
    DataItem d;
    d.name = name;
    d.producer = producer;
    d.consumers = {consumer};
    d.bytes = 10;
    d.transfer_ms = {0.0, 1.0, 1.0, 0.0};
    t.data.push_back(std::move(d));
  };
  item("x", 3, 0);  // b2 -> a1
  item("y", 1, 2);  // a2 -> b1
  auto status = t.finalize();
  if (!status.ok()) throw std::logic_error(status.error().message);
  return t;
}

TEST(MergeDeviceOrders, RepairsPerDeviceOrdersThatDeadlockTogether) {
  const CostTable t = crossed_pair();
  Placement p;
  p.device = {0, 0, 1, 1};
  p.order = {btsearch(t, {0, 1}).order, btsearch(t, {2, 3}).order};
  ASSERT_EQ(p.order, (std::vector<std::vector<OpId>>{{0, 1}, {2, 3}}));  // a1 a2 | b1 b2: the deadlock
  EXPECT_THROW(simulate(t, p), std::logic_error);

  p.order = merge_device_orders(t, p.order);
  EXPECT_EQ(p.order, (std::vector<std::vector<OpId>>{{1, 0}, {2, 3}}));  // A lets a2 go first; B keeps its order
  Schedule s;
  ASSERT_NO_THROW(s = simulate(t, p));
  EXPECT_TRUE(validate(t, p, s).empty());
  EXPECT_EQ(s.order, p.order);
  EXPECT_EQ(merge_device_orders(t, p.order), p.order);  // orders that run together are kept as they are
}

}  // namespace
}  // namespace moirai
