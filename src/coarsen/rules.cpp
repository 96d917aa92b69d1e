// The fusion rule tables, one per backend. This is the only file in src/coarsen that names ONNX operators.
// Sources:
//  - onnxruntime, onnxruntime-extended: "Graph Optimizations in ONNX Runtime" (onnxruntime.ai/docs/performance/
//    model-optimizations/graph-optimizations.html): basic fusions (Conv Add, Conv Mul, Conv BatchNorm, Relu Clip,
//    MatMul Add) and extended ones (GEMM Activation, Conv Activation, MatMul Scale, GELU, Layer Normalization,
//    Skip Layer Normalization), kept to those ONNX Runtime 1.30 really applies on the zoo (read back with
//    `moirai coarsen --compare-runtime`), plus the graph transformers the runtime applied there
//    (GatherSliceToSplitFusion, DivMulFusion, MatmulTransposeFusion, SimplifiedLayerNormFusion); level all adds
//    the NCHWc transformer's fusions.
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

PatternNode root(Types types) { return PatternNode{std::move(types), -1, Found::Consumer, false, {}, false, nullptr}; }
PatternNode consumer(int link, Types types, bool optional = false, std::vector<int> also = {}, Accept accept = nullptr) {
  return PatternNode{std::move(types), link, Found::Consumer, optional, std::move(also), false, accept};
}
/// A consumer whose other operands are all parameters (a bias, a scale).
PatternNode consumer_const(int link, Types types, Accept accept = nullptr) {
  return PatternNode{std::move(types), link, Found::Consumer, false, {}, true, accept};
}
PatternNode producer(int link, Types types, bool optional = false, Accept accept = nullptr) {
  return PatternNode{std::move(types), link, Found::Producer, optional, {}, false, accept};
}
PatternNode sibling(int link, Types types, bool optional, Accept accept) {
  return PatternNode{std::move(types), link, Found::Sibling, optional, {}, false, accept};
}

size_t rank_of(const Graph& g, TensorId t) { return g.tensor(t).shape.size(); }

/// A Transpose that ONNX Runtime's MatmulTransposeFusion folds into FusedMatMul's transA/transB and
/// transBatchA/transBatchB: the last axis ends in one of the last two places, and the batch axes keep their
/// order, either in place or after the first axis moved behind them (then both MatMul operands need one rank).
bool absorbable_transpose(const Graph& g, OpId candidate, OpId from) {
  const Operator& t = g.op(candidate);
  if (t.members != nullptr || t.inputs.empty()) return false;
  const auto rank = static_cast<int64_t>(rank_of(g, t.inputs.front()));
  std::vector<int64_t> perm;
  if (const auto it = t.attrs.find("perm"); it != t.attrs.end()) perm = it->second;
  else
    for (int64_t a = rank - 1; a >= 0; --a) perm.push_back(a);  // ONNX default: reverse the axes
  if (rank < 2 || static_cast<int64_t>(perm.size()) != rank) return false;
  const size_t n = perm.size();
  if (perm[n - 1] != rank - 1 && perm[n - 2] != rank - 1) return false;
  if (n >= 3) {
    if (perm[0] != 0 && perm[0] != 1) return false;
    for (size_t i = 0; i + 3 < n; ++i)
      if (perm[i] + 1 != perm[i + 1]) return false;
  }
  const bool batch_moves = n >= 3 && perm[0] == 1;
  const Operator& m = g.op(from);
  if (batch_moves && m.inputs.size() >= 2 && (m.type == "MatMul" || m.type == "FusedMatMul"))
    return rank_of(g, m.inputs[0]) == rank_of(g, m.inputs[1]);
  return true;
}

/// Slices of one data tensor that every reader of it is a Slice of (ONNX Runtime's GatherSliceToSplitFusion
/// turns them into one Split).
bool sibling_slice(const Graph& g, OpId candidate, OpId from) {
  const Operator& a = g.op(candidate);
  const Operator& b = g.op(from);
  if (a.inputs.empty() || b.inputs.empty() || a.inputs.front() != b.inputs.front()) return false;
  auto attr = [](const Operator& op, const char* name) {
    const auto it = op.attrs.find(name);
    return it == op.attrs.end() ? std::vector<int64_t>{} : it->second;
  };
  // One axis, unit steps (a strided slice, such as Swin's patch merging x[:, 0::2], is no piece of a Split).
  for (const Operator* op : {&a, &b})
    for (int64_t step : attr(*op, "steps"))
      if (step != 1) return false;
  if (attr(a, "axes") != attr(b, "axes")) return false;
  for (OpId reader : g.tensor(a.inputs.front()).consumers)
    if (g.op(reader).type != "Slice") return false;
  return true;
}

/// An Add of a bias MatMulAddFusion can make a Gemm's C: a vector along the last axis (every other dim 1).
bool gemm_bias(const Graph& g, OpId candidate, OpId /*from*/) {
  for (TensorId t : g.op(candidate).inputs) {
    const Tensor& tensor = g.tensor(t);
    if (tensor.kind != TensorKind::Parameter) continue;
    for (size_t d = 0; d + 1 < tensor.shape.size(); ++d)
      if (tensor.shape[d] != 1) return false;
  }
  return true;
}

/// The Reshape after a 3-D MatMul + bias: MatMulAddFusion ends its Gemm with a Reshape back to 3-D, and the
/// Reshape fusion merges the two when this one's target shape is known before the run (the importer's
/// `static_shape`).
bool reshape_after_gemm(const Graph& g, OpId candidate, OpId from) {
  const Operator& gemm = g.op(from);
  return g.op(candidate).attrs.count("static_shape") != 0 && !gemm.outputs.empty() &&
         g.tensor(gemm.outputs.front()).shape.size() >= 3;
}

/// A Mul reading a reciprocal 1 / x, with the 1 a constant: DivMulFusion rewrites the pair as one Div.
bool mul_of_reciprocal(const Graph& g, OpId /*candidate*/, OpId from) {
  const Operator& div = g.op(from);
  return div.members == nullptr && !div.inputs.empty() &&
         g.tensor(div.inputs.front()).kind == TensorKind::Parameter && g.tensor(div.inputs.front()).elements() == 1;
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
PatternRule rms_norm(Types square = {"Pow", "Mul"}) {
  return {"rms-norm", "", {root({"ReduceMean"}), producer(0, std::move(square)), consumer(0, {"Add"}),
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

// ONNX Runtime 1.30 on the CPU execution provider, as read back from its optimised graphs on the zoo
// (`moirai coarsen --compare-runtime`, docs/fusion.md). Its Attention fusion and the Skip LayerNorm fusion of
// residual sums that are read again (every block of a pre-LN transformer) do not match these exports: attention
// stays MatMul, Transpose, Reshape, Softmax nodes. MatMul + bias becomes a Gemm before the GELU fusions run, so
// Bias GELU never applies. `all` adds the NCHWc layout transformer: a Conv absorbs a following Add (residual)
// and activation, and a batch normalisation of its own becomes a depthwise convolution with its activation.
RuleSet onnxruntime(bool level_all) {
  RuleSet r{level_all ? "onnxruntime" : "onnxruntime-extended", base_kinds(), {}, {}, ""};
  r.describes = std::string("ONNX Runtime 1.30, CPU execution provider, graph optimisation level ") +
                (level_all ? "all" : "extended");
  const std::string basic = "ORT graph optimizations, basic: ";
  const std::string ext = "ORT graph optimizations, extended: ";
  const std::string nchwc = "ORT NchwcTransformer (level all): ";
  r.patterns.push_back({"pad", basic + "Pad Fusion (into the following Conv or pooling)",
                        {root({"Conv", "AveragePool", "MaxPool"}), producer(0, {"Pad"})}, 0, ""});
  r.patterns.push_back({"conv-bn", basic + "Conv BatchNorm Fusion", {root({"Conv"}), consumer(0, {"BatchNormalization"})}, -1, ""});
  r.patterns.push_back({"conv-add", basic + "Conv Add Fusion", {root({"Conv"}), consumer_const(0, {"Add"})}, -1, ""});
  r.patterns.push_back({"conv-mul", basic + "Conv Mul Fusion", {root({"Conv"}), consumer_const(0, {"Mul"})}, -1, ""});
  r.patterns.push_back({"relu-clip", basic + "Relu Clip Fusion", {root({"Relu"}), consumer(0, {"Clip"})}, -1, ""});
  r.patterns.push_back({"matmul-add", basic + "MatMulAddFusion (MatMul + bias -> Gemm)",
                        {root({"MatMul"}), consumer_const(0, {"Add"}, gemm_bias)}, -1, "Gemm"});
  r.patterns.push_back({"gemm-reshape", basic + "MatMulAddFusion's output Reshape merged with the next one",
                        {root({"Gemm"}), consumer(0, {"Reshape"}, false, {}, reshape_after_gemm)}, -1, "Gemm"});
  r.patterns.push_back({"slices-to-split", basic + "GatherSliceToSplitFusion (sibling Slices -> one Split)",
                        {root({"Slice"}), sibling(0, {"Slice"}, false, sibling_slice),
                         sibling(0, {"Slice"}, true, sibling_slice), sibling(0, {"Slice"}, true, sibling_slice),
                         sibling(0, {"Slice"}, true, sibling_slice)},
                        kAnyExit, "Split"});
  r.patterns.push_back({"div-mul", basic + "DivMulFusion (1 / x * y -> y / x)",
                        {root({"Div"}), consumer(0, {"Mul"}, false, {}, mul_of_reciprocal)}, -1, ""});
  if (level_all) {
    r.patterns.push_back({"conv-add-act", nchwc + "Conv with a residual Add and an activation",
                          {root({"Conv"}), consumer(0, {"Add"}), consumer(1, kActivations, true)}, -1, ""});
    r.patterns.push_back({"bn-act", nchwc + "BatchNormalization as a depthwise Conv, with its activation",
                          {root({"BatchNormalization"}), consumer(0, kActivations)}, -1, ""});
  }
  r.patterns.push_back({"conv-act", ext + "Conv Activation Fusion", {root({"Conv"}), consumer(0, kActivations)}, -1, ""});
  r.patterns.push_back({"matmul-scale", ext + "MatMul Scale Fusion (FusedMatMul)",
                        {root({"MatMul"}), consumer_const(0, {"Div", "Mul"})}, -1, "FusedMatMul"});
  // A scaled operand (torchvision's attention scales Q before Q.K^T), with the Transpose behind it.
  r.patterns.push_back({"matmul-operands", ext + "MatMul Scale Fusion on an input (FusedMatMul alpha)",
                        {root({"MatMul", "FusedMatMul"}), producer(0, {"Div", "Mul"}),
                         producer(1, {"Transpose"}, true, absorbable_transpose)},
                        0, "FusedMatMul"});
  // Operand transposes of any MatMul (K^T, a batch-first V): only perms FusedMatMul can express; GPT-2's and
  // BERT's head-split Transposes (perm 0,2,1,3 and 0,2,3,1) are not among them and stay.
  r.patterns.push_back({"matmul-transpose", ext + "MatmulTransposeFusion (FusedMatMul transA/B, transBatchA/B)",
                        {root({"MatMul", "FusedMatMul"}), producer(0, {"Transpose"}, true, absorbable_transpose),
                         producer(0, {"Transpose"}, true, absorbable_transpose)},
                        0, "FusedMatMul"});
  for (auto rule : {gelu_erf(), gelu_erf_half_first(), gelu_tanh()}) {
    rule.source = ext + "GELU Fusion";
    r.patterns.push_back(std::move(rule));
  }
  auto norm = layer_norm();
  norm.source = ext + "Layer Normalization Fusion";
  r.patterns.push_back(std::move(norm));
  // SimplifiedLayerNormFusion matches the square as Pow only (x * x, as llama_tiny exports it, stays apart).
  auto rms = rms_norm({"Pow"});
  rms.source = ext + "SimplifiedLayerNormFusion (RMSNorm)";
  r.patterns.push_back(std::move(rms));
  r.patterns.push_back({"skip-layer-norm", ext + "Skip Layer Normalization Fusion",
                        {root({"Add"}), consumer(0, {"LayerNormalization"})}, -1, "SkipLayerNormalization"});
  r.patterns.push_back({"gemm-act", ext + "GEMM Activation Fusion", {root({"Gemm"}), consumer(0, kActivations)}, -1, ""});
  return r;
}

RuleSet tensorrt() {
  RuleSet r{"tensorrt", base_kinds(), {}, {}, "TensorRT 10 layer fusion catalog (not checked against TensorRT here)"};
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
  RuleSet r{"tvm", base_kinds(), {}, {}, "TVM Relay FuseOps (not checked against TVM here)"};
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
  static const std::vector<RuleSet> sets = {onnxruntime(true), onnxruntime(false), tensorrt(), tvm(),
                                            RuleSet{"none", base_kinds(), {}, {}, "no fusion"}};
  return sets;
}

const RuleSet* find_rule_set(const std::string& name) {
  for (const auto& set : rule_sets())
    if (set.name == name) return &set;
  return nullptr;
}

}  // namespace moirai::coarsen_detail
