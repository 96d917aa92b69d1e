// FLOP and byte accounting per operator type (a multiply-add counts as 2 FLOPs). Formulas read only the
// operator's tensors and integer attributes, so they apply equally to imported and to rebuilt operators.
#include <algorithm>
#include <string_view>
#include <unordered_map>

#include "moirai/graph.h"

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

/// FLOPs per output element of elementwise and normalisation operators. Transcendental functions count a few
/// operations each (a rough but common convention); data movement counts 0.
const std::unordered_map<std::string_view, double>& per_element_flops() {
  static const std::unordered_map<std::string_view, double> table = {
      // arithmetic and comparisons
      {"Add", 1}, {"Sub", 1}, {"Mul", 1}, {"Div", 1}, {"Mod", 1}, {"Neg", 1}, {"Abs", 1}, {"Sign", 1},
      {"Max", 1}, {"Min", 1}, {"Sum", 1}, {"Mean", 1}, {"Floor", 1}, {"Ceil", 1}, {"Round", 1}, {"Reciprocal", 1},
      {"Sqrt", 1}, {"Equal", 1}, {"Less", 1}, {"LessOrEqual", 1}, {"Greater", 1}, {"GreaterOrEqual", 1},
      {"Not", 1}, {"And", 1}, {"Or", 1}, {"Xor", 1}, {"Where", 1}, {"Cast", 1}, {"Clip", 1},
      {"BitShift", 1}, {"IsNaN", 1}, {"IsInf", 1},
      // activations
      {"Relu", 1}, {"LeakyRelu", 2}, {"PRelu", 2}, {"Elu", 4}, {"Selu", 4}, {"Celu", 4}, {"ThresholdedRelu", 1},
      {"HardSigmoid", 3}, {"HardSwish", 4}, {"Sigmoid", 4}, {"Tanh", 4}, {"Exp", 4}, {"Log", 4}, {"Pow", 4},
      {"Erf", 4}, {"Sin", 4}, {"Cos", 4}, {"Softplus", 4}, {"Softsign", 2}, {"Mish", 8}, {"Gelu", 8},
      {"FastGelu", 8}, {"QuickGelu", 5}, {"Swish", 5}, {"SiLU", 5},
      // normalisation (per element: max/mean, subtract, exp or square, sum, divide or scale...)
      {"Softmax", 5}, {"LogSoftmax", 6}, {"Hardmax", 1}, {"LayerNormalization", 8},
      {"SimplifiedLayerNormalization", 5}, {"RMSNormalization", 5}, {"SkipLayerNormalization", 9},
      {"InstanceNormalization", 8}, {"GroupNormalization", 8}, {"BatchNormalization", 2},
      {"LpNormalization", 3}, {"LRN", 6}, {"Dropout", 0},
      // reductions count per input element (handled below), listed so they are known
      // data movement: no arithmetic
      {"Reshape", 0}, {"Flatten", 0}, {"Squeeze", 0}, {"Unsqueeze", 0}, {"Identity", 0}, {"Transpose", 0},
      {"Concat", 0}, {"Split", 0}, {"Slice", 0}, {"Gather", 0}, {"GatherElements", 0}, {"GatherND", 0},
      {"ScatterND", 0}, {"ScatterElements", 0}, {"Expand", 0}, {"Tile", 0}, {"Pad", 0}, {"DepthToSpace", 0},
      {"SpaceToDepth", 0}, {"Shape", 0}, {"Size", 0}, {"ConstantOfShape", 0}, {"Constant", 0}, {"Range", 1},
      {"Trilu", 0}, {"OneHot", 0}, {"CumSum", 1}, {"Resize", 1}, {"Upsample", 1}, {"TopK", 1}, {"NonZero", 1},
  };
  return table;
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
  auto it = per_element_flops().find(type);
  if (it != per_element_flops().end()) return out * it->second;
  return -1;
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
