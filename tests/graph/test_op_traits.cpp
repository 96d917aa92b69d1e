// The operator-traits table: one row per type, ONNX spelling, and the columns consistent with each other.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "moirai/op_traits.h"

namespace moirai {
namespace {

TEST(OpTraits, EveryTypeOnceAndFound) {
  std::set<std::string_view> seen;
  for (const auto& traits : op_traits_table()) {
    EXPECT_TRUE(seen.insert(traits.type).second) << traits.type << " listed twice";
    EXPECT_EQ(find_op_traits(traits.type), &traits);
  }
  EXPECT_EQ(find_op_traits("NoSuchOp"), nullptr);
}

// ONNX names x * sigmoid(x) "Swish" (opset 24); "Silu" / "SiLU" are PyTorch's names, no ONNX operator's.
TEST(OpTraits, OnnxSpelling) {
  const OpTraits* swish = find_op_traits("Swish");
  ASSERT_NE(swish, nullptr);
  EXPECT_EQ(swish->pattern, OpPattern::ElemWise);
  EXPECT_DOUBLE_EQ(swish->flops_per_element, 5);
  EXPECT_EQ(find_op_traits("Silu"), nullptr);
  EXPECT_EQ(find_op_traits("SiLU"), nullptr);
}

// An operator that may work in place is elementwise in all three senses: it fuses as ElemWise, splits along any
// axis and costs a fixed count per element; Constant is the one ElemWise type with no input to take over.
TEST(OpTraits, ElementwiseColumnsAgree) {
  for (const auto& traits : op_traits_table()) {
    const bool elementwise_split = traits.split == SplitClass::Elementwise;
    EXPECT_EQ(traits.in_place, elementwise_split) << traits.type;
    if (traits.in_place) {
      EXPECT_EQ(traits.pattern, OpPattern::ElemWise) << traits.type;
      EXPECT_GE(traits.flops_per_element, 0) << traits.type;
    } else if (traits.pattern == OpPattern::ElemWise) {
      EXPECT_EQ(traits.type, "Constant");
    }
  }
  for (const char* type : {"Cast", "Where", "Floor", "Add", "Relu", "Gelu", "BatchNormalization"})
    EXPECT_EQ(find_op_traits(type)->split, SplitClass::Elementwise) << type;
}

TEST(OpTraits, SplitClassesOfWindowAndMatrixOperators) {
  EXPECT_EQ(find_op_traits("Conv")->split, SplitClass::Conv);
  EXPECT_EQ(find_op_traits("MaxPool")->split, SplitClass::Pool);
  EXPECT_EQ(find_op_traits("Gemm")->split, SplitClass::MatMul);
  EXPECT_EQ(find_op_traits("Softmax")->split, SplitClass::TokenWise);
  EXPECT_EQ(find_op_traits("ConvTranspose")->split, SplitClass::None);
}

}  // namespace
}  // namespace moirai
