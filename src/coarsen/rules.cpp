// The fusion rule tables, one per backend. This is the only file in src/coarsen that names ONNX operators.
// Sources:
//  - onnxruntime: "Graph Optimizations in ONNX Runtime" (onnxruntime.ai/docs/performance/model-optimizations/
//    graph-optimizations.html): basic fusions (Conv Add, Conv Mul, Conv BatchNorm, Relu Clip) and extended ones
//    (GEMM Activation, MatMul Add, Conv Activation, GELU, Layer Normalization, Attention, Skip Layer
//    Normalization, Bias GELU); Conv+Add(residual)+Activation follows ORT's conv_add_act_fusion transformer and
//    RMSNorm its SimplifiedLayerNormFusion.
//  - tensorrt: TensorRT developer guide, "Layer Fusion Catalog" (docs.nvidia.com/deeplearning/tensorrt/latest/
//    performance/fusion-catalog.html): Convolution and Scale, Convolution and ElementWise Operation,
//    Convolution and ReLU/GELU/Clip Activation, Scale and Activation, Shuffle and Shuffle, Shuffle and Reduce,
//    PointWise fusion, GELU, normalization (LayerNorm); multi-head attention from "Fused Attention" (same guide).
//  - tvm: TVM relay/transforms/fuse_ops.cc: the pattern kinds (kElemWise/kBroadcast, kInjective, kCommReduce,
//    kOutEWiseFusable, kOpaque) of the Relay operators ONNX ops lower to, and its three grouping rules.
#include "rules.h"

#include <initializer_list>

#include "moirai/op_traits.h"

namespace moirai::coarsen_detail {
namespace {

using Types = std::vector<std::string>;

PatternNode root(Types types) { return PatternNode{std::move(types), -1, true, false, {}, false}; }
PatternNode consumer(int link, Types types, bool optional = false, std::vector<int> also = {}) {
  return PatternNode{std::move(types), link, true, optional, std::move(also), false};
}
/// A consumer whose other operands are all parameters (a bias, a scale).
PatternNode consumer_const(int link, Types types) { return PatternNode{std::move(types), link, true, false, {}, true}; }
PatternNode producer(int link, Types types, bool optional = false) {
  return PatternNode{std::move(types), link, false, optional, {}, false};
}

const Types kActivations = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish",
                            "Elu", "Selu", "Softplus", "PRelu"};
Types with(Types a, std::initializer_list<const char*> more) {
  for (const char* m : more) a.emplace_back(m);
  return a;
}

/// Operator kinds shared by every backend (TVM's registrations of the Relay ops each ONNX op lowers to).
std::map<std::string, Kind, std::less<>> base_kinds() {
  std::map<std::string, Kind, std::less<>> k;
  // Elementwise types come from the operator-traits table; the other kinds below agree with its pattern column
  // (tests/coarsen/test_rules.cpp checks).
  for (const auto& traits : op_traits_table())
    if (traits.pattern == OpPattern::ElemWise) k[std::string(traits.type)] = Kind::ElemWise;
  for (const char* t : {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
                        "Gather", "Expand", "Pad", "Tile", "Resize", "DepthToSpace", "SpaceToDepth", "Shape",
                        "Range", "ConstantOfShape", "GatherElements"})
    k[t] = Kind::Injective;
  for (const char* t : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2",
                        "ReduceSumSquare", "ArgMax", "ArgMin"})
    k[t] = Kind::Reduction;
  for (const char* t : {"Conv", "ConvTranspose", "MatMul", "Gemm", "MaxPool", "AveragePool", "GlobalAveragePool",
                        "GlobalMaxPool", "Einsum"})
    k[t] = Kind::OutEWiseFusable;
  // Softmax, LayerNormalization, TopK, NonZero, control flow...: not in the table, hence opaque.
  return k;
}

// GELU decompositions as exported by PyTorch: x * 0.5 * (1 + erf(x / sqrt 2)) in two association orders, and
// the tanh approximation.
PatternRule gelu_erf() {
  return {"gelu", "", {root({"Div"}), consumer(0, {"Erf"}), consumer(1, {"Add"}), consumer(2, {"Mul"}),
                       consumer(3, {"Mul"}, true)}, -1, "Gelu"};
}
PatternRule gelu_erf_half_first() {
  return {"gelu", "", {root({"Div"}), consumer(0, {"Erf"}), consumer(1, {"Add"}), consumer(2, {"Mul"}),
                       producer(3, {"Mul"})}, 3, "Gelu"};
}
PatternRule gelu_tanh() {
  return {"gelu-tanh", "", {root({"Pow"}), consumer(0, {"Mul"}), consumer(1, {"Add"}), consumer(2, {"Mul"}),
                            consumer(3, {"Tanh"}), consumer(4, {"Add"}), consumer(5, {"Mul"}),
                            consumer(6, {"Mul"}, true)}, -1, "Gelu"};
}
// LayerNorm: ReduceMean - Sub - Pow - ReduceMean - Add - Sqrt - Div (- Mul - Add affine).
PatternRule layer_norm() {
  return {"layer-norm", "", {root({"ReduceMean"}), consumer(0, {"Sub"}), consumer(1, {"Pow", "Mul"}),
                             consumer(2, {"ReduceMean"}), consumer(3, {"Add"}), consumer(4, {"Sqrt"}),
                             consumer(5, {"Div"}, false, {1}), consumer(6, {"Mul"}, true),
                             consumer(7, {"Add"}, true)}, -1, "LayerNormalization"};
}
// RMSNorm (LLaMA): x*x - ReduceMean - Add - Sqrt - Div/Reciprocal - Mul, with the weight Mul on either side.
PatternRule rms_norm() {
  return {"rms-norm", "", {root({"ReduceMean"}), producer(0, {"Pow", "Mul"}), consumer(0, {"Add"}),
                           consumer(2, {"Sqrt"}), consumer(3, {"Div", "Reciprocal"}), consumer(4, {"Mul"}),
                           producer(5, {"Mul"}, true), consumer(5, {"Mul"}, true)}, -1, "LayerNormalization"};
}
// Attention core: [Q,K reshape/transpose] - MatMul - scale - mask - Softmax - MatMul(V) - transpose - reshape.
PatternRule attention() {
  return {"attention", "", {root({"Softmax"}),
                            producer(0, {"Where", "Add", "Mul", "Div"}, true),  // mask
                            producer(1, {"Div", "Mul"}, true),                  // scale
                            producer(2, {"MatMul"}),                            // Q.K^T
                            consumer(0, {"MatMul"}),                            // .V
                            producer(3, {"Transpose", "Mul", "Div"}, true),     // K^T (or scaled Q)
                            producer(5, {"Reshape"}, true),
                            producer(3, {"Transpose", "Mul", "Div"}, true),     // Q
                            producer(7, {"Reshape", "Transpose"}, true),
                            producer(4, {"Transpose"}, true),                   // V
                            producer(9, {"Reshape"}, true),
                            consumer(4, {"Transpose"}, true),                   // heads back
                            consumer(11, {"Reshape"}, true)}, -1, "Attention"};
}

RuleSet onnxruntime() {
  RuleSet r{"onnxruntime", base_kinds(), {}, {}};
  const std::string basic = "ORT graph optimizations, basic: ";
  const std::string ext = "ORT graph optimizations, extended: ";
  r.patterns = {
      {"conv-bn", basic + "Conv BatchNorm Fusion", {root({"Conv"}), consumer(0, {"BatchNormalization"})}, -1, ""},
      {"conv-add", basic + "Conv Add Fusion", {root({"Conv"}), consumer_const(0, {"Add"})}, -1, ""},
      {"conv-mul", basic + "Conv Mul Fusion", {root({"Conv"}), consumer_const(0, {"Mul"})}, -1, ""},
      {"relu-clip", basic + "Relu Clip Fusion", {root({"Relu"}), consumer(0, {"Clip"})}, -1, ""},
      {"conv-add-act", "ORT conv_add_act_fusion (FusedConv with a residual input)",
       {root({"Conv"}), consumer(0, {"Add"}), consumer(1, kActivations, true)}, -1, ""},
      {"conv-act", ext + "Conv Activation Fusion", {root({"Conv"}), consumer(0, kActivations)}, -1, ""},
      gelu_erf(), gelu_erf_half_first(), gelu_tanh(), layer_norm(), rms_norm(), attention(),
      {"skip-layer-norm", ext + "Skip Layer Normalization Fusion",
       {root({"Add"}), consumer(0, {"LayerNormalization"})}, -1, "SkipLayerNormalization"},
      {"bias-gelu", ext + "Bias GELU Fusion", {root({"Add"}), consumer(0, {"Gelu"})}, -1, "BiasGelu"},
      {"matmul-add", ext + "Matmul Add Fusion", {root({"MatMul"}), consumer_const(0, {"Add"})}, -1, "Gemm"},
      {"gemm-act", ext + "GEMM Activation Fusion", {root({"Gemm"}), consumer(0, kActivations)}, -1, ""},
  };
  for (auto* rule : {&r.patterns[6], &r.patterns[7], &r.patterns[8]}) rule->source = ext + "GELU Fusion";
  r.patterns[9].source = ext + "Layer Normalization Fusion";
  r.patterns[10].source = "ORT SimplifiedLayerNormFusion (RMSNorm)";
  r.patterns[11].source = ext + "Attention Fusion";
  return r;
}

RuleSet tensorrt() {
  RuleSet r{"tensorrt", base_kinds(), {}, {}};
  // TensorRT fuses shuffles (Reshape/Transpose/Flatten/Squeeze/Unsqueeze) with each other only; other data
  // movement (Concat, Slice, Gather, Split, Pad) stays its own layer.
  for (const char* t : {"Concat", "Split", "Slice", "Gather", "Pad", "Tile", "Expand", "Resize", "Shape"})
    r.kinds[t] = Kind::Opaque;
  const std::string cat = "TensorRT layer fusion catalog: ";
  r.patterns = {
      {"conv-scale", cat + "Convolution and Scale", {root({"Conv"}), consumer(0, {"BatchNormalization"})}, -1, ""},
      {"conv-eltwise-act", cat + "Convolution and ElementWise Operation (+ activation)",
       {root({"Conv"}), consumer(0, {"Add", "Mul", "Max"}), consumer(1, kActivations, true)}, -1, ""},
      {"conv-act", cat + "Convolution and ReLU/Clip Activation", {root({"Conv"}), consumer(0, kActivations)}, -1,
       ""},
      {"scale-act", cat + "Scale and Activation", {root({"BatchNormalization"}), consumer(0, kActivations)}, -1, ""},
      gelu_erf(), gelu_erf_half_first(), gelu_tanh(), layer_norm(), rms_norm(), attention(),
      {"conv-gelu", cat + "Convolution and GELU Activation", {root({"Conv"}), consumer(0, {"Gelu"})}, -1, ""},
      {"fc-bias-act", cat + "MatrixMultiply + bias + activation (incl. GELU)",
       {root({"MatMul", "Gemm"}), consumer(0, {"Add"}, true), consumer(1, with(kActivations, {"Gelu"}), true)}, -1, ""},
      {"shuffle-reduce", cat + "Shuffle and Reduce",
       {root({"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"}), producer(0, {"Transpose", "Reshape"})}, 0, ""},
  };
  for (auto* rule : {&r.patterns[4], &r.patterns[5], &r.patterns[6]}) rule->source = cat + "GELU";
  r.patterns[7].source = cat + "normalization (LayerNorm)";
  r.patterns[8].source = cat + "normalization (RMSNorm)";
  r.patterns[9].source = "TensorRT developer guide: Fused Attention (multi-head attention)";
  r.kind_rules = {
      {"pointwise", 0, Kind::ElemWise, Kind::ElemWise, Kind::ElemWise, {Kind::ElemWise}},     // PointWise fusion
      {"shuffle-shuffle", 1, Kind::Injective, Kind::Injective, Kind::Injective, {Kind::Injective}},
  };
  return r;
}

RuleSet tvm() {
  RuleSet r{"tvm", base_kinds(), {}, {}};
  // fuse_ops.cc: (0) an out-elementwise-fusable group (conv, dense) absorbs following elementwise ops;
  // (1) elementwise/broadcast ops join a dominator through injective ops, ending at an injective op, a
  // reduction or an out-elementwise-fusable op; (2) injective ops fuse with injective ops, in phase 1 so that
  // convolutions finish fusing first. Reductions and opaque ops start no fusion.
  r.kind_rules = {
      {"out-ewise-fusable", 0, Kind::OutEWiseFusable, Kind::OutEWiseFusable, Kind::ElemWise, {Kind::ElemWise}},
      {"elemwise", 0, Kind::ElemWise, Kind::ElemWise, Kind::Injective,
       {Kind::ElemWise, Kind::Injective, Kind::Reduction, Kind::OutEWiseFusable}},
      {"elemwise", 1, Kind::ElemWise, Kind::ElemWise, Kind::Injective,
       {Kind::ElemWise, Kind::Injective, Kind::Reduction, Kind::OutEWiseFusable}},
      {"injective", 1, Kind::Injective, Kind::Injective, Kind::Injective, {Kind::ElemWise, Kind::Injective}},
  };
  return r;
}

}  // namespace

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::ElemWise: return "elemwise";
    case Kind::Injective: return "injective";
    case Kind::Reduction: return "reduction";
    case Kind::OutEWiseFusable: return "out-elemwise-fusable";
    case Kind::Opaque: return "opaque";
  }
  return "?";
}

const std::vector<RuleSet>& rule_sets() {
  static const std::vector<RuleSet> sets = {onnxruntime(), tensorrt(), tvm(), RuleSet{"none", base_kinds(), {}, {}}};
  return sets;
}

const RuleSet* find_rule_set(const std::string& name) {
  for (const auto& set : rule_sets())
    if (set.name == name) return &set;
  return nullptr;
}

}  // namespace moirai::coarsen_detail
