// Import speed: gpt2_small and swin_t from models/ (parse + shape inference + folding + FLOP accounting), and a
// synthetic 20,000-operator graph built with add_tensor/add_op and topologically sorted.
#include <benchmark/benchmark.h>

#include <random>

#include "moirai/graph.h"
#include "moirai/import.h"

namespace {

void import_model(benchmark::State& state, const char* name) {
  const std::string path = std::string(MOIRAI_SOURCE_DIR) + "/models/" + name + ".onnx";
  for (auto _ : state) {
    auto g = moirai::import_onnx(path);
    if (!g.ok()) {
      state.SkipWithError(g.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(g->num_ops());
    state.counters["ops"] = g->num_ops();
  }
}
BENCHMARK_CAPTURE(import_model, gpt2_small, "gpt2_small")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(import_model, swin_t, "swin_t")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(import_model, resnet50, "resnet50")->Unit(benchmark::kMillisecond);

/// A layered random DAG: each operator reads one or two tensors of the previous 50 operators.
void synthetic_graph(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::mt19937 rng(7);
    moirai::Graph g;
    moirai::Tensor x;
    x.name = "x";
    x.shape = {1, 256};
    x.kind = moirai::TensorKind::Input;
    std::vector<moirai::TensorId> outs{g.add_tensor(x)};
    for (int i = 0; i < n; ++i) {
      moirai::Tensor t;
      t.name = "t" + std::to_string(i);
      t.shape = {1, 256};
      const moirai::TensorId out = g.add_tensor(std::move(t));
      moirai::Operator op;
      op.name = "op" + std::to_string(i);
      op.type = "Add";
      const int window = std::min<int>(50, static_cast<int>(outs.size()));
      op.inputs.push_back(outs[outs.size() - 1 - rng() % window]);
      const auto second = outs[outs.size() - 1 - rng() % window];
      if (second != op.inputs[0]) op.inputs.push_back(second);
      op.outputs = {out};
      g.add_op(std::move(op));
      outs.push_back(out);
    }
    auto order = g.topological_order();
    benchmark::DoNotOptimize(order->size());
  }
}
BENCHMARK(synthetic_graph)->Arg(20000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
