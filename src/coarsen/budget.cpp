// The --max-nodes step: merges beyond the backend's fusion until the graph fits the solver's budget. Linear
// chains go first (an operator whose only successor has it as only predecessor: merging them can never close a
// cycle nor remove parallelism). Then edges by decreasing ratio of transfer time to compute time, with the
// cluster's average link bandwidth/latency and device speed: the edges whose cut would cost most relative to
// the work they separate. Last, operators that read the same tensor (it then travels once). Each round merges a matching (every node at most once, like heavy-edge matching in
// multilevel partitioners), then contracts; a merge that would close a cycle is skipped.
#include <algorithm>
#include <tuple>

#include "match.h"

namespace moirai::coarsen_detail {
namespace {

struct Speeds {
  double link_gbps = 10;     // GB/s
  double link_latency_ms = 0;
  double gflops = 1000;      // GFLOP/s
  double mem_gbps = 100;     // GB/s
};

Speeds average_speeds(const Cluster& cluster) {
  Speeds s;
  double bw = 0, lat = 0, flops = 0, mem = 0;
  int links = 0, fdev = 0, mdev = 0;
  for (DeviceId a = 0; a < cluster.size(); ++a) {
    const Device& d = cluster.devices[static_cast<size_t>(a)];
    if (d.peak_gflops > 0) flops += d.peak_gflops, ++fdev;
    if (d.mem_bandwidth_gbps > 0) mem += d.mem_bandwidth_gbps, ++mdev;
    for (DeviceId b = 0; b < cluster.size(); ++b) {
      if (a == b || static_cast<size_t>(a * cluster.size() + b) >= cluster.links.size()) continue;
      const Link& l = cluster.link(a, b);
      if (l.bandwidth_gbps <= 0) continue;
      bw += l.bandwidth_gbps;
      lat += l.latency_us;
      ++links;
    }
  }
  if (links > 0) s.link_gbps = bw / links, s.link_latency_ms = lat / links / 1e3;
  if (fdev > 0) s.gflops = flops / fdev;
  if (mdev > 0) s.mem_gbps = mem / mdev;
  return s;
}

double compute_ms(const Operator& op, const Speeds& s) {
  const double t = std::max(op.flops / (s.gflops * 1e6), (op.bytes_read + op.bytes_written) / (s.mem_gbps * 1e6));
  return std::max(t, 1e-6);
}

struct Candidate {
  double ratio;
  OpId src, dst;
};

enum class Mode { Chains, Edges, Siblings };

/// Merge candidates of the current graph with their transfer/compute ratio, best first: quotient edges (all,
/// or linear chains only), or siblings (consecutive readers of one tensor, which then travels once).
std::vector<Candidate> candidates(const Graph& g, const Speeds& s, Mode mode, const Groups& groups) {
  std::vector<Candidate> out;
  const bool chains_only = mode == Mode::Chains;
  if (mode == Mode::Siblings) {
    for (const Tensor& t : g.tensors()) {
      if (t.kind == TensorKind::Parameter) continue;
      const double transfer = s.link_latency_ms + static_cast<double>(t.bytes()) / (s.link_gbps * 1e6);
      for (size_t k = 1; k < t.consumers.size(); ++k) {
        const OpId u = t.consumers[k - 1], v = t.consumers[k];
        out.push_back({transfer / (compute_ms(g.op(u), s) + compute_ms(g.op(v), s)), u, v});
      }
    }
  }
  const auto edges = mode == Mode::Siblings ? std::vector<Edge>{} : g.edges();
  for (size_t i = 0; i < edges.size();) {
    const OpId u = edges[i].src, v = edges[i].dst;
    double bytes = 0;
    for (; i < edges.size() && edges[i].src == u && edges[i].dst == v; ++i)
      bytes += static_cast<double>(g.tensor(edges[i].tensor).bytes());
    if (chains_only && (groups.successors()[static_cast<size_t>(u)].size() != 1 ||
                        groups.predecessors()[static_cast<size_t>(v)].size() != 1))
      continue;
    const double transfer = s.link_latency_ms + bytes / (s.link_gbps * 1e6);
    out.push_back({transfer / (compute_ms(g.op(u), s) + compute_ms(g.op(v), s)), u, v});
  }
  std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(b.ratio, a.src, a.dst) < std::tie(a.ratio, b.src, b.dst);
  });
  return out;
}

}  // namespace

Work merge_to_budget(const Work& start, const Cluster& cluster, int max_nodes, const OriginRank& rank) {
  const Speeds speeds = average_speeds(cluster);
  Work work = start;
  for (Mode mode : {Mode::Chains, Mode::Edges, Mode::Siblings}) {
    const bool chains_only = mode == Mode::Chains;
    while (work.graph.num_ops() > max_nodes) {
      Groups groups(work.graph);
      std::vector<char> taken(static_cast<size_t>(work.graph.num_ops()), 0);
      bool any = false;
      for (const Candidate& c : candidates(work.graph, speeds, mode, groups)) {
        if (groups.count() <= max_nodes) break;
        // Chains may all merge in one round (they stay chains); other edges form a matching.
        if (!chains_only && (taken[static_cast<size_t>(c.src)] || taken[static_cast<size_t>(c.dst)])) continue;
        if (!chains_only && groups.would_cycle({c.src, c.dst})) continue;  // a chain edge never closes one
        groups.merge({c.src, c.dst});
        taken[static_cast<size_t>(c.src)] = taken[static_cast<size_t>(c.dst)] = 1;
        any = true;
      }
      if (!any) break;
      work = contract(work, groups, {}, rank);
    }
  }
  return work;
}

}  // namespace moirai::coarsen_detail
