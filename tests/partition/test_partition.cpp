// Intra-operator partitioning and GenEFlow: split geometry (parts tile the output exactly once; halo rows for
// kernel, stride, padding and dilation, hand-computed), legality by operator type, the expansion (halo-only
// exchange between neighbours split alike, gathers, weights divided by channel splits), split plans passing the
// validator, and GenEFlow's guarantees (unsplit with one device, deterministic per seed, never worse than its
// seed, and a real gain on slow-linked compute-bound boards).
#include <numeric>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "moirai/coarsen.h"
#include "moirai/partition.h"
#include "moirai/schedule.h"

namespace moirai {
namespace {

// A small CNN (NCHW, float32) built in code: conv3x3/s1 -> conv3x3/s1 -> maxpool2/s2 -> conv3x3/s2 -> flatten -> gemm.
struct Net {
  Graph g;
  TensorId tensor(const std::string& name, std::vector<int64_t> shape, TensorKind kind = TensorKind::Activation) {
    Tensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.kind = kind;
    return g.add_tensor(std::move(t));
  }
  OpId op(const std::string& name, const std::string& type, std::vector<TensorId> in, std::vector<TensorId> out,
          IntAttrs attrs = {}) {
    Operator o;
    o.name = name;
    o.type = type;
    o.inputs = std::move(in);
    o.outputs = std::move(out);
    o.attrs = std::move(attrs);
    return g.add_op(std::move(o));
  }
};

Graph small_cnn(int64_t h = 64, int64_t c = 64) {
  Net n;
  n.g.name = "test";
  const TensorId x = n.tensor("x", {1, 3, h, h}, TensorKind::Input);
  const TensorId w1 = n.tensor("w1", {c, 3, 3, 3}, TensorKind::Parameter);
  const TensorId a1 = n.tensor("a1", {1, c, h, h});
  n.op("conv1", "Conv", {x, w1}, {a1}, {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}, {"strides", {1, 1}}});
  const TensorId w2 = n.tensor("w2", {c, c, 3, 3}, TensorKind::Parameter);
  const TensorId a2 = n.tensor("a2", {1, c, h, h});
  n.op("conv2", "Conv", {a1, w2}, {a2}, {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}});
  const TensorId a3 = n.tensor("a3", {1, c, h / 2, h / 2});
  n.op("pool", "MaxPool", {a2}, {a3}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  const TensorId w4 = n.tensor("w4", {c, c, 3, 3}, TensorKind::Parameter);
  const TensorId a4 = n.tensor("a4", {1, c, h / 4, h / 4});
  n.op("conv3", "Conv", {a3, w4}, {a4}, {{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}, {"strides", {2, 2}}});
  const TensorId f = n.tensor("f", {1, c * (h / 4) * (h / 4)});
  n.op("flatten", "Flatten", {a4}, {f});
  const TensorId w5 = n.tensor("w5", {10, c * (h / 4) * (h / 4)}, TensorKind::Parameter);
  const TensorId y = n.tensor("y", {1, 10});
  n.op("fc", "Gemm", {f, w5}, {y}, {{"transB", {1}}});
  n.g.tensor(y).graph_output = true;
  annotate_work(n.g);
  return std::move(n.g);
}

Cluster cluster(const std::string& json) {
  auto c = parse_cluster(json, "test-cluster");
  if (!c) throw std::logic_error(c.error().message);
  return *c;
}

// Four equal compute-bound boards on a slow network (edge-cpu-4-like): splitting pays.
Cluster boards(int k, double gflops = 20, double link_gbps = 0.117) {
  std::string devs;
  for (int d = 0; d < k; ++d)
    devs += fmt::format("{}{{\"name\": \"b{}\", \"kind\": \"cpu\", \"peak_gflops\": {}, \"mem_bandwidth_gbps\": 4, "
                        "\"memory_gib\": 4, \"kernel_launch_us\": 5}}",
                        d ? ", " : "", d, gflops);
  return cluster(fmt::format("{{\"name\": \"boards\", \"devices\": [{}], \"links\": {{\"default\": "
                             "{{\"bandwidth_gbps\": {}, \"latency_us\": 200}}}}}}",
                             devs, link_gbps));
}

CostTable table_for(const Graph& g, const Cluster& c) {
  auto t = build_cost_table(g, c);
  if (!t) throw std::logic_error(t.error().message);
  return *t;
}

std::string joined(const std::vector<std::string>& v) {
  return std::accumulate(v.begin(), v.end(), std::string(), [](std::string a, const std::string& b) { return a + b + "\n"; });
}

TEST(Partition, WindowInputRowsHandComputed) {
  using P = std::pair<int64_t, int64_t>;
  // 3x3, stride 1, pad 1 on 224 rows: the first part needs one row below, inner parts one on each side.
  EXPECT_EQ(window_input_rows(0, 56, 3, 1, 1, 1, 224), P(0, 57));
  EXPECT_EQ(window_input_rows(56, 112, 3, 1, 1, 1, 224), P(55, 113));
  EXPECT_EQ(window_input_rows(168, 224, 3, 1, 1, 1, 224), P(167, 224));
  // 3x3, stride 2, pad 1, 224 -> 112 rows: output row r reads 2r-1 .. 2r+1.
  EXPECT_EQ(window_input_rows(0, 56, 3, 2, 1, 1, 224), P(0, 112));
  EXPECT_EQ(window_input_rows(56, 112, 3, 2, 1, 1, 224), P(111, 224));
  // 7x7, stride 2, pad 3 (ResNet stem), 224 -> 112: rows [2*28-3, 2*55-3+6] = [53, 113].
  EXPECT_EQ(window_input_rows(28, 56, 7, 2, 3, 1, 224), P(53, 114));
  // 2x2 pool, stride 2, no pad: no halo at all.
  EXPECT_EQ(window_input_rows(10, 20, 2, 2, 0, 1, 64), P(20, 40));
  // 3x3, dilation 2, pad 2: reach 2 rows each side.
  EXPECT_EQ(window_input_rows(10, 20, 3, 1, 2, 2, 64), P(8, 22));
  // 1x1 conv: exactly the same rows.
  EXPECT_EQ(window_input_rows(5, 9, 1, 1, 0, 1, 64), P(5, 9));
}

TEST(Partition, LegalityByOperatorType) {
  const Graph g = small_cnn();
  auto legal = [&](const std::string& name) {
    for (OpId o = 0; o < g.num_ops(); ++o)
      if (g.op(o).name == name) return legal_splits(g, o);
    throw std::logic_error(name);
  };
  EXPECT_EQ(legal("conv1"), (std::vector<SplitDim>{SplitDim::Channels, SplitDim::Rows}));
  EXPECT_EQ(legal("pool"), (std::vector<SplitDim>{SplitDim::Channels, SplitDim::Rows}));
  EXPECT_TRUE(legal("flatten").empty());
  // Gemm with M = 1: columns only.
  EXPECT_EQ(legal("fc"), (std::vector<SplitDim>{SplitDim::Channels}));
  auto bad = plan_parts(g, 4, Split{SplitDim::Rows, {0, 1}, {1, 1}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "operator 'flatten' (Flatten) cannot be split by rows");
}

TEST(Partition, RowPartsTileTheOutputOnceWithHalos) {
  const Graph g = small_cnn(64, 8);
  // conv2: 3x3 s1 p1 on 64 rows, shares 1:1:2 -> output rows [0,16) [16,32) [32,64).
  auto parts = plan_parts(g, 1, Split{SplitDim::Rows, {0, 1, 2}, {1, 1, 2}});
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  ASSERT_EQ(parts->size(), 3u);
  const std::vector<std::pair<int64_t, int64_t>> out = {{0, 16}, {16, 32}, {32, 64}};
  const std::vector<std::pair<int64_t, int64_t>> in = {{0, 17}, {15, 33}, {31, 64}};
  for (size_t i = 0; i < 3; ++i) {
    const PartSpec& p = (*parts)[i];
    EXPECT_EQ(p.output, (Region{2, out[i].first, out[i].second}));
    EXPECT_EQ(p.inputs[0], (Region{2, in[i].first, in[i].second}));
    EXPECT_TRUE(p.inputs[1].whole());  // weights replicated
    EXPECT_DOUBLE_EQ(p.param_fraction, 1.0);
  }
  EXPECT_DOUBLE_EQ((*parts)[2].share, 0.5);
  // conv3: 3x3 s2 p1, 32 -> 16 rows in two halves: output row r reads 2r-1 .. 2r+1, so [0,16) and [15,32).
  parts = plan_parts(g, 3, Split{SplitDim::Rows, {2, 3}, {1, 1}});
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts)[0].inputs[0], (Region{2, 0, 16}));
  EXPECT_EQ((*parts)[1].inputs[0], (Region{2, 15, 32}));
  // Awkward proportions still tile [0, extent) exactly once; parts rounding to nothing are dropped.
  for (const std::vector<double>& shares : std::vector<std::vector<double>>{{0.37, 0.21, 0.42}, {1, 1, 1}, {0.001, 1, 0.002, 3}}) {
    std::vector<DeviceId> devs(shares.size());
    std::iota(devs.begin(), devs.end(), 0);
    for (OpId o : {0, 1, 2, 3}) {
      auto ps = plan_parts(g, o, Split{SplitDim::Rows, devs, shares});
      ASSERT_TRUE(ps.ok());
      const int64_t extent = g.tensor(g.op(o).outputs[0]).shape[2];
      std::vector<int> covered(static_cast<size_t>(extent), 0);
      double total_share = 0;
      for (const auto& p : *ps) {
        EXPECT_LT(p.output.begin, p.output.end);
        for (int64_t r = p.output.begin; r < p.output.end; ++r) ++covered[static_cast<size_t>(r)];
        total_share += p.share;
      }
      for (int c : covered) EXPECT_EQ(c, 1);
      EXPECT_NEAR(total_share, 1.0, 1e-12);
    }
  }
}

TEST(Partition, ChannelPartsDivideWeightsAndReadTheWholeInput) {
  const Graph g = small_cnn(64, 8);
  auto parts = plan_parts(g, 1, Split{SplitDim::Channels, {0, 1}, {3, 1}});
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].output, (Region{1, 0, 6}));
  EXPECT_EQ((*parts)[1].output, (Region{1, 6, 8}));
  EXPECT_TRUE((*parts)[0].inputs[0].whole());
  EXPECT_DOUBLE_EQ((*parts)[0].param_fraction, 0.75);
  EXPECT_DOUBLE_EQ((*parts)[1].param_fraction, 0.25);
  // The 2x2 pool splits channels one to one (each part reads only its channels).
  parts = plan_parts(g, 2, Split{SplitDim::Channels, {0, 1}, {1, 1}});
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts)[1].inputs[0], (Region{1, 4, 8}));
  // Gemm columns: 10 outputs over 3 devices 1:1:3 -> [0,2) [2,4) [4,10), weights split the same way.
  parts = plan_parts(g, 5, Split{SplitDim::Channels, {0, 1, 2}, {1, 1, 3}});
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ((*parts)[2].output, (Region{1, 4, 10}));
  EXPECT_DOUBLE_EQ((*parts)[2].param_fraction, 0.6);
}

TEST(Partition, NeighboursSplitAlikeExchangeOnlyHaloRows) {
  const Graph g = small_cnn(64, 8);
  const Cluster c = boards(2);
  const CostTable t = table_for(g, c);
  Placement base;
  base.device.assign(static_cast<size_t>(t.num_ops()), 0);
  std::vector<Split> splits(static_cast<size_t>(t.num_ops()));
  splits[0] = splits[1] = Split{SplitDim::Rows, {0, 1}, {1, 1}};
  auto e = expand_splits(t, g, base, splits, &c);
  ASSERT_TRUE(e.ok()) << e.error().message;
  // a1 (1x8x64x64 floats, one row = 8*64*4 = 2048 bytes) between conv1#0 (rows 0-32 on b0) and conv2#1 (reads
  // rows 31-64 on b1): one halo row each way; conv2's output is gathered on b0 for the pool.
  const double row = 8 * 64 * 4;
  double cross = 0;
  int cross_items = 0;
  for (const auto& item : e->table.data) {
    const DeviceId src = e->placement.device[static_cast<size_t>(item.producer)];
    if (e->origin[static_cast<size_t>(item.producer)] != 0) continue;
    for (OpId consumer : item.consumers)
      if (e->placement.device[static_cast<size_t>(consumer)] != src) {
        cross += item.bytes;
        ++cross_items;
      }
  }
  EXPECT_EQ(cross_items, 2);
  EXPECT_DOUBLE_EQ(cross, 2 * row);
  // Time of a part: launch + (full - launch) x the binding roofline side's fraction. conv2 (8->8 channels,
  // 3x3, 64x64) does 2*8*8*9*4096 FLOPs against 4 x 131072 activation + 2304 weight bytes: on 20 GFLOP/s and
  // 4 GB/s boards it is compute-bound (FLOPs / peak > bytes / bandwidth), so its share of the work scales its
  // time, unless its bytes (halo row included) weigh more.
  const Operator& conv2 = g.op(1);
  const double flops = 2.0 * 8 * 8 * 9 * 64 * 64, io = 2 * 8 * 64 * 64 * 4 + 8 * 8 * 9 * 4;
  ASSERT_DOUBLE_EQ(conv2.flops, flops);
  const double compute = flops / 20, memory = io / 4;
  ASSERT_GT(compute, memory);
  const double launch = 5e-3, full = t.time(1, 1);
  const auto& spec = e->specs[1][1];
  EXPECT_NEAR(spec.byte_fraction, (33.0 / 64 * 8 * 64 * 64 * 4 + 8 * 8 * 9 * 4 + 0.5 * 8 * 64 * 64 * 4) / io, 1e-12);
  EXPECT_NEAR(e->table.time(e->parts_of[1][1], 1),
              launch + (full - launch) * std::max(spec.share, spec.byte_fraction * memory / compute), 1e-12);
  // The expanded plan passes the validator, with and without port contention.
  for (bool contention : {true, false}) {
    const Schedule s = simulate(e->table, e->placement, {contention});
    EXPECT_TRUE(validate(e->table, e->placement, s, {contention}).empty())
        << joined(validate(e->table, e->placement, s, {contention}));
  }
}

TEST(Partition, SplitPlansPassTheValidatorAndFoldBack) {
  const Graph g = small_cnn(64, 32);
  const Cluster c = boards(4);
  const CostTable t = table_for(g, c);
  Placement base;
  base.device.assign(static_cast<size_t>(t.num_ops()), 1);
  std::vector<Split> splits(static_cast<size_t>(t.num_ops()));
  splits[0] = Split{SplitDim::Channels, {0, 1, 2}, {1, 2, 1}};  // broadcast in, gather out
  splits[1] = Split{SplitDim::Rows, {1, 2, 3}, {2, 1, 1}};      // regroup channels -> rows
  splits[2] = Split{SplitDim::Rows, {1, 2, 3}, {2, 1, 1}};      // same rows: halo-free (2x2/s2 pool)
  splits[3] = Split{SplitDim::Channels, {0, 3}, {1, 1}};
  splits[5] = Split{SplitDim::Channels, {0, 1, 2, 3}, {1, 1, 1, 1}};
  auto r = evaluate_splits(t, g, base, splits, {}, &c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->split_ops, 5);
  const auto v = validate(r->expanded.table, r->expanded.placement, r->schedule);
  EXPECT_TRUE(v.empty()) << joined(v);
  // The view: one span per original operator covering its parts; parts' shares add up to 1.
  ASSERT_EQ(r->parts.size(), static_cast<size_t>(t.num_ops()));
  EXPECT_TRUE(r->parts[4].empty());
  for (OpId o : {0, 1, 2, 3, 5}) {
    double share = 0;
    for (const auto& p : r->parts[static_cast<size_t>(o)]) {
      share += p.share;
      EXPECT_GE(p.start_ms, r->view_schedule.ops[static_cast<size_t>(o)].start_ms);
      EXPECT_LE(p.end_ms, r->view_schedule.ops[static_cast<size_t>(o)].end_ms);
    }
    EXPECT_NEAR(share, 1.0, 1e-12);
  }
  EXPECT_EQ(r->view_placement.device[1], 1);  // rows 2:1:1 -> the largest part is on device 1
  EXPECT_DOUBLE_EQ(r->view_schedule.makespan_ms, r->makespan_ms);
  EXPECT_EQ(r->view_table.data.size(), r->expanded.table.data.size());
  // Channel split of the Gemm: 10 columns over 4 equal shares round to 3, 2, 3, 2 (cumulative 2.5, 5, 7.5, 10),
  // and each device holds that fraction of the weights.
  const std::vector<double> want = {0.3, 0.2, 0.3, 0.2};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(r->expanded.specs[5][i].share, want[i]);
    EXPECT_DOUBLE_EQ(r->expanded.table.param_bytes[static_cast<size_t>(r->expanded.parts_of[5][i])], t.param_bytes[5] * want[i]);
  }
}

PlaceOptions ga_options(uint64_t seed) {
  PlaceOptions o;
  o.seed = seed;
  o.generations = 25;
  o.population = 16;
  return o;
}

TEST(GenEFlow, OneDeviceReturnsTheUnsplitPlan) {
  const Graph g = small_cnn();
  const Cluster c = boards(1);
  const CostTable t = table_for(g, c);
  Placement seed;
  seed.device.assign(static_cast<size_t>(t.num_ops()), 0);
  auto r = geneflow(t, &g, seed, ga_options(1), &c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->split_ops, 0);
  EXPECT_DOUBLE_EQ(r->makespan_ms, simulate(t, seed).makespan_ms);
  EXPECT_EQ(r->expanded.placement.device, seed.device);
}

TEST(GenEFlow, GainsOnSlowLinkedBoardsDeterministicAndNeverWorse) {
  const Graph g = small_cnn(128, 64);
  const Cluster c = boards(4);
  const CostTable t = table_for(g, c);
  Placement seed;
  seed.device.assign(static_cast<size_t>(t.num_ops()), 0);
  const double seed_ms = simulate(t, seed).makespan_ms;
  auto a = geneflow(t, &g, seed, ga_options(7), &c);
  auto b = geneflow(t, &g, seed, ga_options(7), &c);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_DOUBLE_EQ(a->makespan_ms, b->makespan_ms);
  ASSERT_EQ(a->splits.size(), b->splits.size());
  for (size_t o = 0; o < a->splits.size(); ++o) {
    EXPECT_EQ(a->splits[o].dim, b->splits[o].dim);
    EXPECT_EQ(a->splits[o].devices, b->splits[o].devices);
    EXPECT_EQ(a->splits[o].shares, b->splits[o].shares);
  }
  EXPECT_DOUBLE_EQ(a->seed_makespan_ms, seed_ms);
  // Four equal compute-bound boards: a large share of the convolutions' time is won back.
  EXPECT_GT(a->split_ops, 0);
  EXPECT_LT(a->makespan_ms, 0.75 * seed_ms);
  const auto v = validate(a->expanded.table, a->expanded.placement, a->schedule);
  EXPECT_TRUE(v.empty()) << joined(v);
  // Other seeds: never worse than the seed plan.
  for (uint64_t s : {1, 2, 3}) {
    auto r = geneflow(t, &g, seed, ga_options(s), &c);
    ASSERT_TRUE(r.ok());
    EXPECT_LE(r->makespan_ms, seed_ms);
  }
}

TEST(GenEFlow, FastGpusOverAFastLinkStayWhenSplittingDoesNotPay) {
  // A tiny network on two fast GPUs over a slow link: a split costs more in transfers than it saves.
  const Graph g = small_cnn(16, 8);
  const Cluster c = boards(2, 20000, 0.01);
  const CostTable t = table_for(g, c);
  Placement seed;
  seed.device.assign(static_cast<size_t>(t.num_ops()), 0);
  auto r = geneflow(t, &g, seed, ga_options(3), &c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->split_ops, 0);
  EXPECT_DOUBLE_EQ(r->makespan_ms, simulate(t, seed).makespan_ms);
}

TEST(GenEFlow, WithoutAGraphReturnsTheSeed) {
  const Graph g = small_cnn();
  const Cluster c = boards(3);
  const CostTable t = table_for(g, c);
  Placement seed;
  seed.device = {0, 1, 2, 0, 1, 2};
  auto r = geneflow(t, nullptr, seed, ga_options(1), &c);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->split_ops, 0);
  EXPECT_EQ(r->view_placement.device, seed.device);
  Placement bad;
  bad.device = {0, 1};
  auto e = geneflow(t, &g, bad, ga_options(1), &c);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message,
            "geneflow: the seed plan: the placement gives a device for 2 operators, the table 'test' has 6");
}


// Three branches x -> up_i (1x1 conv, 4x the channels) -> down_i (1x1 conv back) joined by adds: running the
// three "up" convolutions before any "down" keeps three large tensors live, running each branch to its end
// keeps one. The list policy takes the ready operators in topological order (up_1, up_2, up_3 first).
Graph three_branches(int64_t h, int64_t c) {
  Net n;
  n.g.name = "branches";
  const TensorId x = n.tensor("x", {1, c, h, h}, TensorKind::Input);
  const IntAttrs one{{"kernel_shape", {1, 1}}};
  std::vector<TensorId> up(3), down(3);
  for (int i = 0; i < 3; ++i) {
    up[i] = n.tensor(fmt::format("u{}", i), {1, 4 * c, h, h});
    n.op(fmt::format("up{}", i), "Conv", {x, n.tensor(fmt::format("wu{}", i), {4 * c, c, 1, 1}, TensorKind::Parameter)},
         {up[i]}, one);
  }
  for (int i = 0; i < 3; ++i) {
    down[i] = n.tensor(fmt::format("d{}", i), {1, c, h, h});
    n.op(fmt::format("down{}", i), "Conv", {up[i], n.tensor(fmt::format("wd{}", i), {c, 4 * c, 1, 1}, TensorKind::Parameter)},
         {down[i]}, one);
  }
  const TensorId s1 = n.tensor("s1", {1, c, h, h}), y = n.tensor("y", {1, c, h, h});
  n.op("add1", "Add", {down[0], down[1]}, {s1});
  n.op("add2", "Add", {s1, down[2]}, {y});
  n.g.tensor(y).graph_output = true;
  annotate_work(n.g);
  return std::move(n.g);
}

TEST(GenEFlow, KeepsSplitPlansThatFitOnlyInBTSearchOrder) {
  const Graph g = three_branches(64, 16);
  // Capacity: between what a half of every operator needs in the best order and in the list order.
  Cluster c = boards(2);
  CostTable t = table_for(g, c);
  const double up_bytes = 4.0 * 16 * 64 * 64 * 4;  // one "up" tensor
  for (double& cap : t.capacity) cap = 1.05 * up_bytes;
  Placement seed;
  seed.device.assign(static_cast<size_t>(t.num_ops()), 0);
  PlaceOptions o = ga_options(5);
  auto r = geneflow(t, &g, seed, o, &c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_GT(r->split_ops, 0);
  EXPECT_TRUE(r->memory_ordered);
  EXPECT_GT(r->order_searches, 0);
  EXPECT_GT(r->order_cache_hits, 0) << "candidates that share a device's operator set reuse its BTSearch order";
  EXPECT_TRUE(r->schedule.over_capacity(r->expanded.table).empty());
  const auto v = validate(r->expanded.table, r->expanded.placement, r->schedule);
  EXPECT_TRUE(v.empty()) << joined(v);
  // The same splits in the list order overflow a device.
  auto list = evaluate_splits(t, g, seed, r->splits, {}, &c);
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_FALSE(list->schedule.over_capacity(list->expanded.table).empty());
  EXPECT_LT(r->makespan_ms, r->seed_makespan_ms);
}

// The split relaxation against its LP solved exactly: with two devices the dual f(y) = sum_o min(y t_o0,
// (1 - y) t_o1) is piecewise linear in y, so its maximum sits at a breakpoint y = t_o1 / (t_o0 + t_o1).
TEST(SplitRelaxation, MatchesTheExactLpOnTwoDevicesAndStaysBelowSplitPlans) {
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> time(0.1, 10);
  for (int trial = 0; trial < 20; ++trial) {
    CostTable t = table_for(small_cnn(32, 8), boards(2));
    for (double& x : t.time_ms) x = time(rng);
    double exact = 0;
    for (OpId b = 0; b < t.num_ops(); ++b) {
      const double y = t.time(b, 1) / (t.time(b, 0) + t.time(b, 1));
      double f = 0;
      for (OpId o = 0; o < t.num_ops(); ++o) f += std::min(y * t.time(o, 0), (1 - y) * t.time(o, 1));
      exact = std::max(exact, f);
    }
    const double bound = split_relaxation_bound(t);
    EXPECT_LE(bound, exact * (1 + 1e-12)) << trial;
    EXPECT_GE(bound, exact * 0.995) << trial;
  }
  // Below every plan GenEFlow finds, split or not (four boards, most operators split).
  const Graph g = small_cnn(128, 64);
  const Cluster c = boards(4);
  const CostTable t = table_for(g, c);
  Placement seed;
  seed.device.assign(static_cast<size_t>(t.num_ops()), 0);
  auto r = geneflow(t, &g, seed, ga_options(7), &c);
  ASSERT_TRUE(r.ok());
  ASSERT_GT(r->split_ops, 0);
  const double bound = split_relaxation_bound(t);
  EXPECT_LE(bound, r->makespan_ms);
  EXPECT_GT(bound, 0.3 * r->makespan_ms) << "the bound is not vacuous";
}

// Self-attention as ONNX exports it (q, k, v [1, 8, 16], 4 heads of 4), merged into one group.
Graph attention(int64_t tokens = 8, int64_t heads = 4, int64_t width = 4) {
  Net n;
  n.g.name = "attention";
  const int64_t e = heads * width;
  auto input = [&](const char* name) { return n.tensor(name, {1, tokens, e}, TensorKind::Input); };
  const TensorId q = input("q"), k = input("k"), v = input("v");
  auto heads_of = [&](const std::string& name, TensorId t, std::vector<int64_t> perm, std::vector<int64_t> shape) {
    const TensorId r = n.tensor(name + "_r", {1, tokens, heads, width});
    n.op(name + "_reshape", "Reshape", {t, n.tensor(name + "_shape", {4}, TensorKind::Parameter)}, {r});
    const TensorId out = n.tensor(name + "_t", std::move(shape));
    n.op(name + "_transpose", "Transpose", {r}, {out}, {{"perm", std::move(perm)}});
    return out;
  };
  const TensorId qh = heads_of("q", q, {0, 2, 1, 3}, {1, heads, tokens, width});
  const TensorId kh = heads_of("k", k, {0, 2, 3, 1}, {1, heads, width, tokens});
  const TensorId vh = heads_of("v", v, {0, 2, 1, 3}, {1, heads, tokens, width});
  const TensorId scores = n.tensor("scores", {1, heads, tokens, tokens}), scaled = n.tensor("scaled", {1, heads, tokens, tokens});
  const TensorId probs = n.tensor("probs", {1, heads, tokens, tokens}), ctx = n.tensor("ctx", {1, heads, tokens, width});
  n.op("scores", "MatMul", {qh, kh}, {scores});
  n.op("scale", "Div", {scores, n.tensor("sqrt_d", {}, TensorKind::Parameter)}, {scaled});
  n.op("softmax", "Softmax", {scaled}, {probs}, {{"axis", {-1}}});
  n.op("context", "MatMul", {probs, vh}, {ctx});
  const TensorId ct = n.tensor("ctx_t", {1, tokens, heads, width}), y = n.tensor("y", {1, tokens, e});
  n.op("ctx_transpose", "Transpose", {ctx}, {ct}, {{"perm", {0, 2, 1, 3}}});
  n.op("ctx_reshape", "Reshape", {ct, n.tensor("y_shape", {3}, TensorKind::Parameter)}, {y});
  n.g.tensor(y).graph_output = true;
  annotate_work(n.g);
  auto merged = coarsen(n.g, boards(2), CoarsenOptions{"none", 1, {}});
  if (!merged) throw std::logic_error(merged.error().message);
  return std::move(merged->graph);
}

TEST(Partition, AttentionSplitsByWholeHeadsAndByQueryTokens) {
  const Graph g = attention();
  ASSERT_EQ(g.num_ops(), 1);
  EXPECT_EQ(legal_splits(g, 0), (std::vector<SplitDim>{SplitDim::Tokens, SplitDim::Heads}));
  auto input_index = [&](const char* name) {
    for (size_t i = 0; i < g.op(0).inputs.size(); ++i)
      if (g.tensor(g.op(0).inputs[i]).name == name) return i;
    throw std::logic_error(name);
  };
  // Heads 1:3 of 4 -> one head and three; each head is 4 columns of q, k, v and of the output.
  auto heads = plan_parts(g, 0, Split{SplitDim::Heads, {0, 1}, {1, 3}});
  ASSERT_TRUE(heads.ok()) << heads.error().message;
  ASSERT_EQ(heads->size(), 2u);
  EXPECT_EQ((*heads)[0].output, (Region{2, 0, 4}));
  EXPECT_EQ((*heads)[1].output, (Region{2, 4, 16}));
  EXPECT_DOUBLE_EQ((*heads)[1].share, 0.75);
  for (const char* name : {"q", "k", "v"}) EXPECT_EQ((*heads)[1].inputs[input_index(name)], (Region{2, 4, 16})) << name;
  // Heads never split inside a head: 1:1:1 of 4 heads rounds to whole heads.
  auto thirds = plan_parts(g, 0, Split{SplitDim::Heads, {0, 1, 0}, {1, 1, 1}});
  ASSERT_TRUE(thirds.ok());
  for (const PartSpec& p : *thirds) EXPECT_EQ(p.output.begin % 4, 0);
  // Tokens 1:3 of 8 -> query rows [0, 2) and [2, 8); k and v are read whole.
  auto tokens = plan_parts(g, 0, Split{SplitDim::Tokens, {0, 1}, {1, 3}});
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  EXPECT_EQ((*tokens)[1].output, (Region{1, 2, 8}));
  EXPECT_EQ((*tokens)[1].inputs[input_index("q")], (Region{1, 2, 8}));
  EXPECT_TRUE((*tokens)[1].inputs[input_index("k")].whole());
  EXPECT_TRUE((*tokens)[1].inputs[input_index("v")].whole());

  // A part touches its heads' share of q, k, v and the output (plus the tiny shape tensors, read whole).
  EXPECT_NEAR((*heads)[1].byte_fraction, 0.75, 0.01);
  const Cluster c = boards(2);
  const CostTable t = table_for(g, c);
  Placement base;
  base.device = {0};
  auto r = evaluate_splits(t, g, base, {Split{SplitDim::Heads, {0, 1}, {1, 3}}}, {}, &c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto v = validate(r->expanded.table, r->expanded.placement, r->schedule);
  EXPECT_TRUE(v.empty()) << joined(v);
}

}  // namespace
}  // namespace moirai
