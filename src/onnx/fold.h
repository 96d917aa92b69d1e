// Constant evaluation of small tensors for folding shape-only subgraphs (Shape -> Gather -> Concat -> Reshape...).
// Private to src/onnx: values are plain vectors; only the ONNX data-type enum leaks in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"

namespace moirai::onnx_import {

/// A fully known tensor value. Integer and bool tensors keep exact int64 values; floating tensors use double.
struct Value {
  int32_t dtype = onnx::TensorProto_DataType_INT64;  ///< ONNX TensorProto::DataType
  std::vector<int64_t> dims;
  std::vector<int64_t> i;  ///< values when !is_float()
  std::vector<double> f;   ///< values when is_float()

  bool is_float() const;
  int64_t size() const;  ///< product of dims
};

/// Most elements a folded value may hold (larger constants stay operators or parameters).
inline constexpr int64_t kMaxFoldElements = int64_t{1} << 20;

/// Reads the values of an in-file tensor (not external data). nullopt when it has none or an unsupported type.
std::optional<Value> read_tensor(const onnx::TensorProto& tensor);
/// The tensor a Constant node holds (value, value_int(s), value_float(s)), or nullopt.
std::optional<Value> constant_value(const onnx::NodeProto& node);
/// Converts back for ONNX shape inference (integers and float/double only; nullopt for other float types).
std::optional<onnx::TensorProto> to_tensor_proto(const Value& value, const std::string& name);

/// Evaluates `node` on fully known inputs (nullptr for an absent optional input). Returns one value per output,
/// or nullopt for an operator or case it does not handle (the node then stays an operator).
std::optional<std::vector<Value>> evaluate(const onnx::NodeProto& node, const std::vector<const Value*>& inputs,
                                           int opset);

/// Evaluates Shape or Size from a static input shape.
Value shape_value(const onnx::NodeProto& node, const std::vector<int64_t>& input_shape);

}  // namespace moirai::onnx_import
