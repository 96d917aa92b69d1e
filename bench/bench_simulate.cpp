// Simulator speed: a 10,000-operator random DAG on 8 devices with a random placement (target: under 20 ms per
// simulation), with and without port contention, with given orders, and the validator on the same schedule.
#include <random>

#include <benchmark/benchmark.h>

#include "moirai/simulate.h"
#include "support/random_table.h"

namespace {

using namespace moirai;

struct Problem {
  CostTable table;
  Placement placement;
};

const Problem& problem() {
  static const Problem p = [] {
    testing::RandomTableSpec spec;
    spec.ops = 10000;
    spec.devices = 8;
    spec.edge_probability = 0.002;  // about 2-3 consumers per item over 10k operators
    Problem out{testing::random_table(42, spec), {}};
    std::mt19937_64 rng(7);
    for (int op = 0; op < out.table.num_ops(); ++op) out.placement.device.push_back(static_cast<DeviceId>(rng() % 8));
    return out;
  }();
  return p;
}

void BM_Simulate(benchmark::State& state) {
  const Problem& p = problem();
  const SimOptions options{state.range(0) != 0};
  size_t transfers = 0;
  for (auto _ : state) {
    const Schedule s = simulate(p.table, p.placement, options);
    transfers = s.transfers.size();
    benchmark::DoNotOptimize(s.makespan_ms);
  }
  state.counters["ops"] = p.table.num_ops();
  state.counters["transfers"] = static_cast<double>(transfers);
}
BENCHMARK(BM_Simulate)->Arg(1)->Arg(0)->ArgName("contention")->Unit(benchmark::kMillisecond);

void BM_SimulateGivenOrder(benchmark::State& state) {
  const Problem& p = problem();
  const Schedule list = simulate(p.table, p.placement);
  Placement ordered = p.placement;
  ordered.order = list.order;
  int rank = 0;
  for (const auto& x : list.transfers) ordered.transfer_priority[{x.data, x.dst}] = rank++;
  for (auto _ : state) benchmark::DoNotOptimize(simulate(p.table, ordered).makespan_ms);
}
BENCHMARK(BM_SimulateGivenOrder)->Unit(benchmark::kMillisecond);

void BM_Validate(benchmark::State& state) {
  const Problem& p = problem();
  const Schedule s = simulate(p.table, p.placement);
  for (auto _ : state) benchmark::DoNotOptimize(validate(p.table, p.placement, s).size());
}
BENCHMARK(BM_Validate)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
