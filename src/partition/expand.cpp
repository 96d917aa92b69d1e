// Expansion of a split problem into an ordinary one: every split operator becomes one part-operator per device
// (pinned there by the placement) and every tensor becomes pieces, one data item per (producer piece, slice a
// consumer reads) carrying exactly the intersecting bytes. Hence a tensor between two operators split the same
// way moves only its halo rows between neighbours (fused-layer partitioning), a whole-operator consumer gathers
// all pieces, and a split consumer of a whole tensor receives its slice (scatter) or all of it (broadcast).
// The simulator and the validator then run unchanged on the expanded table.
#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "moirai/partition.h"

namespace moirai {
namespace {

/// Per device pair: latency (ms) and ms per byte.
struct LinkModel {
  int k = 0;
  std::vector<double> latency, per_byte;
  double ms(DeviceId s, DeviceId d, double bytes) const {
    if (s == d) return 0.0;
    const auto i = static_cast<size_t>(s * k + d);
    return latency[i] + bytes * per_byte[i];
  }
};

LinkModel link_model(const CostTable& t, const Cluster* cluster) {
  LinkModel m;
  m.k = t.num_devices();
  m.latency.assign(static_cast<size_t>(m.k * m.k), 0.0);
  m.per_byte.assign(static_cast<size_t>(m.k * m.k), 0.0);
  if (cluster && cluster->size() == m.k) {
    for (int s = 0; s < m.k; ++s)
      for (int d = 0; d < m.k; ++d) {
        if (s == d) continue;
        const Link& l = cluster->link(s, d);
        m.latency[static_cast<size_t>(s * m.k + d)] = l.latency_us / 1e3;
        m.per_byte[static_cast<size_t>(s * m.k + d)] = l.bandwidth_gbps > 0 ? 1e3 / (l.bandwidth_gbps * 1e9) : 0.0;
      }
    return m;
  }
  // Fit latency + bytes x rate through the smallest and the largest item of each pair.
  int lo = -1, hi = -1;
  for (int i = 0; i < static_cast<int>(t.data.size()); ++i) {
    const double b = t.data[static_cast<size_t>(i)].bytes;
    if (b <= 0) continue;
    if (lo < 0 || b < t.data[static_cast<size_t>(lo)].bytes) lo = i;
    if (hi < 0 || b > t.data[static_cast<size_t>(hi)].bytes) hi = i;
  }
  if (lo < 0) return m;
  const double b0 = t.data[static_cast<size_t>(lo)].bytes, b1 = t.data[static_cast<size_t>(hi)].bytes;
  for (int s = 0; s < m.k; ++s)
    for (int d = 0; d < m.k; ++d) {
      if (s == d) continue;
      const double t0 = t.transfer(lo, s, d), t1 = t.transfer(hi, s, d);
      const auto i = static_cast<size_t>(s * m.k + d);
      if (b1 > b0) {
        m.per_byte[i] = std::max(0.0, (t1 - t0) / (b1 - b0));
        m.latency[i] = std::max(0.0, t0 - m.per_byte[i] * b0);
      } else {
        m.per_byte[i] = t0 / b0;
      }
    }
  return m;
}

double fraction(const Tensor& t, const Region& r) {
  if (r.whole()) return 1.0;
  const int64_t extent = t.shape[static_cast<size_t>(r.axis)];
  return extent > 0 ? static_cast<double>(r.end - r.begin) / static_cast<double>(extent) : 1.0;
}

/// Bytes of tensor t inside both regions (orthogonal axes intersect as a product of fractions).
double intersect_bytes(const Tensor& t, const Region& a, const Region& b) {
  const double bytes = static_cast<double>(t.bytes());
  if (a.whole() || b.whole() || a.axis != b.axis) return bytes * fraction(t, a) * fraction(t, b);
  const int64_t overlap = std::min(a.end, b.end) - std::max(a.begin, b.begin);
  if (overlap <= 0) return 0.0;
  return bytes * fraction(t, Region{a.axis, 0, overlap});
}

std::string region_text(const Region& r) {
  return r.whole() ? std::string() : fmt::format("[axis {}: {}-{}]", r.axis, r.begin, r.end);
}

// The expansion, step by step: operators into parts, then every data item into pieces.
struct Expander {
  const CostTable& table;
  const Graph& graph;
  const Placement& base;
  const Cluster* cluster;
  const int n, k;
  PartitionedProblem out;
  CostTable& t = out.table;
  std::vector<double> launch;  // per device: the fixed cost of one more kernel (ms)
  LinkModel links;

  Expander(const CostTable& tab, const Graph& g, const Placement& b, const Cluster* c)
      : table(tab), graph(g), base(b), cluster(c), n(tab.num_ops()), k(tab.num_devices()) {
    out.parts_of.assign(static_cast<size_t>(n), {});
    out.specs.assign(static_cast<size_t>(n), {});
    out.table = table.with_devices_only();
    launch.assign(static_cast<size_t>(k), 0.0);
    for (int d = 0; d < k; ++d) {
      if (has_cluster()) {
        launch[static_cast<size_t>(d)] = cluster->devices[static_cast<size_t>(d)].launch_us / 1e3;
      } else {
        double lo = n > 0 ? table.time(0, d) : 0.0;
        for (OpId op = 0; op < n; ++op) lo = std::min(lo, table.time(op, d));
        launch[static_cast<size_t>(d)] = lo;
      }
    }
    links = link_model(table, cluster);
  }

  bool has_cluster() const { return cluster && cluster->size() == k; }
  bool split_op(OpId o) const { return !out.specs[static_cast<size_t>(o)].empty(); }

  // The roofline's binding side scales: compute with the share of the work, memory with the share of the bytes.
  // Which side binds is judged from the raw device figures (the efficiencies differ little between the sides);
  // without a cluster, the larger of the two fractions scales the time (an upper bound).
  double part_scale(OpId o, int d, double work, double bytes) const {
    if (!(has_cluster() && graph.num_ops() == n)) return std::max(work, bytes);
    const Device& dev = cluster->devices[static_cast<size_t>(d)];
    const Operator& op = graph.op(o);
    double io = 0;
    for (TensorId x : op.inputs) io += static_cast<double>(graph.tensor(x).bytes());
    for (TensorId x : op.outputs) io += static_cast<double>(graph.tensor(x).bytes());
    const double compute = dev.peak_gflops > 0 ? op.flops / dev.peak_gflops : 0.0;
    const double memory = dev.mem_bandwidth_gbps > 0 ? io / dev.mem_bandwidth_gbps : 0.0;
    if (compute <= 0 || memory <= 0) return std::max(work, bytes);
    return compute >= memory ? std::max(work, bytes * memory / compute) : std::max(bytes, work * compute / memory);
  }

  void add_op(OpId o, const std::string& name, DeviceId dev, double work, double bytes, double params) {
    out.parts_of[static_cast<size_t>(o)].push_back(t.num_ops());
    out.origin.push_back(o);
    out.placement.device.push_back(dev);
    t.op_names.push_back(name);
    t.op_types.push_back(table.op_types[static_cast<size_t>(o)]);
    t.op_origin.push_back(table.op_origin[static_cast<size_t>(o)]);
    t.param_bytes.push_back(table.param_bytes[static_cast<size_t>(o)] * params);
    t.flops.push_back(table.flops[static_cast<size_t>(o)] * work);
    for (int d = 0; d < k; ++d) {
      const double full = table.time(o, d), l = std::min(launch[static_cast<size_t>(d)], full);
      t.time_ms.push_back(work == 1.0 && bytes == 1.0 ? full : l + (full - l) * part_scale(o, d, work, bytes));
    }
  }

  // Every operator: whole on its device, or one part per device of its split.
  Status operators(const std::vector<Split>& splits) {
    for (OpId o = 0; o < n; ++o) {
      const Split& s = splits[static_cast<size_t>(o)];
      if (s.dim == SplitDim::None) {
        add_op(o, table.op_names[static_cast<size_t>(o)], base.device[static_cast<size_t>(o)], 1.0, 1.0, 1.0);
        continue;
      }
      if (graph.op(o).name != table.op_names[static_cast<size_t>(o)])
        return Error{fmt::format("operator {} is '{}' in table '{}' but '{}' in graph '{}'", o,
                                 table.op_names[static_cast<size_t>(o)], table.name, graph.op(o).name, graph.name)};
      for (DeviceId d : s.devices)
        if (d < 0 || d >= k)
          return Error{fmt::format("operator '{}': split names device {}, there are {}", graph.op(o).name, d, k)};
      MOIRAI_ASSIGN_OR_RETURN(auto parts, plan_parts(graph, o, s));
      for (size_t i = 0; i < parts.size(); ++i) {
        const PartSpec& p = parts[i];
        add_op(o, fmt::format("{}#{}", table.op_names[static_cast<size_t>(o)], i), p.device, p.share, p.byte_fraction,
               p.param_fraction);
      }
      out.specs[static_cast<size_t>(o)] = std::move(parts);
    }
    return Ok{};
  }

  // A data item: copied when neither end is split, else one piece per (producer part, region a consumer reads).
  Status data(const DataItem& item) {
    bool touches = split_op(item.producer);
    for (OpId c : item.consumers) touches = touches || split_op(c);
    if (!touches) {  // unchanged: same bytes, same transfer times
      DataItem copy = item;
      copy.producer = out.parts_of[static_cast<size_t>(item.producer)].front();
      for (OpId& c : copy.consumers) c = out.parts_of[static_cast<size_t>(c)].front();
      t.data.push_back(std::move(copy));
      return Ok{};
    }
    const TensorId tid = graph.find_tensor(item.name);
    if (tid == kNone)
      return Error{fmt::format("table '{}': data item '{}' is no tensor of graph '{}'", table.name, item.name, graph.name)};
    // Producer pieces: (expanded op, region of the tensor it holds).
    std::vector<std::pair<OpId, Region>> pieces;
    const auto& pp = out.parts_of[static_cast<size_t>(item.producer)];
    for (size_t i = 0; i < pp.size(); ++i)
      pieces.emplace_back(pp[i], split_op(item.producer) ? out.specs[static_cast<size_t>(item.producer)][i].output : Region{});
    const auto needs = consumer_needs(item, tid);
    for (const auto& [piece_op, piece_region] : pieces)
      piece_items(item, graph.tensor(tid), pieces.size() == 1, piece_op, piece_op - pieces.front().first, piece_region,
                  needs);
    return Ok{};
  }

  // Consumer needs of tensor `tid`: (expanded op, region it reads).
  std::vector<std::pair<OpId, Region>> consumer_needs(const DataItem& item, TensorId tid) const {
    std::vector<std::pair<OpId, Region>> needs;
    for (OpId c : item.consumers) {
      const auto& cp = out.parts_of[static_cast<size_t>(c)];
      if (!split_op(c)) {
        needs.emplace_back(cp.front(), Region{});
        continue;
      }
      const Operator& op = graph.op(c);
      for (size_t i = 0; i < cp.size(); ++i) {
        std::optional<Region> need;
        for (size_t j = 0; j < op.inputs.size(); ++j) {
          if (op.inputs[j] != tid) continue;
          const Region& r = out.specs[static_cast<size_t>(c)][i].inputs[j];
          need = need && !(*need == r) ? Region{} : r;  // read twice differently: take it whole
        }
        needs.emplace_back(cp[i], need.value_or(Region{}));
      }
    }
    return needs;
  }

  // The data items of one producer piece: one per distinct region its consumers read from it.
  void piece_items(const DataItem& item, const Tensor& tensor, bool whole_producer, OpId piece_op, OpId piece_index,
                   const Region& piece_region, const std::vector<std::pair<OpId, Region>>& needs) {
    std::vector<std::pair<Region, int>> made;  // region -> index into t.data
    auto emit = [&](const Region& need, double bytes) {
      DataItem d;
      d.name = whole_producer ? item.name + region_text(need) : fmt::format("{}#{}{}", item.name, piece_index, region_text(need));
      d.producer = piece_op;
      d.bytes = bytes;
      d.transfer_ms.assign(static_cast<size_t>(k * k), 0.0);
      for (int s = 0; s < k; ++s)
        for (int dd = 0; dd < k; ++dd) d.transfer_ms[static_cast<size_t>(s * k + dd)] = links.ms(s, dd, bytes);
      made.emplace_back(need, static_cast<int>(t.data.size()));
      t.data.push_back(std::move(d));
    };
    if (needs.empty()) emit(Region{}, static_cast<double>(tensor.bytes()) * fraction(tensor, piece_region));
    for (const auto& [consumer, need] : needs) {
      const double bytes = intersect_bytes(tensor, piece_region, need);
      if (bytes <= 0) continue;
      auto it = std::find_if(made.begin(), made.end(), [&](const auto& m) { return m.first == need; });
      if (it == made.end()) {
        emit(need, bytes);
        it = made.end() - 1;
      }
      auto& consumers = t.data[static_cast<size_t>(it->second)].consumers;
      if (std::find(consumers.begin(), consumers.end(), consumer) == consumers.end()) consumers.push_back(consumer);
    }
    for (const auto& m : made) std::sort(t.data[static_cast<size_t>(m.second)].consumers.begin(),
                                         t.data[static_cast<size_t>(m.second)].consumers.end());
  }
};

}  // namespace

Expected<PartitionedProblem> expand_splits(const CostTable& table, const Graph& graph, const Placement& base,
                                           const std::vector<Split>& splits, const Cluster* cluster) {
  const int n = table.num_ops();
  if (static_cast<int>(splits.size()) != n || static_cast<int>(base.device.size()) != n)
    return Error{fmt::format("table '{}': {} operators, but {} splits and {} placed operators", table.name, n,
                             splits.size(), base.device.size())};
  bool any = false;
  for (const auto& s : splits) any = any || s.dim != SplitDim::None;
  if (any && graph.num_ops() != n)
    return Error{fmt::format("table '{}' has {} operators, its graph '{}' {}: split the graph the table was built from",
                             table.name, n, graph.name, graph.num_ops())};
  Expander e(table, graph, base, cluster);
  MOIRAI_TRY(e.operators(splits));
  for (const DataItem& item : table.data) MOIRAI_TRY(e.data(item));
  if (!any) {  // nothing split: the expanded problem is the original one, orders included
    e.out.placement.order = base.order;
    e.out.placement.transfer_priority = base.transfer_priority;
  }
  MOIRAI_TRY(e.t.finalize());
  return std::move(e.out);
}

}  // namespace moirai
