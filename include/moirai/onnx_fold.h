// Shape folding that export shares with import: a Shape or Size node over a tensor of known shape is a constant.
// The ONNX types stay opaque here (declared, not defined): only src/onnx and src/export, which link ONNX, call it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace onnx {
class NodeProto;
class TensorProto;
}  // namespace onnx

namespace moirai {

/// The constant that a Shape or Size `node` yields on an input of static shape `input_shape`, as an ONNX tensor
/// named after the node's output.
std::optional<onnx::TensorProto> fold_shape_node(const onnx::NodeProto& node,
                                                 const std::vector<int64_t>& input_shape);

}  // namespace moirai
