// Public ordering API: peak memory of an order, the baseline orders (file, DFS, BFS, greedy) and BTSearch
// with partitioning at cut operators (HMCOS-style hierarchy, exact because every valid order runs the parts
// in sequence). Time is split among the parts that need a search in proportion to their size; parts whose
// greedy order already meets a proven lower bound of the whole problem are not searched at all.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "memory_problem.h"
#include "moirai/schedule.h"
#include "search.h"

namespace moirai {
namespace {

using sched::Clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::vector<OpId> to_global(const sched::MemProblem& p, const std::vector<int>& local) {
  std::vector<OpId> out;
  out.reserve(local.size());
  for (int i : local) out.push_back(p.ops[static_cast<size_t>(i)]);
  return out;
}

/// The problem for an order's own operator set, and the order in local indices.
std::pair<sched::MemProblem, std::vector<int>> problem_of_order(const CostTable& table,
                                                                const std::vector<OpId>& order,
                                                                const MemoryModel& model) {
  auto p = sched::build_problem(table, sched::resolve_ops(table, order), model);
  std::vector<int> local(static_cast<size_t>(table.num_ops()), -1);
  for (int i = 0; i < p.size(); ++i) local[static_cast<size_t>(p.ops[static_cast<size_t>(i)])] = i;
  std::vector<int> lorder;
  for (OpId o : order) lorder.push_back(local[static_cast<size_t>(o)]);
  MOIRAI_CHECK(sched::is_valid_order(p, lorder), "the order is not a topological order of its operators");
  return {std::move(p), std::move(lorder)};
}

OrderResult baseline(const char* method, const CostTable& table, const std::vector<OpId>& ops,
                     const MemoryModel& model, bool use_greedy, sched::ReadyPolicy policy) {
  const auto start = Clock::now();
  const auto p = sched::build_problem(table, sched::resolve_ops(table, ops), model);
  const auto order = use_greedy ? sched::greedy(p) : sched::kahn_order(p, policy);
  OrderResult r;
  r.method = method;
  r.peak_bytes = sched::peak_of(p, order);
  r.order = to_global(p, order);
  r.time_s = seconds_since(start);
  return r;
}

}  // namespace

std::vector<double> order_memory_profile(const CostTable& table, const std::vector<OpId>& order,
                                         const MemoryModel& model) {
  if (order.empty()) return {};
  const auto [p, local] = problem_of_order(table, order, model);
  return sched::step_memory(p, local);
}

double order_peak_memory(const CostTable& table, const std::vector<OpId>& order, const MemoryModel& model) {
  const auto mem = order_memory_profile(table, order, model);
  return mem.empty() ? 0.0 : *std::max_element(mem.begin(), mem.end());
}

bool is_topological_order(const CostTable& table, const std::vector<OpId>& ops, const std::vector<OpId>& order) {
  const auto set = sched::resolve_ops(table, ops);
  if (order.size() != set.size()) return false;
  std::vector<int> local(static_cast<size_t>(table.num_ops()), -1);
  for (size_t i = 0; i < set.size(); ++i) local[static_cast<size_t>(set[i])] = static_cast<int>(i);
  std::vector<int> lorder;
  for (OpId o : order) {
    if (o < 0 || o >= table.num_ops() || local[static_cast<size_t>(o)] < 0) return false;
    lorder.push_back(local[static_cast<size_t>(o)]);
  }
  return sched::is_valid_order(sched::build_problem(table, set, {}), lorder);
}

OrderResult file_order(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model) {
  return baseline("file", table, ops, model, false, sched::ReadyPolicy::SmallestIndex);
}
OrderResult dfs_order(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model) {
  return baseline("dfs", table, ops, model, false, sched::ReadyPolicy::Stack);
}
OrderResult bfs_order(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model) {
  return baseline("bfs", table, ops, model, false, sched::ReadyPolicy::Queue);
}
OrderResult greedy_order(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model) {
  return baseline("greedy", table, ops, model, true, sched::ReadyPolicy::SmallestIndex);
}

std::vector<std::vector<OpId>> order_parts(const CostTable& table, const std::vector<OpId>& ops) {
  const auto p = sched::build_problem(table, sched::resolve_ops(table, ops), {});
  std::vector<std::vector<OpId>> out;
  for (const auto& part : sched::cut_parts(p)) out.push_back(to_global(p, part));
  return out;
}

namespace {

/// BTSearch on a built problem; the result's order is in the problem's local indices.
OrderResult btsearch_local(const sched::MemProblem& whole, const SearchOptions& options, Clock::time_point start) {
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(std::max(0.0, options.time_limit_s)));
  std::vector<std::vector<int>> groups;
  if (options.partition) {
    groups = sched::cut_parts(whole);
  } else {
    groups.assign(1, sched::kahn_order(whole, sched::ReadyPolicy::SmallestIndex));
  }
  if (whole.size() == 0) groups.clear();
  const auto parts = sched::split_problem(whole, groups);
  const size_t np = parts.size();

  // Seeds: the best of the greedy, file, DFS and BFS orders of each part; bounds from the largest footprints.
  std::vector<sched::SearchOutcome> best(np);
  double target = 0;  // a proven lower bound on the peak of any order of the whole set
  for (size_t j = 0; j < np; ++j) {
    best[j].order = sched::greedy(parts[j]);
    best[j].peak = sched::peak_of(parts[j], best[j].order);
    for (auto policy : {sched::ReadyPolicy::SmallestIndex, sched::ReadyPolicy::Stack, sched::ReadyPolicy::Queue}) {
      auto order = sched::kahn_order(parts[j], policy);
      const double peak = sched::peak_of(parts[j], order);
      if (peak < best[j].peak) {
        best[j].order = std::move(order);
        best[j].peak = peak;
      }
    }
    const auto fp = sched::op_footprints(parts[j]);
    best[j].lower_bound = fp.empty() ? 0.0 : *std::max_element(fp.begin(), fp.end());
    best[j].proven = best[j].peak <= best[j].lower_bound;
    target = std::max(target, best[j].lower_bound);
  }

  // Search the parts with the highest peaks first: their proven optima raise the target for the others.
  std::vector<size_t> todo(np);
  std::iota(todo.begin(), todo.end(), size_t{0});
  std::stable_sort(todo.begin(), todo.end(), [&](size_t a, size_t b) { return best[a].peak > best[b].peak; });
  double weight_left = 0;
  for (size_t j : todo) weight_left += parts[j].size();
  long long states = 0;
  for (size_t j : todo) {
    const double weight = parts[j].size();
    if (best[j].peak <= target || best[j].proven) {
      best[j].proven = true;
      weight_left -= weight;
      continue;
    }
    const auto now = Clock::now();
    const auto share = std::chrono::duration_cast<Clock::duration>((deadline - now) * (weight / weight_left));
    weight_left -= weight;
    auto outcome = sched::exact_search(parts[j], best[j].order, target, now + std::max(share, Clock::duration{}),
                                       options.max_memo_states);
    states += outcome.states;
    best[j] = std::move(outcome);
    target = std::max(target, best[j].lower_bound);
  }

  OrderResult r;
  r.method = "btsearch";
  r.parts = static_cast<int>(np);
  r.states = states;
  std::vector<int> local;
  double max_part = 0, bound = 0;
  bool all_proven = true;
  for (size_t j = 0; j < np; ++j) {
    for (int i : best[j].order) local.push_back(groups[j][static_cast<size_t>(i)]);
    max_part = std::max(max_part, best[j].peak);
    bound = std::max(bound, best[j].lower_bound);
    all_proven = all_proven && best[j].proven;
  }
  MOIRAI_CHECK(sched::is_valid_order(whole, local), "concatenated part orders are not a topological order");
  r.peak_bytes = sched::peak_of(whole, local);
  MOIRAI_CHECK(std::abs(r.peak_bytes - max_part) <= 1e-9 * std::max(1.0, r.peak_bytes),
               "peak of the concatenation differs from the parts' peaks");
  r.order = std::move(local);
  r.optimal = all_proven || r.peak_bytes <= bound;
  r.lower_bound = r.optimal ? r.peak_bytes : bound;
  r.time_s = seconds_since(start);
  return r;
}

/// Every field of the ordering problem that its peak depends on, as bytes: equal keys, equal problems (local
/// indices follow the sorted operator ids, so one key maps to one local order).
std::string fingerprint(const sched::MemProblem& p, const SearchOptions& o) {
  std::string key;
  auto put = [&key](const auto& v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(o.time_limit_s), put(o.partition), put(o.memory.in_place), put(o.memory.sent_outputs_until_end);
  put(p.base), put(p.size());
  for (int i = 0; i < p.size(); ++i) {
    put(p.saving[static_cast<size_t>(i)]);
    put(p.preds[static_cast<size_t>(i)].size());
    for (int q : p.preds[static_cast<size_t>(i)]) put(q);
  }
  put(p.items.size());
  for (const auto& item : p.items) {
    put(item.bytes), put(item.at_start), put(item.at_end), put(item.users.size());
    for (int u : item.users) put(u);
  }
  return key;
}

}  // namespace

OrderResult btsearch(const CostTable& table, const std::vector<OpId>& ops, const SearchOptions& options) {
  const auto start = Clock::now();
  const auto whole = sched::build_problem(table, sched::resolve_ops(table, ops), options.memory);
  OrderResult r = btsearch_local(whole, options, start);
  r.order = to_global(whole, r.order);
  return r;
}

OrderResult OrderCache::btsearch(const CostTable& table, const std::vector<OpId>& ops, const SearchOptions& options) {
  const auto start = Clock::now();
  const auto whole = sched::build_problem(table, sched::resolve_ops(table, ops), options.memory);
  std::string key = fingerprint(whole, options);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    if (entries_.size() >= kMaxEntries) entries_.clear();  // bounds memory; a long search rarely revisits old sets
    it = entries_.emplace(std::move(key), btsearch_local(whole, options, start)).first;
  } else {
    ++hits_;
  }
  OrderResult r = it->second;
  r.order = to_global(whole, r.order);
  r.time_s = seconds_since(start);
  return r;
}

MemoryOrders memory_orders(const CostTable& table, const Placement& placement,
                           const std::vector<std::vector<OpId>>& current, const std::vector<char>& search,
                           const SearchOptions& options, OrderCache* cache) {
  const int k = table.num_devices();
  MOIRAI_CHECK(static_cast<int>(current.size()) == k && static_cast<int>(search.size()) == k,
               "memory_orders: one current order and one search flag per device");
  std::vector<std::vector<OpId>> ops_on(static_cast<size_t>(k));
  for (OpId op : table.topo_order) ops_on[static_cast<size_t>(placement.device[static_cast<size_t>(op)])].push_back(op);
  MemoryOrders out;
  out.peak_bytes.assign(static_cast<size_t>(k), 0.0);
  out.lower_bound.assign(static_cast<size_t>(k), 0.0);
  std::vector<std::vector<OpId>> orders(static_cast<size_t>(k));
  for (DeviceId d = 0; d < k; ++d) {
    const auto& ops = ops_on[static_cast<size_t>(d)];
    if (ops.empty()) continue;
    if (!search[static_cast<size_t>(d)]) {
      orders[static_cast<size_t>(d)] = current[static_cast<size_t>(d)];
      continue;
    }
    OrderResult r = cache ? cache->btsearch(table, ops, options) : btsearch(table, ops, options);
    out.peak_bytes[static_cast<size_t>(d)] = r.peak_bytes;
    out.lower_bound[static_cast<size_t>(d)] = r.lower_bound;
    orders[static_cast<size_t>(d)] = std::move(r.order);
  }
  out.order = merge_device_orders(table, orders);
  return out;
}

std::vector<OrderResult> compare_orders(const CostTable& table, const std::vector<OpId>& ops,
                                        const SearchOptions& options) {
  return {file_order(table, ops, options.memory), dfs_order(table, ops, options.memory),
          bfs_order(table, ops, options.memory), greedy_order(table, ops, options.memory),
          btsearch(table, ops, options)};
}

std::vector<std::vector<OpId>> merge_device_orders(const CostTable& table, const std::vector<std::vector<OpId>>& orders) {
  // Each device's order is a projection of one global topological order, so every chain edge and every data
  // edge points forward in it: the union is acyclic and the simulator can always run some device's next operator.
  const size_t k = orders.size();
  std::vector<int> waiting(static_cast<size_t>(table.num_ops()));  // predecessors not merged yet
  for (OpId op = 0; op < table.num_ops(); ++op) waiting[static_cast<size_t>(op)] = static_cast<int>(table.predecessors(op).size());
  std::vector<char> merged(static_cast<size_t>(table.num_ops()), 0);
  std::vector<size_t> head(k, 0);  // first operator of each order not merged yet
  std::vector<std::vector<OpId>> out(k);
  auto ready = [&](size_t d, size_t i) {
    const auto op = static_cast<size_t>(orders[d][i]);
    return !merged[op] && waiting[op] == 0;
  };
  size_t total = 0;
  for (const auto& order : orders) total += order.size();
  for (size_t step = 0; step < total; ++step) {
    size_t best_d = k, best_i = 0;
    for (size_t d = 0; d < k && best_d == k; ++d)
      if (head[d] < orders[d].size() && ready(d, head[d])) best_d = d, best_i = head[d];
    if (best_d == k)  // every device waits on another: run the ready operator that jumps the fewest in its order
      for (size_t d = 0; d < k; ++d)
        for (size_t i = head[d]; i < orders[d].size() && (best_d == k || i - head[d] < best_i - head[best_d]); ++i)
          if (ready(d, i)) {
            best_d = d, best_i = i;
            break;
          }
    MOIRAI_CHECK(best_d < k, "merge_device_orders: the orders do not list every operator once");
    const OpId op = orders[best_d][best_i];
    merged[static_cast<size_t>(op)] = 1;
    out[best_d].push_back(op);
    for (OpId s : table.successors(op)) --waiting[static_cast<size_t>(s)];
    while (head[best_d] < orders[best_d].size() && merged[static_cast<size_t>(orders[best_d][head[best_d]])]) ++head[best_d];
  }
  return out;
}

}  // namespace moirai
