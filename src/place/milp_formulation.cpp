// Builds the Moirai MILP (see milp_formulation.h for the paper and the departures) and the MILP's own
// semi-active schedule model used to turn heuristic plans into complete MIP starts.
#include "milp_formulation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace moirai {
namespace {

bool fits(double need, double cap) { return cap <= 0 || need <= cap * (1 + 1e-12); }

// Fastest time of each op over the devices that can hold its parameters.
std::vector<double> fastest(const CostTable& t) {
  std::vector<double> m(static_cast<size_t>(t.num_ops()), 0);
  for (OpId i = 0; i < t.num_ops(); ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (DeviceId k = 0; k < t.num_devices(); ++k)
      if (fits(t.param_bytes[static_cast<size_t>(i)], t.capacity[static_cast<size_t>(k)])) best = std::min(best, t.time(i, k));
    m[static_cast<size_t>(i)] = std::isfinite(best) ? best : 0;
  }
  return m;
}

// head[i]: earliest start with fastest times and free transfers; tail[i]: longest path after i finishes.
void heads_tails(const CostTable& t, const std::vector<double>& tmin, std::vector<double>& head,
                 std::vector<double>& tail) {
  const size_t n = static_cast<size_t>(t.num_ops());
  head.assign(n, 0);
  tail.assign(n, 0);
  for (OpId i : t.topo_order)
    for (OpId s : t.successors(i))
      head[static_cast<size_t>(s)] = std::max(head[static_cast<size_t>(s)], head[static_cast<size_t>(i)] + tmin[static_cast<size_t>(i)]);
  for (auto it = t.topo_order.rbegin(); it != t.topo_order.rend(); ++it)
    for (OpId s : t.successors(*it))
      tail[static_cast<size_t>(*it)] = std::max(tail[static_cast<size_t>(*it)], tmin[static_cast<size_t>(s)] + tail[static_cast<size_t>(s)]);
}

}  // namespace

std::vector<MilpEdge> milp_edges(const CostTable& table) {
  std::vector<MilpEdge> edges;
  for (int d = 0; d < static_cast<int>(table.data.size()); ++d)
    for (OpId c : table.data[static_cast<size_t>(d)].consumers) edges.push_back({d, table.data[static_cast<size_t>(d)].producer, c});
  return edges;
}

std::vector<double> working_sets(const CostTable& table) {
  std::vector<double> ws(static_cast<size_t>(table.num_ops()), 0);
  for (OpId i = 0; i < table.num_ops(); ++i) {
    for (int d : table.op_inputs[static_cast<size_t>(i)]) ws[static_cast<size_t>(i)] += table.data[static_cast<size_t>(d)].bytes;
    for (int d : table.op_outputs[static_cast<size_t>(i)]) ws[static_cast<size_t>(i)] += table.data[static_cast<size_t>(d)].bytes;
  }
  return ws;
}

bool fits_memory_reserve(const CostTable& table, const std::vector<DeviceId>& device) {
  const auto ws = working_sets(table);
  std::vector<double> params(static_cast<size_t>(table.num_devices()), 0), reserve(params);
  for (OpId i = 0; i < table.num_ops(); ++i) {
    const auto k = static_cast<size_t>(device[static_cast<size_t>(i)]);
    params[k] += table.param_bytes[static_cast<size_t>(i)];
    reserve[k] = std::max(reserve[k], ws[static_cast<size_t>(i)]);
  }
  for (size_t k = 0; k < params.size(); ++k)
    if (!fits(params[k] + reserve[k], table.capacity[k])) return false;
  return true;
}

std::vector<std::vector<DeviceId>> identical_device_groups(const CostTable& t) {
  const int K = t.num_devices();
  auto same = [&](DeviceId a, DeviceId b) {
    if (t.capacity[static_cast<size_t>(a)] != t.capacity[static_cast<size_t>(b)]) return false;
    for (OpId i = 0; i < t.num_ops(); ++i)
      if (t.time(i, a) != t.time(i, b)) return false;
    auto perm = [&](DeviceId k) { return k == a ? b : k == b ? a : k; };
    for (int d = 0; d < static_cast<int>(t.data.size()); ++d)
      for (DeviceId s = 0; s < K; ++s)
        for (DeviceId r = 0; r < K; ++r)
          if (t.transfer(d, s, r) != t.transfer(d, perm(s), perm(r))) return false;
    return true;
  };
  std::vector<std::vector<DeviceId>> groups;
  std::vector<char> taken(static_cast<size_t>(K), 0);
  for (DeviceId a = 0; a < K; ++a) {
    if (taken[static_cast<size_t>(a)]) continue;
    std::vector<DeviceId> g{a};
    for (DeviceId b = a + 1; b < K; ++b)
      if (!taken[static_cast<size_t>(b)] && same(a, b)) g.push_back(b), taken[static_cast<size_t>(b)] = 1;
    if (g.size() > 1) groups.push_back(std::move(g));
  }
  return groups;
}

std::vector<DeviceId> canonical_devices(const CostTable& t, const std::vector<DeviceId>& device) {
  std::vector<int> first(static_cast<size_t>(t.num_devices()), std::numeric_limits<int>::max());
  for (int p = 0; p < t.num_ops(); ++p) {
    auto& f = first[static_cast<size_t>(device[static_cast<size_t>(t.topo_order[static_cast<size_t>(p)])])];
    f = std::min(f, p);
  }
  std::vector<DeviceId> rename(static_cast<size_t>(t.num_devices()));
  for (DeviceId k = 0; k < t.num_devices(); ++k) rename[static_cast<size_t>(k)] = k;
  for (const auto& g : identical_device_groups(t)) {
    auto sorted = g;
    std::stable_sort(sorted.begin(), sorted.end(),
                     [&](DeviceId a, DeviceId b) { return first[static_cast<size_t>(a)] < first[static_cast<size_t>(b)]; });
    for (size_t j = 0; j < g.size(); ++j) rename[static_cast<size_t>(sorted[j])] = g[j];
  }
  std::vector<DeviceId> out(device.size());
  for (size_t i = 0; i < device.size(); ++i) out[i] = rename[static_cast<size_t>(device[i])];
  return out;
}

double critical_path_bound(const CostTable& t) {
  const auto tmin = fastest(t);
  std::vector<double> head, tail;
  heads_tails(t, tmin, head, tail);
  double cp = 0;
  for (OpId i = 0; i < t.num_ops(); ++i)
    cp = std::max(cp, head[static_cast<size_t>(i)] + tmin[static_cast<size_t>(i)] + tail[static_cast<size_t>(i)]);
  return cp;
}

double valid_lower_bound(const CostTable& t) {
  const auto tmin = fastest(t);
  double work = 0;
  for (double v : tmin) work += v;
  return std::max(critical_path_bound(t), t.num_devices() > 0 ? work / t.num_devices() : 0.0);
}

std::vector<int> transfer_groups(const std::vector<MilpEdge>& edges, const std::vector<DeviceId>& device) {
  std::vector<int> group(edges.size());
  int count = 0;
  size_t run = 0;  // first edge of the current data item (edges of one item are contiguous)
  for (size_t q = 0; q < edges.size(); ++q) {
    if (edges[q].data != edges[run].data) run = q;
    group[q] = -1;
    const DeviceId to = device[static_cast<size_t>(edges[q].to)];
    for (size_t r = run; r < q && group[q] < 0; ++r)
      if (device[static_cast<size_t>(edges[r].to)] == to) group[q] = group[r];
    if (group[q] < 0) group[q] = count++;
  }
  return group;
}

std::optional<MilpPlan> evaluate_milp_plan(const CostTable& t, const std::vector<MilpEdge>& edges,
                                           const std::vector<DeviceId>& device, const std::vector<double>& op_key,
                                           const std::vector<double>& edge_key, bool contention) {
  const int n = t.num_ops(), E = static_cast<int>(edges.size()), K = t.num_devices();
  std::vector<int> pos(static_cast<size_t>(n));
  for (int p = 0; p < n; ++p) pos[static_cast<size_t>(t.topo_order[static_cast<size_t>(p)])] = p;
  // One transfer per data item and destination device, shared by every consumer there (as the simulator sends
  // it); its port key is the smallest of its edges' keys.
  const auto group = transfer_groups(edges, device);
  const int G = E == 0 ? 0 : *std::max_element(group.begin(), group.end()) + 1;
  std::vector<int> first_edge(static_cast<size_t>(G), -1);
  std::vector<double> group_key(static_cast<size_t>(G), std::numeric_limits<double>::infinity());
  for (int q = 0; q < E; ++q) {
    const auto g = static_cast<size_t>(group[static_cast<size_t>(q)]);
    if (first_edge[g] < 0) first_edge[g] = q;
    group_key[g] = std::min(group_key[g], edge_key[static_cast<size_t>(q)]);
  }
  const int N = n + G;
  std::vector<double> dur(static_cast<size_t>(N), 0);
  std::vector<std::vector<int>> succ(static_cast<size_t>(N));
  std::vector<int> indeg(static_cast<size_t>(N), 0);
  auto arc = [&](int a, int b) { succ[static_cast<size_t>(a)].push_back(b), ++indeg[static_cast<size_t>(b)]; };
  auto dev = [&](OpId i) { return device[static_cast<size_t>(i)]; };
  for (OpId i = 0; i < n; ++i) dur[static_cast<size_t>(i)] = t.time(i, dev(i));
  for (int g = 0; g < G; ++g) {
    const auto& e = edges[static_cast<size_t>(first_edge[static_cast<size_t>(g)])];
    dur[static_cast<size_t>(n + g)] = t.transfer(e.data, dev(e.from), dev(e.to));
    arc(e.from, n + g);
  }
  for (int q = 0; q < E; ++q) arc(n + group[static_cast<size_t>(q)], edges[static_cast<size_t>(q)].to);
  // Resource chains, sorted by (key, topological rank); a transfer ranks just after its producer.
  auto chain = [&](std::vector<std::pair<std::pair<double, double>, int>>& items) {
    std::sort(items.begin(), items.end());
    for (size_t a = 1; a < items.size(); ++a) arc(items[a - 1].second, items[a].second);
  };
  for (DeviceId k = 0; k < K; ++k) {
    std::vector<std::pair<std::pair<double, double>, int>> items;
    for (OpId i = 0; i < n; ++i)
      if (dev(i) == k) items.push_back({{op_key[static_cast<size_t>(i)], pos[static_cast<size_t>(i)]}, i});
    chain(items);
    if (!contention) continue;
    std::vector<std::pair<std::pair<double, double>, int>> send, recv;
    for (int g = 0; g < G; ++g) {
      const auto& e = edges[static_cast<size_t>(first_edge[static_cast<size_t>(g)])];
      if (dev(e.from) == dev(e.to)) continue;
      const std::pair<double, double> key{group_key[static_cast<size_t>(g)], pos[static_cast<size_t>(e.from)] + 0.5 + 1e-6 * g / (G + 1)};
      if (dev(e.from) == k) send.push_back({key, n + g});
      if (dev(e.to) == k) recv.push_back({key, n + g});
    }
    chain(send);
    chain(recv);
  }
  std::vector<double> st(static_cast<size_t>(N), 0);
  std::vector<int> ready;
  for (int v = 0; v < N; ++v)
    if (indeg[static_cast<size_t>(v)] == 0) ready.push_back(v);
  int done = 0;
  while (!ready.empty()) {
    const int v = ready.back();
    ready.pop_back();
    ++done;
    const double fin = st[static_cast<size_t>(v)] + dur[static_cast<size_t>(v)];
    for (int s : succ[static_cast<size_t>(v)]) {
      st[static_cast<size_t>(s)] = std::max(st[static_cast<size_t>(s)], fin);
      if (--indeg[static_cast<size_t>(s)] == 0) ready.push_back(s);
    }
  }
  if (done != N) return std::nullopt;
  MilpPlan plan;
  plan.device = device;
  for (int v = 0; v < N; ++v) plan.makespan = std::max(plan.makespan, st[static_cast<size_t>(v)] + dur[static_cast<size_t>(v)]);
  for (OpId i = 0; i < n; ++i) plan.start.push_back(st[static_cast<size_t>(i)]), plan.finish.push_back(st[static_cast<size_t>(i)] + dur[static_cast<size_t>(i)]);
  for (int q = 0; q < E; ++q) {
    const auto v = static_cast<size_t>(n + group[static_cast<size_t>(q)]);
    plan.comm_start.push_back(st[v]), plan.comm_finish.push_back(st[v] + dur[v]);
  }
  return plan;
}

std::optional<MilpPlan> tighten(const CostTable& t, const std::vector<MilpEdge>& edges, const std::vector<DeviceId>& dev,
                                const std::vector<double>& op_start, const std::vector<double>& edge_start, bool contention) {
  std::vector<double> ok(op_start.size()), ek(edge_start.size());
  for (size_t i = 0; i < ok.size(); ++i) ok[i] = rounded_key(op_start[i]);
  for (size_t q = 0; q < ek.size(); ++q) ek[q] = rounded_key(edge_start[q]);
  return evaluate_milp_plan(t, edges, dev, ok, ek, contention);
}

}  // namespace moirai
