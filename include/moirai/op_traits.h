// What moirai knows about each ONNX operator type, in one table: the FLOPs it costs per output element, its
// pattern kind for fusion, whether it may overwrite its input, and how GenEFlow may split it. Types follow the
// ONNX operator spelling (onnx/defs), plus the com.microsoft contrib operators ONNX Runtime's exporters emit.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace moirai {

/// Operator-pattern kind for fusion, ordered as TVM's OpPatternKind (kElemWise and kBroadcast merged).
enum class OpPattern : uint8_t { ElemWise = 0, Injective = 1, Reduction = 2, OutEWiseFusable = 3, Opaque = 4 };

/// How GenEFlow may split one operator across devices (src/partition/split.cpp, docs/splits.md).
enum class SplitClass : uint8_t { None, Elementwise, Conv, Pool, MatMul, TokenWise };

struct OpTraits {
  std::string_view type;
  /// FLOPs per output element; negative when the count has its own formula (convolutions, matrix products,
  /// pooling, reductions) in src/graph/work.cpp.
  double flops_per_element = -1;
  OpPattern pattern = OpPattern::Opaque;
  /// Output element i depends only on input elements i (up to broadcasting), so the output may reuse an input's
  /// buffer that no one else reads.
  bool in_place = false;
  SplitClass split = SplitClass::None;
};

/// The traits of `type`, or nullptr for a type the table does not list (opaque, no FLOP count, no split).
const OpTraits* find_op_traits(std::string_view type);

/// Every listed type, in the table's order.
const std::vector<OpTraits>& op_traits_table();

}  // namespace moirai
