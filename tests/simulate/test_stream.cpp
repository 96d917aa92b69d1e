// Stream simulator: one request equals simulate() exactly (random DAGs, given orders and transfer priorities,
// with and without contention); a hand-computed two-stage pipeline; invariants of many requests (no overlap per
// device, precedence inside each request, admission limit, arrival rate); the period model; a decode step whose
// sequences in flight each hold a KV cache (worked by hand); per-stage overheads paid as simulate() pays them.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include "moirai/stream.h"
#include "support/random_table.h"

namespace moirai {
namespace {

using testing::random_table;
using testing::RandomTableSpec;

Placement random_placement(const CostTable& t, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Placement p;
  for (int op = 0; op < t.num_ops(); ++op)
    p.device.push_back(static_cast<DeviceId>(rng() % static_cast<uint64_t>(t.num_devices())));
  return p;
}

// Memory exactly, or within a relative `memory_tolerance` where simulate() uses validate()'s accounting (stages).
void expect_same(const CostTable& t, const Schedule& s, const StreamResult& r, double memory_tolerance = 0) {
  ASSERT_EQ(r.ops.size(), s.ops.size());
  for (size_t op = 0; op < s.ops.size(); ++op) {
    EXPECT_EQ(r.ops[op].start_ms, s.ops[op].start_ms) << t.op_names[op];
    EXPECT_EQ(r.ops[op].end_ms, s.ops[op].end_ms) << t.op_names[op];
  }
  ASSERT_EQ(r.transfers.size(), s.transfers.size());
  for (size_t x = 0; x < s.transfers.size(); ++x) {
    EXPECT_EQ(r.transfers[x].data, s.transfers[x].data);
    EXPECT_EQ(r.transfers[x].dst, s.transfers[x].dst);
    EXPECT_EQ(r.transfers[x].start_ms, s.transfers[x].start_ms);
    EXPECT_EQ(r.transfers[x].end_ms, s.transfers[x].end_ms);
  }
  EXPECT_EQ(r.makespan_ms, s.makespan_ms);
  if (memory_tolerance == 0) {  // braces: EXPECT_EQ ends in an if-else of its own (-Wdangling-else)
    EXPECT_EQ(r.peak_memory, s.peak_memory);
  }
  for (size_t d = 0; d < s.peak_memory.size() && memory_tolerance > 0; ++d)
    EXPECT_NEAR(r.peak_memory[d], s.peak_memory[d], memory_tolerance * std::max(1.0, s.peak_memory[d]));
  EXPECT_EQ(r.busy_ms, s.busy_ms);
  EXPECT_EQ(r.latency_p50_ms, s.makespan_ms);
  EXPECT_DOUBLE_EQ(r.throughput_rps, 1000.0 / s.makespan_ms);
}

TEST(Stream, OneRequestIsTheSimulatorOnRandomDags) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE(seed);
    RandomTableSpec spec;
    spec.ops = 8 + static_cast<int>(seed % 25);
    spec.devices = 2 + static_cast<int>(seed % 4);
    const CostTable t = random_table(seed, spec);
    Placement p = random_placement(t, seed * 7);
    for (bool contention : {true, false}) {
      expect_same(t, simulate(t, p, {contention}), simulate_stream(t, p, {}, {contention}));
      // The simulator's own orders (and, with contention, transfer priorities in its order) given back.
      const Schedule s = simulate(t, p, {contention});
      Placement ordered = p;
      ordered.order = s.order;
      if (contention)  // every transfer, in the order it started (a partial priority list can deadlock)
        for (size_t x = 0; x < s.transfers.size(); ++x)
          ordered.transfer_priority[{s.transfers[x].data, s.transfers[x].dst}] = static_cast<double>(x);
      expect_same(t, simulate(t, ordered, {contention}), simulate_stream(t, ordered, {}, {contention}));
    }
    CostTable staged = t;  // per-stage overheads: the stream runs simulate()'s stages
    staged.stage_overhead_ms.assign(static_cast<size_t>(t.num_devices()), 0.3);
    for (bool contention : {true, false})
      expect_same(staged, simulate(staged, p, {contention}), simulate_stream(staged, p, {}, {contention}), 1e-9);
  }
}

// Two operators in a chain on two devices: a 2-stage pipeline with a transfer between them.
CostTable two_stage(double a, double b, double x) {
  CostTable t;
  t.name = "two-stage";
  t.device_names = {"d0", "d1"};
  t.capacity = {1e9, 1e9};
  t.op_names = {"a", "b"};
  t.op_types = {"T", "T"};
  t.op_origin = {{"a"}, {"b"}};
  t.time_ms = {a, 100, 100, b};
  t.param_bytes = {10, 20};
  t.flops = {0, 0};
  DataItem item;
  item.name = "a->b";
  item.producer = 0;
  item.consumers = {1};
  item.bytes = 5;
  item.transfer_ms = {0, x, x, 0};
  t.data.push_back(item);
  EXPECT_TRUE(t.finalize().ok());
  return t;
}

TEST(Stream, TwoStagePipelineByHand) {
  const CostTable t = two_stage(3, 2, 1);
  Placement p;
  p.device = {0, 1};
  StreamOptions o;
  o.requests = 4;
  o.max_in_flight = 4;
  const StreamResult r = simulate_stream(t, p, o);
  // d0 runs a0 [0,3] a1 [3,6] a2 [6,9] a3 [9,12]; each transfer takes 1, b takes 2: request i ends at 3(i+1)+3.
  EXPECT_EQ(r.finish_ms, (std::vector<double>{6, 9, 12, 15}));
  EXPECT_EQ(r.latency_ms, (std::vector<double>{6, 9, 12, 15}));
  EXPECT_DOUBLE_EQ(r.makespan_ms, 15);
  // Warm-up: the first of 4 completions; 2 more in 6 ms.
  EXPECT_DOUBLE_EQ(r.throughput_rps, 1000.0 * 2 / 6);
  EXPECT_DOUBLE_EQ(r.latency_p50_ms, 9);
  EXPECT_DOUBLE_EQ(r.latency_p90_ms, 15);
  EXPECT_EQ(r.busy_ms, (std::vector<double>{12, 8}));
  EXPECT_DOUBLE_EQ(r.utilisation[0], 12.0 / 15);
  // Parameters once; on d0 a's output of request i lives [3i, 3i+4]: two at once from 3i+3 on.
  EXPECT_DOUBLE_EQ(r.peak_memory[0], 10 + 2 * 5);
  const PeriodLoads loads = period_loads(t, p);
  EXPECT_DOUBLE_EQ(loads.period_ms, 3);
  EXPECT_EQ(loads.bottleneck, "device d0");
  EXPECT_EQ(loads.send_ms, (std::vector<double>{1, 0}));
  EXPECT_EQ(loads.recv_ms, (std::vector<double>{0, 1}));
  EXPECT_EQ(stream_memory_bound(t, p, 3), (std::vector<double>{10 + 3 * 5, 20 + 3 * 5}));

  // One request in flight: no overlap, each request takes 6 ms after the previous one.
  o.max_in_flight = 1;
  EXPECT_EQ(simulate_stream(t, p, o).finish_ms, (std::vector<double>{6, 12, 18, 24}));
  // Arrivals every 10 ms (100/s): each request alone, latency 6, finishing 10 ms apart.
  o.max_in_flight = 4;
  o.arrival_rps = 100;
  const StreamResult slow = simulate_stream(t, p, o);
  EXPECT_EQ(slow.finish_ms, (std::vector<double>{6, 16, 26, 36}));
  EXPECT_DOUBLE_EQ(slow.latency_max_ms, 6);
  EXPECT_DOUBLE_EQ(slow.throughput_rps, 100);
}

// A decode step in miniature: `attn` (weights 60, KV cache 40 as its state) appends 10 bytes of new tokens to
// its cache in place and returns it as `present` (50 bytes); `head` (20) reads it on another device and writes
// 5 unread bytes. Times 1, transfer 1.
CostTable decode_step() {
  CostTable t = two_stage(1, 1, 1);
  t.op_names = {"attn", "head"};
  t.param_bytes = {100, 20};
  t.state_bytes = {40, 0};
  t.data[0].name = "present";
  t.data[0].bytes = 50;
  t.data[0].in_place_bytes = 40;
  DataItem out;
  out.name = "logits";
  out.producer = 1;
  out.bytes = 5;
  out.transfer_ms = {0, 1, 1, 0};
  t.data.push_back(out);
  EXPECT_TRUE(t.finalize().ok());
  return t;
}

TEST(Stream, EverySequenceInFlightHoldsItsKvCache) {
  const CostTable t = decode_step();
  Placement p;
  p.device = {0, 1};
  // One step: d0 holds weights and one cache (100) plus the appended 10; d1 its 20, the whole copy (50) and 5.
  const Schedule one = simulate(t, p);
  EXPECT_EQ(one.peak_memory, (std::vector<double>{110, 75}));
  expect_same(t, one, simulate_stream(t, p, {}));
  // Three sequences: attn_r [r, r+1], its transfer [r+1, r+2], head_r [r+2, r+3]. d0: 60 + 3 x 40 resident, and
  // two appends alive at once (each until its transfer ends): 200. d1: 20 + two copies + one output: 125.
  StreamOptions o;
  o.requests = 3;
  o.max_in_flight = 3;
  const StreamResult r = simulate_stream(t, p, o);
  EXPECT_EQ(r.sequences, 3);
  EXPECT_EQ(r.finish_ms, (std::vector<double>{3, 4, 5}));
  EXPECT_EQ(r.peak_memory, (std::vector<double>{200, 125}));
  // The planners' bound: every request's data as if alive at once, caches once per sequence.
  EXPECT_EQ(stream_memory_bound(t, p, 3), (std::vector<double>{60 + 3 * 40 + 3 * 10, 20 + 3 * (50 + 5)}));
  EXPECT_DOUBLE_EQ(resident_bytes(t, 0, 3), 180);
  // Fewer requests than slots: only as many sequences (and caches) as requests.
  o.requests = 2;
  EXPECT_EQ(simulate_stream(t, p, o).sequences, 2);
  EXPECT_EQ(simulate_stream(t, p, o).peak_memory[0], 60 + 2 * 40 + 2 * 10);
  // The figures a plan reports: tokens/s, one token per decode step.
  o.requests = 3;
  const StreamFigures f = stream_figures(t, p, o);
  EXPECT_DOUBLE_EQ(f.tokens_per_s, r.throughput_rps);
  EXPECT_EQ(f.sequences, 3);
  EXPECT_EQ(stream_figures(two_stage(3, 2, 1), p, o).tokens_per_s, 0);
}

// Per-stage overheads: the stream runs simulate()'s stages (one request: see the random DAGs above).
TEST(Stream, StageOverheadsAsTheSimulatorPaysThem) {
  // By hand: a costs 0.5 + 3 on d0, its transfer 1, b 0.5 + 2 on d1; request i ends at 3.5 (i + 1) + 3.5.
  CostTable t = two_stage(3, 2, 1);
  t.stage_overhead_ms = {0.5, 0.5};
  StreamOptions o;
  o.requests = 4;
  o.max_in_flight = 4;
  const StreamResult r = simulate_stream(t, Placement{{0, 1}, {}, {}}, o);
  EXPECT_EQ(r.finish_ms, (std::vector<double>{7, 10.5, 14, 17.5}));
  EXPECT_EQ(r.busy_ms, (std::vector<double>{14, 10}));
  EXPECT_DOUBLE_EQ(r.ops[2].start_ms, 4);  // request 1's a: its stage starts at 3.5, after the overhead
}

TEST(Stream, ManyRequestsKeepTheInvariants) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(seed);
    RandomTableSpec spec;
    spec.ops = 6 + static_cast<int>(seed % 15);
    spec.devices = 2 + static_cast<int>(seed % 3);
    const CostTable t = random_table(seed, spec);
    const Placement p = random_placement(t, seed * 13);
    StreamOptions o;
    o.requests = 7;
    o.max_in_flight = 1 + static_cast<int>(seed % 4);
    const StreamResult r = simulate_stream(t, p, o);
    const int n = t.num_ops(), k = t.num_devices();
    // No two operators overlap on a device; inside a request, every reader starts after its producer ends.
    for (int d = 0; d < k; ++d) {
      std::vector<OpSpan> spans;
      for (int g = 0; g < o.requests * n; ++g)
        if (p.device[static_cast<size_t>(g % n)] == d) spans.push_back(r.ops[static_cast<size_t>(g)]);
      std::sort(spans.begin(), spans.end(), [](auto& a, auto& b) { return a.start_ms < b.start_ms; });
      for (size_t i = 1; i < spans.size(); ++i) EXPECT_LE(spans[i - 1].end_ms, spans[i].start_ms + 1e-12);
    }
    for (int q = 0; q < o.requests; ++q)
      for (const DataItem& item : t.data)
        for (OpId c : item.consumers)
          EXPECT_LE(r.ops[static_cast<size_t>(q * n + item.producer)].end_ms, r.ops[static_cast<size_t>(q * n + c)].start_ms + 1e-12);
    // Never more than max_in_flight requests between their first start and their finish.
    for (int q = 0; q < o.requests; ++q) {
      double first = 1e300;
      for (int op = 0; op < n; ++op) first = std::min(first, r.ops[static_cast<size_t>(q * n + op)].start_ms);
      int inside = 0;
      for (int other = 0; other < o.requests; ++other) {
        double s = 1e300;
        for (int op = 0; op < n; ++op) s = std::min(s, r.ops[static_cast<size_t>(other * n + op)].start_ms);
        if (s <= first && r.finish_ms[static_cast<size_t>(other)] > first) ++inside;
      }
      EXPECT_LE(inside, o.max_in_flight);
    }
    // Every resource does its per-request load once per request: the stream lasts at least requests x period.
    // Parameters are counted once, so memory stays below the bound.
    const PeriodLoads loads = period_loads(t, p);
    EXPECT_GE(r.makespan_ms, o.requests * loads.period_ms * (1 - 1e-12));
    const auto bound = stream_memory_bound(t, p, o.max_in_flight);
    for (int d = 0; d < k; ++d) EXPECT_LE(r.peak_memory[static_cast<size_t>(d)], bound[static_cast<size_t>(d)] + 1e-9);
    EXPECT_DOUBLE_EQ(r.busy_ms[0], o.requests * loads.device_ms[0]);
  }
}

}  // namespace
}  // namespace moirai
