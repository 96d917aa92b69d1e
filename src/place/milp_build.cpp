// Builds the Moirai MILP into a MilpModel (variables and rows as in milp_formulation.h), and converts between
// a MilpPlan and a full column assignment (MIP start, decoding).
//
// Columns: x_i_k (binary), S_i/F_i (op start/finish), CS_q/CF_q (transfer start/finish of edge q), u_q_a_b
// (edge q goes from device a to b; a transportation linearisation: sum_b u_q_a_b = x_from_a and
// sum_a u_q_a_b = x_to_b, exact for binary x), z_q (crosses devices), R_k (activation reserve), o_a_b / p_q_r
// (order binaries, 1 = a before b), T (makespan, the objective); for items read by several consumers, G_d_b
// (start of item d's transfer to b: every edge of d whose consumer is on b starts then) and y_d_a_b (d crosses
// from a to b, charged once on the ports however many consumers read it there).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "milp_formulation.h"

namespace moirai {
namespace {

using Bits = std::vector<uint64_t>;
using Terms = std::vector<std::pair<int, double>>;

std::vector<Bits> reach(const CostTable& t) {
  const int n = t.num_ops();
  const size_t words = (static_cast<size_t>(n) + 63) / 64;
  std::vector<Bits> desc(static_cast<size_t>(n), Bits(words, 0));
  for (auto it = t.topo_order.rbegin(); it != t.topo_order.rend(); ++it) {
    auto& d = desc[static_cast<size_t>(*it)];
    for (OpId s : t.successors(*it)) {
      for (size_t w = 0; w < words; ++w) d[w] |= desc[static_cast<size_t>(s)][w];
      d[static_cast<size_t>(s) >> 6] |= uint64_t{1} << (s & 63);
    }
  }
  return desc;
}

// Per item, its position in the chain of the items sharing its resource (resource_of(i), kNone for none),
// ordered by start, then finish, then id; -1 for items on no resource.
template <class ResourceOf>
std::vector<int> fixed_chain_positions(int count, ResourceOf resource_of, const std::vector<double>& start,
                                       const std::vector<double>& finish) {
  std::vector<int> items;
  for (int i = 0; i < count; ++i)
    if (resource_of(i) != kNone) items.push_back(i);
  std::sort(items.begin(), items.end(), [&](int a, int b) {
    const auto sa = static_cast<size_t>(a), sb = static_cast<size_t>(b);
    return std::tuple(resource_of(a), start[sa], finish[sa], a) < std::tuple(resource_of(b), start[sb], finish[sb], b);
  });
  std::vector<int> pos(static_cast<size_t>(count), -1);
  for (size_t p = 0; p < items.size(); ++p) pos[static_cast<size_t>(items[p])] = static_cast<int>(p);
  return pos;
}

// Per data item and (source, destination): y_d_a_b >= u_q_a_b for every edge q of d, so an item crosses (and
// is charged) once however many consumers read it on b.
void tensor_transfer_cols(Formulation& f, const CostTable& t) {
  auto& m = f.model;
  const int K = f.num_devices, E = static_cast<int>(f.edges.size());
  f.y.assign(t.data.size() * static_cast<size_t>(K * K), -1);
  for (int q = 0; q < E; ++q)
    for (DeviceId a = 0; a < K; ++a)
      for (DeviceId b = 0; b < K; ++b) {
        const int d = f.edges[static_cast<size_t>(q)].data;
        const int u = f.u[static_cast<size_t>((q * K + a) * K + b)];
        if (a == b || u < 0) continue;
        int& col = f.y[static_cast<size_t>((d * K + a) * K + b)];
        if (col < 0) col = m.add_col(fmt::format("y_{}_{}_{}", d, a, b), 0, 1, false);
        m.add_row(fmt::format("once_{}_{}_{}_{}", q, d, a, b), {{col, 1}, {u, -1}}, 0, kMilpInf);
      }
}

// Each device's send and receive port carries at most T of transfers: per edge (u columns) when every item has
// one consumer, else per item and destination (y columns).
void port_load_rows(Formulation& f, const CostTable& t) {
  auto& m = f.model;
  const int K = f.num_devices, E = static_cast<int>(f.edges.size());
  auto U = [&](int q, DeviceId a, DeviceId b) { return f.u[static_cast<size_t>((q * K + a) * K + b)]; };
  for (DeviceId k = 0; k < K; ++k) {
    Terms send{{f.makespan, 1}}, recv{{f.makespan, 1}};
    auto charge = [&](Terms& row, int data, DeviceId a, DeviceId b, int col) {
      if (col >= 0) row.push_back({col, -t.transfer(data, a, b)});
    };
    if (f.y.empty()) {
      for (int q = 0; q < E; ++q)
        for (DeviceId b = 0; b < K; ++b) {
          if (b == k) continue;
          const int d = f.edges[static_cast<size_t>(q)].data;
          charge(send, d, k, b, U(q, k, b));
          charge(recv, d, b, k, U(q, b, k));
        }
    } else {
      for (int d = 0; d < static_cast<int>(t.data.size()); ++d)
        for (DeviceId b = 0; b < K; ++b) {
          if (b == k) continue;
          charge(send, d, k, b, f.y[static_cast<size_t>((d * K + k) * K + b)]);
          charge(recv, d, b, k, f.y[static_cast<size_t>((d * K + b) * K + k)]);
        }
    }
    m.add_row(fmt::format("sendload_{}", k), send, 0, kMilpInf);
    m.add_row(fmt::format("recvload_{}", k), recv, 0, kMilpInf);
  }
}

// The model's builder: one method per kind of columns or rows, called in the order of the model's sections;
// the members are what several sections share.
struct Builder {
  const CostTable& t;
  const FormulationOptions& opt;
  const MilpPlan* inc;  // LNS: the incumbent outside the window; null for the exact model
  const int n, K;
  const double M;  // big-M: an upper bound on the makespan
  Formulation f;
  MilpModel& m = f.model;
  int E = 0;
  std::vector<double> ws, tmin, head, tail;  // per operator: working set, fastest time, longest path before/after
  double slack = 0;
  bool edge_ports = true;  // every item has one consumer: ports are charged per edge
  std::vector<Bits> desc;
  std::vector<int> chain_pos;                        // per fixed operator: its place among the fixed ones on its device
  std::vector<OpId> nearest_before, nearest_after;  // [free op * K + k]: non-near fixed neighbours on k

  Builder(const CostTable& table, const FormulationOptions& options)
      : t(table), opt(options), inc(options.incumbent), n(table.num_ops()), K(table.num_devices()),
        M(options.upper_bound) {}

  bool is_free(OpId i) const { return !inc || opt.free_op[static_cast<size_t>(i)]; }
  bool is_near(OpId i) const { return !inc || opt.near[static_cast<size_t>(i)]; }
  int X(OpId i, DeviceId k) const { return f.x[static_cast<size_t>(i * K + k)]; }
  int U(int q, DeviceId a, DeviceId b) const { return f.u[static_cast<size_t>((q * K + a) * K + b)]; }
  int Y(int d, DeviceId a, DeviceId b) const { return f.y[static_cast<size_t>((d * K + a) * K + b)]; }
  const MilpEdge& edge(int q) const { return f.edges[static_cast<size_t>(q)]; }
  double ub(double v) const { return std::max(v, 0.0) + slack; }
  bool ordered(OpId a, OpId b) const {  // a == b or a reaches b
    return a == b || ((desc[static_cast<size_t>(a)][static_cast<size_t>(b) >> 6] >> (b & 63)) & 1U);
  }
  // What crossing from a to b costs item d on the ports, charged once per destination: y, or the one edge's u.
  int crossing(int q, DeviceId a, DeviceId b) const { return edge_ports ? U(q, a, b) : Y(edge(q).data, a, b); }

  Expected<Formulation> build() {
    MOIRAI_CHECK(M > 0, "the MILP needs a positive upper bound on the makespan");
    f.num_devices = K;
    f.edges = milp_edges(t);
    E = static_cast<int>(f.edges.size());
    m.name = t.name.empty() ? "moirai" : t.name;
    for (auto& c : m.name)
      if (c == ' ') c = '_';
    MOIRAI_TRY(assignment_cols());
    path_bounds();
    time_cols();
    makespan_col();
    assignment_rows();
    transfer_rows();
    tie_rows();
    device_rows();
    // Port loads charge each item once per destination: per edge (u) when no item has two consumers, else y.
    for (const auto& d : t.data) edge_ports = edge_ports && d.consumers.size() <= 1;
    if (opt.contention && !edge_ports) tensor_transfer_cols(f, t);
    desc = reach(t);
    if (!inc && opt.precedence_loads) precedence_load_rows();
    if (!inc && opt.symmetry_breaking) symmetry_rows();
    if (inc) fixed_operator_chains();
    operator_order_rows();
    if (!opt.contention) return std::move(f);
    port_bound_rows();
    port_load_rows(f, t);
    if (opt.relaxation) return std::move(f);
    transfer_order_rows();
    return std::move(f);
  }

  // Devices each operator may use: parameters plus its working set must fit.
  Status assignment_cols() {
    ws = working_sets(t);
    f.working_set = ws;
    f.reserve.assign(static_cast<size_t>(K), -1);
    auto can = [&](OpId i, DeviceId k) {
      const double cap = t.capacity[static_cast<size_t>(k)];
      const double active = opt.relaxation && t.time(i, k) <= 0 ? 0 : ws[static_cast<size_t>(i)];
      return cap <= 0 || t.param_bytes[static_cast<size_t>(i)] + active <= cap * (1 + 1e-12);
    };
    tmin.assign(static_cast<size_t>(n), 0);
    f.x.assign(static_cast<size_t>(n * K), -1);
    for (OpId i = 0; i < n; ++i) {
      double best = std::numeric_limits<double>::infinity();
      for (DeviceId k = 0; k < K; ++k) {
        const bool allowed = inc && !is_free(i) ? inc->device[static_cast<size_t>(i)] == k : can(i, k);
        if (!allowed) continue;
        f.x[static_cast<size_t>(i * K + k)] = m.add_col(fmt::format("x_{}_{}", i, k), inc && !is_free(i) ? 1 : 0, 1, true);
        best = std::min(best, t.time(i, k));
      }
      if (!std::isfinite(best))
        return Error{fmt::format("operator '{}' fits on no device (parameters + working set {} exceed every capacity)",
                                 t.op_names[static_cast<size_t>(i)], t.param_bytes[static_cast<size_t>(i)] + ws[static_cast<size_t>(i)])};
      tmin[static_cast<size_t>(i)] = best;
    }
    return Ok{};
  }

  // Longest paths at fastest times before and after each operator: the bounds of its time columns.
  void path_bounds() {
    head.assign(static_cast<size_t>(n), 0);
    tail.assign(static_cast<size_t>(n), 0);
    for (OpId i : t.topo_order)
      for (OpId s : t.successors(i)) head[static_cast<size_t>(s)] = std::max(head[static_cast<size_t>(s)], head[static_cast<size_t>(i)] + tmin[static_cast<size_t>(i)]);
    for (auto it = t.topo_order.rbegin(); it != t.topo_order.rend(); ++it)
      for (OpId s : t.successors(*it)) tail[static_cast<size_t>(*it)] = std::max(tail[static_cast<size_t>(*it)], tmin[static_cast<size_t>(s)] + tail[static_cast<size_t>(s)]);
    f.lower_bound = valid_lower_bound(t);
    slack = 1e-9 * std::max(1.0, M);
  }

  // Operator and transfer times, crossing indicators and the u linearisation.
  void time_cols() {
    for (OpId i = 0; i < n; ++i) {
      const auto s = static_cast<size_t>(i);
      f.start.push_back(m.add_col(fmt::format("S_{}", i), head[s], ub(M - tail[s] - tmin[s]), false));
      f.finish.push_back(m.add_col(fmt::format("F_{}", i), head[s] + tmin[s], ub(M - tail[s]), false));
    }
    f.u.assign(static_cast<size_t>(E * K * K), -1);
    for (int q = 0; q < E; ++q) {
      const auto& e = edge(q);
      const double lo = head[static_cast<size_t>(e.from)] + tmin[static_cast<size_t>(e.from)];
      const double hi = ub(M - tail[static_cast<size_t>(e.to)] - tmin[static_cast<size_t>(e.to)]);
      f.comm_start.push_back(m.add_col(fmt::format("CS_{}", q), std::min(lo, hi), hi, false));
      f.comm_finish.push_back(m.add_col(fmt::format("CF_{}", q), std::min(lo, hi), hi, false));
      f.cross.push_back(m.add_col(fmt::format("z_{}", q), 0, 1, false));
      for (DeviceId a = 0; a < K; ++a)
        for (DeviceId b = 0; b < K; ++b)
          if (X(e.from, a) >= 0 && X(e.to, b) >= 0)
            f.u[static_cast<size_t>((q * K + a) * K + b)] = m.add_col(fmt::format("u_{}_{}_{}", q, a, b), 0, 1, false);
    }
  }

  // Integral durations make every semi-active schedule's makespan integral, and some optimum is semi-active: T
  // may then be an integer column, which lets CBC round its bound up (a node whose bound exceeds incumbent - 1
  // is pruned), the difference between minutes and seconds on the published examples.
  void makespan_col() {
    bool integral = opt.integral_makespan;
    auto whole = [](double v) { return std::abs(v - std::round(v)) <= 1e-9 * std::max(1.0, std::abs(v)); };
    for (OpId i = 0; i < n && integral; ++i)
      for (DeviceId k = 0; k < K; ++k)
        if (X(i, k) >= 0 && !whole(t.time(i, k))) integral = false;
    for (int q = 0; q < E && integral; ++q)
      for (DeviceId a = 0; a < K; ++a)
        for (DeviceId b = 0; b < K; ++b)
          if (X(edge(q).from, a) >= 0 && X(edge(q).to, b) >= 0 && !whole(t.transfer(edge(q).data, a, b)))
            integral = false;
    f.integral_makespan = integral;
    const double t_lo = std::min(integral ? std::ceil(f.lower_bound - 1e-9) : f.lower_bound, M);
    f.makespan = m.add_col("T", t_lo, integral ? std::floor(M + slack + 1e-9) : M + slack, integral, 1.0);
  }

  // Assignment and durations of operators.
  void assignment_rows() {
    for (OpId i = 0; i < n; ++i) {
      Terms one, dur{{f.finish[static_cast<size_t>(i)], 1}, {f.start[static_cast<size_t>(i)], -1}};
      for (DeviceId k = 0; k < K; ++k)
        if (X(i, k) >= 0) one.push_back({X(i, k), 1}), dur.push_back({X(i, k), -t.time(i, k)});
      m.add_row(fmt::format("assign_{}", i), one, 1, 1);
      m.add_row(fmt::format("dur_{}", i), dur, 0, 0);
      m.add_row(fmt::format("tail_{}", i), {{f.makespan, 1}, {f.finish[static_cast<size_t>(i)], -1}}, tail[static_cast<size_t>(i)], kMilpInf);
    }
  }

  // Transfers: after the producer, before the consumer, as long as the link from the producer's device to the
  // consumer's takes.
  void transfer_rows() {
    for (int q = 0; q < E; ++q) {
      const auto& e = edge(q);
      const auto sq = static_cast<size_t>(q);
      m.add_row(fmt::format("ready_{}", q), {{f.comm_start[sq], 1}, {f.finish[static_cast<size_t>(e.from)], -1}}, 0, kMilpInf);
      m.add_row(fmt::format("arrive_{}", q), {{f.start[static_cast<size_t>(e.to)], 1}, {f.comm_finish[sq], -1}}, 0, kMilpInf);
      Terms dur{{f.comm_finish[sq], 1}, {f.comm_start[sq], -1}}, z{{f.cross[sq], 1}};
      for (DeviceId a = 0; a < K; ++a) {
        Terms out{{X(e.from, a), -1}}, in{{X(e.to, a), -1}};
        for (DeviceId b = 0; b < K; ++b) {
          if (U(q, a, b) >= 0) out.push_back({U(q, a, b), 1}), dur.push_back({U(q, a, b), -t.transfer(e.data, a, b)});
          if (U(q, b, a) >= 0) in.push_back({U(q, b, a), 1});
        }
        if (U(q, a, a) >= 0) z.push_back({U(q, a, a), 1});
        if (X(e.from, a) >= 0) m.add_row(fmt::format("out_{}_{}", q, a), out, 0, 0);
        if (X(e.to, a) >= 0) m.add_row(fmt::format("in_{}_{}", q, a), in, 0, 0);
      }
      m.add_row(fmt::format("dur_c{}", q), dur, 0, 0);
      m.add_row(fmt::format("cross_{}", q), z, 1, 1);
    }
  }

  // One transfer per item and destination (the simulator's rule): the edges of item d whose consumers are on b
  // all start at G_d_b (CS_q = G_d_b when x_to_b = 1). Their durations are equal, so they finish together too.
  void tie_rows() {
    f.tie.assign(t.data.size() * static_cast<size_t>(K), -1);
    for (int q0 = 0, q1 = 0; q0 < E; q0 = q1) {
      const int d = edge(q0).data;
      while (q1 < E && edge(q1).data == d) ++q1;
      if (q1 - q0 < 2) continue;
      for (DeviceId b = 0; b < K; ++b) {
        std::vector<int> on_b;
        for (int q = q0; q < q1; ++q)
          if (X(edge(q).to, b) >= 0) on_b.push_back(q);
        if (on_b.size() < 2) continue;
        double lo = kMilpInf, hi = -kMilpInf;
        for (int q : on_b) {
          lo = std::min(lo, m.cols[static_cast<size_t>(f.comm_start[static_cast<size_t>(q)])].lb);
          hi = std::max(hi, m.cols[static_cast<size_t>(f.comm_start[static_cast<size_t>(q)])].ub);
        }
        const int g = f.tie[static_cast<size_t>(d * K + b)] = m.add_col(fmt::format("G_{}_{}", d, b), lo, hi, false);
        for (int q : on_b) {
          const int cs = f.comm_start[static_cast<size_t>(q)], x = X(edge(q).to, b);
          const double up = m.cols[static_cast<size_t>(cs)].ub - lo + slack, down = hi - m.cols[static_cast<size_t>(cs)].lb + slack;
          m.add_row(fmt::format("tie_{}_{}", q, b), {{cs, 1}, {g, -1}, {x, up}}, -kMilpInf, up);
          m.add_row(fmt::format("tie_{}_{}_", q, b), {{g, 1}, {cs, -1}, {x, down}}, -kMilpInf, down);
        }
      }
    }
  }

  // Device loads and memory (parameters + a reserve of at least the largest working set placed there).
  void device_rows() {
    for (DeviceId k = 0; k < K; ++k) {
      Terms load{{f.makespan, 1}}, mem;
      for (OpId i = 0; i < n; ++i)
        if (X(i, k) >= 0) load.push_back({X(i, k), -t.time(i, k)}), mem.push_back({X(i, k), t.param_bytes[static_cast<size_t>(i)]});
      m.add_row(fmt::format("load_{}", k), load, 0, kMilpInf);
      const double cap = t.capacity[static_cast<size_t>(k)];
      if (cap <= 0) continue;
      const int r = m.add_col(fmt::format("R_{}", k), 0, cap, false);
      f.reserve[static_cast<size_t>(k)] = r;
      mem.push_back({r, 1});
      m.add_row(fmt::format("mem_{}", k), mem, -kMilpInf, cap);
      for (OpId i = 0; i < n; ++i)
        if (X(i, k) >= 0 && ws[static_cast<size_t>(i)] > 0 && (!opt.relaxation || t.time(i, k) > 0))
          m.add_row(fmt::format("ws_{}_{}", i, k), {{r, 1}, {X(i, k), -ws[static_cast<size_t>(i)]}}, 0, kMilpInf);
    }
  }

  // Precedence loads: the descendants of i placed on k run one at a time on k after F_i, so
  // T >= F_i + sum_{j in desc(i)} time(j,k) x_jk; the ancestors of i on k all finish by S_i. With ports, the same
  // for the transfers leaving k from i or its descendants (each item once per destination), and those entering
  // k towards i or its ancestors (per item, one edge whose consumer is i or an ancestor: whichever consumer is on
  // k, the item crosses once).
  void precedence_load_rows() {
    for (OpId i = 0; i < n; ++i)
      for (DeviceId k = 0; k < K; ++k) {
        const auto si = static_cast<size_t>(i);
        Terms after{{f.makespan, 1}, {f.finish[si], -1}}, before{{f.start[si], 1}};
        for (OpId j = 0; j < n; ++j) {
          if (j == i || X(j, k) < 0) continue;
          if (ordered(i, j)) after.push_back({X(j, k), -t.time(j, k)});
          if (ordered(j, i)) before.push_back({X(j, k), -t.time(j, k)});
        }
        if (after.size() > 3) m.add_row(fmt::format("pdesc_{}_{}", i, k), after, 0, kMilpInf);
        if (before.size() > 2) m.add_row(fmt::format("panc_{}_{}", i, k), before, 0, kMilpInf);
        if (opt.contention) port_precedence_rows(i, k);
      }
  }

  void port_precedence_rows(OpId i, DeviceId k) {
    const auto si = static_cast<size_t>(i);
    Terms send{{f.makespan, 1}, {f.finish[si], -1}}, recv{{f.start[si], 1}};
    int sent = -1, received = -1;  // last data item charged
    for (int q = 0; q < E; ++q) {
      const auto& e = edge(q);
      const bool send_q = ordered(i, e.from) && e.data != sent, recv_q = ordered(e.to, i) && e.data != received;
      if (send_q) sent = e.data;
      if (recv_q) received = e.data;
      for (DeviceId b = 0; b < K; ++b) {
        if (b == k) continue;
        if (send_q && crossing(q, k, b) >= 0) send.push_back({crossing(q, k, b), -t.transfer(e.data, k, b)});
        if (recv_q && U(q, b, k) >= 0) recv.push_back({U(q, b, k), -t.transfer(e.data, b, k)});
      }
    }
    if (send.size() > 3) m.add_row(fmt::format("psend_{}_{}", i, k), send, 0, kMilpInf);
    if (recv.size() > 2) m.add_row(fmt::format("precv_{}_{}", i, k), recv, 0, kMilpInf);
  }

  // Identical devices: device g[j+1] may take an operator only after g[j] took an earlier one (topo order).
  void symmetry_rows() {
    for (const auto& g : identical_device_groups(t))
      for (size_t j = 0; j + 1 < g.size(); ++j)
        for (int p = 0; p < n; ++p) {
          const OpId i = t.topo_order[static_cast<size_t>(p)];
          if (X(i, g[j + 1]) < 0) continue;
          Terms row{{X(i, g[j + 1]), 1}};
          for (int r = 0; r < p; ++r)
            if (X(t.topo_order[static_cast<size_t>(r)], g[j]) >= 0) row.push_back({X(t.topo_order[static_cast<size_t>(r)], g[j]), -1});
          m.add_row(fmt::format("sym_{}_{}", g[j + 1], p), row, -kMilpInf, 0);
        }
  }

  // Disjunctions. `act` holds the indicator terms (each 0/1) that must all be 1 for the pair to conflict.
  void disjunction(const std::string& tag, int sa, int fa, int sb, int fb, const Terms& act, int indicators, int o,
                   bool a_first) {
    const double nact = indicators;
    // Pair-specific big-M from the column bounds: the tightest that keeps the row inactive when it should be.
    auto big = [&](int s_col, int f_col) {
      return std::max(0.0, m.cols[static_cast<size_t>(f_col)].ub - m.cols[static_cast<size_t>(s_col)].lb) + slack;
    };
    const double m1 = big(sb, fa), m2 = big(sa, fb);
    if (o >= 0) {  // sb >= fa - M(1-o) - M(n - act);  sa >= fb - M o - M(n - act)
      Terms r1{{sb, 1}, {fa, -1}, {o, -m1}}, r2{{sa, 1}, {fb, -1}, {o, m2}};
      for (const auto& [c, v] : act) r1.push_back({c, -m1 * v}), r2.push_back({c, -m2 * v});
      m.add_row(tag + "_ab", r1, -m1 * (nact + 1), kMilpInf);
      m.add_row(tag + "_ba", r2, -m2 * nact, kMilpInf);
    } else {
      const double mf = a_first ? m1 : m2;
      Terms r{{a_first ? sb : sa, 1}, {a_first ? fa : fb, -1}};
      for (const auto& [c, v] : act) r.push_back({c, -mf * v});
      m.add_row(tag + "_fx", r, -mf * nact, kMilpInf);
    }
  }

  // The incumbent's order of two operators.
  bool op_first(OpId a, OpId b) const {
    return inc->finish[static_cast<size_t>(a)] <= inc->start[static_cast<size_t>(b)] || inc->start[static_cast<size_t>(a)] < inc->start[static_cast<size_t>(b)];
  }

  // LNS: the incumbent's order of the fixed operators on a device is a chain, so a fixed-order row is implied
  // (through the chain) unless the pair are neighbours in it, or the fixed one is the nearest fixed operator on
  // either side of a free one. This keeps a window's model proportional to the window, not to all pairs.
  void fixed_operator_chains() {
    chain_pos = fixed_chain_positions(n, [&](OpId i) { return is_free(i) ? kNone : inc->device[static_cast<size_t>(i)]; },
                                      inc->start, inc->finish);
    nearest_before.assign(static_cast<size_t>(n * K), kNone);
    nearest_after = nearest_before;
    for (OpId i = 0; i < n; ++i) {
      if (!is_free(i)) continue;
      for (OpId j = 0; j < n; ++j) {
        if (is_free(j) || is_near(j)) continue;
        const auto slot = static_cast<size_t>(i * K + inc->device[static_cast<size_t>(j)]);
        const int pj = chain_pos[static_cast<size_t>(j)];
        if (op_first(j, i)) {
          if (nearest_before[slot] == kNone || pj > chain_pos[static_cast<size_t>(nearest_before[slot])]) nearest_before[slot] = j;
        } else if (nearest_after[slot] == kNone || pj < chain_pos[static_cast<size_t>(nearest_after[slot])]) {
          nearest_after[slot] = j;
        }
      }
    }
  }

  bool implied(OpId a, OpId b) const {  // a fixed-order pair whose row other rows imply
    if (!is_free(a) && !is_free(b)) return std::abs(chain_pos[static_cast<size_t>(a)] - chain_pos[static_cast<size_t>(b)]) != 1;
    const OpId i = is_free(a) ? a : b, j = is_free(a) ? b : a;
    const auto slot = static_cast<size_t>(i * K + inc->device[static_cast<size_t>(j)]);
    return nearest_before[slot] != j && nearest_after[slot] != j;
  }

  // The pairs that may carry a row: all of them in the exact model; in a window, the near pairs with a free
  // operator, the neighbours in each device's chain, and each free operator's nearest fixed ones. Enumerating
  // only those keeps a window's build proportional to the window, not to n^2.
  std::vector<std::pair<int, int>> operator_candidates() const {
    std::vector<std::pair<int, int>> pairs;
    if (opt.relaxation) return pairs;  // no order rows at all
    if (!inc) {
      for (OpId a = 0; a < n; ++a)
        for (OpId b = a + 1; b < n; ++b) pairs.push_back({a, b});
      return pairs;
    }
    std::vector<OpId> near_ops, by_chain(static_cast<size_t>(n), kNone);
    for (OpId i = 0; i < n; ++i) {
      if (is_near(i)) near_ops.push_back(i);
      if (!is_free(i)) by_chain[static_cast<size_t>(chain_pos[static_cast<size_t>(i)])] = i;
    }
    for (size_t x = 0; x < near_ops.size(); ++x)
      for (size_t y = x + 1; y < near_ops.size(); ++y)
        if (is_free(near_ops[x]) || is_free(near_ops[y])) pairs.push_back({near_ops[x], near_ops[y]});
    for (size_t p = 1; p < by_chain.size() && by_chain[p] != kNone; ++p) pairs.push_back(std::minmax(by_chain[p - 1], by_chain[p]));
    for (OpId i = 0; i < n; ++i)
      for (DeviceId k = 0; is_free(i) && k < K; ++k)
        for (OpId j : {nearest_before[static_cast<size_t>(i * K + k)], nearest_after[static_cast<size_t>(i * K + k)]})
          if (j != kNone) pairs.push_back(std::minmax(i, j));
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    return pairs;
  }

  // Two operators on one device do not overlap: an order binary, or in a window the incumbent's order.
  void operator_order_rows() {
    for (const auto& [a, b] : operator_candidates()) {
      if (ordered(a, b) || ordered(b, a)) continue;
      std::vector<DeviceId> common;
      for (DeviceId k = 0; k < K; ++k)
        if (X(a, k) >= 0 && X(b, k) >= 0) common.push_back(k);
      if (common.empty()) continue;
      const bool binary = !inc || ((is_free(a) || is_free(b)) && is_near(a) && is_near(b));
      if (!binary && implied(a, b)) continue;
      Formulation::Pair pair{a, b, -1};
      bool a_first = true;
      if (binary) pair.col = m.add_col(fmt::format("o_{}_{}", a, b), 0, 1, true);
      else a_first = op_first(a, b);
      if (binary) f.op_pairs.push_back(pair);
      for (DeviceId k : common) {
        Terms act;
        if (is_free(a)) act.push_back({X(a, k), 1});
        if (is_free(b)) act.push_back({X(b, k), 1});
        disjunction(fmt::format("dj_{}_{}_{}", a, b, k), f.start[static_cast<size_t>(a)], f.finish[static_cast<size_t>(a)],
                    f.start[static_cast<size_t>(b)], f.finish[static_cast<size_t>(b)], act, static_cast<int>(act.size()), pair.col, a_first);
      }
    }
  }

  // Valid rows under port contention: the transfers out of one producer share its send port, the transfers
  // into one consumer share its receive port.
  void port_bound_rows() {
    std::vector<std::vector<int>> outs(static_cast<size_t>(n)), ins(static_cast<size_t>(n));
    for (int q = 0; q < E; ++q) outs[static_cast<size_t>(edge(q).from)].push_back(q), ins[static_cast<size_t>(edge(q).to)].push_back(q);
    for (OpId i = 0; i < n; ++i) {
      const auto si = static_cast<size_t>(i);
      if (outs[si].size() > 1) fan_out_row(i, outs[si]);
      if (ins[si].size() > 1) {  // S_j >= sum durations + min over producers (head + tmin)
        double before = std::numeric_limits<double>::infinity();
        Terms r{{f.start[si], 1}};
        for (int q : ins[si]) {
          const auto a = static_cast<size_t>(edge(q).from);
          before = std::min(before, head[a] + tmin[a]);
          r.push_back({f.comm_finish[static_cast<size_t>(q)], -1}), r.push_back({f.comm_start[static_cast<size_t>(q)], 1});
        }
        m.add_row(fmt::format("fanin_{}", i), r, before, kMilpInf);
      }
    }
  }

  // T >= F_i + sum of durations of i's transfers (each item once per destination) + min (tmin + tail).
  void fan_out_row(OpId i, const std::vector<int>& outs) {
    double after = std::numeric_limits<double>::infinity();
    Terms r{{f.makespan, 1}, {f.finish[static_cast<size_t>(i)], -1}};
    int charged = -1;
    for (int q : outs) {
      const auto& e = edge(q);
      after = std::min(after, tmin[static_cast<size_t>(e.to)] + tail[static_cast<size_t>(e.to)]);
      if (edge_ports) {  // the edge's own duration: 2 nonzeros instead of K^2
        r.push_back({f.comm_finish[static_cast<size_t>(q)], -1}), r.push_back({f.comm_start[static_cast<size_t>(q)], 1});
        continue;
      }
      if (e.data == charged) continue;
      charged = e.data;
      for (DeviceId a = 0; a < K; ++a)
        for (DeviceId b = 0; b < K; ++b)
          if (a != b && Y(e.data, a, b) >= 0) r.push_back({Y(e.data, a, b), -t.transfer(e.data, a, b)});
    }
    m.add_row(fmt::format("fanout_{}", i), r, after, kMilpInf);
  }

  // Transfer order on the ports: the members below are set by transfer_order_rows.
  std::vector<char> crosses;          // per edge: may cross devices
  std::vector<int> send_pos, recv_pos;  // per fixed edge: its place in its port's chain
  std::map<std::pair<int, int>, std::pair<int, int>> nearest_on_port;  // (edge, port) -> (before, after)

  bool fixed_edge(int q) const { return !is_free(edge(q).from) && !is_free(edge(q).to); }
  bool is_near_edge(int q) const { return is_near(edge(q).from) || is_near(edge(q).to); }
  // The incumbent's order of two transfers; edges of one transfer (equal times) by index, as in the chains.
  bool comm_first(int q, int r) const {
    const auto sq = static_cast<size_t>(q), sr = static_cast<size_t>(r);
    if (inc->comm_start[sq] == inc->comm_start[sr] && inc->comm_finish[sq] == inc->comm_finish[sr]) return q < r;
    return inc->comm_finish[sq] <= inc->comm_start[sr] || inc->comm_start[sq] < inc->comm_start[sr];
  }
  // Ports: indicator "edge q leaves k across devices" = x_from_k - u_q_k_k, "enters k" = x_to_k - u_q_k_k.
  int port_terms(int q, OpId end, DeviceId k, Terms& act) const {
    if (fixed_edge(q)) return 0;  // a constant 1 (checked by the caller)
    act.push_back({X(end, k), 1});
    if (U(q, k, k) >= 0) act.push_back({U(q, k, k), -1});
    return 1;
  }

  void transfer_order_rows() {
    crosses.assign(static_cast<size_t>(E), 0);
    for (int q = 0; q < E; ++q)
      for (DeviceId a = 0; a < K; ++a)
        for (DeviceId b = 0; b < K; ++b)
          if (a != b && U(q, a, b) >= 0) crosses[static_cast<size_t>(q)] = 1;
    if (inc) fixed_transfer_chains();
    for (const auto& [q, r] : transfer_candidates()) transfer_pair_rows(q, r);
  }

  // LNS: transfers fixed at both ends form a chain on each port; only neighbours need a row (as for operators).
  void fixed_transfer_chains() {
    auto port_of = [&](int q, bool send) {
      const DeviceId a = inc->device[static_cast<size_t>(edge(q).from)], b = inc->device[static_cast<size_t>(edge(q).to)];
      return fixed_edge(q) && a != b ? (send ? a : b) : kNone;
    };
    send_pos = fixed_chain_positions(E, [&](int q) { return port_of(q, true); }, inc->comm_start, inc->comm_finish);
    recv_pos = fixed_chain_positions(E, [&](int q) { return port_of(q, false); }, inc->comm_start, inc->comm_finish);
  }

  // Candidate pairs, as for operators: all in the exact model; in a window the near pairs with a free end, the
  // neighbours on each port's chain, and per transfer with a free end its nearest fixed non-near transfers on
  // each port (keyed by port: device * 2 + send).
  std::vector<std::pair<int, int>> transfer_candidates() {
    std::vector<std::pair<int, int>> pairs;
    if (!inc) {
      for (int q = 0; q < E; ++q)
        for (int r = q + 1; r < E; ++r) pairs.push_back({q, r});
      return pairs;
    }
    std::vector<int> near_edges, loose;
    for (int q = 0; q < E; ++q)
      if (crosses[static_cast<size_t>(q)] && is_near_edge(q)) near_edges.push_back(q);
    for (int q = 0; q < E; ++q)
      if (crosses[static_cast<size_t>(q)] && !fixed_edge(q)) loose.push_back(q);
    for (size_t x = 0; x < near_edges.size(); ++x)
      for (size_t y = x + 1; y < near_edges.size(); ++y)
        if (!fixed_edge(near_edges[x]) || !fixed_edge(near_edges[y])) pairs.push_back({near_edges[x], near_edges[y]});
    for (const auto* pos : {&send_pos, &recv_pos}) {
      std::vector<int> by_chain(static_cast<size_t>(E), -1);
      for (int q = 0; q < E; ++q)
        if ((*pos)[static_cast<size_t>(q)] >= 0) by_chain[static_cast<size_t>((*pos)[static_cast<size_t>(q)])] = q;
      for (size_t p = 1; p < by_chain.size() && by_chain[p] >= 0; ++p) pairs.push_back(std::minmax(by_chain[p - 1], by_chain[p]));
    }
    nearest_fixed_transfers(loose);
    for (const auto& [key, ends] : nearest_on_port)
      for (int r : {ends.first, ends.second})
        if (r >= 0) pairs.push_back(std::minmax(key.first, r));
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    return pairs;
  }

  // Per transfer with a free end (`loose`) and port, the nearest fixed non-near transfers before and after it.
  void nearest_fixed_transfers(const std::vector<int>& loose) {
    for (int r = 0; r < E; ++r) {
      if (!crosses[static_cast<size_t>(r)] || !fixed_edge(r) || is_near_edge(r)) continue;
      const DeviceId a = inc->device[static_cast<size_t>(edge(r).from)], b = inc->device[static_cast<size_t>(edge(r).to)];
      if (a == b) continue;
      for (int q : loose)
        for (const auto& [port, pos] : {std::pair{a * 2 + 1, &send_pos}, std::pair{b * 2, &recv_pos}}) {
          auto [it, fresh] = nearest_on_port.try_emplace({q, port}, std::pair{-1, -1});
          auto& [before, after] = it->second;
          const int pr = (*pos)[static_cast<size_t>(r)];
          if (comm_first(r, q)) {
            if (before < 0 || pr > (*pos)[static_cast<size_t>(before)]) before = r;
          } else if (after < 0 || pr < (*pos)[static_cast<size_t>(after)]) {
            after = r;
          }
        }
    }
  }

  // A fixed-order row between a transfer with a free end and a fixed one matters on a port only when the fixed
  // one is its nearest there (the port's chain implies the rest).
  bool nearest_there(int q, int r, DeviceId k, bool send) const {
    const int loose_end = fixed_edge(q) ? r : q, fixed = fixed_edge(q) ? q : r;
    const auto it = nearest_on_port.find({loose_end, k * 2 + (send ? 1 : 0)});
    return it != nearest_on_port.end() && (it->second.first == fixed || it->second.second == fixed);
  }

  // Two transfers on one port do not overlap: an order binary, or in a window the incumbent's order.
  void transfer_pair_rows(int q, int r) {
    if (!crosses[static_cast<size_t>(q)] || !crosses[static_cast<size_t>(r)]) return;
    const auto& eq = edge(q);
    const auto& er = edge(r);
    if (ordered(eq.to, er.from) || ordered(er.to, eq.from)) return;
    const bool fq = !fixed_edge(q), fr = !fixed_edge(r);
    const bool binary = !inc || ((fq || fr) && is_near_edge(q) && is_near_edge(r));
    // Two edges of one item are one transfer when their consumers share a device (tied by G, no row), else
    // two transfers from one send port; never on one receive port. With two devices they always share.
    const bool same_item = eq.data == er.data, both_fixed = !fq && !fr;
    if (same_item && (K < 3 || (both_fixed && inc->device[static_cast<size_t>(eq.to)] == inc->device[static_cast<size_t>(er.to)])))
      return;
    std::vector<std::pair<DeviceId, bool>> ports;  // (device, is_send)
    for (DeviceId k = 0; k < K; ++k) {
      if (X(eq.from, k) >= 0 && X(er.from, k) >= 0) ports.push_back({k, true});
      if (!same_item && X(eq.to, k) >= 0 && X(er.to, k) >= 0) ports.push_back({k, false});
    }
    if (ports.empty()) return;
    Formulation::Pair pair{q, r, -1};
    bool q_first = true;
    if (binary) pair.col = m.add_col(fmt::format("p_{}_{}", q, r), 0, 1, true), f.comm_pairs.push_back(pair);
    else q_first = comm_first(q, r);
    auto rows = [&](const std::string& tag, const Terms& act, int indicators) {
      disjunction(tag, f.comm_start[static_cast<size_t>(q)], f.comm_finish[static_cast<size_t>(q)],
                  f.comm_start[static_cast<size_t>(r)], f.comm_finish[static_cast<size_t>(r)], act, indicators, pair.col, q_first);
    };
    for (const auto& [k, send] : ports) {
      Terms act;
      int indicators = port_terms(q, send ? eq.from : eq.to, k, act);
      indicators += port_terms(r, send ? er.from : er.to, k, act);
      // Fixed on both ends and not crossing: never on a port.
      if (!fq && inc->device[static_cast<size_t>(eq.from)] == inc->device[static_cast<size_t>(eq.to)]) continue;
      if (!fr && inc->device[static_cast<size_t>(er.from)] == inc->device[static_cast<size_t>(er.to)]) continue;
      const auto& pos = send ? send_pos : recv_pos;
      if (!binary && both_fixed && std::abs(pos[static_cast<size_t>(q)] - pos[static_cast<size_t>(r)]) != 1) continue;
      if (!binary && fq != fr && !nearest_there(q, r, k, send)) continue;
      if (!same_item || both_fixed) {
        rows(fmt::format("pt_{}_{}_{}{}", q, r, send ? "s" : "r", k), act, indicators);
        continue;
      }
      for (DeviceId b = 0; b < K; ++b) {  // active when q goes k -> b and r from k to another device
        if (b == k || U(q, k, b) < 0) continue;
        Terms apart{{U(q, k, b), 1}};
        for (DeviceId c = 0; c < K; ++c)
          if (c != k && c != b && U(r, k, c) >= 0) apart.push_back({U(r, k, c), 1});
        if (apart.size() > 1) rows(fmt::format("pt_{}_{}_s{}_{}", q, r, k, b), apart, 2);
      }
    }
  }
};

}  // namespace

Expected<Formulation> build_formulation(const CostTable& t, const FormulationOptions& opt) {
  return Builder(t, opt).build();
}

std::vector<double> plan_to_values(const Formulation& f, const MilpPlan& p) {
  const int K = f.num_devices;
  const int n = static_cast<int>(f.start.size()), E = static_cast<int>(f.edges.size());
  std::vector<double> v(static_cast<size_t>(f.model.num_cols()), 0);
  auto set = [&](int col, double val) {
    if (col >= 0) v[static_cast<size_t>(col)] = val;
  };
  for (OpId i = 0; i < n; ++i) {
    const auto s = static_cast<size_t>(i);
    set(f.x[static_cast<size_t>(i * K + p.device[s])], 1);
    set(f.start[s], p.start[s]);
    set(f.finish[s], p.finish[s]);
  }
  for (int q = 0; q < E; ++q) {
    const auto& e = f.edges[static_cast<size_t>(q)];
    const DeviceId a = p.device[static_cast<size_t>(e.from)], b = p.device[static_cast<size_t>(e.to)];
    set(f.comm_start[static_cast<size_t>(q)], p.comm_start[static_cast<size_t>(q)]);
    set(f.comm_finish[static_cast<size_t>(q)], p.comm_finish[static_cast<size_t>(q)]);
    set(f.cross[static_cast<size_t>(q)], a != b ? 1 : 0);
    set(f.u[static_cast<size_t>((q * K + a) * K + b)], 1);
    if (!f.y.empty() && a != b) set(f.y[static_cast<size_t>((e.data * K + a) * K + b)], 1);
  }
  // A tie with no consumer on its device sits at its lower bound; else at its transfer's start.
  for (int g : f.tie)
    if (g >= 0) set(g, f.model.cols[static_cast<size_t>(g)].lb);
  for (int q = 0; q < E; ++q) {
    const auto& e = f.edges[static_cast<size_t>(q)];
    set(f.tie[static_cast<size_t>(e.data * K + p.device[static_cast<size_t>(e.to)])], p.comm_start[static_cast<size_t>(q)]);
  }
  for (const auto& pr : f.op_pairs)
    set(pr.col, p.finish[static_cast<size_t>(pr.a)] <= p.start[static_cast<size_t>(pr.b)] + 1e-9 ? 1 : 0);
  for (const auto& pr : f.comm_pairs)
    set(pr.col, p.comm_finish[static_cast<size_t>(pr.a)] <= p.comm_start[static_cast<size_t>(pr.b)] + 1e-9 ? 1 : 0);
  set(f.makespan, p.makespan);
  // Reserves: the largest working set placed on each device.
  for (OpId i = 0; i < n; ++i) {
    const int r = f.reserve[static_cast<size_t>(p.device[static_cast<size_t>(i)])];
    if (r >= 0) v[static_cast<size_t>(r)] = std::max(v[static_cast<size_t>(r)], f.working_set[static_cast<size_t>(i)]);
  }
  return v;
}

MilpPlan values_to_plan(const Formulation& f, const std::vector<double>& v) {
  const int K = f.num_devices;
  const int n = static_cast<int>(f.start.size()), E = static_cast<int>(f.edges.size());
  MilpPlan p;
  for (OpId i = 0; i < n; ++i) {
    DeviceId best = 0;
    double bv = -1;
    for (DeviceId k = 0; k < K; ++k) {
      const int c = f.x[static_cast<size_t>(i * K + k)];
      if (c >= 0 && v[static_cast<size_t>(c)] > bv) bv = v[static_cast<size_t>(c)], best = k;
    }
    p.device.push_back(best);
    p.start.push_back(v[static_cast<size_t>(f.start[static_cast<size_t>(i)])]);
    p.finish.push_back(v[static_cast<size_t>(f.finish[static_cast<size_t>(i)])]);
  }
  for (int q = 0; q < E; ++q) {
    p.comm_start.push_back(v[static_cast<size_t>(f.comm_start[static_cast<size_t>(q)])]);
    p.comm_finish.push_back(v[static_cast<size_t>(f.comm_finish[static_cast<size_t>(q)])]);
  }
  p.makespan = v[static_cast<size_t>(f.makespan)];
  return p;
}

}  // namespace moirai
