// Coarsening speed: gpt2_small (about 760 imported operators) with every fusion rule set, with and without the
// --max-nodes 60 budget step. Target: under 50 ms each. Counters report the node counts reached.
#include <benchmark/benchmark.h>

#include <stdexcept>

#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/import.h"
#include "support/random_table.h"

namespace {

const moirai::Graph& gpt2() {
  static const moirai::Graph graph = [] {
    auto g = moirai::import_onnx(moirai::testing::source_path("models/gpt2_small.onnx"));
    if (!g.ok()) throw std::runtime_error(g.error().message);
    return std::move(g).value();
  }();
  return graph;
}

const moirai::Cluster& cluster() {
  static const moirai::Cluster c = [] {
    auto r = moirai::load_cluster(moirai::testing::source_path("clusters/hetero-gpu-server.json"));
    if (!r.ok()) throw std::runtime_error(r.error().message);
    return std::move(r).value();
  }();
  return c;
}

void BM_CoarsenGpt2(benchmark::State& state, const std::string& fusion, int max_nodes) {
  const auto& g = gpt2();
  moirai::CoarsenOptions options;
  options.fusion = fusion;
  options.max_nodes = max_nodes;
  int nodes = 0;
  for (auto _ : state) {
    auto r = moirai::coarsen(g, cluster(), options);
    if (!r.ok()) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    nodes = r->graph.num_ops();
    benchmark::DoNotOptimize(nodes);
  }
  state.counters["nodes_before"] = g.num_ops();
  state.counters["nodes_after"] = nodes;
}

BENCHMARK_CAPTURE(BM_CoarsenGpt2, onnxruntime, std::string("onnxruntime"), 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, tensorrt, std::string("tensorrt"), 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, tvm, std::string("tvm"), 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, none, std::string("none"), 0)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, onnxruntime_max60, std::string("onnxruntime"), 60)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, tensorrt_max60, std::string("tensorrt"), 60)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_CoarsenGpt2, tvm_max60, std::string("tvm"), 60)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
