// Placement time of the baseline placers (HEFT, CPOP, m-TOPO, m-ETF, m-SCT, GETF) on random DAGs: the issue asks
// for a 10,000-operator graph on 8 devices in under 2 s each. Counters: the simulated latency of the plan.
#include <benchmark/benchmark.h>

#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "support/random_table.h"

namespace {

void place_random(benchmark::State& state, const std::string& method) {
  moirai::testing::RandomTableSpec spec;
  spec.ops = static_cast<int>(state.range(0));
  spec.devices = static_cast<int>(state.range(1));
  spec.edge_probability = 3.0 / spec.ops;  // a few long-range edges per operator besides the chain
  const moirai::CostTable table = moirai::testing::random_table(42, spec);
  auto placer = moirai::make_placer(method);
  if (!placer.ok()) {
    state.SkipWithError(placer.error().message.c_str());
    return;
  }
  moirai::PlaceOptions options;
  moirai::Placement placement;
  std::string mode;
  for (auto _ : state) {
    auto result = (*placer)->place(table, options);
    if (!result.ok()) {
      state.SkipWithError(result.error().message.c_str());
      return;
    }
    placement = result->placement;
    mode = result->mode;
    benchmark::DoNotOptimize(placement);
  }
  state.counters["latency_ms"] = moirai::simulate(table, placement, options.sim).makespan_ms;
  state.SetLabel(mode);
}

void place_layered(benchmark::State& state, const std::string& method) {
  const moirai::CostTable table = moirai::testing::layered_table(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  auto placer = moirai::make_placer(method);
  moirai::PlaceOptions options;
  moirai::Placement placement;
  for (auto _ : state) {
    auto result = (*placer)->place(table, options);
    if (!result.ok()) {
      state.SkipWithError(result.error().message.c_str());
      return;
    }
    placement = result->placement;
    state.SetLabel(result->mode);
  }
  state.counters["latency_ms"] = moirai::simulate(table, placement, options.sim).makespan_ms;
}

void register_all() {
  for (const char* method : {"heft", "cpop", "m-topo", "m-etf", "m-sct", "getf"})
    benchmark::RegisterBenchmark((std::string("place_layered/") + method).c_str(),
                                 [m = std::string(method)](benchmark::State& s) { place_layered(s, m); })
        ->Args({10000, 8})
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
  for (const char* method : {"heft", "cpop", "m-topo", "m-etf", "m-sct", "getf"})
    benchmark::RegisterBenchmark((std::string("place/") + method).c_str(),
                                 [m = std::string(method)](benchmark::State& s) { place_random(s, m); })
        ->Args({1000, 8})
        ->Args({3000, 8})
        ->Args({10000, 8})
        ->Unit(benchmark::kMillisecond)
        ->Iterations(1);
}

const bool registered = (register_all(), true);

}  // namespace

BENCHMARK_MAIN();
