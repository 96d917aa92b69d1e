// `moirai materialize`: a weight-stripped model (initializers as references to an absent weights file) filled
// with seeded random weights of the right type and shape, so a real runtime can load it. Initializers whose
// data exists (inline, or external and readable) are copied as they are.
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "moirai/export.h"
#include "moirai/file_io.h"
#include "onnx_model.h"
#include "onnx/onnx_pb.h"

namespace moirai {
namespace {
namespace P = onnx;
namespace fs = std::filesystem;

// One ONNX file cannot exceed protobuf's 2 GiB message limit; weights are written inline.
constexpr int64_t kMaxInlineBytes = (int64_t{2} << 30) - (int64_t{64} << 20);

/// SplitMix64: a fixed generator, so the same seed gives the same weights on every platform and compiler.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t state_;
};

/// Each initializer gets its own stream (seed and name hashed), so its values do not depend on file order.
uint64_t stream_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

uint16_t to_half(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  const uint32_t sign = (f >> 16) & 0x8000u;
  const int exponent = static_cast<int>((f >> 23) & 0xff) - 127 + 15;
  const uint32_t mantissa = f & 0x7fffffu;
  if (exponent <= 0) return static_cast<uint16_t>(sign);  // tiny values flush to zero
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13));
}

template <class T>
void append(std::string& raw, T value) {
  raw.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

/// Random floats scaled like a default initialisation: +-1/sqrt(fan-in) for matrices and kernels; vectors
/// (biases, norm scales, batch-norm statistics) in [0.5, 1.5], positive so variances and scales stay valid.
/// Integers are zeros (always valid indices), booleans false.
Expected<std::string> random_raw(const P::TensorProto& t, int64_t elements, uint64_t seed) {
  Random rng(stream_seed(seed, t.name()));
  int64_t fan_in = 1;
  for (int k = 1; k < t.dims_size(); ++k) fan_in *= std::max<int64_t>(t.dims(k), 1);
  const bool vector = t.dims_size() < 2;
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  auto value = [&] { return vector ? 0.5 + rng.uniform() : (2 * rng.uniform() - 1) * bound; };
  std::string raw;
  switch (t.data_type()) {
    case P::TensorProto_DataType_FLOAT:
      raw.reserve(static_cast<size_t>(elements) * 4);
      for (int64_t i = 0; i < elements; ++i) append(raw, static_cast<float>(value()));
      return raw;
    case P::TensorProto_DataType_DOUBLE:
      for (int64_t i = 0; i < elements; ++i) append(raw, value());
      return raw;
    case P::TensorProto_DataType_FLOAT16:
      for (int64_t i = 0; i < elements; ++i) append(raw, to_half(static_cast<float>(value())));
      return raw;
    case P::TensorProto_DataType_BFLOAT16:
      for (int64_t i = 0; i < elements; ++i) {
        const float f = static_cast<float>(value());
        uint32_t bits;
        std::memcpy(&bits, &f, 4);
        append(raw, static_cast<uint16_t>(bits >> 16));
      }
      return raw;
    case P::TensorProto_DataType_INT8:
    case P::TensorProto_DataType_UINT8:
    case P::TensorProto_DataType_BOOL:
      return std::string(static_cast<size_t>(elements), '\0');
    case P::TensorProto_DataType_INT16:
    case P::TensorProto_DataType_UINT16:
      return std::string(static_cast<size_t>(elements) * 2, '\0');
    case P::TensorProto_DataType_INT32:
    case P::TensorProto_DataType_UINT32:
      return std::string(static_cast<size_t>(elements) * 4, '\0');
    case P::TensorProto_DataType_INT64:
    case P::TensorProto_DataType_UINT64:
      return std::string(static_cast<size_t>(elements) * 8, '\0');
    default:
      return Error{fmt::format("initializer '{}': cannot make random values of ONNX data type {}", t.name(),
                               t.data_type())};
  }
}

}  // namespace

Expected<MaterializeResult> materialize_weights(const std::string& model, const std::string& out, uint64_t seed) {
  std::ifstream in(model, std::ios::binary);
  if (!in) return Error{model + ": cannot open the model"};
  P::ModelProto proto;
  if (!proto.ParseFromIstream(&in) || !proto.has_graph()) return Error{model + ": not a valid ONNX model"};
  MaterializeResult result;
  for (auto& t : *proto.mutable_graph()->mutable_initializer()) {
    if (t.data_location() != P::TensorProto_DataLocation_EXTERNAL) continue;
    MOIRAI_ASSIGN_OR_RETURN(const auto data, export_detail::inline_external_data(t, model));
    if (data == export_detail::ExternalData::Inlined) {
      result.bytes += static_cast<int64_t>(t.raw_data().size());
      continue;
    }
    int64_t elements = 1;
    for (int64_t d : t.dims()) {
      if (d < 0) return Error{fmt::format("{}: initializer '{}' has a negative dimension", model, t.name())};
      elements *= d;
    }
    auto raw = random_raw(t, elements, seed);
    if (!raw) return Error{model + ": " + raw.error().message};
    result.bytes += static_cast<int64_t>(raw->size());
    if (result.bytes > kMaxInlineBytes)
      return Error{fmt::format("{}: the weights exceed {} GiB, more than one ONNX file can hold inline", model,
                               kMaxInlineBytes >> 30)};
    t.clear_external_data();
    t.set_data_location(P::TensorProto_DataLocation_DEFAULT);
    t.set_raw_data(std::move(*raw));
    ++result.randomized;
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) return Error{out + ": cannot serialise the model"};
  if (auto s = write_file_atomic(out, bytes); !s) return s.error();
  return result;
}

}  // namespace moirai
