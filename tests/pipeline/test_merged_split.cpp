// GenEFlow on groups merged by --max-nodes (issue 15): a coarse node splits as all its original operators allow,
// not as its anchor alone. conv -> relu -> conv merged into one node cannot be split by output channels (the
// second conv reads every channel of the first), and a row split reads the halo of both convolutions.
#include <gtest/gtest.h>

#include <stdexcept>

#include "moirai/coarsen.h"
#include "moirai/partition.h"
#include "moirai/simulate.h"

namespace moirai {
namespace {

constexpr int64_t kRows = 64, kChannels = 8;

// Builds small graphs tersely: named tensors and single-output operators.
struct GraphBuilder {
  Graph g;
  explicit GraphBuilder(const char* name) { g.name = name; }
  TensorId tensor(const char* name, std::vector<int64_t> shape, TensorKind kind = TensorKind::Activation) {
    Tensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.kind = kind;
    return g.add_tensor(std::move(t));
  }
  void op(const char* name, const char* type, std::vector<TensorId> in, TensorId out, IntAttrs attrs = {}) {
    Operator o;
    o.name = name;
    o.type = type;
    o.inputs = std::move(in);
    o.outputs = {out};
    o.attrs = std::move(attrs);
    g.add_op(std::move(o));
  }
};

// x -> conv3x3/s1/p1 -> relu -> conv3x3/s1/p1 -> y (NCHW, float32).
Graph conv_relu_conv() {
  GraphBuilder b("conv-relu-conv");
  Graph& g = b.g;
  auto tensor = [&](const char* name, std::vector<int64_t> shape, TensorKind kind = TensorKind::Activation) {
    return b.tensor(name, std::move(shape), kind);
  };
  const IntAttrs conv3x3{{"kernel_shape", {3, 3}}, {"pads", {1, 1, 1, 1}}, {"strides", {1, 1}}};
  auto op = [&](const char* name, const char* type, std::vector<TensorId> in, TensorId out) {
    b.op(name, type, std::move(in), out, std::string(type) == "Conv" ? conv3x3 : IntAttrs{});
  };
  const TensorId x = tensor("x", {1, kChannels, kRows, kRows}, TensorKind::Input);
  const TensorId a = tensor("a", {1, kChannels, kRows, kRows});
  const TensorId r = tensor("r", {1, kChannels, kRows, kRows});
  const TensorId y = tensor("y", {1, kChannels, kRows, kRows});
  op("conv1", "Conv", {x, tensor("w1", {kChannels, kChannels, 3, 3}, TensorKind::Parameter)}, a);
  op("relu", "Relu", {a}, r);
  op("conv2", "Conv", {r, tensor("w2", {kChannels, kChannels, 3, 3}, TensorKind::Parameter)}, y);
  g.tensor(y).graph_output = true;
  annotate_work(g);
  return g;
}

Cluster two_boards() {
  auto c = parse_cluster(R"({"name": "two", "devices": [
      {"name": "b0", "kind": "cpu", "peak_gflops": 20, "mem_bandwidth_gbps": 4, "memory_gib": 4},
      {"name": "b1", "kind": "cpu", "peak_gflops": 20, "mem_bandwidth_gbps": 4, "memory_gib": 4}],
      "links": {"default": {"bandwidth_gbps": 1, "latency_us": 100}}})",
                         "two");
  if (!c) throw std::logic_error(c.error().message);
  return *c;
}

CoarsenOptions options(const std::string& fusion, int max_nodes) {
  CoarsenOptions o;
  o.fusion = fusion;
  o.max_nodes = max_nodes;
  return o;
}

// onnxruntime fuses conv1 + relu; --max-nodes 1 then merges that fused node with conv2 (a nested group).
Graph merged(int max_nodes) {
  auto r = coarsen(conv_relu_conv(), two_boards(), options("onnxruntime", max_nodes));
  if (!r) throw std::logic_error(r.error().message);
  return std::move(r->graph);
}

TEST(MergedGroupSplit, ConvReluFusedAloneStillSplitsByChannelsAndRows) {
  const Graph g = merged(0);
  ASSERT_EQ(g.num_ops(), 2);
  EXPECT_EQ(g.op(0).origin, (std::vector<std::string>{"conv1", "relu"}));
  EXPECT_EQ(legal_splits(g, 0), (std::vector<SplitDim>{SplitDim::Channels, SplitDim::Rows}));
}

TEST(MergedGroupSplit, ChannelSplitIsRefusedAndRowsReadTheWholeChainsHalo) {
  const Graph g = merged(1);
  ASSERT_EQ(g.num_ops(), 1);
  EXPECT_EQ(g.op(0).origin, (std::vector<std::string>{"conv1", "relu", "conv2"}));
  // The anchor alone (a group-1 conv) would allow channels: the whole group must not.
  EXPECT_EQ(legal_splits(g, 0), (std::vector<SplitDim>{SplitDim::Rows}));
  auto channels = plan_parts(g, 0, Split{SplitDim::Channels, {0, 1}, {1, 1}});
  ASSERT_FALSE(channels.ok());
  EXPECT_NE(channels.error().message.find("cannot be split by channels"), std::string::npos);

  // Output rows [0,32) and [32,64): each 3x3 conv adds one row of halo per side, so x is read with two.
  auto rows = plan_parts(g, 0, Split{SplitDim::Rows, {0, 1}, {1, 1}});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows->size(), 2u);
  const Operator& op = g.op(0);
  for (size_t i = 0; i < op.inputs.size(); ++i) {
    const Tensor& t = g.tensor(op.inputs[i]);
    if (t.name != "x") {
      EXPECT_TRUE((*rows)[0].inputs[i].whole()) << t.name;  // weights are replicated
      continue;
    }
    EXPECT_EQ((*rows)[0].inputs[i], (Region{2, 0, 34}));
    EXPECT_EQ((*rows)[1].inputs[i], (Region{2, 30, 64}));
  }
  EXPECT_EQ((*rows)[0].output, (Region{2, 0, 32}));
  EXPECT_EQ((*rows)[1].output, (Region{2, 32, 64}));
}

TEST(MergedGroupSplit, RowSplitOfTheMergedGroupPassesTheValidator) {
  const Graph g = merged(1);
  const Cluster c = two_boards();
  auto table = build_cost_table(g, c);
  ASSERT_TRUE(table.ok()) << table.error().message;
  Placement base;
  base.device = {0};
  std::vector<Split> splits{Split{SplitDim::Rows, {0, 1}, {1, 1}}};
  auto r = evaluate_splits(*table, g, base, splits, {}, &c);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->split_ops, 1);
  EXPECT_TRUE(validate(r->expanded.table, r->expanded.placement, r->schedule).empty());
}

// RMSNorm over the last axis of x [1, 16, 32]: x / sqrt(mean(x * x) + eps) * w, merged into one node.
TEST(MergedGroupSplit, RmsNormGroupSplitsByTokensOnly) {
  GraphBuilder b("rmsnorm");
  Graph& g = b.g;
  auto tensor = [&](const char* name, std::vector<int64_t> shape, TensorKind kind = TensorKind::Activation) {
    return b.tensor(name, std::move(shape), kind);
  };
  auto op = [&](const char* name, const char* type, std::vector<TensorId> in, TensorId out, IntAttrs attrs = {}) {
    b.op(name, type, std::move(in), out, std::move(attrs));
  };
  const TensorId x = tensor("x", {1, 16, 32}, TensorKind::Input);
  const TensorId sq = tensor("sq", {1, 16, 32}), mean = tensor("mean", {1, 16, 1}), var = tensor("var", {1, 16, 1});
  const TensorId rms = tensor("rms", {1, 16, 1}), norm = tensor("norm", {1, 16, 32}), y = tensor("y", {1, 16, 32});
  op("sq", "Mul", {x, x}, sq);
  op("mean", "ReduceMean", {sq}, mean, {{"axes", {-1}}, {"keepdims", {1}}});
  op("eps", "Add", {mean, tensor("eps", {1}, TensorKind::Parameter)}, var);
  op("sqrt", "Sqrt", {var}, rms);
  op("div", "Div", {x, rms}, norm);
  op("scale", "Mul", {norm, tensor("w", {32}, TensorKind::Parameter)}, y);
  g.tensor(y).graph_output = true;
  annotate_work(g);
  auto coarse = coarsen(g, two_boards(), options("none", 1));
  ASSERT_TRUE(coarse.ok()) << coarse.error().message;
  ASSERT_EQ(coarse->graph.num_ops(), 1);
  EXPECT_EQ(legal_splits(coarse->graph, 0), (std::vector<SplitDim>{SplitDim::Tokens}));
  auto parts = plan_parts(coarse->graph, 0, Split{SplitDim::Tokens, {0, 1}, {1, 3}});
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  EXPECT_EQ((*parts)[1].output, (Region{1, 4, 16}));
  EXPECT_EQ((*parts)[1].inputs[0], (Region{1, 4, 16}));  // x: the same tokens, no halo

  // Unmerged, each operator splits by tokens on its own (Div reads the same tokens of x and of rms [1, 16, 1]).
  auto fine = coarsen(g, two_boards(), options("none", 0));
  ASSERT_TRUE(fine.ok()) << fine.error().message;
  auto table = build_cost_table(fine->graph, two_boards());
  ASSERT_TRUE(table.ok()) << table.error().message;
  std::vector<Split> splits(static_cast<size_t>(fine->graph.num_ops()), Split{SplitDim::Tokens, {0, 1}, {1, 1}});
  for (OpId o = 0; o < fine->graph.num_ops(); ++o)
    ASSERT_EQ(legal_splits(fine->graph, o), (std::vector<SplitDim>{SplitDim::Tokens})) << fine->graph.op(o).name;
  Placement base;
  base.device.assign(splits.size(), 0);
  auto r = evaluate_splits(*table, fine->graph, base, splits);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(validate(r->expanded.table, r->expanded.placement, r->schedule).empty());
}

}  // namespace
}  // namespace moirai
