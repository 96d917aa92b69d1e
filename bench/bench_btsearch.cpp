// Micro-benchmarks of memory-aware ordering: BTSearch on wide random DAGs (where order matters and the search
// has work to do) and on the bundled randwire_ws model, and the cost of evaluating one order's peak memory.
// Counters: peak of BTSearch relative to the best baseline (file, DFS, BFS, greedy) and whether it is proven.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>

#include "moirai/coarsen.h"
#include "moirai/import.h"
#include "moirai/schedule.h"

namespace moirai {
namespace {

/// A wide random DAG on one device: each operator has one or two outputs read by a few later operators.
CostTable wide_dag(uint64_t seed, int ops) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  CostTable t;
  t.name = "wide-" + std::to_string(ops);
  t.device_names = {"dev0"};
  for (int i = 0; i < ops; ++i) {
    t.op_names.push_back("op" + std::to_string(i));
    t.op_types.push_back("Conv");
    t.op_origin.push_back({t.op_names.back()});
    t.time_ms.push_back(1.0);
    t.param_bytes.push_back(0.0);
    t.flops.push_back(1.0);
  }
  for (int i = 0; i < ops; ++i) {
    const int outputs = unit(rng) < 0.3 ? 2 : 1;
    for (int k = 0; k < outputs; ++k) {
      DataItem item{"t" + std::to_string(i) + "_" + std::to_string(k), i, {}, 1 + std::floor(100 * unit(rng)), {0.0}};
      for (int j = i + 1; j < ops && item.consumers.size() < 3; ++j)
        if (unit(rng) < 4.0 / ops) item.consumers.push_back(j);
      t.data.push_back(std::move(item));
    }
  }
  t.capacity = {1e12};
  if (auto status = t.finalize(); !status.ok()) throw std::logic_error(status.error().message);
  return t;
}

double best_baseline(const CostTable& t) {
  return std::min({file_order(t).peak_bytes, dfs_order(t).peak_bytes, bfs_order(t).peak_bytes,
                   greedy_order(t).peak_bytes});
}

void BM_BTSearchWideDag(benchmark::State& state) {
  const auto t = wide_dag(42, static_cast<int>(state.range(0)));
  SearchOptions options;
  options.time_limit_s = 2;
  OrderResult r;
  for (auto _ : state) {
    r = btsearch(t, {}, options);
    benchmark::DoNotOptimize(r.order.data());  // not the double: 1.7's "+m,r" on a double corrupts it
  }
  state.counters["peak_vs_best_baseline"] = r.peak_bytes / best_baseline(t);
  state.counters["optimal"] = r.optimal ? 1 : 0;
  state.counters["states"] = static_cast<double>(r.states);
  state.counters["parts"] = r.parts;
}
BENCHMARK(BM_BTSearchWideDag)->Arg(20)->Arg(30)->Arg(40)->Arg(60)->Unit(benchmark::kMillisecond)->Iterations(1);

CostTable model_table(const std::string& name, const std::string& fusion) {
  auto graph = import_onnx(std::string(MOIRAI_SOURCE_DIR) + "/models/" + name + ".onnx");
  if (!graph) throw std::runtime_error(graph.error().message);
  const Cluster cluster = generic_cluster();
  CoarsenOptions options;
  options.fusion = fusion;
  auto coarse = coarsen(*graph, cluster, options);
  if (!coarse) throw std::runtime_error(coarse.error().message);
  auto table = build_cost_table(coarse->graph, cluster);
  if (!table) throw std::runtime_error(table.error().message);
  return std::move(*table);
}

void BM_BTSearchModel(benchmark::State& state, const std::string& name, bool partition) {
  const auto t = model_table(name, "none");
  SearchOptions options;
  options.partition = partition;
  OrderResult r;
  for (auto _ : state) {
    r = btsearch(t, {}, options);
    benchmark::DoNotOptimize(r.order.data());  // not the double: 1.7's "+m,r" on a double corrupts it
  }
  state.counters["peak_MiB"] = r.peak_bytes / (1024.0 * 1024.0);
  state.counters["peak_vs_best_baseline"] = r.peak_bytes / best_baseline(t);
  state.counters["optimal"] = r.optimal ? 1 : 0;
  state.counters["parts"] = r.parts;
}
BENCHMARK_CAPTURE(BM_BTSearchModel, randwire_ws, std::string("randwire_ws"), true)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BTSearchModel, randwire_ws_whole, std::string("randwire_ws"), false)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_BTSearchModel, inception_v3, std::string("inception_v3"), true)->Unit(benchmark::kMillisecond);

void BM_OrderPeakMemory(benchmark::State& state) {
  const auto t = model_table("inception_v3", "none");
  const auto order = file_order(t).order;
  for (auto _ : state) benchmark::DoNotOptimize(order_peak_memory(t, order));
}
BENCHMARK(BM_OrderPeakMemory)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace moirai

BENCHMARK_MAIN();
