// Issue 14 item 5: a constraint-programming model of the placement problem (Gecode 6.2), measured against the
// big-M MILP (`milp` placer) at the same time limit. An evaluation, not a placer: see docs/cp-evaluation.md.
// The model is the MILP's problem: a device per operator, start times, one unary resource per device with
// optional tasks, one transfer per data item and destination device (shared by its consumers there) that waits
// for the producer and precedes those consumers, send and receive ports as unary resources with optional
// transfer tasks (when ports are contended), and memory (parameters plus the largest working set per device
// within the capacity, the MILP's mem/ws rows). Times are integers in the CP: every duration is rounded to
// 1 / scale ms, so each CP plan is re-timed by moirai::simulate, and those makespans are the ones compared.
// Search: branch-and-bound on the makespan (Gecode BAB) under restarts with failure budgets (Luby), each restart
// a large-neighbourhood move: it keeps the incumbent's devices outside a window of consecutive operators. Every
// tenth restart is complete, with a budget that grows by 1000 failures each time: one that exhausts its tree proves the
// incumbent optimal. Devices branch on the incumbent's device first (HEFT's at the start), else the fastest; the
// first dive replays HEFT's schedule (start times in HEFT's order), later runs branch by set times.
//   bench_cp [--seconds S] [--only SUBSTRING] [--no-milp] [--replay] [--warm heft|best] [--seed N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gecode/int.hh>
#include <gecode/minimodel.hh>
#include <gecode/search.hh>

#include "moirai/pipeline.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "place/milp_formulation.h"
#include "support/random_table.h"

namespace {

using namespace Gecode;
using moirai::CostTable;
using moirai::DeviceId;
using moirai::OpId;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// The problem in the CP's integer units, shared read-only by every space.
struct CpData {
  const CostTable* table = nullptr;
  bool ports = true;
  double scale = 1;                       ///< CP time units per ms
  bool exact = false;                     ///< every time is an integer number of units (no rounding)
  int horizon = 0;                        ///< upper bound on every time (see make_data)
  std::vector<std::vector<int>> op_time;  ///< [op][device], rounded
  std::vector<std::vector<int>> allowed;  ///< [op]: devices that hold its parameters and working set
  std::vector<int> fastest;               ///< [op]: its fastest allowed device
  std::vector<int> warm_device;           ///< [op]: the warm start's device
  std::vector<double> warm_key;           ///< its start times in CP units, per op then per (item, destination)
  std::vector<int> data_ids;              ///< data items with consumers
  uint64_t seed = 1;
};

// Durations past the horizon are capped there (such a choice cannot fit anyway), which keeps them in int range.
int to_units(const CpData& p, double ms) {
  return static_cast<int>(std::min<double>(std::llround(ms * p.scale), p.horizon + 1.0));
}

int transfer_units(const CpData& p, int d, DeviceId a, DeviceId b) { return to_units(p, p.table->transfer(d, a, b)); }

class CpModel : public IntMinimizeSpace {
 public:
  const CpData* p;
  IntVarArray dev, start, send;  ///< per op; send: per (data_ids index, destination device), start of that transfer
  BoolVarArray present;          ///< per (data_ids index, destination): the item crosses to that device
  IntVar makespan;
  std::vector<int> preferred;  ///< per op: the device tried first (the incumbent's)

  explicit CpModel(const CpData& data) : p(&data), preferred(data.warm_device) {
    const CostTable& t = *p->table;
    const int n = t.num_ops(), K = t.num_devices(), D = static_cast<int>(p->data_ids.size());
    dev = IntVarArray(*this, n, 0, K - 1);
    start = IntVarArray(*this, n, 0, p->horizon);
    send = IntVarArray(*this, D * K, 0, p->horizon);
    present = BoolVarArray(*this, D * K, 0, 1);
    makespan = IntVar(*this, 0, p->horizon);
    std::vector<BoolVarArgs> on(static_cast<size_t>(n));  // on[i][k] <=> dev[i] == k
    IntVarArgs finish(n);
    for (OpId i = 0; i < n; ++i) {
      const auto si = static_cast<size_t>(i);
      dom(*this, dev[i], IntSet(IntArgs(p->allowed[si])));
      on[si] = BoolVarArgs(*this, K, 0, 1);
      channel(*this, on[si], dev[i]);
      IntVar dur(*this, 0, p->horizon);
      element(*this, IntArgs(p->op_time[si]), dev[i], dur);
      finish[i] = expr(*this, start[i] + dur);
      rel(*this, makespan >= finish[i]);
    }
    post_devices(on);
    post_transfers(on, finish);
    post_memory(on);
  }

  // Devices in topological order, the preferred one first (else the fastest); then start times, each at its
  // earliest; then the makespan. `replay`: start times in the order of `key` (per op, then per transfer: the
  // incumbent's start times), so that the dive rebuilds the incumbent's orders. Otherwise set times: the task
  // that can start first (ties by `key`); its right branch moves the choice to another task at that time.
  void post_branching(const std::vector<double>& key, bool replay) {
    const CostTable& t = *p->table;
    IntVarArgs devs;
    for (OpId i : t.topo_order) devs << dev[i];
    const std::vector<OpId> topo = t.topo_order;
    branch(*this, devs, INT_VAR_NONE(), INT_VAL([topo](const Space& home, IntVar x, int pos) {
             const auto& m = static_cast<const CpModel&>(home);
             const auto op = static_cast<size_t>(topo[static_cast<size_t>(pos)]);
             return x.in(m.preferred[op]) ? m.preferred[op] : x.in(m.p->fastest[op]) ? m.p->fastest[op] : x.min();
           }));
    IntVarArgs all;
    all << start << send;
    std::vector<int> order(static_cast<size_t>(all.size()));
    for (size_t v = 0; v < order.size(); ++v) order[v] = static_cast<int>(v);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key[static_cast<size_t>(a)] < key[static_cast<size_t>(b)]; });
    IntVarArgs times;
    for (int v : order) times << all[v];
    const double ties = 1.0 / (times.size() + 1);
    if (replay) branch(*this, times, INT_VAR_NONE(), INT_VAL_MIN());
    else branch(*this, times, INT_VAR_MERIT_MIN([ties](const Space&, IntVar x, int pos) { return x.min() + pos * ties; }),
                INT_VAL_MIN());
    branch(*this, makespan, INT_VAL_MIN());
  }

  /// Start times of this solution as branching keys (ops, then transfers).
  std::vector<double> start_keys() const {
    std::vector<double> key;
    for (int v = 0; v < start.size(); ++v) key.push_back(start[v].val());
    for (int v = 0; v < send.size(); ++v) key.push_back(send[v].val() + 0.5);  // just after an op starting then
    return key;
  }

  CpModel(CpModel& s) : IntMinimizeSpace(s), p(s.p), preferred(s.preferred) {
    dev.update(*this, s.dev);
    start.update(*this, s.start);
    send.update(*this, s.send);
    present.update(*this, s.present);
    makespan.update(*this, s.makespan);
  }
  Space* copy() override { return new CpModel(*this); }
  IntVar cost() const override { return makespan; }

  // LNS: keeps the incumbent's devices outside a window of `window` operators from topological position
  // `first`, and tries them first inside it.
  void relax(const std::vector<int>& incumbent, int first, int window) {
    const CostTable& t = *p->table;
    preferred = incumbent;
    for (int pos = 0; pos < t.num_ops(); ++pos)
      if (pos < first || pos >= first + window) {
        const OpId i = t.topo_order[static_cast<size_t>(pos)];
        rel(*this, dev[i], IRT_EQ, incumbent[static_cast<size_t>(i)]);
      }
  }

 private:
  // Each device runs one operator at a time; T >= its load (redundant, for the bound).
  void post_devices(const std::vector<BoolVarArgs>& on) {
    const CostTable& t = *p->table;
    for (DeviceId k = 0; k < t.num_devices(); ++k) {
      IntVarArgs s;
      IntArgs d;
      BoolVarArgs m;
      for (OpId i = 0; i < t.num_ops(); ++i) {
        const int dur = p->op_time[static_cast<size_t>(i)][static_cast<size_t>(k)];
        if (dur <= 0) continue;
        s << start[i], d << dur, m << on[static_cast<size_t>(i)][k];
      }
      if (s.size() == 0) continue;
      unary(*this, s, d, m);
      linear(*this, d, m, IRT_LQ, makespan);
    }
  }

  // Transfer of item d to device b: present when a consumer is on b and the producer is not; starts after the
  // producer; a consumer on b starts after it ends (after the producer when they share b, transfer time 0).
  void post_transfers(const std::vector<BoolVarArgs>& on, const IntVarArgs& finish) {
    const CostTable& t = *p->table;
    const int K = t.num_devices();
    // Send port of a: one task per (item, destination), present when the producer is on a. Receive port of b:
    // one task per (item, b), its length set by the producer's device.
    std::vector<IntVarArgs> send_start(static_cast<size_t>(K)), recv_start(send_start), recv_len(send_start),
        recv_end(send_start);
    std::vector<IntArgs> send_len(static_cast<size_t>(K));
    std::vector<BoolVarArgs> send_on(static_cast<size_t>(K)), recv_on(send_on);
    for (int j = 0; j < static_cast<int>(p->data_ids.size()); ++j) {
      const int d = p->data_ids[static_cast<size_t>(j)];
      const auto& item = t.data[static_cast<size_t>(d)];
      const OpId prod = item.producer;
      IntVarArgs arrival(K);
      for (DeviceId b = 0; b < K; ++b) {
        IntArgs cost(K);
        for (DeviceId a = 0; a < K; ++a) cost[a] = transfer_units(*p, d, a, b);
        IntVar dur(*this, 0, p->horizon);
        element(*this, cost, dev[prod], dur);
        IntVar cs = send[j * K + b];
        rel(*this, cs >= finish[prod]);
        arrival[b] = expr(*this, cs + dur);
        BoolVarArgs there;
        for (OpId c : item.consumers) there << on[static_cast<size_t>(c)][b];
        BoolVar any(*this, 0, 1);
        rel(*this, BOT_OR, there, any);
        rel(*this, present[j * K + b] == (any && !on[static_cast<size_t>(prod)][b]));
        if (!p->ports) continue;
        const auto sb = static_cast<size_t>(b);
        recv_start[sb] << cs, recv_len[sb] << dur, recv_end[sb] << arrival[b], recv_on[sb] << present[j * K + b];
        for (DeviceId a = 0; a < K; ++a) {
          if (a == b || cost[a] <= 0) continue;
          const auto sa = static_cast<size_t>(a);
          send_start[sa] << cs, send_len[sa] << cost[a];
          send_on[sa] << expr(*this, present[j * K + b] && on[static_cast<size_t>(prod)][a]);
        }
      }
      for (OpId c : item.consumers) {
        IntVar ready(*this, 0, p->horizon);
        element(*this, arrival, dev[c], ready);
        rel(*this, start[c] >= ready);
      }
    }
    for (size_t k = 0; k < static_cast<size_t>(K); ++k) {
      if (send_start[k].size() > 0) unary(*this, send_start[k], send_len[k], send_on[k]);
      if (recv_start[k].size() > 0) unary(*this, recv_start[k], recv_len[k], recv_end[k], recv_on[k]);
    }
  }

  // The MILP's memory rows: parameters placed on k plus a reserve R_k >= every working set on k fit capacity
  // (bytes rounded up, capacity down, to millionths of the largest capacity).
  void post_memory(const std::vector<BoolVarArgs>& on) {
    const CostTable& t = *p->table;
    const auto ws = moirai::working_sets(t);
    const double unit = *std::max_element(t.capacity.begin(), t.capacity.end()) / 1e6;
    if (unit <= 0) return;
    auto up = [&](double bytes) { return static_cast<int>(std::ceil(bytes / unit)); };
    for (DeviceId k = 0; k < t.num_devices(); ++k) {
      const double cap = t.capacity[static_cast<size_t>(k)];
      if (cap <= 0) continue;
      const int limit = static_cast<int>(std::floor(cap / unit));
      IntVar reserve(*this, 0, limit);
      IntArgs params;
      BoolVarArgs placed;
      for (OpId i = 0; i < t.num_ops(); ++i) {
        const BoolVar& b = on[static_cast<size_t>(i)][k];
        params << up(t.param_bytes[static_cast<size_t>(i)]);
        placed << b;
        rel(*this, reserve, IRT_GQ, up(ws[static_cast<size_t>(i)]), Reify(b, RM_IMP));
      }
      rel(*this, sum(params, placed) + reserve <= limit);
    }
  }
};

// Integer time units: 1 when every time is integral (instances), else 1e6 units per warm-start makespan.
void choose_scale(CpData& p, double warm_ms) {
  const CostTable& t = *p.table;
  bool integral = true;
  for (double v : t.time_ms) integral = integral && v == std::floor(v);
  for (const auto& item : t.data)
    for (double v : item.transfer_ms) integral = integral && v == std::floor(v);
  p.exact = integral && warm_ms < 1e6;
  p.scale = p.exact ? 1.0 : 1e6 / warm_ms;
}

// Per op then per (item, destination): the warm schedule's start times (a transfer not sent starts with its
// producer), in CP units.
std::vector<double> warm_keys(const CpData& p, const moirai::Schedule& s) {
  const CostTable& t = *p.table;
  const int K = t.num_devices();
  std::vector<double> key;
  for (const auto& op : s.ops) key.push_back(op.start_ms * p.scale);
  std::vector<int> slot(t.data.size(), -1);
  for (size_t j = 0; j < p.data_ids.size(); ++j) {
    slot[static_cast<size_t>(p.data_ids[j])] = static_cast<int>(j);
    for (DeviceId b = 0; b < K; ++b) key.push_back(s.ops[static_cast<size_t>(t.data[static_cast<size_t>(p.data_ids[j])].producer)].end_ms * p.scale);
  }
  for (const auto& tr : s.transfers)
    if (slot[static_cast<size_t>(tr.data)] >= 0) key[static_cast<size_t>(t.num_ops() + slot[static_cast<size_t>(tr.data)] * K + tr.dst)] = tr.start_ms * p.scale + 0.5;
  return key;
}

CpData make_data(const CostTable& t, const moirai::Placement& warm, const moirai::Schedule& warm_schedule,
                 bool ports, uint64_t seed) {
  const double warm_ms = warm_schedule.makespan_ms;
  CpData p;
  p.table = &t;
  p.ports = ports;
  p.seed = seed;
  choose_scale(p, warm_ms);
  const int n = t.num_ops(), K = t.num_devices();
  p.warm_device.assign(warm.device.begin(), warm.device.end());
  for (int d = 0; d < static_cast<int>(t.data.size()); ++d)
    if (!t.data[static_cast<size_t>(d)].consumers.empty()) p.data_ids.push_back(d);
  // Twice the warm start's makespan: room for the first dive, whose earliest-start order is not HEFT's (the bound
  // on the makespan then tightens with each solution).
  p.horizon = 2 * static_cast<int>(std::ceil(warm_ms * p.scale)) + n + static_cast<int>(p.data_ids.size()) * K;
  const auto ws = moirai::working_sets(t);
  for (OpId i = 0; i < n; ++i) {
    std::vector<int> times, allowed;
    int best = -1;
    for (DeviceId k = 0; k < K; ++k) {
      times.push_back(to_units(p, t.time(i, k)));
      const double cap = t.capacity[static_cast<size_t>(k)];
      if (cap > 0 && t.param_bytes[static_cast<size_t>(i)] + ws[static_cast<size_t>(i)] > cap * (1 + 1e-12)) continue;
      allowed.push_back(k);
      if (best < 0 || t.time(i, k) < t.time(i, best)) best = k;
    }
    p.op_time.push_back(times);
    p.allowed.push_back(allowed);
    p.fastest.push_back(best);
  }
  p.warm_key = warm_keys(p, warm_schedule);
  return p;
}

// The CP solution as a placement the simulator re-times: device orders by start, transfer priorities by start.
moirai::Placement to_placement(const CpModel& s) {
  const CostTable& t = *s.p->table;
  const int n = t.num_ops(), K = t.num_devices();
  moirai::Placement out;
  out.order.assign(static_cast<size_t>(K), {});
  std::vector<OpId> ops(t.topo_order);
  std::stable_sort(ops.begin(), ops.end(), [&](OpId a, OpId b) { return s.start[a].val() < s.start[b].val(); });
  for (OpId i = 0; i < n; ++i) out.device.push_back(s.dev[i].val());
  for (OpId i : ops) out.order[static_cast<size_t>(out.device[static_cast<size_t>(i)])].push_back(i);
  for (int j = 0; j < static_cast<int>(s.p->data_ids.size()); ++j)
    for (DeviceId b = 0; b < K; ++b)
      if (s.present[j * K + b].val()) out.transfer_priority[{s.p->data_ids[static_cast<size_t>(j)], b}] = s.send[j * K + b].val();
  return out;
}

struct Outcome {
  double makespan = 0;   ///< the method's own figure, ms
  double simulated = 0;  ///< moirai::simulate of its plan, ms
  double bound = 0;      ///< proven lower bound, ms (0 = none)
  std::string status;
  double seconds = 0;
  double first_ms = 0;  ///< CP: first solution's makespan (the warm-start dive)
  std::string warm_from;                  ///< MILP: the heuristic its warm start came from
  double warm_ms = 0, polished_ms = 0;    ///< MILP: that plan, and after the MILP's local search
  int restarts = 0, solutions = 0;
  bool over_capacity = false;
};

// Stops a run at a failure budget (the restart cutoff) or at the deadline.
class RunStop : public Search::Stop {
 public:
  RunStop(unsigned long fails, Clock::time_point deadline) : fails_(fails), deadline_(deadline) {}
  bool stop(const Search::Statistics& s, const Search::Options&) override {
    return s.fail > fails_ || Clock::now() >= deadline_;
  }

 private:
  unsigned long fails_;
  Clock::time_point deadline_;
};

// Luby sequence 1 1 2 1 1 2 4 ... (restart r, from 1).
unsigned long luby(unsigned long r) {
  for (unsigned long k = 1;; ++k) {
    const unsigned long full = (1UL << k) - 1;
    if (r == full) return 1UL << (k - 1);
    if (r < full) return luby(r - (1UL << (k - 1)) + 1);
  }
}

// Branch-and-bound under restarts: restart r runs with a budget of 100 x luby(r) failures once there is a solution; runs relax a window
// of the incumbent's devices (LNS) except every tenth, which is complete (an exhausted complete run proves the
// incumbent optimal).
Outcome solve_cp(const CostTable& t, const moirai::Placement& warm, const moirai::Schedule& warm_schedule, bool ports,
                 double seconds, uint64_t seed, bool replay_all) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const CpData p = make_data(t, warm, warm_schedule, ports, seed);
  const int n = t.num_ops();
  std::unique_ptr<CpModel> root(new CpModel(p));
  Outcome out;
  if (root->status() == SS_FAILED) return out.status = "infeasible at the root", out;
  // A bound in CP units holds for the real times up to the rounding: at most half a unit per task on a chain.
  const double rounding = p.exact ? 0 : 0.5 * (n + static_cast<double>(p.data_ids.size()) * t.num_devices());
  auto real_bound = [&](int units) { return std::max(0.0, units - rounding) / p.scale; };
  out.bound = real_bound(root->makespan.min());
  std::unique_ptr<CpModel> best;
  std::vector<int> incumbent = p.warm_device;
  std::mt19937_64 rng(seed);
  const int window = std::clamp(n / 3, std::min(n, 4), 20);
  unsigned long fails = 0;
  bool proven = false;
  for (unsigned long r = 1; Clock::now() < deadline && !proven; ++r) {
    std::unique_ptr<CpModel> run(static_cast<CpModel*>(root->clone()));
    const bool complete = !best || r % 10 == 0;
    if (complete) run->preferred = incumbent;
    else run->relax(incumbent, std::uniform_int_distribution<int>(0, n - window)(rng), window);
    run->post_branching(best ? best->start_keys() : p.warm_key, !best || replay_all);
    if (best) rel(*run, run->makespan < best->makespan.val());
    // The first run: until its first solution; complete runs: a budget that grows by 1000 every ten restarts.
    const unsigned long budget = !best ? 100000 : complete ? 1000 * (r / 10) : 100 * luby(r);
    RunStop stop(budget, deadline);
    Search::Options so;
    so.threads = 1;
    so.stop = &stop;
    BAB<CpModel> engine(run.get(), so);
    const bool first_run = !best;
    while (CpModel* s = engine.next()) {
      if (!best) out.first_ms = s->makespan.val() / p.scale;
      best.reset(s);
      ++out.solutions;
      for (OpId i = 0; i < n; ++i) incumbent[static_cast<size_t>(i)] = best->dev[i].val();
      if (first_run) break;
    }
    fails += engine.statistics().fail;
    out.restarts = static_cast<int>(r);
    proven = complete && !first_run && !engine.stopped();
  }
  if (std::getenv("BENCH_CP_DEBUG")) std::fprintf(stderr, "fails %lu restarts %d\n", fails, out.restarts);
  out.seconds = since(t0);
  if (!best) return out.status = proven ? "infeasible" : "no solution (time limit)", out;
  out.makespan = best->makespan.val() / p.scale;
  out.status = proven ? "optimal" : "time limit";
  if (proven) out.bound = real_bound(best->makespan.val());
  const moirai::SimOptions sim{ports};
  const moirai::Schedule s = moirai::simulate(t, to_placement(*best), sim);
  out.simulated = s.makespan_ms;
  out.over_capacity = !s.over_capacity(t).empty();
  return out;
}

Outcome solve_milp(const CostTable& t, bool ports, double seconds, uint64_t seed) {
  moirai::PlaceOptions o;
  o.sim.contention = ports;
  o.time_limit_s = seconds;
  o.threads = 1;
  o.seed = seed;
  const auto t0 = Clock::now();
  auto r = (*moirai::make_placer("milp"))->place(t, o);
  Outcome out;
  out.seconds = since(t0);
  if (!r.ok()) return out.status = "error: " + r.error().message, out;
  out.makespan = r->objective_ms;
  out.bound = r->lower_bound_ms;
  out.status = std::string(plan_status_name(r->status)) + " (" + r->mode + ")";
  out.warm_from = r->warm_start_method;
  out.warm_ms = r->warm_start_ms;
  out.polished_ms = r->polished_ms;
  const moirai::Schedule s = moirai::simulate(t, r->placement, o.sim);
  out.simulated = s.makespan_ms;
  out.over_capacity = !s.over_capacity(t).empty();
  return out;
}

struct Case {
  std::string name;
  moirai::CostTable table;
  bool ports = true;
};

std::vector<Case> cases(const std::string& only) {
  std::vector<Case> out;
  auto add = [&](const std::string& name, bool ports, auto load) {
    if (!only.empty() && name.find(only) == std::string::npos) return;
    auto t = load();
    if (!t.ok()) return (void)std::fprintf(stderr, "%s: %s\n", name.c_str(), t.error().message.c_str());
    out.push_back({name, std::move(*t), ports});
  };
  for (const auto& [inst, ports] : std::vector<std::pair<std::string, bool>>{
           {"example-1", true}, {"heft-example", true}, {"heft-example", false}, {"GoogLeNet", true}})
    add(inst + (ports ? "" : " (no ports)"), ports,
        [&] { return moirai::load_instance(moirai::testing::source_path("instances/" + inst + ".json")); });
  for (const std::string model : {"googlenet", "inception_v3", "bert_base", "randwire_ws"})
    for (const std::string cluster : {"hetero-gpu-server", "workstation-mixed", "dgx-a100-8"})
      add(model + " / " + cluster + " / max-nodes 40", true, [&]() -> moirai::Expected<CostTable> {
        moirai::ProblemOptions po;
        po.input = moirai::testing::source_path("models/" + model + ".onnx");
        po.cluster_path = moirai::testing::source_path("clusters/" + cluster + ".json");
        po.coarsen.fusion = "onnxruntime";
        po.coarsen.max_nodes = 40;
        auto p = moirai::load_problem(po);
        if (!p.ok()) return p.error();
        return std::move(p->table);
      });
  return out;
}

struct BenchOptions {
  double seconds = 20;
  bool milp = true;
  bool replay = false;  ///< every CP run replays the incumbent's order (else only the first)
  std::string warm = "heft";  ///< the CP's warm start: heft, or best (of the heuristics)
  uint64_t seed = 1;
  std::string only;
};

struct Warm {
  std::string method;
  moirai::Placement placement;
  moirai::Schedule schedule;
};

// The CP's warm start: HEFT's plan, or with "best" the best simulated plan of the registry's heuristics (the MILP's
// warm start before its local search).
std::optional<Warm> warm_start(const CostTable& t, bool ports, const std::string& which, double seconds) {
  std::optional<Warm> best;
  for (const auto& name : moirai::placer_names()) {
    if (which == "heft" ? name != "heft" : name == "milp" || name == "placeto" || name == "geneflow") continue;
    moirai::PlaceOptions o;
    o.sim.contention = ports;
    o.time_limit_s = std::min(seconds, 10.0);
    auto r = (*moirai::make_placer(name))->place(t, o);
    if (!r.ok()) continue;
    moirai::Schedule s = moirai::simulate(t, r->placement, o.sim);
    if (!s.over_capacity(t).empty() || (best && s.makespan_ms >= best->schedule.makespan_ms)) continue;
    best = Warm{name, r->placement, std::move(s)};
  }
  return best;
}

void run_case(const Case& c, const BenchOptions& o) {
  const CostTable& t = c.table;
  const auto warm = warm_start(t, c.ports, o.warm, o.seconds);
  if (!warm) return (void)std::printf("| %s | no warm start fits |\n", c.name.c_str());
  const Outcome cp = solve_cp(t, warm->placement, warm->schedule, c.ports, o.seconds, o.seed, o.replay);
  const Outcome milp = o.milp ? solve_milp(t, c.ports, o.seconds, o.seed) : Outcome{};
  auto cell = [](const Outcome& r) {
    return fmt::format("| {:.6g}{} | {} | {:.6g} | {:.1f} ", r.simulated, r.over_capacity ? " (over capacity)" : "",
                       r.status, r.bound, r.seconds);
  };
  std::printf("| %s | %d | %s %.6g %s| %.6g | %d / %d ", c.name.c_str(), t.num_ops(), warm->method.c_str(),
              warm->schedule.makespan_ms, cell(cp).c_str(), cp.makespan, cp.solutions, cp.restarts);
  if (o.milp) std::printf("| %s %.6g, %.6g %s|\n", milp.warm_from.c_str(), milp.warm_ms, milp.polished_ms, cell(milp).c_str());
  else std::printf("|\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds") o.seconds = std::atof(next().c_str());
    else if (a == "--only") o.only = next();
    else if (a == "--no-milp") o.milp = false;
    else if (a == "--replay") o.replay = true;
    else if (a == "--warm") o.warm = next();
    else if (a == "--seed") o.seed = std::strtoull(next().c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "usage: bench_cp [--seconds S] [--only SUBSTRING] [--no-milp] [--replay] [--warm heft|best] [--seed N]\n");
      return 2;
    }
  }
  if (o.warm != "heft" && o.warm != "best") {
    std::fprintf(stderr, "bench_cp: --warm must be heft or best, not '%s'\n", o.warm.c_str());
    return 2;
  }
  std::printf("CP (Gecode, 1 thread%s, warm start %s) vs MILP (1 thread), %.0f s each; makespans simulated (ms)\n\n"
              "| problem | ops | cp warm start | cp | cp status | cp bound | cp s | cp own ms | cp solutions / restarts | "
              "milp warm start, polished | milp | milp status | milp bound | milp s |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
              o.replay ? ", replay" : "", o.warm.c_str(), o.seconds);
  for (const auto& c : cases(o.only)) run_case(c, o);
  return 0;
}
