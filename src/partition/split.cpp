// Split legality and part geometry: which dimensions of an operator may be divided (the table in
// include/moirai/partition.h), how proportions become integer ranges that tile the output exactly once, and
// which slice of every input each part reads (whole, the same range, or rows plus the halo a window needs).
// Geometry follows fused-layer partitioning (DeepThings, Zhao et al., IEEE TCAD 2018; CoEdge, Zeng et al.,
// IEEE/ACM ToN 2021); we split one dimension per operator (no 2-D tiles).
#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "moirai/op_traits.h"
#include "moirai/partition.h"

namespace moirai {
namespace {

SplitClass split_class(const Operator& op) {
  const OpTraits* traits = find_op_traits(op.type);
  return traits ? traits->split : SplitClass::None;
}

int64_t attr(const Operator& op, const char* name, size_t i, int64_t fallback) {
  auto it = op.attrs.find(name);
  return it != op.attrs.end() && it->second.size() > i ? it->second[i] : fallback;
}

struct Window {  // the default maps an output range onto the same range
  int64_t kernel = 1, stride = 1, pad = 0, dilation = 1;
  bool operator==(const Window&) const = default;
};

/// How a part reads one input, given the output range it computes: whole, or the range `window` maps it to
/// along `axis` (window_input_rows; plain windows read the same range, a window operator's rows a halo).
struct InputRule {
  InputRule() = default;
  InputRule(int axis_, Window window_ = {}) : axis(axis_), window(window_) {}  // NOLINT(google-explicit-constructor)
  int axis = -1;  // -1: the whole input
  Window window;
  bool whole() const { return axis < 0; }
  bool operator==(const InputRule&) const = default;
};

/// Everything plan_parts needs about one (operator, dimension); legal = false when the split is not allowed.
struct Rule {
  bool legal = false;
  int out_axis = -1;
  int64_t extent = 0;     // in units: proportions divide [0, extent)
  int64_t unit = 1;       // elements of the output axis per unit (a head's width for head splits)
  bool split_params = false;
  std::vector<InputRule> inputs;
};

bool is_param(const Tensor& t) { return t.kind == TensorKind::Parameter; }

// Rows of the window operator's input that map onto its output rows (ONNX's floor / ceil output formula).
bool window_matches(const Operator& op, const Window& w, int64_t in_rows, int64_t out_rows) {
  const int64_t pad_end = attr(op, "pads", 2, w.pad);
  const int64_t span = in_rows + w.pad + pad_end - w.dilation * (w.kernel - 1) - 1;
  if (span < 0) return false;
  const int64_t floor_rows = span / w.stride + 1;
  const int64_t ceil_rows = (span + w.stride - 1) / w.stride + 1;
  return out_rows == floor_rows || (attr(op, "ceil_mode", 0, 0) != 0 && out_rows == ceil_rows);
}

Rule fused_rule(const Graph& g, const Operator& op, SplitDim dim);
Rule attention_rule(const Graph& g, const Operator& op, SplitDim dim);

/// `follow_axis` (members of a fused group): the output axis the member's readers split; an elementwise member
/// splits along it, whatever the dimension.
Rule rule_for(const Graph& g, OpId id, SplitDim dim, int follow_axis = -1) {
  Rule r;
  const Operator& op = g.op(id);
  if (dim == SplitDim::None || op.outputs.empty()) return r;
  const std::vector<int64_t>& out = g.tensor(op.outputs.front()).shape;
  for (TensorId t : op.outputs)
    if (g.tensor(t).shape != out) return r;
  if (op.members) {
    Rule attention = attention_rule(g, op, dim);
    return attention.legal || dim == SplitDim::Heads ? attention : fused_rule(g, op, dim);
  }
  if (dim == SplitDim::Heads) return r;
  const SplitClass kind = split_class(op);
  if (kind == SplitClass::None) return r;
  const int rank = static_cast<int>(out.size());
  const bool follows = kind == SplitClass::Elementwise && follow_axis >= 0 && follow_axis < rank;
  r.inputs.assign(op.inputs.size(), InputRule{});
  auto same_shape_inputs = [&](int axis) {  // elementwise partners (residuals, ...) follow the output's range
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const Tensor& t = g.tensor(op.inputs[i]);
      if (!is_param(t) && t.shape == out) r.inputs[i] = {axis};
    }
  };

  if (!follows && (dim == SplitDim::Channels || dim == SplitDim::Rows)) {
    if (kind == SplitClass::MatMul || kind == SplitClass::TokenWise) {
      if (dim == SplitDim::Rows) return r;
    } else if (rank != 4) {
      return r;
    }
  }
  if (dim == SplitDim::Tokens && !(kind == SplitClass::MatMul || kind == SplitClass::TokenWise || kind == SplitClass::Elementwise)) return r;

  if (kind == SplitClass::Conv || kind == SplitClass::Pool) {
    const Tensor& x = g.tensor(op.inputs.front());
    if (is_param(x) || x.shape.size() != 4) return r;
    const int64_t group = attr(op, "group", 0, 1);
    if (dim == SplitDim::Channels) {
      const bool depthwise = kind == SplitClass::Pool || (group == x.shape[1] && group == out[1]);
      if (kind == SplitClass::Conv && group != 1 && !depthwise) return r;
      r.out_axis = 1;
      r.split_params = true;
      same_shape_inputs(1);
      r.inputs[0] = depthwise ? InputRule{1} : InputRule{};
    } else {
      Window w;
      w.kernel = attr(op, "kernel_shape", 0, 0);
      if (w.kernel == 0 && kind == SplitClass::Conv && op.inputs.size() >= 2 && g.tensor(op.inputs[1]).shape.size() == 4)
        w.kernel = g.tensor(op.inputs[1]).shape[2];
      if (w.kernel <= 0) return r;
      w.stride = attr(op, "strides", 0, 1);
      w.pad = attr(op, "pads", 0, 0);
      w.dilation = attr(op, "dilations", 0, 1);
      if (!window_matches(op, w, x.shape[2], out[2])) return r;
      r.out_axis = 2;
      same_shape_inputs(2);
      r.inputs[0] = {2, w};
    }
  } else if (kind == SplitClass::MatMul) {
    if (rank < 2 || op.inputs.size() < 2 || attr(op, "transA", 0, 0) != 0) return r;
    const Tensor& a = g.tensor(op.inputs[0]);
    const Tensor& b = g.tensor(op.inputs[1]);
    if (is_param(a) || a.shape.size() < 2 || b.shape.size() < 2) return r;
    const bool trans_b = attr(op, "transB", 0, 0) != 0;
    const int64_t k = a.shape.back();
    const int64_t b_k = trans_b ? b.shape[1] : b.shape[b.shape.size() - 2];
    const int64_t b_n = trans_b ? b.shape[0] : b.shape.back();
    if (k != b_k || b_n != out.back() || a.shape[a.shape.size() - 2] != out[static_cast<size_t>(rank - 2)]) return r;
    if (dim == SplitDim::Channels) {
      r.out_axis = rank - 1;
      r.split_params = true;
      same_shape_inputs(rank - 1);
      r.inputs[0] = {};
      const int b_axis = trans_b ? 0 : static_cast<int>(b.shape.size()) - 1;
      r.inputs[1] = is_param(b) ? InputRule{} : InputRule{b_axis};
    } else {
      r.out_axis = rank - 2;
      same_shape_inputs(rank - 2);
      r.inputs[0] = {static_cast<int>(a.shape.size()) - 2};
      r.inputs[1] = {};
    }
  } else {  // TokenWise and Elementwise
    if (op.type == "ReduceMean") {  // RMSNorm / LayerNorm decompositions: by tokens, over the last axis kept as 1
      const auto axes = op.attrs.find("axes");
      if (dim != SplitDim::Tokens || axes == op.attrs.end() || axes->second.size() != 1 ||
          (axes->second[0] != -1 && axes->second[0] != rank - 1) || attr(op, "keepdims", 0, 1) == 0)
        return r;
    }
    if (follows) {
      r.out_axis = follow_axis;
      r.split_params = dim == SplitDim::Channels;
    } else if (dim == SplitDim::Tokens) {
      if (rank < 2) return r;
      if (op.type == "Softmax") {
        const int64_t axis = attr(op, "axis", 0, -1);
        if (axis != -1 && axis != rank - 1) return r;
      }
      if (op.type == "LayerNormalization" && attr(op, "axis", 0, -1) != -1 && attr(op, "axis", 0, -1) != rank - 1) return r;
      r.out_axis = rank - 2;
    } else {
      r.out_axis = dim == SplitDim::Channels ? 1 : 2;
      r.split_params = dim == SplitDim::Channels;
    }
    same_shape_inputs(r.out_axis);
    // Any other activation input is read whole when it broadcasts along the split axis (size 1 there, or
    // absent), and follows the range when it has the output's extent there (broadcasting aligns axes from the end:
    // x / rms(x) split by tokens reads the same tokens of both).
    for (size_t i = 0; i < op.inputs.size(); ++i) {
      const Tensor& t = g.tensor(op.inputs[i]);
      if (is_param(t) || !r.inputs[i].whole()) continue;
      const int ti = static_cast<int>(t.shape.size()) - (rank - r.out_axis);
      if (ti < 0 || t.shape[static_cast<size_t>(ti)] == 1) continue;
      if (t.shape[static_cast<size_t>(ti)] != out[static_cast<size_t>(r.out_axis)]) return r;
      r.inputs[i] = {ti};
    }
  }
  r.extent = out[static_cast<size_t>(r.out_axis)];
  r.legal = r.extent >= 2;
  return r;
}

/// `inner` applied after `outer`: `outer` maps an output range onto the rows of the tensor between them, `inner`
/// maps those onto its input. Strides multiply; pads and reaches add up, scaled by the inner stride.
Window compose(const Window& inner, const Window& outer) {
  const int64_t reach = inner.dilation * (inner.kernel - 1) + inner.stride * outer.dilation * (outer.kernel - 1);
  return {reach + 1, inner.stride * outer.stride, inner.pad + inner.stride * outer.pad, 1};
}

/// One read that covers two (a tensor read by two members): the envelope of two windows of one stride along one
/// axis, else the whole tensor.
InputRule unite(const InputRule& a, const InputRule& b) {
  if (a == b) return a;
  if (a.whole() || b.whole() || a.axis != b.axis || a.window.stride != b.window.stride) return {};
  auto past_end = [](const Window& w) { return w.dilation * (w.kernel - 1) - w.pad; };  // reach beyond the range
  Window w;
  w.stride = a.window.stride;
  w.pad = std::max(a.window.pad, b.window.pad);
  w.kernel = std::max(past_end(a.window), past_end(b.window)) + w.pad + 1;
  return {a.axis, w};
}

// A fused operator splits only as all its members allow. Walking back from the group's outputs, each member must
// compute just the slice its readers in the group need; a member whose whole output is needed would run whole on
// every part (conv -> relu -> conv by channels: the second conv reads every channel), so the split is refused.
// Windows compose on the way back: a row split of conv3x3 -> conv3x3 reads the sum of both halos.
Rule fused_rule(const Graph& g, const Operator& op, SplitDim dim) {
  Rule r;
  const Graph& sub = *op.members;
  OpId anchor = kNone;  // the fused node is named after its anchor member, whose split axis the group keeps
  for (OpId m = 0; m < sub.num_ops(); ++m)
    if (sub.op(m).name == op.name) anchor = m;
  MOIRAI_CHECK(anchor != kNone, "fused operator '" + op.name + "' does not list its anchor among its members");
  const int axis = rule_for(sub, anchor, dim).out_axis;
  if (axis < 0) return r;
  std::vector<std::optional<InputRule>> need(static_cast<size_t>(sub.num_tensors()));  // per tensor, what a part reads
  for (TensorId t = 0; t < sub.num_tensors(); ++t)
    if (sub.tensor(t).graph_output) need[static_cast<size_t>(t)] = InputRule{axis};
  r.split_params = true;
  for (OpId m = sub.num_ops() - 1; m >= 0; --m) {  // members are in topological order
    const Operator& member = sub.op(m);
    if (member.outputs.empty()) return r;
    const std::optional<InputRule> out = need[static_cast<size_t>(member.outputs.front())];
    for (TensorId t : member.outputs)
      if (!out || out->whole() || need[static_cast<size_t>(t)] != out) return r;
    const Rule own = rule_for(sub, m, dim, out->axis);
    if (!own.legal || own.out_axis != out->axis) return r;
    r.split_params = r.split_params && own.split_params;
    for (size_t i = 0; i < member.inputs.size(); ++i) {
      const InputRule& in = own.inputs[i];
      const InputRule read = in.whole() ? InputRule{} : InputRule{in.axis, compose(in.window, out->window)};
      auto& n = need[static_cast<size_t>(member.inputs[i])];
      n = n ? unite(*n, read) : read;
    }
  }
  for (TensorId t : op.inputs)
    r.inputs.push_back(need[static_cast<size_t>(sub.find_tensor(g.tensor(t).name))].value_or(InputRule{}));
  r.out_axis = axis;
  r.extent = g.tensor(op.outputs.front()).shape[static_cast<size_t>(axis)];
  r.legal = r.extent >= 2;
  return r;
}

// Self-attention fused into one group (TensorRT's fused attention, or a --max-nodes merge; ONNX Runtime 1.30
// leaves these exports unfused): q, k and v [B, S, E] reshaped and transposed to [B, H, S, E/H],
// MatMul(q, k^T) -> scale / mask -> Softmax -> MatMul(., v) -> transpose ->
// reshape to [B, S, E]. By heads, a part computes heads [h0, h1): it reads columns [h0, h1) x E/H of q, k and v
// and writes the same columns of the output. By tokens, a part computes query rows: it reads those rows of q and
// all of k and v. Anything else the group reads (a mask) is read whole.
Rule attention_rule(const Graph& g, const Operator& op, SplitDim dim) {
  Rule r;
  if (dim != SplitDim::Heads && dim != SplitDim::Tokens) return r;
  const Graph& sub = *op.members;
  std::vector<OpId> matmuls;
  bool softmax = false;
  for (OpId m = 0; m < sub.num_ops(); ++m) {
    const Operator& member = sub.op(m);
    softmax = softmax || member.type == "Softmax";
    if (member.type == "MatMul" && member.inputs.size() == 2 && !is_param(sub.tensor(member.inputs[0])) &&
        !is_param(sub.tensor(member.inputs[1])))
      matmuls.push_back(m);
  }
  if (matmuls.size() != 2 || !softmax || op.outputs.size() != 1) return r;
  const std::vector<int64_t>& out = g.tensor(op.outputs.front()).shape;
  const Operator& scores_op = sub.op(matmuls[0]);
  const std::vector<int64_t>& scores = sub.tensor(scores_op.outputs.front()).shape;
  if (out.size() != 3 || scores.size() != 4) return r;
  const int64_t heads = scores[1], tokens = out[1], embed = out[2];
  if (scores[2] != tokens || heads < 1 || embed % heads != 0) return r;
  // The group input an operand comes from, through reshapes and transposes (kNone: computed otherwise).
  auto source = [&](TensorId t) {
    while (sub.tensor(t).producer != kNone) {
      const Operator& m = sub.op(sub.tensor(t).producer);
      if ((m.type != "Reshape" && m.type != "Transpose") || m.inputs.empty()) return kNone;
      t = m.inputs.front();
    }
    return t;
  };
  const TensorId q = source(scores_op.inputs[0]), k = source(scores_op.inputs[1]),
                 v = source(sub.op(matmuls[1]).inputs[1]);
  if (q == kNone || k == kNone || v == kNone || q == k || q == v) return r;
  const std::vector<TensorId> qkv = {q, k, v};
  for (TensorId t : op.inputs) {
    const TensorId member_input = sub.find_tensor(g.tensor(t).name);
    const bool operand = std::find(qkv.begin(), qkv.end(), member_input) != qkv.end();
    if (operand && g.tensor(t).shape != out) return r;  // q, k, v must be [B, S, E] like the output
    if (dim == SplitDim::Heads) r.inputs.push_back(operand ? InputRule{2} : InputRule{});
    else r.inputs.push_back(member_input == q ? InputRule{1} : InputRule{});
  }
  if (dim == SplitDim::Heads) {
    r.out_axis = 2;
    r.extent = heads;
    r.unit = embed / heads;
  } else {
    r.out_axis = 1;
    r.extent = tokens;
  }
  r.legal = r.extent >= 2;
  return r;
}

double region_fraction(const Tensor& t, const Region& region) {
  if (region.whole()) return 1.0;
  const int64_t extent = t.shape[static_cast<size_t>(region.axis)];
  return extent > 0 ? static_cast<double>(region.end - region.begin) / static_cast<double>(extent) : 1.0;
}

}  // namespace

const char* split_dim_name(SplitDim dim) {
  switch (dim) {
    case SplitDim::None: return "none";
    case SplitDim::Channels: return "channels";
    case SplitDim::Rows: return "rows";
    case SplitDim::Tokens: return "tokens";
    case SplitDim::Heads: return "heads";
  }
  return "?";
}

std::pair<int64_t, int64_t> window_input_rows(int64_t out_begin, int64_t out_end, int64_t kernel, int64_t stride,
                                              int64_t pad_begin, int64_t dilation, int64_t in_rows) {
  const int64_t first = out_begin * stride - pad_begin;
  const int64_t last = (out_end - 1) * stride - pad_begin + dilation * (kernel - 1) + 1;
  return {std::clamp<int64_t>(first, 0, in_rows), std::clamp<int64_t>(last, 0, in_rows)};
}

std::vector<SplitDim> legal_splits(const Graph& graph, OpId op) {
  std::vector<SplitDim> out;
  for (SplitDim d : {SplitDim::Channels, SplitDim::Rows, SplitDim::Tokens, SplitDim::Heads})
    if (rule_for(graph, op, d).legal) out.push_back(d);
  return out;
}

Expected<std::vector<PartSpec>> plan_parts(const Graph& graph, OpId id, const Split& split) {
  if (id < 0 || id >= graph.num_ops()) return Error{fmt::format("plan_parts: operator id {} out of range", id)};
  const Operator& op = graph.op(id);
  const Rule rule = rule_for(graph, id, split.dim);
  if (!rule.legal)
    return Error{fmt::format("operator '{}' ({}) cannot be split by {}", op.name, op.type, split_dim_name(split.dim))};
  if (split.devices.empty() || split.devices.size() != split.shares.size())
    return Error{fmt::format("operator '{}': a split needs one share per device ({} devices, {} shares)", op.name,
                             split.devices.size(), split.shares.size())};
  double total = 0;
  for (double s : split.shares) {
    if (!(s >= 0) || !std::isfinite(s)) return Error{fmt::format("operator '{}': share {} is not a proportion", op.name, s)};
    total += s;
  }
  if (!(total > 0)) return Error{fmt::format("operator '{}': the shares sum to 0", op.name)};

  double io_bytes = 0;
  for (TensorId t : op.inputs) io_bytes += static_cast<double>(graph.tensor(t).bytes());
  for (TensorId t : op.outputs) io_bytes += static_cast<double>(graph.tensor(t).bytes());

  std::vector<PartSpec> parts;
  double cumulative = 0;
  int64_t begin = 0;
  for (size_t i = 0; i < split.devices.size(); ++i) {
    cumulative += split.shares[i];
    const int64_t end = i + 1 == split.devices.size()
                            ? rule.extent
                            : std::clamp<int64_t>(std::llround(cumulative / total * static_cast<double>(rule.extent)), begin, rule.extent);
    if (end == begin) continue;
    PartSpec p;
    p.device = split.devices[i];
    p.share = static_cast<double>(end - begin) / static_cast<double>(rule.extent);
    p.output = {rule.out_axis, begin * rule.unit, end * rule.unit};
    p.param_fraction = rule.split_params ? p.share : 1.0;
    double bytes = 0;
    for (size_t j = 0; j < op.inputs.size(); ++j) {
      const Tensor& t = graph.tensor(op.inputs[j]);
      const InputRule& in = rule.inputs[j];
      Region region;
      if (!in.whole()) {
        const Window& w = in.window;
        const auto [first, last] = window_input_rows(begin * rule.unit, end * rule.unit, w.kernel, w.stride, w.pad,
                                                     w.dilation, t.shape[static_cast<size_t>(in.axis)]);
        region = {in.axis, first, last};
      }
      p.inputs.push_back(region);
      bytes += static_cast<double>(t.bytes()) * (is_param(t) ? p.param_fraction : region_fraction(t, region));
    }
    for (TensorId t : op.outputs) bytes += static_cast<double>(graph.tensor(t).bytes()) * p.share;
    p.byte_fraction = io_bytes > 0 ? bytes / io_bytes : p.share;
    parts.push_back(std::move(p));
    begin = end;
  }
  return parts;
}

}  // namespace moirai
