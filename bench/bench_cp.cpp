// Issue 14 item 5: a constraint-programming model of the placement problem (Gecode 6.2), measured against the
// big-M MILP (`milp` placer) at the same time limit. An evaluation, not a placer: see docs/cp-evaluation.md.
// The model is the MILP's problem: a device per operator, start times, one unary resource per device with
// optional tasks, one transfer per data item and destination device (shared by its consumers there) that waits
// for the producer and precedes those consumers, send and receive ports as unary resources with optional
// transfer tasks (when ports are contended), and memory (parameters plus the largest working set per device
// within the capacity, the MILP's mem/ws rows). Times are integers in the CP: every duration is rounded to
// 1 / scale ms, so each CP plan is re-timed by moirai::simulate, and those makespans are the ones compared.
// Search: branch-and-bound on the makespan under restarts (RBS) with large-neighbourhood relaxations: each
// restart keeps the incumbent's devices outside a window of operators; every tenth restart is complete, so an
// exhausted complete run proves optimality. Devices branch on the incumbent's device first (HEFT's at the
// start, the MILP's warm-start family), else the fastest; then start times, earliest first.
//   bench_cp [--seconds S] [--only SUBSTRING] [--no-milp] [--seed N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
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
  int horizon = 0;                        ///< upper bound on the makespan (the warm start's, plus rounding slack)
  std::vector<std::vector<int>> op_time;  ///< [op][device], rounded
  std::vector<std::vector<int>> allowed;  ///< [op]: devices that hold its parameters and working set
  std::vector<int> fastest;               ///< [op]: its fastest allowed device
  std::vector<int> warm_device;           ///< [op]: the warm start's device
  std::vector<int> data_ids;              ///< data items with consumers
  uint64_t seed = 1;
};

int to_units(double ms, double scale) { return static_cast<int>(std::llround(ms * scale)); }

int transfer_units(const CpData& p, int d, DeviceId a, DeviceId b) {
  return to_units(p.table->transfer(d, a, b), p.scale);
}

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
    IntVarArgs devs;
    for (OpId i : t.topo_order) devs << dev[i];
    const std::vector<OpId> topo = t.topo_order;
    branch(*this, devs, INT_VAR_NONE(), INT_VAL([topo](const Space& home, IntVar x, int pos) {
             const auto& m = static_cast<const CpModel&>(home);
             const auto op = static_cast<size_t>(topo[static_cast<size_t>(pos)]);
             return x.in(m.preferred[op]) ? m.preferred[op] : x.in(m.p->fastest[op]) ? m.p->fastest[op] : x.min();
           }));
    IntVarArgs times;
    times << start << send;
    branch(*this, times, INT_VAR_MIN_MIN(), INT_VAL_MIN());
    branch(*this, makespan, INT_VAL_MIN());
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

  // LNS: a restart after a solution keeps the incumbent's devices outside a window of consecutive operators
  // (topological order) and tries the incumbent's device first inside it. Every tenth restart is complete.
  bool slave(const MetaInfo& mi) override {
    if (mi.type() != MetaInfo::RESTART || mi.last() == nullptr) return true;
    const auto& best = static_cast<const CpModel&>(*mi.last());
    const CostTable& t = *p->table;
    const int n = t.num_ops();
    for (OpId i = 0; i < n; ++i) preferred[static_cast<size_t>(i)] = best.dev[i].val();
    if (mi.restart() % 10 == 0) return true;
    std::mt19937_64 rng(p->seed * 1000003 + mi.restart());
    const int window = std::clamp(n / 3, std::min(n, 4), 20);
    const int first = std::uniform_int_distribution<int>(0, n - window)(rng);
    for (int pos = 0; pos < n; ++pos)
      if (pos < first || pos >= first + window) {
        const OpId i = t.topo_order[static_cast<size_t>(pos)];
        rel(*this, dev[i], IRT_EQ, best.dev[i].val());
      }
    return false;
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
    std::vector<std::vector<IntVarArgs>> port_start(2, std::vector<IntVarArgs>(static_cast<size_t>(K)));
    std::vector<std::vector<IntArgs>> port_dur(2, std::vector<IntArgs>(static_cast<size_t>(K)));
    std::vector<std::vector<BoolVarArgs>> port_on(2, std::vector<BoolVarArgs>(static_cast<size_t>(K)));
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
        for (DeviceId a = 0; a < K; ++a) {
          if (a == b || cost[a] <= 0) continue;
          BoolVar via = expr(*this, present[j * K + b] && on[static_cast<size_t>(prod)][a]);
          for (int side = 0; side < 2; ++side) {  // 0: a's send port, 1: b's receive port
            const auto port = static_cast<size_t>(side == 0 ? a : b);
            port_start[static_cast<size_t>(side)][port] << cs;
            port_dur[static_cast<size_t>(side)][port] << cost[a];
            port_on[static_cast<size_t>(side)][port] << via;
          }
        }
      }
      for (OpId c : item.consumers) {
        IntVar ready(*this, 0, p->horizon);
        element(*this, arrival, dev[c], ready);
        rel(*this, start[c] >= ready);
      }
    }
    for (size_t side = 0; side < 2; ++side)
      for (size_t k = 0; k < static_cast<size_t>(K); ++k)
        if (port_start[side][k].size() > 0) unary(*this, port_start[side][k], port_dur[side][k], port_on[side][k]);
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
double choose_scale(const CostTable& t, double warm_ms) {
  bool integral = true;
  for (double v : t.time_ms) integral = integral && v == std::floor(v);
  for (const auto& item : t.data)
    for (double v : item.transfer_ms) integral = integral && v == std::floor(v);
  return integral && warm_ms < 1e6 ? 1.0 : 1e6 / warm_ms;
}

CpData make_data(const CostTable& t, const moirai::Placement& warm, double warm_ms, bool ports, uint64_t seed) {
  CpData p;
  p.table = &t;
  p.ports = ports;
  p.seed = seed;
  p.scale = choose_scale(t, warm_ms);
  const int n = t.num_ops(), K = t.num_devices();
  const auto ws = moirai::working_sets(t);
  for (OpId i = 0; i < n; ++i) {
    std::vector<int> times, allowed;
    int best = -1;
    for (DeviceId k = 0; k < K; ++k) {
      times.push_back(to_units(t.time(i, k), p.scale));
      const double cap = t.capacity[static_cast<size_t>(k)];
      if (cap > 0 && t.param_bytes[static_cast<size_t>(i)] + ws[static_cast<size_t>(i)] > cap * (1 + 1e-12)) continue;
      allowed.push_back(k);
      if (best < 0 || t.time(i, k) < t.time(i, best)) best = k;
    }
    p.op_time.push_back(times);
    p.allowed.push_back(allowed);
    p.fastest.push_back(best);
  }
  p.warm_device.assign(warm.device.begin(), warm.device.end());
  for (int d = 0; d < static_cast<int>(t.data.size()); ++d)
    if (!t.data[static_cast<size_t>(d)].consumers.empty()) p.data_ids.push_back(d);
  // Rounding can lengthen the warm start's schedule by half a unit per operator and transfer on its path.
  p.horizon = static_cast<int>(std::ceil(warm_ms * p.scale)) + n + static_cast<int>(p.data_ids.size()) * K;
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
  int restarts = 0, solutions = 0;
  bool over_capacity = false;
};

Outcome solve_cp(const CostTable& t, const moirai::Placement& warm, double warm_ms, bool ports, double seconds,
                 uint64_t seed) {
  const auto t0 = Clock::now();
  const CpData p = make_data(t, warm, warm_ms, ports, seed);
  auto* root = new CpModel(p);
  Outcome out;
  if (root->status() == SS_FAILED) {
    delete root;
    return out.status = "infeasible at the root", out;
  }
  out.bound = root->makespan.min() / p.scale;
  Search::TimeStop stop(static_cast<unsigned long>(seconds * 1000));
  Search::Options so;
  so.threads = 1;
  so.stop = &stop;
  so.cutoff = Search::Cutoff::luby(100);
  RBS<CpModel, BAB> engine(root, so);
  delete root;
  std::unique_ptr<CpModel> best;
  while (CpModel* s = engine.next()) {
    if (!best) out.first_ms = s->makespan.val() / p.scale;
    best.reset(s);
    ++out.solutions;
  }
  out.restarts = static_cast<int>(engine.statistics().restart);
  out.seconds = since(t0);
  if (!best) return out.status = engine.stopped() ? "no solution (time limit)" : "infeasible", out;
  out.makespan = best->makespan.val() / p.scale;
  out.status = engine.stopped() ? "time limit" : "optimal";
  if (!engine.stopped()) out.bound = out.makespan;
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
  out.status = r->status + " (" + r->mode + ")";
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
    for (const std::string cluster : {"hetero-gpu-server", "workstation-mixed"})
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

void run_case(const Case& c, double seconds, bool with_milp, uint64_t seed) {
  const CostTable& t = c.table;
  moirai::PlaceOptions ho;
  ho.sim.contention = c.ports;
  auto heft = (*moirai::make_placer("heft"))->place(t, ho);
  if (!heft.ok()) return (void)std::printf("| %s | heft failed: %s |\n", c.name.c_str(), heft.error().message.c_str());
  const double heft_ms = moirai::simulate(t, heft->placement, ho.sim).makespan_ms;
  const Outcome cp = solve_cp(t, heft->placement, heft_ms, c.ports, seconds, seed);
  const Outcome milp = with_milp ? solve_milp(t, c.ports, seconds, seed) : Outcome{};
  auto cell = [](const Outcome& o) {
    if (o.status.empty()) return std::string("| | | | ");
    return fmt::format("| {:.6g}{} | {} | {:.6g} | {:.1f} ", o.simulated, o.over_capacity ? " (over capacity)" : "",
                       o.status, o.bound, o.seconds);
  };
  std::printf("| %s | %d | %.6g %s| %.6g | %d / %d %s|\n", c.name.c_str(), t.num_ops(), heft_ms, cell(cp).c_str(),
              cp.makespan, cp.solutions, cp.restarts, cell(milp).c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 20;
  bool with_milp = true;
  uint64_t seed = 1;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--only") only = next();
    else if (a == "--no-milp") with_milp = false;
    else if (a == "--seed") seed = std::strtoull(next().c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "usage: bench_cp [--seconds S] [--only SUBSTRING] [--no-milp] [--seed N]\n");
      return 2;
    }
  }
  std::printf("CP (Gecode, 1 thread) vs MILP (1 thread), %.0f s each; makespans simulated (ms)\n\n"
              "| problem | ops | heft | cp | cp status | cp bound | cp s | cp own ms | cp solutions / restarts | "
              "milp | milp status | milp bound | milp s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
              seconds);
  for (const auto& c : cases(only)) run_case(c, seconds, with_milp, seed);
  return 0;
}
