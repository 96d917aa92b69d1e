// Contraction engine: union-find groups with a reachability test against cycles, and the contraction of a
// partition into a coarse graph. A fused node keeps its anchor's (most FLOPs) name, type and attributes so the
// roofline model costs it as that kernel; its FLOPs and parameters are the members' sums, and its memory
// traffic is only what crosses the group boundary (internal tensors never touch memory, which is why fusion
// pays).
#include "engine.h"

#include <algorithm>
#include <queue>

namespace moirai::coarsen_detail {

Work start_work(const Graph& graph, const RuleSet& rules) {
  Work work{graph, {}, {}};
  for (const auto& op : graph.ops()) {
    work.label.push_back(op.type);
    auto it = rules.kinds.find(op.type);
    work.kind.push_back(it == rules.kinds.end() ? Kind::Opaque : it->second);
  }
  return work;
}

Groups::Groups(const Graph& graph) : graph_(graph) {
  const auto n = static_cast<size_t>(graph.num_ops());
  parent_.resize(n);
  members_.resize(n);
  succ_.resize(n);
  pred_.resize(n);
  mark_.assign(n, -1);
  for (OpId op = 0; op < graph.num_ops(); ++op) {
    parent_[static_cast<size_t>(op)] = op;
    members_[static_cast<size_t>(op)] = {op};
    succ_[static_cast<size_t>(op)] = graph.successors(op);
    pred_[static_cast<size_t>(op)] = graph.predecessors(op);
  }
  count_ = graph.num_ops();
}

int Groups::find(OpId op) const {
  int r = op;
  while (parent_[static_cast<size_t>(r)] != r) r = parent_[static_cast<size_t>(r)];
  return r;
}

std::vector<OpId> Groups::expand(const std::vector<OpId>& ops) const {
  std::vector<int> roots;
  for (OpId op : ops) roots.push_back(find(op));
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  std::vector<OpId> all;
  for (int r : roots) all.insert(all.end(), members(r).begin(), members(r).end());
  std::sort(all.begin(), all.end());
  return all;
}

bool Groups::would_cycle(const std::vector<OpId>& ops) const {
  // Reachability on the quotient graph: entering any operator of a group enters all of it.
  stamp_ += 2;
  const int in_set = stamp_, seen = stamp_ + 1;
  const auto set = expand(ops);
  for (OpId m : set) mark_[static_cast<size_t>(m)] = in_set;
  std::vector<OpId> queue;
  auto enter = [&](OpId y) {
    for (OpId z : members(find(y))) {
      mark_[static_cast<size_t>(z)] = seen;
      queue.push_back(z);
    }
  };
  for (OpId m : set)
    for (OpId y : succ_[static_cast<size_t>(m)])
      if (mark_[static_cast<size_t>(y)] != in_set && mark_[static_cast<size_t>(y)] != seen) enter(y);
  for (size_t head = 0; head < queue.size(); ++head)
    for (OpId y : succ_[static_cast<size_t>(queue[head])]) {
      if (mark_[static_cast<size_t>(y)] == in_set) return true;
      if (mark_[static_cast<size_t>(y)] != seen) enter(y);
    }
  return false;
}

int Groups::merge(const std::vector<OpId>& ops) {
  std::vector<int> roots;
  for (OpId op : ops) roots.push_back(find(op));
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  MOIRAI_CHECK(!roots.empty(), "merge of nothing");
  const int target = roots.front();  // smallest root: deterministic
  for (size_t i = 1; i < roots.size(); ++i) {
    const int r = roots[i];
    parent_[static_cast<size_t>(r)] = target;
    auto& dst = members_[static_cast<size_t>(target)];
    auto& src = members_[static_cast<size_t>(r)];
    dst.insert(dst.end(), src.begin(), src.end());
    src.clear();
    --count_;
  }
  std::sort(members_[static_cast<size_t>(target)].begin(), members_[static_cast<size_t>(target)].end());
  return target;
}

std::vector<OpId> exits(const Graph& graph, const std::vector<OpId>& set) {
  std::vector<OpId> out;
  for (OpId m : set) {
    bool leaves = false;
    for (TensorId t : graph.op(m).outputs) {
      const Tensor& tensor = graph.tensor(t);
      if (tensor.graph_output) leaves = true;
      for (OpId c : tensor.consumers)
        if (!std::binary_search(set.begin(), set.end(), c)) leaves = true;
    }
    if (leaves) out.push_back(m);
  }
  return out;
}

namespace {

/// Quotient topological order of the group roots; ties by the smallest topological position of a member.
std::vector<int> quotient_order(const Graph& graph, const Groups& groups, const std::vector<int>& pos) {
  const auto n = static_cast<size_t>(graph.num_ops());
  std::vector<int> key(n, 0), indegree(n, 0);
  std::vector<std::vector<int>> out(n);
  for (OpId op = 0; op < graph.num_ops(); ++op) {
    const int r = groups.find(op);
    if (r != op) continue;
    key[static_cast<size_t>(r)] = pos[static_cast<size_t>(groups.members(r).front())];
    for (OpId m : groups.members(r)) key[static_cast<size_t>(r)] = std::min(key[static_cast<size_t>(r)], pos[static_cast<size_t>(m)]);
    for (OpId m : groups.members(r))
      for (OpId s : groups.successors()[static_cast<size_t>(m)]) {
        const int rs = groups.find(s);
        if (rs != r) out[static_cast<size_t>(r)].push_back(rs);
      }
    auto& o = out[static_cast<size_t>(r)];
    std::sort(o.begin(), o.end());
    o.erase(std::unique(o.begin(), o.end()), o.end());
  }
  for (size_t r = 0; r < n; ++r)
    for (int s : out[r]) ++indegree[static_cast<size_t>(s)];
  using Item = std::pair<int, int>;  // (key, root)
  std::priority_queue<Item, std::vector<Item>, std::greater<>> ready;
  for (OpId op = 0; op < graph.num_ops(); ++op)
    if (groups.find(op) == op && indegree[static_cast<size_t>(op)] == 0) ready.emplace(key[static_cast<size_t>(op)], op);
  std::vector<int> order;
  while (!ready.empty()) {
    const int r = ready.top().second;
    ready.pop();
    order.push_back(r);
    for (int s : out[static_cast<size_t>(r)])
      if (--indegree[static_cast<size_t>(s)] == 0) ready.emplace(key[static_cast<size_t>(s)], s);
  }
  MOIRAI_CHECK(static_cast<int>(order.size()) == groups.count(), "contraction would create a cycle");
  return order;
}

/// The members of a group (in topological order; members fused before contribute their own members) as a graph:
/// tensors keep their names and shapes, what enters the group becomes an input and `exits` (the names of the
/// tensors that leave it) become its outputs.
std::shared_ptr<const Graph> member_graph(const Graph& g, const std::vector<OpId>& members,
                                          const std::vector<std::string>& exits) {
  auto sub = std::make_shared<Graph>();
  sub->name = g.name;
  auto add = [&](const Graph& from, Operator op) {
    for (auto* ids : {&op.inputs, &op.outputs})
      for (TensorId& t : *ids) {
        const Tensor& tensor = from.tensor(t);
        t = sub->find_tensor(tensor.name);
        if (t != kNone) continue;
        Tensor copy = tensor;
        copy.producer = kNone;
        copy.consumers.clear();
        copy.graph_output = false;
        t = sub->add_tensor(std::move(copy));
      }
    sub->add_op(std::move(op));
  };
  for (OpId m : members) {
    const Operator& op = g.op(m);
    if (!op.members) add(g, op);
    else for (const Operator& inner : op.members->ops()) add(*op.members, inner);
  }
  for (TensorId t = 0; t < sub->num_tensors(); ++t) {
    Tensor& tensor = sub->tensor(t);
    if (tensor.producer == kNone && tensor.kind == TensorKind::Activation) tensor.kind = TensorKind::Input;
  }
  for (const auto& name : exits) sub->tensor(sub->find_tensor(name)).graph_output = true;
  return sub;
}

}  // namespace

Work contract(const Work& work, const Groups& groups, const std::map<int, std::string>& labels,
              const std::map<std::string, int, std::less<>>& origin_rank) {
  const Graph& g = work.graph;
  auto topo = g.topological_order();
  MOIRAI_CHECK(topo.ok(), topo.ok() ? "" : topo.error().message);
  std::vector<int> pos(static_cast<size_t>(g.num_ops()));
  for (size_t i = 0; i < topo->size(); ++i) pos[static_cast<size_t>((*topo)[i])] = static_cast<int>(i);
  const auto order = quotient_order(g, groups, pos);

  // A tensor is internal when produced and entirely consumed inside one group and not a graph output.
  auto internal = [&](const Tensor& t) {
    if (t.producer == kNone || t.graph_output || t.consumers.empty()) return false;
    const int r = groups.find(t.producer);
    return std::all_of(t.consumers.begin(), t.consumers.end(), [&](OpId c) { return groups.find(c) == r; });
  };

  Work out;
  out.graph.name = g.name;
  std::vector<TensorId> remap(static_cast<size_t>(g.num_tensors()), kNone);
  for (TensorId t = 0; t < g.num_tensors(); ++t) {
    if (internal(g.tensor(t))) continue;
    Tensor copy = g.tensor(t);
    copy.producer = kNone;
    copy.consumers.clear();
    remap[static_cast<size_t>(t)] = out.graph.add_tensor(std::move(copy));
  }
  auto mapped = [&](const std::vector<TensorId>& ids) {
    std::vector<TensorId> r;
    for (TensorId t : ids) r.push_back(remap[static_cast<size_t>(t)]);
    return r;
  };

  for (int root : order) {
    std::vector<OpId> members = groups.members(root);
    if (members.size() == 1) {
      Operator op = g.op(members.front());
      op.inputs = mapped(op.inputs);
      op.outputs = mapped(op.outputs);
      out.graph.add_op(std::move(op));
      out.label.push_back(work.label[static_cast<size_t>(members.front())]);
      out.kind.push_back(work.kind[static_cast<size_t>(members.front())]);
      continue;
    }
    std::sort(members.begin(), members.end(), [&](OpId a, OpId b) { return pos[static_cast<size_t>(a)] < pos[static_cast<size_t>(b)]; });
    OpId anchor = members.front();
    for (OpId m : members)
      if (g.op(m).flops > g.op(anchor).flops) anchor = m;
    const Operator& a = g.op(anchor);
    Operator fused;
    fused.name = a.name;
    fused.type = a.type;
    fused.attrs = a.attrs;
    fused.known = true;
    Kind kind = Kind::ElemWise;
    std::vector<std::string> origin;
    for (OpId m : members) {
      const Operator& op = g.op(m);
      fused.flops += op.flops;
      fused.param_bytes += op.param_bytes;
      fused.known = fused.known && op.known;
      kind = std::max(kind, work.kind[static_cast<size_t>(m)]);
      origin.insert(origin.end(), op.origin.begin(), op.origin.end());
      for (TensorId t : op.inputs) {
        const Tensor& tensor = g.tensor(t);
        const bool outside = tensor.producer == kNone || groups.find(tensor.producer) != root;
        const TensorId nt = remap[static_cast<size_t>(t)];
        if (outside && std::find(fused.inputs.begin(), fused.inputs.end(), nt) == fused.inputs.end()) {
          fused.inputs.push_back(nt);
          fused.bytes_read += static_cast<double>(tensor.bytes());
        }
      }
      for (TensorId t : op.outputs) {
        const Tensor& tensor = g.tensor(t);
        if (internal(tensor)) continue;
        fused.outputs.push_back(remap[static_cast<size_t>(t)]);
        const bool leaves = tensor.graph_output ||
            std::any_of(tensor.consumers.begin(), tensor.consumers.end(), [&](OpId c) { return groups.find(c) != root; });
        if (leaves) fused.bytes_written += static_cast<double>(tensor.bytes());
      }
    }
    auto rank = [&](const std::string& name) {
      auto it = origin_rank.find(name);
      return it == origin_rank.end() ? 1 << 30 : it->second;
    };
    std::stable_sort(origin.begin(), origin.end(), [&](const std::string& x, const std::string& y) { return rank(x) < rank(y); });
    fused.origin = std::move(origin);
    std::vector<std::string> exits;
    for (TensorId t : fused.outputs) exits.push_back(out.graph.tensor(t).name);
    fused.members = member_graph(g, members, exits);
    out.graph.add_op(std::move(fused));
    auto it = labels.find(root);
    out.label.push_back(it != labels.end() && !it->second.empty() ? it->second : work.label[static_cast<size_t>(anchor)]);
    out.kind.push_back(kind);
  }
  return out;
}

}  // namespace moirai::coarsen_detail
