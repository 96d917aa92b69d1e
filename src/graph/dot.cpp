// Graphviz export of a Graph: one node per operator, one edge per activation tensor consumed.
#include <fmt/format.h>

#include "moirai/graph.h"

namespace moirai {
namespace {
std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, "x"));
}
}  // namespace

std::string to_dot(const Graph& graph) {
  std::string out = fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n",
                                escape(graph.name));
  for (OpId id = 0; id < graph.num_ops(); ++id) {
    const Operator& op = graph.op(id);
    out += fmt::format("  op{} [label=\"{}\\n{}\\n{:.3g} GFLOP\"];\n", id, escape(op.name), escape(op.type),
                       op.flops * 1e-9);
  }
  for (const Edge& e : graph.edges()) {
    const Tensor& t = graph.tensor(e.tensor);
    out += fmt::format("  op{} -> op{} [label=\"{}\", fontsize=8];\n", e.src, e.dst, shape_text(t.shape));
  }
  out += "}\n";
  return out;
}

}  // namespace moirai
