// Contraction of a cost table (moirai/coarsen.h): the --max-nodes step for profiled instances, and the levels of
// the MILP's multilevel solve. Works on the table alone, so it applies wherever there is no graph.
#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "moirai/coarsen.h"

namespace moirai {

namespace {

// The operators as a graph of groups that merge pairwise: chains first, then light edges, never a cycle, never
// a group heavier than the largest device holds.
struct Grouping {
  const CostTable& t;
  const int n;
  std::vector<std::set<int>> succ, pred;
  std::vector<std::vector<OpId>> members;  // per group head; empty once merged into another
  std::vector<double> light, params;       // per group: fastest time, parameter bytes
  double room = 0;                         // the largest capacity: a group must fit some device (0: unlimited)
  std::vector<int> stamp;
  int visit = 0;

  explicit Grouping(const CostTable& table)
      : t(table), n(table.num_ops()), succ(static_cast<size_t>(n)), pred(static_cast<size_t>(n)),
        members(static_cast<size_t>(n)), light(static_cast<size_t>(n)), params(static_cast<size_t>(n)),
        stamp(static_cast<size_t>(n), 0) {
    const int K = t.num_devices();
    for (const auto& d : t.data)
      for (OpId c : d.consumers)
        if (c != d.producer) succ[static_cast<size_t>(d.producer)].insert(c), pred[static_cast<size_t>(c)].insert(d.producer);
    for (double c : t.capacity) room = c <= 0 || room < 0 ? -1 : std::max(room, c);
    for (OpId i = 0; i < n; ++i) {
      members[static_cast<size_t>(i)] = {i};
      params[static_cast<size_t>(i)] = t.param_bytes[static_cast<size_t>(i)];
      double best = std::numeric_limits<double>::infinity();
      for (DeviceId k = 0; k < K; ++k) best = std::min(best, t.time(i, k));
      light[static_cast<size_t>(i)] = K > 0 ? best : 0;
    }
  }

  // A path u -> ... -> v other than the edge itself: merging u and v would then close a cycle.
  bool other_path(int u, int v) {
    ++visit;
    std::vector<int> stack;
    for (int w : succ[static_cast<size_t>(u)])
      if (w != v) stack.push_back(w), stamp[static_cast<size_t>(w)] = visit;
    while (!stack.empty()) {
      const int w = stack.back();
      stack.pop_back();
      for (int x : succ[static_cast<size_t>(w)]) {
        if (x == v) return true;
        if (stamp[static_cast<size_t>(x)] != visit) stamp[static_cast<size_t>(x)] = visit, stack.push_back(x);
      }
    }
    return false;
  }

  void merge(int u, int v) {  // v into u
    for (int w : succ[static_cast<size_t>(v)]) {
      pred[static_cast<size_t>(w)].erase(v);
      if (w != u) pred[static_cast<size_t>(w)].insert(u), succ[static_cast<size_t>(u)].insert(w);
    }
    for (int w : pred[static_cast<size_t>(v)]) {
      succ[static_cast<size_t>(w)].erase(v);
      if (w != u) succ[static_cast<size_t>(w)].insert(u), pred[static_cast<size_t>(u)].insert(w);
    }
    succ[static_cast<size_t>(u)].erase(v);
    succ[static_cast<size_t>(v)].clear(), pred[static_cast<size_t>(v)].clear();
    auto& mu = members[static_cast<size_t>(u)];
    auto& mv = members[static_cast<size_t>(v)];
    mu.insert(mu.end(), mv.begin(), mv.end());
    mv.clear();
    light[static_cast<size_t>(u)] += light[static_cast<size_t>(v)];
    params[static_cast<size_t>(u)] += params[static_cast<size_t>(v)];
  }

  // Merges until `target` groups remain or no pair may merge.
  void contract(int target) {
    int count = n;
    while (count > target) {
      // Chains first (always safe, remove no parallelism), then the lightest pairs; one matching per round keeps
      // the groups' sizes even.
      std::vector<std::tuple<int, double, int, int>> cand;
      for (int u = 0; u < n; ++u)
        for (int v : succ[static_cast<size_t>(u)]) {
          const int kind = succ[static_cast<size_t>(u)].size() == 1 && pred[static_cast<size_t>(v)].size() == 1 ? 0
                           : succ[static_cast<size_t>(u)].size() == 1 || pred[static_cast<size_t>(v)].size() == 1 ? 1 : 2;
          cand.emplace_back(kind, light[static_cast<size_t>(u)] + light[static_cast<size_t>(v)], u, v);
        }
      std::sort(cand.begin(), cand.end());
      std::vector<char> used(static_cast<size_t>(n), 0);
      int merged = 0;
      for (const auto& [kind, weight, u, v] : cand) {
        if (count <= target) break;
        if (used[static_cast<size_t>(u)] || used[static_cast<size_t>(v)]) continue;
        if (room > 0 && params[static_cast<size_t>(u)] + params[static_cast<size_t>(v)] > room) continue;
        if (kind == 2 && other_path(u, v)) continue;
        merge(u, v);
        used[static_cast<size_t>(u)] = used[static_cast<size_t>(v)] = 1;
        --count, ++merged;
      }
      if (merged == 0) break;
    }
  }
};

// Coarse operators, one per group, in the topological order of their first member.
void coarse_operators(const CostTable& t, std::vector<std::vector<OpId>>& members, Contraction& c) {
  const int n = t.num_ops(), K = t.num_devices();
  std::vector<int> pos(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) pos[static_cast<size_t>(t.topo_order[static_cast<size_t>(p)])] = p;
  std::vector<std::pair<int, int>> heads;  // (first position, head)
  for (int u = 0; u < n; ++u) {
    auto& m = members[static_cast<size_t>(u)];
    if (m.empty()) continue;
    std::sort(m.begin(), m.end(), [&](OpId a, OpId b) { return pos[static_cast<size_t>(a)] < pos[static_cast<size_t>(b)]; });
    heads.push_back({pos[static_cast<size_t>(m.front())], u});
  }
  std::sort(heads.begin(), heads.end());
  CostTable& ct = c.table;
  for (const auto& [first, u] : heads) {
    const auto& m = members[static_cast<size_t>(u)];
    const OpId g = ct.num_ops();
    ct.op_names.push_back(m.size() == 1 ? t.op_names[static_cast<size_t>(m[0])]
                                        : fmt::format("{}+{}", t.op_names[static_cast<size_t>(m[0])], m.size() - 1));
    ct.op_types.push_back(m.size() == 1 ? t.op_types[static_cast<size_t>(m[0])] : "Group");
    ct.op_origin.emplace_back();
    double p = 0, flops = 0;
    std::vector<double> time(static_cast<size_t>(K), 0);
    for (OpId i : m) {
      c.group[static_cast<size_t>(i)] = g;
      const auto& o = t.op_origin[static_cast<size_t>(i)];
      ct.op_origin.back().insert(ct.op_origin.back().end(), o.begin(), o.end());
      p += t.param_bytes[static_cast<size_t>(i)];
      flops += t.flops[static_cast<size_t>(i)];
      for (DeviceId k = 0; k < K; ++k) time[static_cast<size_t>(k)] += t.time(i, k);
    }
    ct.time_ms.insert(ct.time_ms.end(), time.begin(), time.end());
    ct.param_bytes.push_back(p);
    ct.flops.push_back(flops);
  }
}

// Tensors with the same producer group and the same reader groups travel as one bundle (bytes and transfer
// times add up): between two groups there is then one item, not one per tensor, which keeps a coarse level's
// exact model small.
void coarse_data(const CostTable& t, Contraction& c) {
  CostTable& ct = c.table;
  std::map<std::pair<OpId, std::vector<OpId>>, size_t> bundle;
  for (const auto& d : t.data) {
    const OpId gp = c.group[static_cast<size_t>(d.producer)];
    std::set<OpId> readers;
    for (OpId r : d.consumers)
      if (c.group[static_cast<size_t>(r)] != gp) readers.insert(c.group[static_cast<size_t>(r)]);
    if (!d.consumers.empty() && readers.empty()) continue;  // lives inside its group
    std::vector<OpId> to(readers.begin(), readers.end());
    const auto [it, fresh] = bundle.try_emplace({gp, to}, ct.data.size());
    if (fresh) {
      DataItem item = d;
      item.producer = gp;
      item.consumers = std::move(to);
      ct.data.push_back(std::move(item));
      continue;
    }
    DataItem& item = ct.data[it->second];
    item.bytes += d.bytes;
    for (size_t x = 0; x < item.transfer_ms.size(); ++x) item.transfer_ms[x] += d.transfer_ms[x];
  }
}

}  // namespace

Contraction contract_table(const CostTable& t, int target) {
  Grouping grouping(t);
  grouping.contract(target);
  Contraction c;
  c.group.assign(static_cast<size_t>(t.num_ops()), kNone);
  c.table = t.with_devices_only();
  coarse_operators(t, grouping.members, c);
  coarse_data(t, c);
  const auto status = c.table.finalize();
  MOIRAI_CHECK(status.ok(), "contract_table: " + (status.ok() ? std::string() : status.error().message));
  return c;
}

}  // namespace moirai
