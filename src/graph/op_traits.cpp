// The operator-traits table. FLOPs per element: a multiply-add counts 2, a transcendental function a few
// operations (a rough but common convention), data movement 0. Pattern kinds follow TVM's registrations of the
// Relay operators each ONNX operator lowers to (BatchNormalization: SimplifyInference makes it a multiply-add).
#include "moirai/op_traits.h"

#include <initializer_list>
#include <unordered_map>
#include <utility>

namespace moirai {
namespace {

constexpr OpPattern kElem = OpPattern::ElemWise, kInj = OpPattern::Injective, kRed = OpPattern::Reduction,
                    kOut = OpPattern::OutEWiseFusable, kOpaque = OpPattern::Opaque;

/// An elementwise operator: fuses as ElemWise, may work in place, splits along any axis.
OpTraits elementwise(std::string_view type, double flops) {
  return {type, flops, kElem, true, SplitClass::Elementwise};
}
OpTraits other(std::string_view type, double flops, OpPattern pattern, SplitClass split = SplitClass::None) {
  return {type, flops, pattern, false, split};
}

std::vector<OpTraits> make_table() {
  std::vector<OpTraits> t;
  // arithmetic, comparisons, logic
  for (const char* type : {"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Sign", "Max", "Min", "Sum", "Mean",
                           "Floor", "Ceil", "Round", "Reciprocal", "Sqrt", "Equal", "Less", "LessOrEqual",
                           "Greater", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Where", "Cast", "Clip",
                           "BitShift", "IsNaN", "IsInf", "Relu", "ThresholdedRelu"})
    t.push_back(elementwise(type, 1));
  // activations (Swish is ONNX's x * sigmoid(alpha x), PyTorch's SiLU; FastGelu, QuickGelu: com.microsoft)
  for (const char* type : {"LeakyRelu", "PRelu", "Softsign"}) t.push_back(elementwise(type, 2));
  t.push_back(elementwise("HardSigmoid", 3));
  for (const char* type : {"Elu", "Selu", "Celu", "HardSwish", "Sigmoid", "Tanh", "Exp", "Log", "Pow", "Erf", "Sin",
                           "Cos", "Softplus"})
    t.push_back(elementwise(type, 4));
  for (const char* type : {"QuickGelu", "Swish"}) t.push_back(elementwise(type, 5));
  for (const char* type : {"Mish", "Gelu", "FastGelu"}) t.push_back(elementwise(type, 8));
  t.push_back(elementwise("BatchNormalization", 2));
  t.push_back(elementwise("Dropout", 0));
  t.push_back(elementwise("Identity", 0));
  t.push_back(other("Constant", 0, kElem));
  // normalisation (per element: max/mean, subtract, exp or square, sum, divide or scale...)
  t.push_back(other("Softmax", 5, kOpaque, SplitClass::TokenWise));
  t.push_back(other("LayerNormalization", 8, kOpaque, SplitClass::TokenWise));
  for (auto [type, flops] : std::initializer_list<std::pair<const char*, double>>{
           {"LogSoftmax", 6}, {"Hardmax", 1}, {"SimplifiedLayerNormalization", 5}, {"RMSNormalization", 5},
           {"SkipLayerNormalization", 9}, {"InstanceNormalization", 8}, {"GroupNormalization", 8},
           {"LpNormalization", 3}, {"LRN", 6}})
    t.push_back(other(type, flops, kOpaque));
  // data movement
  for (const char* type : {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice",
                           "Gather", "GatherElements", "Expand", "Tile", "Pad", "DepthToSpace", "SpaceToDepth",
                           "Shape", "ConstantOfShape"})
    t.push_back(other(type, 0, kInj));
  for (const char* type : {"Range", "Resize"}) t.push_back(other(type, 1, kInj));
  for (const char* type : {"GatherND", "ScatterND", "ScatterElements", "Size", "Trilu", "OneHot"})
    t.push_back(other(type, 0, kOpaque));
  for (const char* type : {"CumSum", "Upsample", "TopK", "NonZero"}) t.push_back(other(type, 1, kOpaque));
  // FLOPs by formula (src/graph/work.cpp)
  t.push_back(other("ReduceMean", -1, kRed, SplitClass::TokenWise));
  for (const char* type : {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare",
                           "ArgMax", "ArgMin"})
    t.push_back(other(type, -1, kRed));
  t.push_back(other("Conv", -1, kOut, SplitClass::Conv));
  for (const char* type : {"MaxPool", "AveragePool"}) t.push_back(other(type, -1, kOut, SplitClass::Pool));
  for (const char* type : {"MatMul", "Gemm"}) t.push_back(other(type, -1, kOut, SplitClass::MatMul));
  for (const char* type : {"ConvTranspose", "GlobalAveragePool", "GlobalMaxPool", "Einsum"})
    t.push_back(other(type, -1, kOut));
  return t;
}

}  // namespace

const std::vector<OpTraits>& op_traits_table() {
  static const std::vector<OpTraits> table = make_table();
  return table;
}

const OpTraits* find_op_traits(std::string_view type) {
  static const auto index = [] {
    std::unordered_map<std::string_view, const OpTraits*> m;
    for (const auto& traits : op_traits_table()) m.emplace(traits.type, &traits);
    return m;
  }();
  auto it = index.find(type);
  return it == index.end() ? nullptr : it->second;
}

}  // namespace moirai
