// Multilevel solve (milp_multilevel.h): contraction of a cost table, projection of a plan one level finer, and
// the driver that solves the coarsest level exactly and improves each finer one by local search.
#include "milp_multilevel.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

namespace moirai {

std::optional<MilpPlan> project_plan(const CostTable& fine, const std::vector<MilpEdge>& fine_edges,
                                     const Contraction& c, const MilpPlan& coarse, bool contention) {
  const int n = fine.num_ops();
  std::vector<DeviceId> device(static_cast<size_t>(n));
  std::vector<double> op_key(static_cast<size_t>(n)), edge_key;
  for (OpId i = 0; i < n; ++i) {
    const auto g = static_cast<size_t>(c.group[static_cast<size_t>(i)]);
    device[static_cast<size_t>(i)] = coarse.device[g];
    op_key[static_cast<size_t>(i)] = coarse.start[g];  // members keep their topological order (the tie-break)
  }
  for (const auto& e : fine_edges) edge_key.push_back(coarse.finish[static_cast<size_t>(c.group[static_cast<size_t>(e.from)])]);
  return evaluate_milp_plan(fine, fine_edges, device, op_key, edge_key, contention);
}

namespace {

// The coarse plan that runs each group where most of its members' time ran in the fine plan.
std::optional<MilpPlan> lift_plan(const CostTable& fine, const Contraction& c, const MilpPlan& plan, bool contention) {
  const CostTable& ct = c.table;
  const int K = fine.num_devices();
  std::vector<std::vector<double>> share(static_cast<size_t>(ct.num_ops()), std::vector<double>(static_cast<size_t>(K), 0));
  std::vector<double> key(static_cast<size_t>(ct.num_ops()), std::numeric_limits<double>::infinity());
  for (OpId i = 0; i < fine.num_ops(); ++i) {
    const auto g = static_cast<size_t>(c.group[static_cast<size_t>(i)]);
    const DeviceId k = plan.device[static_cast<size_t>(i)];
    share[g][static_cast<size_t>(k)] += fine.time(i, k) + 1e-12;
    key[g] = std::min(key[g], plan.start[static_cast<size_t>(i)]);
  }
  std::vector<DeviceId> device;
  for (const auto& s : share) device.push_back(static_cast<DeviceId>(std::max_element(s.begin(), s.end()) - s.begin()));
  // A group's members may start both before and after another group's: order groups by a topological sort that
  // takes the earliest-starting ready group first, so that no device order contradicts a precedence.
  std::vector<int> indeg(static_cast<size_t>(ct.num_ops()), 0);
  for (OpId g = 0; g < ct.num_ops(); ++g) indeg[static_cast<size_t>(g)] = static_cast<int>(ct.predecessors(g).size());
  std::set<std::pair<double, OpId>> ready;
  for (OpId g = 0; g < ct.num_ops(); ++g)
    if (indeg[static_cast<size_t>(g)] == 0) ready.insert({key[static_cast<size_t>(g)], g});
  for (int rank = 0; !ready.empty(); ++rank) {
    const OpId g = ready.begin()->second;
    ready.erase(ready.begin());
    key[static_cast<size_t>(g)] = rank;
    for (OpId s : ct.successors(g))
      if (--indeg[static_cast<size_t>(s)] == 0) ready.insert({key[static_cast<size_t>(s)], s});
  }
  const auto edges = milp_edges(ct);
  std::vector<double> edge_key;
  for (const auto& e : edges) edge_key.push_back(key[static_cast<size_t>(e.from)]);
  return evaluate_milp_plan(ct, edges, device, key, edge_key, contention);
}

}  // namespace

std::optional<MilpPlan> milp_multilevel(const CostTable& t, const MilpPlan& incumbent, const PlaceOptions& options,
                                        double seconds, int coarsest, const ExactSolve& exact,
                                        std::vector<LevelResult>& levels) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  auto left = [&] { return seconds - std::chrono::duration<double>(Clock::now() - t0).count(); };
  const bool contention = options.sim.contention;
  // Levels: halve the operator count until the coarsest size (a deque keeps references stable).
  std::deque<Contraction> chain;
  std::vector<const CostTable*> tables{&t};
  while (tables.back()->num_ops() > coarsest) {
    if (left() <= 0) return std::nullopt;  // contraction is not free on big graphs: keep the promise
    const int now = tables.back()->num_ops();
    chain.push_back(contract_table(*tables.back(), std::max(coarsest, now / 2)));
    if (chain.back().table.num_ops() >= now) {
      chain.pop_back();
      break;
    }
    tables.push_back(&chain.back().table);
  }
  if (chain.empty()) return std::nullopt;
  // The incumbent, lifted level by level, starts the exact solve (and gives its big-M).
  std::optional<MilpPlan> plan = incumbent;
  for (size_t j = 0; j < chain.size() && plan; ++j) plan = lift_plan(*tables[j], chain[j], *plan, contention);
  const CostTable& top = *tables.back();
  if (!plan || !fits_memory_reserve(top, plan->device)) return std::nullopt;
  plan = improve_milp_plan(top, milp_edges(top), *plan, contention, 0.1 * left(), options.seed);
  auto [solved, status] = exact(top, *plan, 0.6 * left());
  if (!solved) return std::nullopt;
  plan = solved;
  levels.push_back({top.num_ops(), plan->makespan, status});
  for (size_t j = chain.size(); j-- > 0;) {
    const CostTable& finer = *tables[j];
    const auto edges = milp_edges(finer);
    plan = project_plan(finer, edges, chain[j], *plan, contention);
    if (!plan || !fits_memory_reserve(finer, plan->device)) return std::nullopt;
    plan = improve_milp_plan(finer, edges, *plan, contention, left() / static_cast<double>(j + 1), options.seed);
    levels.push_back({finer.num_ops(), plan->makespan, "local search"});
  }
  return plan;
}

}  // namespace moirai
