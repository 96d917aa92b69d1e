// The coordinator's hand-off around a request (HandOff, request_ms): pushes one after another before the
// schedule, each device's fetch after its last operator or outgoing transfer. Hand-worked numbers.
#include <gtest/gtest.h>

#include "moirai/simulate.h"

namespace moirai {
namespace {

TensorId tensor(Graph& g, const std::string& name, int64_t elements, TensorKind kind = TensorKind::Activation) {
  Tensor t;
  t.name = name;
  t.shape = {elements};  // float32: 4 bytes each
  t.kind = kind;
  return g.add_tensor(std::move(t));
}

OpId op(Graph& g, const std::string& name, std::vector<TensorId> in, std::vector<TensorId> out) {
  Operator o;
  o.name = name;
  o.type = "Relu";
  o.inputs = std::move(in);
  o.outputs = std::move(out);
  return g.add_op(std::move(o));
}

// x (1 MB) -> a, c on w0; a -> y -> b on w1, which also reads m (0.5 MB); outputs: z (2 MB, of b on w1) and
// w (0.5 MB, of c on w0). w2 runs nothing.
struct Fixture {
  Graph graph;
  Cluster cluster;
  Placement placement;
  Schedule schedule;
  Fixture() {
    const TensorId x = tensor(graph, "x", 250000, TensorKind::Input), m = tensor(graph, "m", 125000, TensorKind::Input);
    const TensorId y = tensor(graph, "y", 250000), z = tensor(graph, "z", 500000), w = tensor(graph, "w", 125000);
    graph.tensor(z).graph_output = graph.tensor(w).graph_output = true;
    op(graph, "a", {x}, {y});
    op(graph, "b", {y, m}, {z});
    op(graph, "c", {x}, {w});
    cluster.devices.resize(3);
    for (int d = 0; d < 3; ++d) cluster.devices[static_cast<size_t>(d)].name = "w" + std::to_string(d);
    cluster.devices[0].from_coordinator = Link{0.5, 1000};     // x: 1 ms + 1 MB / 0.5 GB/s = 3 ms
    cluster.devices[1].from_coordinator = Link{1.0, 500};      // m: 0.5 ms + 0.5 ms = 1 ms
    cluster.devices[1].to_coordinator = Link{0.25, 2000};      // z: 2 ms + 2 MB / 0.25 GB/s = 10 ms
    cluster.devices[2].to_coordinator = Link{1.0, 100000};     // no operators: never waited for
    placement.device = {0, 1, 0};
    // a [0, 2] and c [2, 3] on w0, y to w1 [2, 5], b [5, 9] on w1.
    schedule.ops = {{0, 2}, {5, 9}, {2, 3}};
    schedule.transfers = {{0, 0, 1, 2, 5, 1e6}};
    schedule.makespan_ms = 9;
  }
};

TEST(HandOff, PushesEveryInputOnceToEachReadingDevice) {
  Fixture f;
  const HandOff h = hand_off(f.graph, f.cluster, f.placement);
  EXPECT_DOUBLE_EQ(h.push_ms, 3.0 + 1.0);  // x once to w0 (read by a and c), m to w1
  ASSERT_EQ(h.fetch_ms.size(), 3u);
  EXPECT_DOUBLE_EQ(h.fetch_ms[0], 0.0);    // w0 has no link back: free
  EXPECT_DOUBLE_EQ(h.fetch_ms[1], 10.0);
  EXPECT_DOUBLE_EQ(h.fetch_ms[2], 100.0);  // its latency alone: no outputs
}

TEST(HandOff, RequestIsPushThenScheduleThenTheLastAnswer) {
  Fixture f;
  // w0 is done at 5 (its transfer of y), w1 at 9; w1 answers at 9 + 10: 4 + 19.
  EXPECT_DOUBLE_EQ(request_ms(f.schedule, f.placement, hand_off(f.graph, f.cluster, f.placement)), 23.0);
  // Without w1's link back, w0's answer can be the last: w (0.5 MB) at 0.05 GB/s takes 10 ms after 5.
  f.cluster.devices[1].to_coordinator.reset();
  f.cluster.devices[0].to_coordinator = Link{0.05, 0};
  EXPECT_DOUBLE_EQ(request_ms(f.schedule, f.placement, hand_off(f.graph, f.cluster, f.placement)), 4.0 + 15.0);
  // No coordinator links at all: the request is the schedule.
  Cluster free_links;
  free_links.devices.resize(3);
  EXPECT_DOUBLE_EQ(request_ms(f.schedule, f.placement, hand_off(f.graph, free_links, f.placement)), 9.0);
}

}  // namespace
}  // namespace moirai
