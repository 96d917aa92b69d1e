// Constant evaluation of small tensors, used to fold the shape arithmetic that exporters emit (Shape, Gather,
// Concat, Unsqueeze, Slice, Cast, Range, Where, ...). Each op is implemented on index maps so integer values
// stay exact; anything unusual returns nullopt and the node stays a real operator.
#include "fold.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>

namespace moirai::onnx_import {
namespace T = onnx;
namespace {

int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (size_t k = dims.size(); k-- > 1;) s[k - 1] = s[k] * dims[k];
  return s;
}

int64_t attr_int(const T::NodeProto& n, const char* name, int64_t fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}

std::optional<std::vector<int64_t>> attr_ints(const T::NodeProto& n, const char* name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return std::vector<int64_t>(a.ints().begin(), a.ints().end());
  return std::nullopt;
}

/// New value with `src`'s type whose element k is src element idx[k].
Value take(const Value& src, std::vector<int64_t> dims, const std::vector<int64_t>& idx) {
  Value v;
  v.dtype = src.dtype;
  v.dims = std::move(dims);
  if (src.is_float()) {
    v.f.reserve(idx.size());
    for (int64_t k : idx) v.f.push_back(src.f[static_cast<size_t>(k)]);
  } else {
    v.i.reserve(idx.size());
    for (int64_t k : idx) v.i.push_back(src.i[static_cast<size_t>(k)]);
  }
  return v;
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) v[static_cast<size_t>(k)] = k;
  return v;
}

std::optional<std::vector<int64_t>> broadcast_dims(const std::vector<const Value*>& in) {
  size_t rank = 0;
  for (auto* v : in) rank = std::max(rank, v->dims.size());
  std::vector<int64_t> out(rank, 1);
  for (auto* v : in) {
    for (size_t k = 0; k < v->dims.size(); ++k) {
      int64_t& o = out[rank - v->dims.size() + k];
      const int64_t d = v->dims[k];
      if (d == o || d == 1) continue;
      if (o != 1) return std::nullopt;
      o = d;
    }
  }
  return out;
}

/// Flat index into `v` for every element of the broadcast shape `out`.
std::vector<int64_t> broadcast_index(const Value& v, const std::vector<int64_t>& out) {
  const size_t rank = out.size(), off = rank - v.dims.size();
  std::vector<int64_t> vstride(rank, 0);
  const auto s = strides_of(v.dims);
  for (size_t k = 0; k < v.dims.size(); ++k) vstride[off + k] = v.dims[k] == 1 ? 0 : s[k];
  const int64_t n = product(out);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::vector<int64_t> pos(rank, 0);
  int64_t flat = 0;
  for (int64_t e = 0; e < n; ++e) {
    idx[static_cast<size_t>(e)] = flat;
    for (size_t k = rank; k-- > 0;) {
      flat += vstride[k];
      if (++pos[k] < out[k]) break;
      flat -= vstride[k] * pos[k];
      pos[k] = 0;
    }
  }
  return idx;
}

double as_double(const Value& v, int64_t k) {
  return v.is_float() ? v.f[static_cast<size_t>(k)] : static_cast<double>(v.i[static_cast<size_t>(k)]);
}

int64_t floor_mod(int64_t a, int64_t b) {
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

std::optional<Value> binary(const std::string& op, const Value& a, const Value& b) {
  auto dims = broadcast_dims({&a, &b});
  if (!dims || product(*dims) > kMaxFoldElements) return std::nullopt;
  const auto ia = broadcast_index(a, *dims), ib = broadcast_index(b, *dims);
  const bool cmp = op == "Equal" || op == "Less" || op == "Greater" || op == "LessOrEqual" ||
                   op == "GreaterOrEqual" || op == "And" || op == "Or" || op == "Xor";
  Value v;
  v.dims = *dims;
  v.dtype = cmp ? T::TensorProto_DataType_BOOL : a.dtype;
  const bool fl = a.is_float() || b.is_float();
  for (size_t e = 0; e < ia.size(); ++e) {
    if (fl || op == "Pow") {
      const double x = as_double(a, ia[e]), y = as_double(b, ib[e]);
      double r;
      if (op == "Add") r = x + y;
      else if (op == "Sub") r = x - y;
      else if (op == "Mul") r = x * y;
      else if (op == "Div") r = x / y;
      else if (op == "Pow") r = std::pow(x, y);
      else if (op == "Max") r = std::max(x, y);
      else if (op == "Min") r = std::min(x, y);
      else if (op == "Mod") r = std::fmod(x, y);
      else if (op == "Equal") r = x == y;
      else if (op == "Less") r = x < y;
      else if (op == "Greater") r = x > y;
      else if (op == "LessOrEqual") r = x <= y;
      else if (op == "GreaterOrEqual") r = x >= y;
      else return std::nullopt;
      if (cmp || !v.is_float()) v.i.push_back(static_cast<int64_t>(r));
      else v.f.push_back(r);
    } else {
      const int64_t x = a.i[static_cast<size_t>(ia[e])], y = b.i[static_cast<size_t>(ib[e])];
      int64_t r;
      if (op == "Add") r = x + y;
      else if (op == "Sub") r = x - y;
      else if (op == "Mul") r = x * y;
      else if (op == "Div") { if (y == 0) return std::nullopt; r = x / y; }
      else if (op == "Mod") { if (y == 0) return std::nullopt; r = floor_mod(x, y); }
      else if (op == "Max") r = std::max(x, y);
      else if (op == "Min") r = std::min(x, y);
      else if (op == "Equal") r = x == y;
      else if (op == "Less") r = x < y;
      else if (op == "Greater") r = x > y;
      else if (op == "LessOrEqual") r = x <= y;
      else if (op == "GreaterOrEqual") r = x >= y;
      else if (op == "And") r = x && y;
      else if (op == "Or") r = x || y;
      else if (op == "Xor") r = (x != 0) != (y != 0);
      else return std::nullopt;
      v.i.push_back(r);
    }
  }
  return v;
}

std::optional<Value> unary(const std::string& op, const Value& a) {
  Value v = a;
  if (a.is_float()) {
    for (double& x : v.f) {
      if (op == "Neg") x = -x;
      else if (op == "Abs") x = std::fabs(x);
      else if (op == "Sqrt") x = std::sqrt(x);
      else if (op == "Floor") x = std::floor(x);
      else if (op == "Ceil") x = std::ceil(x);
      else if (op == "Reciprocal") x = 1.0 / x;
      else if (op == "Exp") x = std::exp(x);
      else if (op == "Log") x = std::log(x);
      else if (op == "Identity") {}
      else return std::nullopt;
    }
  } else {
    for (int64_t& x : v.i) {
      if (op == "Neg") x = -x;
      else if (op == "Abs") x = x < 0 ? -x : x;
      else if (op == "Not") x = !x;
      else if (op == "Identity" || op == "Floor" || op == "Ceil") {}
      else return std::nullopt;
    }
  }
  return v;
}

int64_t norm_axis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

std::optional<Value> gather(const Value& data, const Value& indices, int64_t axis) {
  const int64_t rank = static_cast<int64_t>(data.dims.size());
  axis = norm_axis(axis, rank);
  if (axis < 0 || axis >= rank || indices.is_float()) return std::nullopt;
  const auto d = data.dims;
  const int64_t outer = product({d.begin(), d.begin() + axis}), inner = product({d.begin() + axis + 1, d.end()});
  const int64_t len = d[static_cast<size_t>(axis)];
  std::vector<int64_t> dims(d.begin(), d.begin() + axis);
  dims.insert(dims.end(), indices.dims.begin(), indices.dims.end());
  dims.insert(dims.end(), d.begin() + axis + 1, d.end());
  std::vector<int64_t> idx;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t q : indices.i) {
      const int64_t k = q < 0 ? q + len : q;
      if (k < 0 || k >= len) return std::nullopt;
      for (int64_t in = 0; in < inner; ++in) idx.push_back((o * len + k) * inner + in);
    }
  return take(data, dims, idx);
}

std::optional<Value> slice(const Value& data, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                           std::vector<int64_t> axes, std::vector<int64_t> steps) {
  const int64_t rank = static_cast<int64_t>(data.dims.size());
  if (axes.empty()) axes = iota(static_cast<int64_t>(starts.size()));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    return std::nullopt;
  std::vector<int64_t> lo(static_cast<size_t>(rank), 0), step(static_cast<size_t>(rank), 1), dims = data.dims;
  for (size_t k = 0; k < starts.size(); ++k) {
    const int64_t ax = norm_axis(axes[k], rank);
    if (ax < 0 || ax >= rank || steps[k] == 0) return std::nullopt;
    const int64_t len = data.dims[static_cast<size_t>(ax)];
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s += len;
    if (e < 0) e += len;
    int64_t count;
    if (steps[k] > 0) {
      s = std::clamp<int64_t>(s, 0, len);
      e = std::clamp<int64_t>(e, 0, len);
      count = e > s ? (e - s + steps[k] - 1) / steps[k] : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, len - 1);
      e = std::clamp<int64_t>(e, -1, len - 1);
      count = s > e ? (s - e - steps[k] - 1) / -steps[k] : 0;
    }
    lo[static_cast<size_t>(ax)] = s;
    step[static_cast<size_t>(ax)] = steps[k];
    dims[static_cast<size_t>(ax)] = count;
  }
  const auto src_stride = strides_of(data.dims);
  const int64_t n = product(dims);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::vector<int64_t> pos(static_cast<size_t>(rank), 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t flat = 0;
    for (int64_t k = 0; k < rank; ++k) {
      const auto u = static_cast<size_t>(k);
      flat += (lo[u] + pos[u] * step[u]) * src_stride[u];
    }
    idx[static_cast<size_t>(e)] = flat;
    for (int64_t k = rank; k-- > 0;)
      if (++pos[static_cast<size_t>(k)] < dims[static_cast<size_t>(k)]) break;
      else pos[static_cast<size_t>(k)] = 0;
  }
  return take(data, dims, idx);
}

std::optional<Value> concat(const std::vector<const Value*>& in, int64_t axis) {
  if (in.empty()) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(in[0]->dims.size());
  axis = norm_axis(axis, rank);
  if (axis < 0 || axis >= rank) return std::nullopt;
  std::vector<int64_t> dims = in[0]->dims;
  dims[static_cast<size_t>(axis)] = 0;
  for (auto* v : in) {
    if (static_cast<int64_t>(v->dims.size()) != rank || v->is_float() != in[0]->is_float()) return std::nullopt;
    dims[static_cast<size_t>(axis)] += v->dims[static_cast<size_t>(axis)];
  }
  const int64_t outer = product({dims.begin(), dims.begin() + axis});
  Value out;
  out.dtype = in[0]->dtype;
  out.dims = dims;
  for (int64_t o = 0; o < outer; ++o)
    for (auto* v : in) {
      const int64_t chunk = product({v->dims.begin() + axis, v->dims.end()});
      for (int64_t k = o * chunk; k < (o + 1) * chunk; ++k) {
        if (v->is_float()) out.f.push_back(v->f[static_cast<size_t>(k)]);
        else out.i.push_back(v->i[static_cast<size_t>(k)]);
      }
    }
  return out;
}

std::optional<Value> transpose(const Value& a, std::vector<int64_t> perm) {
  const size_t rank = a.dims.size();
  if (perm.empty())
    for (size_t k = rank; k-- > 0;) perm.push_back(static_cast<int64_t>(k));
  if (perm.size() != rank) return std::nullopt;
  std::vector<int64_t> dims(rank);
  for (size_t k = 0; k < rank; ++k) dims[k] = a.dims[static_cast<size_t>(perm[k])];
  const auto s = strides_of(a.dims);
  std::vector<int64_t> idx;
  std::vector<int64_t> pos(rank, 0);
  for (int64_t e = 0, n = product(dims); e < n; ++e) {
    int64_t flat = 0;
    for (size_t k = 0; k < rank; ++k) flat += pos[k] * s[static_cast<size_t>(perm[k])];
    idx.push_back(flat);
    for (size_t k = rank; k-- > 0;)
      if (++pos[k] < dims[k]) break;
      else pos[k] = 0;
  }
  return take(a, dims, idx);
}

std::optional<Value> cast(const Value& a, int32_t to) {
  Value v;
  v.dtype = to;
  v.dims = a.dims;
  const int64_t n = a.size();
  for (int64_t k = 0; k < n; ++k) {
    const double x = as_double(a, k);
    if (v.is_float()) v.f.push_back(x);
    else if (to == T::TensorProto_DataType_BOOL) v.i.push_back(x != 0);
    else v.i.push_back(a.is_float() ? static_cast<int64_t>(x) : a.i[static_cast<size_t>(k)]);
  }
  return v;
}

std::optional<std::vector<int64_t>> ints_of(const Value* v) {
  if (!v || v->is_float()) return std::nullopt;
  return v->i;
}

/// One node to fold: its proto, its input values (nullptr where unknown) and the model's opset.
struct Folding {
  const T::NodeProto& node;
  const std::vector<const Value*>& in;
  int opset;

  const std::string& op() const { return node.op_type(); }
  const Value* arg(size_t k) const { return k < in.size() ? in[k] : nullptr; }
};

using Folder = std::optional<Value> (*)(const Folding&);

std::optional<Value> fold_binary(const Folding& f) {
  if (!f.arg(1)) return std::nullopt;
  auto out = binary(f.op(), *f.in[0], *f.in[1]);
  // Max and Min are variadic.
  for (size_t k = 2; out && k < f.in.size() && (f.op() == "Max" || f.op() == "Min"); ++k)
    out = binary(f.op(), *out, *f.in[k]);
  return out;
}

std::optional<Value> fold_unary(const Folding& f) { return unary(f.op(), *f.in[0]); }

std::optional<Value> fold_cast(const Folding& f) {
  return cast(*f.in[0], static_cast<int32_t>(attr_int(f.node, "to", T::TensorProto_DataType_FLOAT)));
}

std::optional<Value> fold_gather(const Folding& f) {
  if (!f.arg(1)) return std::nullopt;
  return gather(*f.in[0], *f.in[1], attr_int(f.node, "axis", 0));
}

std::optional<Value> fold_unsqueeze(const Folding& f) {
  const auto axes = f.opset >= 13 ? ints_of(f.arg(1)) : attr_ints(f.node, "axes");
  if (!axes) return std::nullopt;
  std::vector<int64_t> dims = f.in[0]->dims;
  const int64_t rank = static_cast<int64_t>(dims.size() + axes->size());
  std::vector<int64_t> a = *axes;
  for (auto& x : a) x = norm_axis(x, rank);
  std::sort(a.begin(), a.end());
  for (int64_t x : a) {
    if (x < 0 || x > static_cast<int64_t>(dims.size())) return std::nullopt;
    dims.insert(dims.begin() + x, 1);
  }
  Value out = *f.in[0];
  out.dims = dims;
  return out;
}

std::optional<Value> fold_squeeze(const Folding& f) {
  const auto axes = f.opset >= 13 ? ints_of(f.arg(1)) : attr_ints(f.node, "axes");
  const std::vector<int64_t>& dims = f.in[0]->dims;
  std::vector<int64_t> kept;
  const int64_t rank = static_cast<int64_t>(dims.size());
  for (int64_t k = 0; k < rank; ++k) {
    const bool listed = axes ? std::any_of(axes->begin(), axes->end(),
                                           [&](int64_t x) { return norm_axis(x, rank) == k; })
                             : dims[static_cast<size_t>(k)] == 1;
    if (!listed) kept.push_back(dims[static_cast<size_t>(k)]);
  }
  Value out = *f.in[0];
  out.dims = kept;
  return out;
}

std::optional<Value> fold_reshape(const Folding& f) {
  auto shape = ints_of(f.arg(1));
  if (!shape) return std::nullopt;
  const Value& data = *f.in[0];
  std::vector<int64_t> dims = *shape;
  int64_t known = 1, infer = -1;
  for (size_t k = 0; k < dims.size(); ++k) {
    if (dims[k] == 0 && !attr_int(f.node, "allowzero", 0)) dims[k] = k < data.dims.size() ? data.dims[k] : 1;
    if (dims[k] == -1) infer = static_cast<int64_t>(k);
    else known *= dims[k];
  }
  if (infer >= 0) dims[static_cast<size_t>(infer)] = known ? data.size() / known : 0;
  if (product(dims) != data.size()) return std::nullopt;
  Value out = data;
  out.dims = dims;
  return out;
}

std::optional<Value> fold_concat(const Folding& f) { return concat(f.in, attr_int(f.node, "axis", 0)); }

std::optional<Value> fold_slice(const Folding& f) {
  if (f.opset < 10) {  // starts, ends and axes are attributes
    auto s = attr_ints(f.node, "starts"), e = attr_ints(f.node, "ends");
    if (!s || !e) return std::nullopt;
    return slice(*f.in[0], *s, *e, attr_ints(f.node, "axes").value_or(std::vector<int64_t>{}), {});
  }
  auto s = ints_of(f.arg(1)), e = ints_of(f.arg(2));
  if (!s || !e) return std::nullopt;
  auto axes = f.arg(3) ? ints_of(f.arg(3)) : std::vector<int64_t>{};
  auto steps = f.arg(4) ? ints_of(f.arg(4)) : std::vector<int64_t>{};
  if (!axes || !steps) return std::nullopt;
  return slice(*f.in[0], *s, *e, *axes, *steps);
}

std::optional<Value> fold_transpose(const Folding& f) {
  return transpose(*f.in[0], attr_ints(f.node, "perm").value_or(std::vector<int64_t>{}));
}

std::optional<Value> fold_where(const Folding& f) {
  const auto& in = f.in;
  if (!f.arg(1) || !f.arg(2) || in[1]->is_float() != in[2]->is_float()) return std::nullopt;
  auto dims = broadcast_dims({in[0], in[1], in[2]});
  if (!dims || product(*dims) > kMaxFoldElements) return std::nullopt;
  const auto ic = broadcast_index(*in[0], *dims), ix = broadcast_index(*in[1], *dims),
             iy = broadcast_index(*in[2], *dims);
  Value v;
  v.dtype = in[1]->dtype;
  v.dims = *dims;
  for (size_t e = 0; e < ic.size(); ++e) {
    const bool c = as_double(*in[0], ic[e]) != 0;
    if (v.is_float()) v.f.push_back(c ? in[1]->f[static_cast<size_t>(ix[e])] : in[2]->f[static_cast<size_t>(iy[e])]);
    else v.i.push_back(c ? in[1]->i[static_cast<size_t>(ix[e])] : in[2]->i[static_cast<size_t>(iy[e])]);
  }
  return v;
}

std::optional<Value> fold_range(const Folding& f) {
  const auto& in = f.in;
  if (!f.arg(0) || !f.arg(1) || !f.arg(2) || in[0]->size() != 1 || in[1]->size() != 1 || in[2]->size() != 1)
    return std::nullopt;
  const double start = as_double(*in[0], 0), limit = as_double(*in[1], 0), delta = as_double(*in[2], 0);
  if (delta == 0) return std::nullopt;
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
  if (n > kMaxFoldElements) return std::nullopt;
  Value v;
  v.dtype = in[0]->dtype;
  v.dims = {n};
  for (int64_t k = 0; k < n; ++k) {
    if (v.is_float()) v.f.push_back(start + static_cast<double>(k) * delta);
    else v.i.push_back(in[0]->i[0] + k * in[2]->i[0]);
  }
  return v;
}

/// ConstantOfShape (its `value`, default 0.0, to a shape) and Expand (its input, broadcast to a shape).
std::optional<Value> fold_fill(const Folding& f) {
  const bool expand = f.op() == "Expand";
  auto shape = ints_of(expand ? f.arg(1) : f.arg(0));
  if (!shape) return std::nullopt;
  Value fill;
  fill.dtype = T::TensorProto_DataType_FLOAT;
  fill.f = {0.0};
  if (expand) {
    fill = *f.in[0];
  } else {
    for (const auto& a : f.node.attribute())
      if (a.name() == "value") {
        auto v = read_tensor(a.t());
        if (!v || v->size() != 1) return std::nullopt;
        fill = *v;
        fill.dims.clear();
      }
  }
  Value target;
  target.dims = *shape;
  auto dims = broadcast_dims({&fill, &target});
  if (!dims || product(*dims) > kMaxFoldElements) return std::nullopt;
  return take(fill, *dims, broadcast_index(fill, *dims));
}

/// ScatterND: indices [..., k] address slices of data's first k dims; updates fill them in order.
std::optional<Value> fold_scatter_nd(const Folding& f) {
  const auto& in = f.in;
  if (!f.arg(1) || !f.arg(2) || in[1]->is_float() || in[0]->is_float() != in[2]->is_float() || in[1]->dims.empty())
    return std::nullopt;
  const Value& data = *in[0];
  const auto k = static_cast<size_t>(in[1]->dims.back());
  if (k > data.dims.size()) return std::nullopt;
  const auto s = strides_of(data.dims);
  const int64_t slice_len = product({data.dims.begin() + static_cast<int64_t>(k), data.dims.end()});
  const int64_t count = in[1]->size() / std::max<int64_t>(1, static_cast<int64_t>(k));
  if (in[2]->size() != count * slice_len) return std::nullopt;
  Value v = data;
  for (int64_t u = 0; u < count; ++u) {
    int64_t base = 0;
    for (size_t j = 0; j < k; ++j) {
      int64_t q = in[1]->i[static_cast<size_t>(u) * k + j];
      if (q < 0) q += data.dims[j];
      if (q < 0 || q >= data.dims[j]) return std::nullopt;
      base += q * s[j];
    }
    for (int64_t e = 0; e < slice_len; ++e) {
      const auto dst = static_cast<size_t>(base + e), src = static_cast<size_t>(u * slice_len + e);
      if (v.is_float()) v.f[dst] = in[2]->f[src];
      else v.i[dst] = in[2]->i[src];
    }
  }
  return v;
}

/// Only the common shape case: a full reduction of a 1-D integer tensor.
std::optional<Value> fold_reduce(const Folding& f) {
  const Value& a = *f.in[0];
  if (a.dims.size() != 1 || a.is_float()) return std::nullopt;
  const std::string& op = f.op();
  int64_t r = op == "ReduceProd" ? 1 : op == "ReduceSum" ? 0 : (a.i.empty() ? 0 : a.i[0]);
  for (int64_t x : a.i) {
    if (op == "ReduceProd") r *= x;
    else if (op == "ReduceSum") r += x;
    else if (op == "ReduceMax") r = std::max(r, x);
    else r = std::min(r, x);
  }
  Value out = a;
  out.i = {r};
  out.dims = attr_int(f.node, "keepdims", 1) ? std::vector<int64_t>{1} : std::vector<int64_t>{};
  return out;
}

/// The operators folding knows, each with its folder.
const std::map<std::string, Folder, std::less<>>& folders() {
  static const std::map<std::string, Folder, std::less<>> table = [] {
    std::map<std::string, Folder, std::less<>> t;
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Mod", "Pow", "Max", "Min", "Equal", "Less", "Greater",
                           "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"})
      t[op] = fold_binary;
    for (const char* op : {"Identity", "Neg", "Abs", "Sqrt", "Floor", "Ceil", "Reciprocal", "Exp", "Log", "Not"})
      t[op] = fold_unary;
    for (const char* op : {"ReduceProd", "ReduceSum", "ReduceMax", "ReduceMin"}) t[op] = fold_reduce;
    t["Cast"] = fold_cast;
    t["Gather"] = fold_gather;
    t["Unsqueeze"] = fold_unsqueeze;
    t["Squeeze"] = fold_squeeze;
    t["Reshape"] = fold_reshape;
    t["Concat"] = fold_concat;
    t["Slice"] = fold_slice;
    t["Transpose"] = fold_transpose;
    t["Where"] = fold_where;
    t["Range"] = fold_range;
    t["ConstantOfShape"] = fold_fill;
    t["Expand"] = fold_fill;
    t["ScatterND"] = fold_scatter_nd;
    return t;
  }();
  return table;
}

}  // namespace

std::optional<std::vector<Value>> evaluate(const T::NodeProto& node, const std::vector<const Value*>& in,
                                           int opset) {
  const Folding f{node, in, opset};
  const auto it = folders().find(f.op());
  if (it == folders().end() || (!f.arg(0) && f.op() != "Range") || node.output_size() != 1) return std::nullopt;
  auto out = it->second(f);
  if (!out || out->size() > kMaxFoldElements) return std::nullopt;
  return std::vector<Value>{std::move(*out)};
}

}  // namespace moirai::onnx_import
