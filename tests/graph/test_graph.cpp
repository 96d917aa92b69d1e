// Graph IR: construction, dependency queries, topological order, validation, FLOP formulas, to_dot.
#include <gtest/gtest.h>

#include <random>

#include "moirai/graph.h"

namespace moirai {
namespace {

TensorId tensor(Graph& g, const std::string& name, std::vector<int64_t> shape, TensorKind kind = TensorKind::Activation,
                DType type = DType::Float32) {
  Tensor t;
  t.name = name;
  t.shape = std::move(shape);
  t.kind = kind;
  t.dtype = type;
  return g.add_tensor(std::move(t));
}

OpId op(Graph& g, const std::string& name, const std::string& type, std::vector<TensorId> in,
        std::vector<TensorId> out, IntAttrs attrs = {}) {
  Operator o;
  o.name = name;
  o.type = type;
  o.inputs = std::move(in);
  o.outputs = std::move(out);
  o.attrs = std::move(attrs);
  o.origin = {name};
  return g.add_op(std::move(o));
}

/// x -> a -> {b, c} -> d (diamond), with a weight on a.
Graph diamond() {
  Graph g;
  g.name = "diamond";
  const TensorId x = tensor(g, "x", {1, 8}, TensorKind::Input);
  const TensorId w = tensor(g, "w", {8, 8}, TensorKind::Parameter);
  const TensorId ta = tensor(g, "ta", {1, 8}), tb = tensor(g, "tb", {1, 8}), tc = tensor(g, "tc", {1, 8});
  const TensorId td = tensor(g, "td", {1, 8});
  op(g, "a", "MatMul", {x, w}, {ta});
  op(g, "b", "Relu", {ta}, {tb});
  op(g, "c", "Sigmoid", {ta}, {tc});
  op(g, "d", "Add", {tb, tc}, {td});
  g.tensor(td).graph_output = true;
  return g;
}

TEST(Graph, DTypeHelpers) {
  EXPECT_EQ(dtype_size(DType::Float32), 4);
  EXPECT_EQ(dtype_size(DType::Float16), 2);
  EXPECT_EQ(dtype_size(DType::Int64), 8);
  EXPECT_EQ(dtype_size(DType::Bool), 1);
  EXPECT_EQ(dtype_size(DType::Unknown), 0);
  EXPECT_STREQ(dtype_name(DType::BFloat16), "bfloat16");
  Tensor t;
  t.shape = {2, 3, 4};
  t.dtype = DType::Float16;
  EXPECT_EQ(t.elements(), 24);
  EXPECT_EQ(t.bytes(), 48);
  t.shape = {};
  EXPECT_EQ(t.elements(), 1);  // a scalar
}

TEST(Graph, ProducersConsumersAndEdges) {
  Graph g = diamond();
  EXPECT_EQ(g.num_ops(), 4);
  EXPECT_EQ(g.tensor(g.find_tensor("ta")).producer, 0);
  EXPECT_EQ(g.tensor(g.find_tensor("ta")).consumers, (std::vector<OpId>{1, 2}));
  EXPECT_EQ(g.tensor(g.find_tensor("x")).producer, kNone);
  EXPECT_EQ(g.find_tensor("nope"), kNone);
  EXPECT_EQ(g.predecessors(3), (std::vector<OpId>{1, 2}));
  EXPECT_EQ(g.successors(0), (std::vector<OpId>{1, 2}));
  EXPECT_TRUE(g.predecessors(0).empty());
  const auto edges = g.edges();
  ASSERT_EQ(edges.size(), 4u);
  EXPECT_EQ(edges[0].src, 0);
  EXPECT_EQ(edges[0].dst, 1);
  EXPECT_EQ(edges[3].src, 2);
  EXPECT_EQ(edges[3].dst, 3);
  EXPECT_TRUE(g.validate().ok());
}

TEST(Graph, TopologicalOrderRespectsEveryEdgeOnRandomDags) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    Graph g;
    const int n = 60;
    // Insert operators in a shuffled order so ids are not already topological.
    std::vector<int> rank(n);
    for (int i = 0; i < n; ++i) rank[static_cast<size_t>(i)] = i;
    std::shuffle(rank.begin(), rank.end(), rng);
    std::vector<TensorId> out(n);
    for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = tensor(g, "t" + std::to_string(i), {4});
    const TensorId x = tensor(g, "x", {4}, TensorKind::Input);
    for (int i = 0; i < n; ++i) {  // op i has rank[i]; it reads outputs of ops with smaller rank
      std::vector<TensorId> in = {x};
      for (int j = 0; j < n; ++j)
        if (rank[static_cast<size_t>(j)] < rank[static_cast<size_t>(i)] && rng() % 8 == 0)
          in.push_back(out[static_cast<size_t>(j)]);
      op(g, "op" + std::to_string(i), "Add", in, {out[static_cast<size_t>(i)]});
    }
    auto order = g.topological_order();
    ASSERT_TRUE(order.ok());
    ASSERT_EQ(order->size(), static_cast<size_t>(n));
    std::vector<int> pos(n, -1);
    for (size_t k = 0; k < order->size(); ++k) pos[static_cast<size_t>((*order)[k])] = static_cast<int>(k);
    for (const Edge& e : g.edges()) EXPECT_LT(pos[static_cast<size_t>(e.src)], pos[static_cast<size_t>(e.dst)]);
    EXPECT_TRUE(g.validate().ok());
  }
}

TEST(Graph, TopologicalOrderBreaksTiesBySmallestId) {
  Graph g;
  const TensorId x = tensor(g, "x", {1}, TensorKind::Input);
  const TensorId a = tensor(g, "a", {1}), b = tensor(g, "b", {1}), c = tensor(g, "c", {1});
  op(g, "late", "Relu", {b}, {c});  // id 0 depends on id 2
  op(g, "free", "Relu", {x}, {a});  // id 1
  op(g, "first", "Relu", {x}, {b});  // id 2
  auto order = g.topological_order();
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(*order, (std::vector<OpId>{1, 2, 0}));
}

TEST(Graph, CycleIsReportedWithAnOperatorName) {
  Graph g;
  g.name = "loop";
  const TensorId a = tensor(g, "a", {1}), b = tensor(g, "b", {1});
  op(g, "p", "Relu", {b}, {a});
  op(g, "q", "Relu", {a}, {b});
  auto order = g.topological_order();
  ASSERT_FALSE(order.ok());
  EXPECT_NE(order.error().message.find("cycle through operator 'p'"), std::string::npos) << order.error().message;
  auto status = g.validate();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("cycle"), std::string::npos);
}

TEST(Graph, ValidateRejectsAnActivationWithoutProducer) {
  Graph g;
  g.name = "orphan";
  const TensorId a = tensor(g, "dangling", {1}), b = tensor(g, "b", {1});
  op(g, "r", "Relu", {a}, {b});
  auto status = g.validate();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("operator 'r' reads 'dangling', which has no producer"), std::string::npos)
      << status.error().message;
}

TEST(Graph, ConvFlopsFollowWeightShape) {
  Graph g;
  // Input 1x8x32x32, 16 filters over 8/2 channels (group 2), 3x3 kernel; output 1x16x16x16 (stride 2).
  const TensorId x = tensor(g, "x", {1, 8, 32, 32}, TensorKind::Input);
  const TensorId w = tensor(g, "w", {16, 4, 3, 3}, TensorKind::Parameter);
  const TensorId bias = tensor(g, "bias", {16}, TensorKind::Parameter);
  const TensorId y = tensor(g, "y", {1, 16, 16, 16});
  op(g, "conv", "Conv", {x, w, bias}, {y}, {{"group", {2}}, {"strides", {2, 2}}, {"dilations", {2, 2}}});
  annotate_work(g);
  const Operator& c = g.op(0);
  EXPECT_TRUE(c.known);
  EXPECT_DOUBLE_EQ(c.flops, 2.0 * 4096 * 4 * 9 + 4096);
  EXPECT_DOUBLE_EQ(c.bytes_read, 4.0 * (8 * 32 * 32 + 16 * 4 * 9 + 16));
  EXPECT_DOUBLE_EQ(c.bytes_written, 4.0 * 4096);
  EXPECT_EQ(c.param_bytes, 4 * (16 * 4 * 9 + 16));
  EXPECT_EQ(g.parameter_bytes(), 4 * (16 * 4 * 9 + 16));
}

TEST(Graph, MatMulGemmAndUnknownFlops) {
  Graph g;
  const TensorId a = tensor(g, "a", {4, 2, 64, 32}, TensorKind::Input);
  const TensorId b = tensor(g, "b", {4, 2, 32, 16}, TensorKind::Input);
  const TensorId c = tensor(g, "c", {4, 2, 64, 16});
  op(g, "bmm", "MatMul", {a, b}, {c});
  const TensorId ga = tensor(g, "ga", {32, 64}, TensorKind::Input);  // transposed: M=64, K=32
  const TensorId gb = tensor(g, "gb", {32, 10}, TensorKind::Parameter);
  const TensorId gc = tensor(g, "gc", {10}, TensorKind::Parameter);
  const TensorId gy = tensor(g, "gy", {64, 10});
  op(g, "gemm", "Gemm", {ga, gb, gc}, {gy}, {{"transA", {1}}});
  const TensorId u = tensor(g, "u", {10, 10});
  op(g, "mystery", "FrobnicateXYZ", {gy}, {u});
  const TensorId p = tensor(g, "p", {1, 3, 8, 8}, TensorKind::Input), q = tensor(g, "q", {1, 3, 4, 4});
  op(g, "pool", "MaxPool", {p}, {q}, {{"kernel_shape", {3, 3}}, {"strides", {2, 2}}});
  annotate_work(g);
  EXPECT_DOUBLE_EQ(g.op(0).flops, 2.0 * (4 * 2 * 64 * 16) * 32);
  EXPECT_DOUBLE_EQ(g.op(1).flops, 2.0 * 64 * 10 * 32 + 64 * 10);
  EXPECT_FALSE(g.op(2).known);
  EXPECT_DOUBLE_EQ(g.op(2).flops, 4.0 * 640 + 4.0 * 100);  // bytes moved
  EXPECT_DOUBLE_EQ(g.op(3).flops, 3.0 * 16 * 9);
  EXPECT_DOUBLE_EQ(g.total_flops(), g.op(0).flops + g.op(1).flops + g.op(2).flops + g.op(3).flops);
  // A shared parameter is owned by its first consumer only.
  EXPECT_EQ(g.op(1).param_bytes, 4 * (320 + 10));
}

TEST(Graph, AnnotateWorkKeepsFusedFlops) {
  Graph g;
  const TensorId x = tensor(g, "x", {256}, TensorKind::Input), y = tensor(g, "y", {256});
  op(g, "f", "Fused", {x}, {y});
  g.op(0).flops = 12345;
  annotate_work(g, g.op(0));
  EXPECT_DOUBLE_EQ(g.op(0).flops, 12345);
  EXPECT_DOUBLE_EQ(g.op(0).bytes_read, 1024);
}

TEST(Graph, DotNamesEveryOperator) {
  Graph g = diamond();
  annotate_work(g);
  const std::string dot = to_dot(g);
  EXPECT_EQ(dot.rfind("digraph \"diamond\"", 0), 0u);
  for (const Operator& o : g.ops()) EXPECT_NE(dot.find("\\n" + o.type), std::string::npos) << o.name;
  for (const char* label : {"op0 [label=\"a", "op1 [label=\"b", "op2 [label=\"c", "op3 [label=\"d"})
    EXPECT_NE(dot.find(label), std::string::npos) << label;
  EXPECT_NE(dot.find("op0 -> op1"), std::string::npos);
  EXPECT_NE(dot.find("op2 -> op3"), std::string::npos);
}

}  // namespace
}  // namespace moirai
