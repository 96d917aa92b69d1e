// Layer chains (see layer_chain.h).
#include "layer_chain.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

namespace moirai::place {

int LayerChain::num_layers() const {
  int n = 0;
  for (const Block& b : blocks) n += b.layer >= 0;
  return n;
}

double LayerChain::boundary_ms(const CostTable& t, int b, DeviceId a, DeviceId c) const {
  if (a == c) return 0;
  double ms = 0;
  for (int i : cut[static_cast<size_t>(b)]) ms += t.transfer(i, a, c);
  return ms;
}

std::vector<DeviceId> devices_of_kind(const CostTable& t, const std::string& kind) {
  std::vector<DeviceId> out;
  for (DeviceId d = 0; d < static_cast<DeviceId>(t.device_kinds.size()); ++d)
    if (t.device_kinds[static_cast<size_t>(d)] == kind) out.push_back(d);
  return out;
}

Expected<LayerChain> find_layer_chain(const CostTable& t) {
  const int n = t.num_ops(), k = t.num_devices();
  // Layer of each operator: the largest index among its original nodes (a fused group that straddles a layer
  // boundary, e.g. a residual add with the next norm, belongs to the later layer, so edges still run forward).
  std::vector<int> layer(static_cast<size_t>(n), -1);
  std::set<int> indices;
  for (OpId op = 0; op < n; ++op) {
    for (const auto& origin : t.op_origin[static_cast<size_t>(op)])
      layer[static_cast<size_t>(op)] = std::max(layer[static_cast<size_t>(op)], layer_index(origin));
    if (layer[static_cast<size_t>(op)] >= 0) indices.insert(layer[static_cast<size_t>(op)]);
  }
  if (indices.empty()) return Error{fmt::format("'{}' has no layers: no operator name carries a layer index "
                                                "(\"layers.N\", \"h.N\", \"blocks.N\")", t.name)};
  // Blocks: 0 = prologue, 1..L = layers in index order, L+1 = epilogue.
  const std::vector<int> ordered(indices.begin(), indices.end());
  const int L = static_cast<int>(ordered.size());
  std::vector<char> after_layer(static_cast<size_t>(n), 0);  // some layered operator precedes it
  LayerChain c;
  c.block_of.assign(static_cast<size_t>(n), 0);
  for (OpId op : t.topo_order) {
    const auto i = static_cast<size_t>(op);
    for (OpId p : t.predecessors(op))
      if (layer[static_cast<size_t>(p)] >= 0 || after_layer[static_cast<size_t>(p)]) after_layer[i] = 1;
    if (layer[i] >= 0)
      c.block_of[i] = 1 + static_cast<int>(std::lower_bound(ordered.begin(), ordered.end(), layer[i]) - ordered.begin());
    else
      c.block_of[i] = after_layer[i] ? L + 1 : 0;
  }
  c.blocks.resize(static_cast<size_t>(L + 2));
  c.blocks[0].name = "embedding";
  c.blocks[static_cast<size_t>(L + 1)].name = "head";
  for (int b = 1; b <= L; ++b) {
    c.blocks[static_cast<size_t>(b)].layer = ordered[static_cast<size_t>(b - 1)];
    c.blocks[static_cast<size_t>(b)].name = fmt::format("layers.{}", ordered[static_cast<size_t>(b - 1)]);
  }
  for (Block& b : c.blocks) b.time_ms.assign(static_cast<size_t>(k), 0.0);
  for (OpId op : t.topo_order) {
    const auto i = static_cast<size_t>(op);
    Block& b = c.blocks[static_cast<size_t>(c.block_of[i])];
    b.ops.push_back(op);
    b.param_bytes += t.param_bytes[i];
    b.state_bytes += t.state_bytes[i];
    for (DeviceId d = 0; d < k; ++d) b.time_ms[static_cast<size_t>(d)] += t.time(op, d);
  }
  c.cut.resize(c.blocks.size());
  for (int i = 0; i < static_cast<int>(t.data.size()); ++i) {
    const DataItem& item = t.data[static_cast<size_t>(i)];
    const int from = c.block_of[static_cast<size_t>(item.producer)];
    Block& home = c.blocks[static_cast<size_t>(from)];
    (item.consumers.empty() ? home.persist_bytes : home.act_bytes) += item.bytes - item.in_place_bytes;
    int last = from;
    for (OpId r : item.consumers) {
      const int to = c.block_of[static_cast<size_t>(r)];
      if (to < from)
        return Error{fmt::format("'{}' is not a chain of layers: '{}' ({}) feeds '{}' ({})", t.name,
                                 t.op_names[static_cast<size_t>(item.producer)], home.name,
                                 t.op_names[static_cast<size_t>(r)], c.blocks[static_cast<size_t>(to)].name)};
      last = std::max(last, to);
    }
    for (int b = from; b < last; ++b) c.cut[static_cast<size_t>(b)].push_back(i);
    if (last > from + 1) c.adjacent_only = false;
  }
  return c;
}

Placement place_blocks(const CostTable& t, const LayerChain& chain, const std::vector<DeviceId>& device) {
  Placement p;
  p.device.assign(static_cast<size_t>(t.num_ops()), 0);
  for (size_t b = 0; b < chain.blocks.size(); ++b)
    for (OpId op : chain.blocks[b].ops) p.device[static_cast<size_t>(op)] = device[b];
  return p;
}

}  // namespace moirai::place
