// Generic rule application. Pattern rules: a backtracking matcher over a small DAG pattern (each node found
// from an earlier one as a consumer, a producer or a sibling reader; optional nodes may be skipped), tried at every root in
// topological order; a match is kept only when the nodes other than its exit are read only inside it, no graph
// output is crossed, and the contraction closes no cycle. Kind rules follow TVM's FuseOps (relay/transforms/
// fuse_ops.cc): a node joins its immediate post-dominator when every node on the paths between has an allowed
// kind. Departures from TVM: no max fuse depth, no tuple handling, the post-dominator tree is rebuilt on the
// contracted graph at each phase, and a group may have only one exit and one anchor.
#include <algorithm>

#include "match.h"

namespace moirai::coarsen_detail {
namespace {

constexpr int kLeafLimit = 64;  // matches tried per root before giving up (optional nodes branch)

bool has(const std::vector<std::string>& types, const std::string& label) {
  return std::find(types.begin(), types.end(), label) != types.end();
}

std::vector<int> positions(const Graph& g) {
  auto topo = g.topological_order();
  MOIRAI_CHECK(topo.ok(), topo.ok() ? "" : topo.error().message);
  std::vector<int> pos(static_cast<size_t>(g.num_ops()));
  for (size_t i = 0; i < topo->size(); ++i) pos[static_cast<size_t>((*topo)[i])] = static_cast<int>(i);
  return pos;
}

class Matcher {
 public:
  Matcher(const Work& work, const PatternRule& rule, const Groups& groups, const std::vector<char>& used)
      : w_(work), rule_(rule), groups_(groups), used_(used) {}

  /// The members of a match rooted at `root` (sorted), or empty.
  std::vector<OpId> match(OpId root) {
    const size_t n = rule_.nodes.size();
    match_.assign(n, kNone);
    ref_.assign(n, -1);
    leaves_ = 0;
    match_[0] = root;
    ref_[0] = 0;
    result_.clear();
    dfs(1);
    return result_;
  }

 private:
  OpId at(int node) const { return match_[static_cast<size_t>(ref_[static_cast<size_t>(node)])]; }

  bool matched(OpId op, size_t upto) const {
    for (size_t i = 0; i < upto; ++i)
      if (ref_[i] == static_cast<int>(i) && match_[i] == op) return true;
    return false;
  }

  bool fits(const PatternNode& node, OpId c, size_t i) const {
    if (used_[static_cast<size_t>(c)] || matched(c, i) || !has(node.types, w_.label[static_cast<size_t>(c)]))
      return false;
    if (node.accept != nullptr && !node.accept(w_.graph, c, at(node.link))) return false;
    const auto& preds = groups_.predecessors()[static_cast<size_t>(c)];
    for (int e : node.also_consumes)
      if (!std::binary_search(preds.begin(), preds.end(), at(e))) return false;
    if (node.const_inputs)
      for (TensorId t : w_.graph.op(c).inputs) {
        const Tensor& tensor = w_.graph.tensor(t);
        if (tensor.kind == TensorKind::Parameter) continue;
        if (tensor.producer == kNone || !matched(tensor.producer, i)) return false;
      }
    return true;
  }

  bool dfs(size_t i) {
    if (i == rule_.nodes.size()) return leaf();
    if (leaves_ > kLeafLimit) return false;
    const PatternNode& node = rule_.nodes[i];
    const OpId base = at(node.link);
    for (OpId c : candidates(node.how, base)) {
      if (!fits(node, c, i)) continue;
      ref_[i] = static_cast<int>(i);
      match_[i] = c;
      if (dfs(i + 1)) return true;
      if (leaves_ > kLeafLimit) return false;
    }
    match_[i] = kNone;
    if (node.optional) {
      ref_[i] = ref_[static_cast<size_t>(node.link)];
      if (dfs(i + 1)) return true;
    }
    ref_[i] = -1;
    return false;
  }

  std::vector<OpId> candidates(Found how, OpId base) const {
    switch (how) {
      case Found::Consumer: return groups_.successors()[static_cast<size_t>(base)];
      case Found::Producer: return groups_.predecessors()[static_cast<size_t>(base)];
      case Found::Sibling: break;
    }
    std::vector<OpId> readers;
    for (TensorId t : w_.graph.op(base).inputs) {
      if (w_.graph.tensor(t).kind == TensorKind::Parameter) continue;  // a shared weight makes no siblings
      for (OpId r : w_.graph.tensor(t).consumers)
        if (r != base && std::find(readers.begin(), readers.end(), r) == readers.end()) readers.push_back(r);
    }
    return readers;
  }

  bool leaf() {
    ++leaves_;
    std::vector<OpId> members;
    for (size_t i = 0; i < match_.size(); ++i)
      if (ref_[i] == static_cast<int>(i)) members.push_back(match_[i]);
    if (members.size() < 2) return false;
    std::sort(members.begin(), members.end());
    if (rule_.exit != kAnyExit) {
      const OpId exit = at(rule_.exit < 0 ? static_cast<int>(rule_.nodes.size()) - 1 : rule_.exit);
      for (OpId e : exits(w_.graph, members))
        if (e != exit) return false;  // an inner result is needed elsewhere: fusing would hide it
    }
    if (groups_.would_cycle(members)) return false;
    result_ = std::move(members);
    return true;
  }

  const Work& w_;
  const PatternRule& rule_;
  const Groups& groups_;
  const std::vector<char>& used_;
  std::vector<OpId> match_;
  std::vector<int> ref_;  // node -> the node whose operator it stands for (itself, or its link when skipped)
  std::vector<OpId> result_;
  int leaves_ = 0;
};

constexpr OpId kExit = -1;

/// Immediate post-dominators on a DAG (kExit for nodes that reach a graph output or have no consumer).
std::vector<OpId> post_dominators(const Graph& g, const Groups& groups, const std::vector<int>& pos) {
  const auto n = static_cast<size_t>(g.num_ops());
  std::vector<OpId> order(n);
  for (OpId op = 0; op < g.num_ops(); ++op) order[static_cast<size_t>(pos[static_cast<size_t>(op)])] = op;
  std::vector<OpId> ipdom(n, kExit);
  std::vector<int> depth(n, 0);
  auto lca = [&](OpId a, OpId b) {
    while (a != b) {
      if (a == kExit || b == kExit) return kExit;
      if (depth[static_cast<size_t>(a)] >= depth[static_cast<size_t>(b)]) a = ipdom[static_cast<size_t>(a)];
      else b = ipdom[static_cast<size_t>(b)];
    }
    return a;
  };
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const OpId op = *it;
    const auto& succ = groups.successors()[static_cast<size_t>(op)];
    bool to_exit = succ.empty();
    for (TensorId t : g.op(op).outputs) to_exit = to_exit || g.tensor(t).graph_output;
    OpId d = kExit;
    if (!to_exit) {
      d = succ.front();
      for (size_t k = 1; k < succ.size() && d != kExit; ++k) d = lca(d, succ[k]);
    }
    ipdom[static_cast<size_t>(op)] = d;
    depth[static_cast<size_t>(op)] = d == kExit ? 1 : depth[static_cast<size_t>(d)] + 1;
  }
  return ipdom;
}

}  // namespace

Work apply_pattern(const Work& work, const PatternRule& rule, const OriginRank& rank) {
  const Graph& g = work.graph;
  const auto pos = positions(g);
  std::vector<OpId> order(static_cast<size_t>(g.num_ops()));
  for (OpId op = 0; op < g.num_ops(); ++op) order[static_cast<size_t>(pos[static_cast<size_t>(op)])] = op;
  Groups groups(g);
  std::vector<char> used(static_cast<size_t>(g.num_ops()), 0);
  std::map<int, std::string> labels;
  Matcher matcher(work, rule, groups, used);
  bool any = false;
  for (OpId root : order) {
    if (used[static_cast<size_t>(root)] || !has(rule.nodes.front().types, work.label[static_cast<size_t>(root)]))
      continue;
    auto members = matcher.match(root);
    if (members.empty()) continue;
    for (OpId m : members) used[static_cast<size_t>(m)] = 1;
    labels[groups.merge(members)] = rule.produces;
    any = true;
  }
  return any ? contract(work, groups, labels, rank) : work;
}

Work apply_kind_phase(const Work& work, const std::vector<const KindRule*>& rules, const OriginRank& rank) {
  const Graph& g = work.graph;
  const auto pos = positions(g);
  Groups groups(g);
  const auto ipdom = post_dominators(g, groups, pos);
  std::vector<Kind> group_kind = work.kind;
  std::vector<OpId> order(static_cast<size_t>(g.num_ops()));
  for (OpId op = 0; op < g.num_ops(); ++op) order[static_cast<size_t>(pos[static_cast<size_t>(op)])] = op;
  std::vector<int> seen(static_cast<size_t>(g.num_ops()), -1);
  bool any = false;
  for (OpId n : order) {
    const OpId d = ipdom[static_cast<size_t>(n)];
    if (d == kExit) continue;
    const int root = groups.find(n);
    if (groups.find(d) == root) continue;
    const Kind k = group_kind[static_cast<size_t>(root)];
    const KindRule* rule = nullptr;
    for (const KindRule* r : rules)
      if (r->source_min <= k && k <= r->source_max) {
        rule = r;
        break;
      }
    if (rule == nullptr) continue;
    const auto& sink = rule->sink;
    if (std::find(sink.begin(), sink.end(), work.kind[static_cast<size_t>(d)]) == sink.end()) continue;
    // Every node on a path from n to d (all of them lie before d) must be of an allowed kind.
    std::vector<OpId> set = {n, d}, stack = {n};
    seen[static_cast<size_t>(n)] = n;
    bool ok = true;
    while (!stack.empty() && ok) {
      const OpId x = stack.back();
      stack.pop_back();
      for (OpId y : groups.successors()[static_cast<size_t>(x)]) {
        if (y == d || seen[static_cast<size_t>(y)] == n) continue;
        seen[static_cast<size_t>(y)] = n;
        if (work.kind[static_cast<size_t>(y)] > rule->path_max) ok = false;
        set.push_back(y);
        stack.push_back(y);
      }
    }
    if (!ok) continue;
    const auto all = groups.expand(set);
    const int sink_root = groups.find(d);
    bool closed = true;
    for (OpId e : exits(g, all)) closed = closed && groups.find(e) == sink_root;
    // One anchor (out-elementwise-fusable or opaque kernel) per group, as TVM's fused functions have.
    const auto anchors = std::count_if(all.begin(), all.end(), [&](OpId m) {
      return work.kind[static_cast<size_t>(m)] >= Kind::OutEWiseFusable;
    });
    if (!closed || anchors > 1 || groups.would_cycle(set)) continue;
    Kind merged = k;
    for (OpId m : all) merged = std::max(merged, work.kind[static_cast<size_t>(m)]);
    group_kind[static_cast<size_t>(groups.merge(set))] = merged;
    any = true;
  }
  return any ? contract(work, groups, {}, rank) : work;
}

}  // namespace moirai::coarsen_detail
