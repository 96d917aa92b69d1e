// Tensor values for folding: reading initializer / Constant contents (all ONNX encodings of the integer and
// float types), writing them back for ONNX shape inference, and Shape/Size of a static shape.
#include <cmath>
#include <cstring>

#include "fold.h"
#include "moirai/onnx_fold.h"

namespace moirai::onnx_import {
namespace T = onnx;
namespace {

bool float_type(int32_t t) {
  return t == T::TensorProto_DataType_FLOAT || t == T::TensorProto_DataType_DOUBLE ||
         t == T::TensorProto_DataType_FLOAT16 || t == T::TensorProto_DataType_BFLOAT16;
}

int64_t product(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

double half_to_double(uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? NAN : INFINITY;
  else v = std::ldexp(mant + 1024, exp - 25);
  return sign ? -v : v;
}

double bf16_to_double(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

int64_t attr_int(const T::NodeProto& n, const char* name, int64_t fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}


}  // namespace

bool Value::is_float() const { return float_type(dtype); }
int64_t Value::size() const { return product(dims); }

std::optional<Value> read_tensor(const T::TensorProto& t) {
  if (t.data_location() == T::TensorProto_DataLocation_EXTERNAL) return std::nullopt;
  Value v;
  v.dtype = t.data_type();
  v.dims.assign(t.dims().begin(), t.dims().end());
  for (int64_t d : v.dims)
    if (d < 0) return std::nullopt;
  const int64_t n = v.size();
  if (n > kMaxFoldElements) return std::nullopt;
  const std::string& raw = t.raw_data();
  const bool has_raw = t.has_raw_data();
  auto from_raw = [&](size_t width, auto decode) -> bool {
    if (raw.size() != static_cast<size_t>(n) * width) return false;
    for (int64_t k = 0; k < n; ++k) decode(raw.data() + static_cast<size_t>(k) * width);
    return true;
  };
  bool ok = true;
  switch (t.data_type()) {
    case T::TensorProto_DataType_INT64:
      if (has_raw) ok = from_raw(8, [&](const char* p) { int64_t x; std::memcpy(&x, p, 8); v.i.push_back(x); });
      else v.i.assign(t.int64_data().begin(), t.int64_data().end());
      break;
    case T::TensorProto_DataType_INT32:
      if (has_raw) ok = from_raw(4, [&](const char* p) { int32_t x; std::memcpy(&x, p, 4); v.i.push_back(x); });
      else v.i.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case T::TensorProto_DataType_BOOL:
    case T::TensorProto_DataType_UINT8:
      if (has_raw) ok = from_raw(1, [&](const char* p) { v.i.push_back(static_cast<uint8_t>(*p)); });
      else v.i.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case T::TensorProto_DataType_INT8:
      if (has_raw) ok = from_raw(1, [&](const char* p) { v.i.push_back(static_cast<int8_t>(*p)); });
      else v.i.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case T::TensorProto_DataType_FLOAT:
      if (has_raw) ok = from_raw(4, [&](const char* p) { float x; std::memcpy(&x, p, 4); v.f.push_back(x); });
      else v.f.assign(t.float_data().begin(), t.float_data().end());
      break;
    case T::TensorProto_DataType_DOUBLE:
      if (has_raw) ok = from_raw(8, [&](const char* p) { double x; std::memcpy(&x, p, 8); v.f.push_back(x); });
      else v.f.assign(t.double_data().begin(), t.double_data().end());
      break;
    case T::TensorProto_DataType_FLOAT16:
    case T::TensorProto_DataType_BFLOAT16: {
      const bool half = t.data_type() == T::TensorProto_DataType_FLOAT16;
      auto conv = [&](uint16_t h) { v.f.push_back(half ? half_to_double(h) : bf16_to_double(h)); };
      if (has_raw) ok = from_raw(2, [&](const char* p) { uint16_t x; std::memcpy(&x, p, 2); conv(x); });
      else for (int32_t x : t.int32_data()) conv(static_cast<uint16_t>(x));
      break;
    }
    default:
      return std::nullopt;
  }
  const size_t got = v.is_float() ? v.f.size() : v.i.size();
  if (!ok || got != static_cast<size_t>(n)) return std::nullopt;
  return v;
}

std::optional<Value> constant_value(const T::NodeProto& node) {
  for (const auto& a : node.attribute()) {
    Value v;
    if (a.name() == "value") return read_tensor(a.t());
    if (a.name() == "value_int") { v.i = {a.i()}; return v; }
    if (a.name() == "value_ints") { v.i.assign(a.ints().begin(), a.ints().end()); v.dims = {a.ints_size()}; return v; }
    v.dtype = T::TensorProto_DataType_FLOAT;
    if (a.name() == "value_float") { v.f = {a.f()}; return v; }
    if (a.name() == "value_floats") {
      v.f.assign(a.floats().begin(), a.floats().end());
      v.dims = {a.floats_size()};
      return v;
    }
  }
  return std::nullopt;
}

std::optional<T::TensorProto> to_tensor_proto(const Value& value, const std::string& name) {
  T::TensorProto t;
  t.set_name(name);
  t.set_data_type(value.dtype);
  for (int64_t d : value.dims) t.add_dims(d);
  switch (value.dtype) {
    case T::TensorProto_DataType_INT64:
      for (int64_t x : value.i) t.add_int64_data(x);
      return t;
    case T::TensorProto_DataType_INT32:
    case T::TensorProto_DataType_BOOL:
    case T::TensorProto_DataType_INT8:
    case T::TensorProto_DataType_UINT8:
      for (int64_t x : value.i) t.add_int32_data(static_cast<int32_t>(x));
      return t;
    case T::TensorProto_DataType_FLOAT:
      for (double x : value.f) t.add_float_data(static_cast<float>(x));
      return t;
    case T::TensorProto_DataType_DOUBLE:
      for (double x : value.f) t.add_double_data(x);
      return t;
    default:
      return std::nullopt;
  }
}

Value shape_value(const T::NodeProto& node, const std::vector<int64_t>& shape) {
  Value v;
  if (node.op_type() == "Size") {
    v.i = {product(shape)};
    return v;
  }
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t start = attr_int(node, "start", 0), end = attr_int(node, "end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  v.i.assign(shape.begin() + start, shape.begin() + end);
  v.dims = {end - start};
  return v;
}

}  // namespace moirai::onnx_import

namespace moirai {

std::optional<onnx::TensorProto> fold_shape_node(const onnx::NodeProto& node,
                                                 const std::vector<int64_t>& input_shape) {
  return onnx_import::to_tensor_proto(onnx_import::shape_value(node, input_shape), node.output(0));
}

}  // namespace moirai
