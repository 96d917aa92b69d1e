// Builds the internal ordering problem from a cost table, evaluates orders under the memory model of
// include/moirai/schedule.h, and splits a problem at cut operators (the hierarchical step of HMCOS, DAC 2022,
// reduced to its exact case: a cut operator is comparable with every other operator, so all valid orders
// run the parts in sequence and the peak of the whole is the maximum of the parts' peaks).
#include "memory_problem.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <numeric>
#include <queue>
#include <set>
#include <string>

#include "moirai/op_traits.h"

namespace moirai::sched {
namespace {

/// Whether the operator's output may take over the buffer of an input (moirai/op_traits.h).
bool works_in_place(const std::string& type) {
  const OpTraits* traits = find_op_traits(type);
  return traits && traits->in_place;
}

}  // namespace

std::vector<OpId> resolve_ops(const CostTable& table, const std::vector<OpId>& ops) {
  std::vector<OpId> out = ops;
  if (out.empty()) {
    out.resize(static_cast<size_t>(table.num_ops()));
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  std::sort(out.begin(), out.end());
  MOIRAI_CHECK(std::adjacent_find(out.begin(), out.end()) == out.end(), "operator listed twice");
  MOIRAI_CHECK(out.front() >= 0 && out.back() < table.num_ops(), "operator id out of range");
  return out;
}

MemProblem build_problem(const CostTable& table, const std::vector<OpId>& ops, const MemoryModel& model) {
  MemProblem p;
  p.ops = ops;
  const int n = table.num_ops(), m = p.size();
  std::vector<int> local(static_cast<size_t>(n), -1);
  for (int i = 0; i < m; ++i) local[static_cast<size_t>(ops[static_cast<size_t>(i)])] = i;
  const bool whole = m == n;

  for (int i = 0; i < m; ++i) p.base += table.param_bytes[static_cast<size_t>(ops[static_cast<size_t>(i)])];

  // Items and direct local edges; global successor lists for the transitive edges of a subset.
  std::vector<std::vector<OpId>> global_preds(static_cast<size_t>(whole ? 0 : n));
  std::vector<std::set<int>> preds(static_cast<size_t>(m));
  for (const auto& d : table.data) {
    MOIRAI_CHECK(d.producer >= 0 && d.producer < n, "data item '" + d.name + "' has no valid producer");
    const int prod = local[static_cast<size_t>(d.producer)];
    MemItem item;
    item.bytes = d.bytes;
    std::vector<int> local_consumers;
    for (OpId c : d.consumers) {
      if (!whole) global_preds[static_cast<size_t>(c)].push_back(d.producer);
      const int lc = local[static_cast<size_t>(c)];
      if (lc < 0) continue;
      local_consumers.push_back(lc);
      if (prod >= 0 && lc != prod) preds[static_cast<size_t>(lc)].insert(prod);
    }
    if (prod >= 0) item.users.push_back(prod);
    item.users.insert(item.users.end(), local_consumers.begin(), local_consumers.end());
    if (item.users.empty()) continue;
    std::sort(item.users.begin(), item.users.end());
    item.users.erase(std::unique(item.users.begin(), item.users.end()), item.users.end());
    if (prod >= 0 && local_consumers.empty()) item.at_end = d.consumers.empty() || model.sent_outputs_until_end;
    p.items.push_back(std::move(item));
  }

  // A subset also inherits precedence through operators outside it: walk back from each operator through
  // outside operators to the nearest operators of the set.
  if (!whole) {
    std::vector<int> seen(static_cast<size_t>(n), -1);
    for (int i = 0; i < m; ++i) {
      std::vector<OpId> stack(global_preds[static_cast<size_t>(ops[static_cast<size_t>(i)])]);
      while (!stack.empty()) {
        const OpId g = stack.back();
        stack.pop_back();
        if (seen[static_cast<size_t>(g)] == i) continue;
        seen[static_cast<size_t>(g)] = i;
        const int l = local[static_cast<size_t>(g)];
        if (l >= 0) {
          if (l != i) preds[static_cast<size_t>(i)].insert(l);
          continue;
        }
        for (OpId q : global_preds[static_cast<size_t>(g)]) stack.push_back(q);
      }
    }
  }
  p.preds.resize(static_cast<size_t>(m));
  p.succs.resize(static_cast<size_t>(m));
  for (int i = 0; i < m; ++i) {
    p.preds[static_cast<size_t>(i)].assign(preds[static_cast<size_t>(i)].begin(), preds[static_cast<size_t>(i)].end());
    for (int q : p.preds[static_cast<size_t>(i)]) p.succs[static_cast<size_t>(q)].push_back(i);
  }

  p.op_items.resize(static_cast<size_t>(m));
  for (int d = 0; d < static_cast<int>(p.items.size()); ++d)
    for (int u : p.items[static_cast<size_t>(d)].users) p.op_items[static_cast<size_t>(u)].push_back(d);

  p.saving.assign(static_cast<size_t>(m), 0.0);
  if (model.in_place) {
    // Outputs: items whose first user is their (local) producer; distinguish them from received copies.
    std::vector<std::vector<int>> produced(static_cast<size_t>(m));
    std::vector<int> single_reader(p.items.size(), -1);
    {
      int d = 0;
      for (const auto& item : table.data) {
        const int prod = local[static_cast<size_t>(item.producer)];
        const bool kept = prod >= 0 || std::any_of(item.consumers.begin(), item.consumers.end(),
                                                     [&](OpId c) { return local[static_cast<size_t>(c)] >= 0; });
        if (!kept) continue;
        if (prod >= 0) produced[static_cast<size_t>(prod)].push_back(d);
        if (prod >= 0 && item.consumers.size() == 1 && local[static_cast<size_t>(item.consumers[0])] >= 0)
          single_reader[static_cast<size_t>(d)] = local[static_cast<size_t>(item.consumers[0])];
        ++d;
      }
    }
    for (int i = 0; i < m; ++i) {
      if (!works_in_place(table.op_types[static_cast<size_t>(ops[static_cast<size_t>(i)])])) continue;
      if (produced[static_cast<size_t>(i)].size() != 1) continue;
      const double out = p.items[static_cast<size_t>(produced[static_cast<size_t>(i)][0])].bytes;
      for (int d : p.op_items[static_cast<size_t>(i)]) {
        const auto& item = p.items[static_cast<size_t>(d)];
        if (single_reader[static_cast<size_t>(d)] == i && !item.at_end && item.bytes >= out) {
          p.saving[static_cast<size_t>(i)] = out;
          break;
        }
      }
    }
  }
  return p;
}

std::vector<double> step_memory(const MemProblem& p, const std::vector<int>& order) {
  const int m = p.size();
  MOIRAI_CHECK(static_cast<int>(order.size()) == m, "order does not list every operator");
  std::vector<int> pos(static_cast<size_t>(m), -1);
  for (int k = 0; k < m; ++k) pos[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
  std::vector<double> diff(static_cast<size_t>(m) + 1, 0.0);
  for (const auto& item : p.items) {
    int lo = m, hi = -1;
    for (int u : item.users) {
      lo = std::min(lo, pos[static_cast<size_t>(u)]);
      hi = std::max(hi, pos[static_cast<size_t>(u)]);
    }
    if (item.at_start) lo = 0;
    if (item.at_end) hi = m - 1;
    diff[static_cast<size_t>(lo)] += item.bytes;
    diff[static_cast<size_t>(hi) + 1] -= item.bytes;
  }
  std::vector<double> mem(static_cast<size_t>(m));
  double live = 0;
  for (int k = 0; k < m; ++k) {
    live += diff[static_cast<size_t>(k)];
    mem[static_cast<size_t>(k)] = p.base + live - p.saving[static_cast<size_t>(order[static_cast<size_t>(k)])];
  }
  return mem;
}

double peak_of(const MemProblem& p, const std::vector<int>& order) {
  const auto mem = step_memory(p, order);
  return mem.empty() ? 0.0 : *std::max_element(mem.begin(), mem.end());
}

bool is_valid_order(const MemProblem& p, const std::vector<int>& order) {
  const int m = p.size();
  if (static_cast<int>(order.size()) != m) return false;
  std::vector<int> pos(static_cast<size_t>(m), -1);
  for (int k = 0; k < m; ++k) {
    const int o = order[static_cast<size_t>(k)];
    if (o < 0 || o >= m || pos[static_cast<size_t>(o)] >= 0) return false;
    pos[static_cast<size_t>(o)] = k;
  }
  for (int i = 0; i < m; ++i)
    for (int q : p.preds[static_cast<size_t>(i)])
      if (pos[static_cast<size_t>(q)] > pos[static_cast<size_t>(i)]) return false;
  return true;
}

std::vector<int> kahn_order(const MemProblem& p, ReadyPolicy policy) {
  const int m = p.size();
  std::vector<int> waiting(static_cast<size_t>(m));
  for (int i = 0; i < m; ++i) waiting[static_cast<size_t>(i)] = static_cast<int>(p.preds[static_cast<size_t>(i)].size());
  std::vector<int> order;
  order.reserve(static_cast<size_t>(m));
  std::priority_queue<int, std::vector<int>, std::greater<>> heap;
  std::deque<int> list;  // stack (back) or queue (front)
  auto push = [&](int i) {
    if (policy == ReadyPolicy::SmallestIndex) heap.push(i);
    else list.push_back(i);
  };
  auto release = [&](int v) {
    const auto& s = p.succs[static_cast<size_t>(v)];
    // A stack pops the last pushed: push in descending order so the smallest ready successor runs first.
    if (policy == ReadyPolicy::Stack) {
      for (auto it = s.rbegin(); it != s.rend(); ++it)
        if (--waiting[static_cast<size_t>(*it)] == 0) push(*it);
    } else {
      for (int c : s)
        if (--waiting[static_cast<size_t>(c)] == 0) push(c);
    }
  };
  if (policy == ReadyPolicy::Stack) {
    for (int i = m - 1; i >= 0; --i)
      if (waiting[static_cast<size_t>(i)] == 0) push(i);
  } else {
    for (int i = 0; i < m; ++i)
      if (waiting[static_cast<size_t>(i)] == 0) push(i);
  }
  while (!heap.empty() || !list.empty()) {
    int v;
    if (policy == ReadyPolicy::SmallestIndex) {
      v = heap.top();
      heap.pop();
    } else if (policy == ReadyPolicy::Stack) {
      v = list.back();
      list.pop_back();
    } else {
      v = list.front();
      list.pop_front();
    }
    order.push_back(v);
    release(v);
  }
  MOIRAI_CHECK(static_cast<int>(order.size()) == m, "operator graph has a cycle");
  return order;
}

std::vector<std::vector<int>> cut_parts(const MemProblem& p) {
  const int m = p.size();
  const auto order = kahn_order(p, ReadyPolicy::SmallestIndex);
  // v at position k is a cut when it is the only sink of the prefix ending at k (every earlier operator
  // reaches it) and the only source of the suffix starting at k (it reaches every later operator).
  std::vector<int> pos(static_cast<size_t>(m));
  for (int k = 0; k < m; ++k) pos[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
  std::vector<char> sole_sink(static_cast<size_t>(m), 0), sole_source(static_cast<size_t>(m), 0);
  std::vector<int> inner(static_cast<size_t>(m), 0);
  int count = 0;
  for (int k = 0; k < m; ++k) {
    const int v = order[static_cast<size_t>(k)];
    for (int q : p.preds[static_cast<size_t>(v)])
      if (inner[static_cast<size_t>(q)]++ == 0) --count;
    ++count;
    sole_sink[static_cast<size_t>(k)] = count == 1;
  }
  std::fill(inner.begin(), inner.end(), 0);
  count = 0;
  for (int k = m - 1; k >= 0; --k) {
    const int v = order[static_cast<size_t>(k)];
    for (int s : p.succs[static_cast<size_t>(v)])
      if (inner[static_cast<size_t>(s)]++ == 0) --count;
    ++count;
    sole_source[static_cast<size_t>(k)] = count == 1;
  }
  std::vector<std::vector<int>> parts(1);
  for (int k = 0; k < m; ++k) {
    parts.back().push_back(order[static_cast<size_t>(k)]);
    if (sole_sink[static_cast<size_t>(k)] && sole_source[static_cast<size_t>(k)] && k + 1 < m) parts.emplace_back();
  }
  if (parts.back().empty()) parts.pop_back();
  return parts;
}

std::vector<MemProblem> split_problem(const MemProblem& p, const std::vector<std::vector<int>>& parts) {
  const int np = static_cast<int>(parts.size());
  std::vector<int> part_of(static_cast<size_t>(p.size()), -1), index(static_cast<size_t>(p.size()), -1);
  std::vector<MemProblem> out(static_cast<size_t>(np));
  for (int j = 0; j < np; ++j) {
    auto& sub = out[static_cast<size_t>(j)];
    const auto& ops = parts[static_cast<size_t>(j)];
    for (int k = 0; k < static_cast<int>(ops.size()); ++k) {
      part_of[static_cast<size_t>(ops[static_cast<size_t>(k)])] = j;
      index[static_cast<size_t>(ops[static_cast<size_t>(k)])] = k;
      sub.ops.push_back(p.ops[static_cast<size_t>(ops[static_cast<size_t>(k)])]);
      sub.saving.push_back(p.saving[static_cast<size_t>(ops[static_cast<size_t>(k)])]);
    }
    sub.preds.resize(ops.size());
    sub.succs.resize(ops.size());
    sub.op_items.resize(ops.size());
    sub.base = p.base;
  }
  for (int i = 0; i < p.size(); ++i)
    for (int q : p.preds[static_cast<size_t>(i)]) {
      const int j = part_of[static_cast<size_t>(i)];
      MOIRAI_CHECK(part_of[static_cast<size_t>(q)] <= j, "parts are not in precedence order");
      if (part_of[static_cast<size_t>(q)] != j) continue;  // satisfied by running the parts in sequence
      out[static_cast<size_t>(j)].preds[static_cast<size_t>(index[static_cast<size_t>(i)])].push_back(
          index[static_cast<size_t>(q)]);
      out[static_cast<size_t>(j)].succs[static_cast<size_t>(index[static_cast<size_t>(q)])].push_back(
          index[static_cast<size_t>(i)]);
    }
  for (auto& sub : out) {
    for (auto& v : sub.preds) std::sort(v.begin(), v.end());
    for (auto& v : sub.succs) std::sort(v.begin(), v.end());
  }
  // Items: live across whole parts between their first and last part (folded into those parts' bases),
  // split into one piece per part that uses them.
  std::vector<double> spanning(static_cast<size_t>(np) + 1, 0.0);
  for (const auto& item : p.items) {
    std::vector<std::pair<int, int>> by_part;  // (part, index in part)
    for (int u : item.users) by_part.emplace_back(part_of[static_cast<size_t>(u)], index[static_cast<size_t>(u)]);
    std::sort(by_part.begin(), by_part.end());
    const int first = item.at_start ? -1 : by_part.front().first;
    const int last = item.at_end ? np : by_part.back().first;
    for (int j = std::max(first, 0); j <= std::min(last, np - 1); ++j) {
      const bool used = std::binary_search(by_part.begin(), by_part.end(), std::pair<int, int>{j, -1},
                                           [](auto a, auto b) { return a.first < b.first; });
      if (!used) continue;
      MemItem piece;
      piece.bytes = item.bytes;
      piece.at_start = first < j;
      piece.at_end = last > j;
      for (const auto& [part, k] : by_part)
        if (part == j) piece.users.push_back(k);
      std::sort(piece.users.begin(), piece.users.end());
      auto& sub = out[static_cast<size_t>(j)];
      for (int k : piece.users) sub.op_items[static_cast<size_t>(k)].push_back(static_cast<int>(sub.items.size()));
      sub.items.push_back(std::move(piece));
    }
    // Parts strictly inside (first, last) that do not use the item hold it throughout.
    for (int j = std::max(first + 1, 0); j <= std::min(last - 1, np - 1); ++j) {
      const bool used = std::any_of(by_part.begin(), by_part.end(), [&](auto& b) { return b.first == j; });
      if (!used) out[static_cast<size_t>(j)].base += item.bytes;
    }
  }
  return out;
}

std::vector<double> op_footprints(const MemProblem& p) {
  double through = 0;  // live at every step
  for (const auto& item : p.items)
    if (item.at_start && item.at_end) through += item.bytes;
  std::vector<double> fp(static_cast<size_t>(p.size()));
  for (int i = 0; i < p.size(); ++i) {
    double sum = p.base + through - p.saving[static_cast<size_t>(i)];
    for (int d : p.op_items[static_cast<size_t>(i)]) {
      const auto& item = p.items[static_cast<size_t>(d)];
      if (!(item.at_start && item.at_end)) sum += item.bytes;
    }
    fp[static_cast<size_t>(i)] = sum;
  }
  return fp;
}

}  // namespace moirai::sched
