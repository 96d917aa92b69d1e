// FLOP and byte accounting per operator type (a multiply-add counts as 2 FLOPs). Formulas read only the
// operator's tensors and integer attributes, so they apply equally to imported and to rebuilt operators.
#include <algorithm>
#include <string_view>

#include "moirai/graph.h"
#include "moirai/op_traits.h"

namespace moirai {
namespace {

double elems(const Graph& g, TensorId t) { return static_cast<double>(g.tensor(t).elements()); }

double product(const std::vector<int64_t>& v, size_t from = 0) {
  double p = 1;
  for (size_t i = from; i < v.size(); ++i) p *= static_cast<double>(v[i]);
  return p;
}

int64_t attr_or(const Operator& op, const char* key, int64_t fallback) {
  auto it = op.attrs.find(key);
  return it == op.attrs.end() || it->second.empty() ? fallback : it->second[0];
}

bool is_reduction(std::string_view type) {
  return type.substr(0, 6) == "Reduce" || type == "ArgMax" || type == "ArgMin" || type == "GlobalAveragePool" ||
         type == "GlobalMaxPool" || type == "GlobalLpPool";
}

/// Returns flops, or a negative value for an unknown type.
double compute_flops(const Graph& g, const Operator& op) {
  const std::string_view type = op.type;
  if (op.outputs.empty()) return 0;
  const double out = elems(g, op.outputs[0]);
  const auto input_shape = [&](size_t i) -> const std::vector<int64_t>& { return g.tensor(op.inputs[i]).shape; };

  if (type == "Conv" && op.inputs.size() >= 2) {
    // W: [Cout, Cin/group, k...]; each output element is a dot product over Cin/group * prod(k).
    const auto& w = input_shape(1);
    double f = 2 * out * product(w, 1);
    if (op.inputs.size() >= 3) f += out;
    return f;
  }
  if (type == "ConvTranspose" && op.inputs.size() >= 2) {
    // W: [Cin, Cout/group, k...]; every input element scatters into Cout/group * prod(k) outputs.
    const auto& w = input_shape(1);
    double f = 2 * elems(g, op.inputs[0]) * product(w, 1);
    if (op.inputs.size() >= 3) f += out;
    return f;
  }
  if (type == "Gemm" && op.inputs.size() >= 2) {
    const auto& a = input_shape(0);
    const double k = a.size() == 2 ? static_cast<double>(attr_or(op, "transA", 0) ? a[0] : a[1]) : 1.0;
    double f = 2 * out * k;
    if (op.inputs.size() >= 3) f += out;
    return f;
  }
  if ((type == "MatMul" || type == "MatMulInteger") && op.inputs.size() >= 2) {
    const auto& a = input_shape(0);
    const double k = a.empty() ? 1.0 : static_cast<double>(a.back());
    return 2 * out * k;
  }
  if (type == "MaxPool" || type == "AveragePool" || type == "LpPool") {
    auto it = op.attrs.find("kernel_shape");
    const double window = it == op.attrs.end() ? 1.0 : product(it->second);
    return out * window;
  }
  if (is_reduction(type)) return op.inputs.empty() ? out : elems(g, op.inputs[0]);
  const OpTraits* traits = find_op_traits(type);
  return traits && traits->flops_per_element >= 0 ? out * traits->flops_per_element : -1;
}

}  // namespace

void annotate_work(const Graph& graph, Operator& op) {
  const std::string_view type = op.type;
  double read = 0, written = 0;
  for (TensorId t : op.inputs) read += static_cast<double>(graph.tensor(t).bytes());
  for (TensorId t : op.outputs) written += static_cast<double>(graph.tensor(t).bytes());
  // Gathers and slices touch only the rows they copy, not the whole source (an embedding table is large).
  if ((type == "Gather" || type == "GatherElements" || type == "GatherND" || type == "Slice") &&
      !op.inputs.empty()) {
    read -= static_cast<double>(graph.tensor(op.inputs[0]).bytes());
    read += std::min(written, static_cast<double>(graph.tensor(op.inputs[0]).bytes()));
  }
  op.bytes_read = read;
  op.bytes_written = written;
  if (type == "Fused") return;  // a coarse node keeps the FLOPs summed from its members
  const double flops = compute_flops(graph, op);
  op.known = flops >= 0;
  op.flops = op.known ? flops : read + written;
}

void annotate_work(Graph& graph) {
  for (OpId id = 0; id < graph.num_ops(); ++id) {
    annotate_work(graph, graph.op(id));
    graph.op(id).param_bytes = 0;
  }
  for (TensorId t = 0; t < graph.num_tensors(); ++t) {
    const Tensor& tensor = graph.tensor(t);
    if (tensor.kind == TensorKind::Parameter && !tensor.consumers.empty())
      graph.op(tensor.consumers.front()).param_bytes += tensor.bytes();
  }
}

}  // namespace moirai
