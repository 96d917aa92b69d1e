// GETF: Generalized Earliest Time First.
// Follows Su, Ren, Vardi, Wierman, "Communication-aware scheduling of precedence-constrained tasks on related
// machines" (2020/2023): machines are grouped by speed in geometric classes; an LP relaxation assigns every task
// fractionally to the speed groups, with precedence and communication delays and the load of each group; the
// assignment is rounded and ETF then schedules every task on a machine of its group.
// This version:
//  - speed of a device = (least total operator time over devices) / (its own total operator time); groups are
//    powers-of-two buckets of that speed (group g holds speeds in (2^-(g+1), 2^-g]);
//  - LP (CLP): x_jk >= 0 with sum_k x_jk = 1; completion C_j >= C_i + c_ij + sum_k p_jk x_jk on every edge
//    (c_ij = mean transfer time), C_j >= sum_k p_jk x_jk, C_j <= C on operators without successors, and
//    sum_j p_jk x_jk <= m_k C for each group of m_k devices; minimise C. p_jk is the mean of the operator's own
//    times on the group's devices (the paper's related machines have p_j / s_k; measured tables need not);
//  - rounding (the paper's threshold rounding, after Chudak and Shmoys): with groups in speed order, fastest
//    first, an operator goes to the first group whose cumulative share x_j1 + ... + x_jk reaches 1/2, so its time
//    there is at most twice its fractional time in the LP (place::getf_group);
//  - ETF restricted to the group, non-insertion, ports and memory as in m-ETF; an operator whose group has no
//    device with room may go on any device with room;
//  - LP size and time: above kMaxLpColumns columns, past 80% of the time limit, or if CLP fails, every operator
//    goes to one group, the one that minimises max(longest path with that group's times and mean transfers, group load / group size) (the
//    best integral LP solution of that form).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "list_schedule.h"
#include "lp.h"
#include "placers.h"

namespace moirai {
namespace {

// CLP takes ~0.2 s CPU at 9,000 columns (3,000 operators, 2 groups) and ~2.6 s at 30,000 (10,000 operators);
// the limit keeps GETF under 2 s on 10,000 operators.
constexpr int kMaxLpColumns = 16000;

class GetfPlacer final : public Placer {
 public:
  std::string name() const override { return "getf"; }
  std::string summary() const override {
    return "GETF (Su et al.): speed groups, LP assignment of operators to groups (CLP), ETF within groups";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    const auto t0 = std::chrono::steady_clock::now();
    const int n = table.num_ops(), k = table.num_devices();
    // Speed groups.
    std::vector<double> total(static_cast<size_t>(k), 0.0);
    for (OpId op = 0; op < n; ++op)
      for (DeviceId d = 0; d < k; ++d) total[static_cast<size_t>(d)] += table.time(op, d);
    const double best = k > 0 ? *std::min_element(total.begin(), total.end()) : 0.0;
    std::vector<int> bucket(static_cast<size_t>(k), 0);
    for (DeviceId d = 0; d < k; ++d) {
      const double t = total[static_cast<size_t>(d)];
      bucket[static_cast<size_t>(d)] = (best > 0 && t > 0) ? static_cast<int>(std::floor(std::log2(t / best) + 1e-9)) : 0;
    }
    std::vector<int> levels = bucket;
    std::sort(levels.begin(), levels.end());
    levels.erase(std::unique(levels.begin(), levels.end()), levels.end());
    std::vector<int> group_of(static_cast<size_t>(k));
    const int groups = static_cast<int>(levels.size());
    std::vector<std::vector<DeviceId>> members(static_cast<size_t>(groups));
    for (DeviceId d = 0; d < k; ++d) {
      const int g = static_cast<int>(std::lower_bound(levels.begin(), levels.end(), bucket[static_cast<size_t>(d)]) - levels.begin());
      group_of[static_cast<size_t>(d)] = g;
      members[static_cast<size_t>(g)].push_back(d);
    }
    // p[op][g]: mean time of the operator on the group's devices.
    std::vector<double> p(static_cast<size_t>(n * std::max(groups, 1)), 0.0);
    for (OpId op = 0; op < n; ++op)
      for (int g = 0; g < groups; ++g) {
        double sum = 0;
        for (DeviceId d : members[static_cast<size_t>(g)]) sum += table.time(op, d);
        p[static_cast<size_t>(op * groups + g)] = sum / static_cast<double>(members[static_cast<size_t>(g)].size());
      }

    std::vector<int> assign;
    place::EtfRules rules;
    rules.mode = "lp";
    if (groups <= 1) {
      assign.assign(static_cast<size_t>(n), 0);
      rules.mode = "one speed group";
    } else {
      assign = lp_assign(table, p, members, 0.8 * options.time_limit_s);  // ETF gets the rest
      if (assign.empty()) {
        rules.mode = "one-group assignment (LP too large or not solved)";
        assign = greedy_assign(table, p, members);
      }
    }
    rules.allowed = [&](OpId op, DeviceId d) {
      return group_of[static_cast<size_t>(d)] == assign[static_cast<size_t>(op)];
    };
    rules.spent_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return place::run_etf(table, options, rules, name());
  }

 private:
  static std::vector<int> lp_assign(const CostTable& table, const std::vector<double>& p,
                                    const std::vector<std::vector<DeviceId>>& members, double limit_s) {
    const int n = table.num_ops(), groups = static_cast<int>(members.size());
    if (n * (groups + 1) + 1 > kMaxLpColumns) return {};
    place::LinearProgram lp;
    std::vector<int> x(static_cast<size_t>(n * groups)), c(static_cast<size_t>(n));
    for (auto& col : x) col = lp.add_column(0, 1, 0);
    for (auto& col : c) col = lp.add_column(0, place::kLpInf, 0);
    const int makespan = lp.add_column(0, place::kLpInf, 1);
    auto proc = [&](OpId j) {  // sum_k p_jk x_jk as terms with coefficient sign
      std::vector<std::pair<int, double>> terms;
      for (int g = 0; g < groups; ++g) terms.push_back({x[static_cast<size_t>(j * groups + g)], -p[static_cast<size_t>(j * groups + g)]});
      return terms;
    };
    std::map<std::pair<OpId, OpId>, double> comm;
    for (size_t i = 0; i < table.data.size(); ++i) {
      const double m = place::mean_transfer(table, static_cast<int>(i));
      for (OpId consumer : table.data[i].consumers) {
        double& v = comm[{table.data[i].producer, consumer}];
        v = std::max(v, m);
      }
    }
    std::vector<char> has_succ(static_cast<size_t>(n), 0);
    for (const auto& [edge, cij] : comm) {
      auto terms = proc(edge.second);
      terms.push_back({c[static_cast<size_t>(edge.second)], 1});
      terms.push_back({c[static_cast<size_t>(edge.first)], -1});
      lp.add_row(terms, cij, place::kLpInf);
      has_succ[static_cast<size_t>(edge.first)] = 1;
    }
    for (OpId j = 0; j < n; ++j) {
      std::vector<std::pair<int, double>> one;
      for (int g = 0; g < groups; ++g) one.push_back({x[static_cast<size_t>(j * groups + g)], 1});
      lp.add_row(one, 1, 1);
      auto terms = proc(j);
      terms.push_back({c[static_cast<size_t>(j)], 1});
      lp.add_row(terms, 0, place::kLpInf);
      if (!has_succ[static_cast<size_t>(j)]) lp.add_row({{c[static_cast<size_t>(j)], 1}, {makespan, -1}}, -place::kLpInf, 0);
    }
    for (int g = 0; g < groups; ++g) {
      std::vector<std::pair<int, double>> load;
      for (OpId j = 0; j < n; ++j) load.push_back({x[static_cast<size_t>(j * groups + g)], p[static_cast<size_t>(j * groups + g)]});
      load.push_back({makespan, -static_cast<double>(members[static_cast<size_t>(g)].size())});
      lp.add_row(load, -place::kLpInf, 0);
    }
    const auto solution = lp.solve(limit_s);
    if (!solution.optimal) return {};
    std::vector<int> assign(static_cast<size_t>(n), 0);
    std::vector<double> share(static_cast<size_t>(groups));
    for (OpId j = 0; j < n; ++j) {
      for (int g = 0; g < groups; ++g)
        share[static_cast<size_t>(g)] = solution.x[static_cast<size_t>(x[static_cast<size_t>(j * groups + g)])];
      assign[static_cast<size_t>(j)] = place::getf_group(share);
    }
    return assign;
  }

  // Fallback for large graphs: the best integral solution of the LP among "everything in one group": the
  // group minimising max(longest path with its times and mean transfers, its load / its size).
  static std::vector<int> greedy_assign(const CostTable& table, const std::vector<double>& p,
                                        const std::vector<std::vector<DeviceId>>& members) {
    const int groups = static_cast<int>(members.size());
    std::vector<double> comm(table.data.size());
    for (size_t i = 0; i < comm.size(); ++i) comm[i] = place::mean_transfer(table, static_cast<int>(i));
    int best = 0;
    double best_v = 0;
    for (int g = 0; g < groups; ++g) {
      std::vector<double> done(static_cast<size_t>(table.num_ops()), 0.0);
      double path = 0, load = 0;
      for (OpId j : table.topo_order) {
        double start = 0;
        for (int data : table.op_inputs[static_cast<size_t>(j)])
          start = std::max(start, done[static_cast<size_t>(table.data[static_cast<size_t>(data)].producer)] +
                                      comm[static_cast<size_t>(data)]);
        const double pj = p[static_cast<size_t>(j * groups + g)];
        done[static_cast<size_t>(j)] = start + pj;
        path = std::max(path, start + pj);
        load += pj;
      }
      const double v = std::max(path, load / static_cast<double>(members[static_cast<size_t>(g)].size()));
      if (g == 0 || v < best_v) best = g, best_v = v;
    }
    return std::vector<int>(static_cast<size_t>(table.num_ops()), best);
  }
};

}  // namespace

int place::getf_group(const std::vector<double>& share) {
  double cumulative = 0;
  for (size_t g = 0; g < share.size(); ++g) {
    cumulative += share[g];
    if (cumulative >= 0.5 - 1e-9) return static_cast<int>(g);  // tolerance: LP shares of exactly 1/2
  }
  return static_cast<int>(share.size()) - 1;
}

std::unique_ptr<Placer> make_getf_placer() { return std::make_unique<GetfPlacer>(); }

}  // namespace moirai
