// GenEFlow on the bundled models and clusters: latency of the best whole-operator plan (best valid plan of the
// list-scheduling placers) against GenEFlow seeded with it, and GenEFlow's search time. One iteration per
// (model, cluster); the figures are counters: base_ms, geneflow_ms, gain_pct, split_ops, genes, search_s.
// Run: build/bench_geneflow --benchmark_counters_tabular=true [--benchmark_filter=edge-cpu-4]
#include <benchmark/benchmark.h>

#include "moirai/partition.h"
#include "moirai/pipeline.h"

namespace moirai {
namespace {

const std::vector<std::string> kModels = {"vgg19", "resnet50", "googlenet", "squeezenet1_1", "mobilenet_v2",
                                          "vit_b_16", "gpt2_small"};
const std::vector<std::string> kClusters = {"edge-cpu-4", "edge-4", "hetero-gpu-server"};
const std::vector<std::string> kBaselines = {"heft", "cpop", "m-topo", "m-etf", "m-sct", "getf"};

void run(benchmark::State& state, const std::string& model, const std::string& cluster) {
  ProblemOptions po;
  po.input = std::string(MOIRAI_SOURCE_DIR) + "/models/" + model + ".onnx";
  po.cluster_path = std::string(MOIRAI_SOURCE_DIR) + "/clusters/" + cluster + ".json";
  auto problem = load_problem(po);
  if (!problem) {
    state.SkipWithError(problem.error().message.c_str());
    return;
  }
  PlaceOptions options;
  options.time_limit_s = 60;
  MethodRun best;
  for (const auto& m : kBaselines) {
    MethodRun r = run_method(*problem, m, options);
    if (r.ok() && r.fits && (best.method.empty() || r.schedule.makespan_ms < best.schedule.makespan_ms)) best = std::move(r);
  }
  if (best.method.empty()) {
    state.SkipWithError("no baseline produced a valid plan");
    return;
  }
  for (auto _ : state) {
    auto r = geneflow(problem->table, &*problem->coarse, best.result.placement, options, &*problem->cluster);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    const auto v = validate(r->expanded.table, r->expanded.placement, r->schedule, options.sim);
    if (!v.empty()) state.SkipWithError(("invalid split plan: " + v.front()).c_str());
    state.counters["ops"] = problem->table.num_ops();
    state.counters["base_ms"] = best.schedule.makespan_ms;
    state.counters["geneflow_ms"] = r->makespan_ms;
    state.counters["gain_pct"] = 100.0 * (1.0 - r->makespan_ms / best.schedule.makespan_ms);
    state.counters["split_ops"] = r->split_ops;
    state.counters["genes"] = r->genes;
    state.counters["search_s"] = r->search_time_s;
    state.SetLabel("seed " + best.method);
  }
}

const bool registered = [] {
  for (const auto& c : kClusters)
    for (const auto& m : kModels)
      benchmark::RegisterBenchmark(("geneflow/" + c + "/" + m).c_str(), [m, c](benchmark::State& s) { run(s, m, c); })
          ->Iterations(1)
          ->Unit(benchmark::kSecond);
  return true;
}();

}  // namespace
}  // namespace moirai

BENCHMARK_MAIN();
