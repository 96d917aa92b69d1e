// m-SCT: memory-constrained Small Communication Time scheduling.
// Follows Baechi (Jeon et al., SoCC 2020), built on the SCT algorithm of Hanen and Munier (1995): solve the LP
// relaxation of "each operator has at most one favourite child and at most one favourite parent; an edge i->j
// costs its communication time unless j is i's favourite child":
//     min w   s.t.  s_i + p_i + c_ij x_ij <= s_j,   sum_j x_ij >= |succ(i)| - 1,   sum_i x_ij >= |pred(j)| - 1,
//                   s_i + p_i <= w,   0 <= x_ij <= 1,   s_i >= 0
// (CLP); an edge is a favourite-child edge when x_ij <= 0.1 (Baechi rounds x_ij - t + 1/2 to the nearest
// integer with threshold t, default 0.1 in its placer flags; 0 = favourite). Then m-ETF runs with SCT's two rules
// (place::run_etf): a device is kept for the favourite child of the operator it ran last while that child is
// ready, not placed, and starts there no later than on any other device; another operator may start on a kept
// device only from its urgent time, the latest of its earliest starts over the devices it fits on.
// Departures:
//  - heterogeneous devices: the LP uses mean operator times and mean transfer times (over device pairs); the
//    schedule uses each device's own times (Baechi assumed identical devices);
//  - a rounding that gives a parent several favourite children, or a child several favourite parents, keeps the
//    edge with the smallest x (ties: smaller ids) instead of Baechi's last-edge-wins;
//  - the makespan rows s_i + p_i <= w are written only for operators without successors (the others follow);
//  - LP size and time: above kMaxLpColumns columns, past 80% of the time limit, or if CLP fails, the favourite
//    child is chosen greedily instead:
//    edges by decreasing mean transfer time, an edge taken when its parent has no favourite child and its child
//    no favourite parent (the LP's aim is to keep expensive edges local);
//  - "ready" is the list scheduler's (all predecessors placed), not Baechi's event simulation (all finished);
//  - ports and memory as in m-ETF.
#include <algorithm>
#include <chrono>
#include <map>

#include "list_schedule.h"
#include "lp.h"
#include "placers.h"

namespace moirai {
namespace {

// CLP's dual simplex on this LP grows about quadratically: ~0.5 s CPU at 3,000 operators (~8,000 columns),
// ~4 s at 10,000; the limit keeps m-SCT under 2 s on 10,000 operators.
constexpr int kMaxLpColumns = 12000;
constexpr double kThreshold = 0.1;  // Baechi's sct_threshold flag default

struct OpEdge {
  OpId src, dst;
  double comm;  // mean transfer time summed over the data items from src to dst
};

std::vector<OpEdge> op_edges(const CostTable& table) {
  std::map<std::pair<OpId, OpId>, double> sum;
  for (size_t i = 0; i < table.data.size(); ++i) {
    const double c = place::mean_transfer(table, static_cast<int>(i));
    for (OpId consumer : table.data[i].consumers) sum[{table.data[i].producer, consumer}] += c;
  }
  std::vector<OpEdge> edges;
  for (const auto& [key, c] : sum) edges.push_back({key.first, key.second, c});
  return edges;
}

// Keeps at most one favourite child per parent and one favourite parent per child, preferring small weight.
std::vector<OpId> pick_favourites(int num_ops, const std::vector<OpEdge>& edges, const std::vector<double>& weight,
                                  const std::vector<size_t>& candidates) {
  std::vector<size_t> order = candidates;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return weight[a] < weight[b]; });
  std::vector<OpId> favourite(static_cast<size_t>(num_ops), kNone);
  std::vector<char> has_parent(static_cast<size_t>(num_ops), 0);
  for (size_t e : order) {
    const auto& edge = edges[e];
    if (favourite[static_cast<size_t>(edge.src)] != kNone || has_parent[static_cast<size_t>(edge.dst)]) continue;
    favourite[static_cast<size_t>(edge.src)] = edge.dst;
    has_parent[static_cast<size_t>(edge.dst)] = 1;
  }
  return favourite;
}

class MsctPlacer final : public Placer {
 public:
  std::string name() const override { return "m-sct"; }
  std::string summary() const override {
    return "m-SCT (Baechi 2020): m-ETF plus favourite children from the SCT LP relaxation (CLP)";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    const int n = table.num_ops();
    const auto edges = op_edges(table);
    const auto t0 = std::chrono::steady_clock::now();
    place::EtfRules rules;
    rules.mode = "lp";
    rules.favourite = lp_favourites(table, edges, 0.8 * options.time_limit_s);  // ETF gets the rest
    if (rules.favourite.empty()) {
      rules.mode = "greedy favourite children (LP too large or not solved)";
      std::vector<double> weight(edges.size());
      std::vector<size_t> all(edges.size());
      for (size_t e = 0; e < edges.size(); ++e) weight[e] = -edges[e].comm, all[e] = e;
      rules.favourite = pick_favourites(n, edges, weight, all);
    }
    rules.spent_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return place::run_etf(table, options, rules, name());
  }

 private:
  static std::vector<OpId> lp_favourites(const CostTable& table, const std::vector<OpEdge>& edges, double limit_s) {
    const int n = table.num_ops();
    if (static_cast<int>(edges.size()) + n + 1 > kMaxLpColumns) return {};
    place::LinearProgram lp;
    std::vector<int> x(edges.size()), s(static_cast<size_t>(n));
    for (size_t e = 0; e < edges.size(); ++e) x[e] = lp.add_column(0, 1, 0);
    for (int i = 0; i < n; ++i) s[static_cast<size_t>(i)] = lp.add_column(0, place::kLpInf, 0);
    const int w = lp.add_column(0, place::kLpInf, 1);
    std::vector<std::vector<std::pair<int, double>>> out(static_cast<size_t>(n)), in(static_cast<size_t>(n));
    for (size_t e = 0; e < edges.size(); ++e) {
      const auto& edge = edges[e];
      lp.add_row({{s[static_cast<size_t>(edge.src)], 1}, {s[static_cast<size_t>(edge.dst)], -1}, {x[e], edge.comm}},
                 -place::kLpInf, -place::mean_time(table, edge.src));
      out[static_cast<size_t>(edge.src)].push_back({x[e], 1});
      in[static_cast<size_t>(edge.dst)].push_back({x[e], 1});
    }
    for (int i = 0; i < n; ++i) {
      const auto& o = out[static_cast<size_t>(i)];
      const auto& p = in[static_cast<size_t>(i)];
      if (o.size() > 1) lp.add_row(o, static_cast<double>(o.size()) - 1, place::kLpInf);
      if (p.size() > 1) lp.add_row(p, static_cast<double>(p.size()) - 1, place::kLpInf);
      if (o.empty()) lp.add_row({{s[static_cast<size_t>(i)], 1}, {w, -1}}, -place::kLpInf, -place::mean_time(table, i));
    }
    const auto solution = lp.solve(limit_s);
    if (!solution.optimal) return {};
    std::vector<double> weight(edges.size());
    std::vector<size_t> chosen;
    for (size_t e = 0; e < edges.size(); ++e) {
      weight[e] = solution.x[static_cast<size_t>(x[e])];
      if (weight[e] <= kThreshold) chosen.push_back(e);
    }
    return pick_favourites(n, edges, weight, chosen);
  }
};

}  // namespace

std::unique_ptr<Placer> make_msct_placer() { return std::make_unique<MsctPlacer>(); }

}  // namespace moirai
