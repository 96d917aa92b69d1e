// Coarsening's base pattern kinds (the "none" rule set: every backend starts from them) agree with the
// operator-traits table's pattern column, type by type.
#include <gtest/gtest.h>

#include <string>

#include "coarsen/rules.h"
#include "moirai/op_traits.h"

namespace moirai {
namespace {

using coarsen_detail::Kind;

Kind kind_of_pattern(OpPattern pattern) {
  switch (pattern) {
    case OpPattern::ElemWise: return Kind::ElemWise;
    case OpPattern::Injective: return Kind::Injective;
    case OpPattern::Reduction: return Kind::Reduction;
    case OpPattern::OutEWiseFusable: return Kind::OutEWiseFusable;
    case OpPattern::Opaque: return Kind::Opaque;
  }
  return Kind::Opaque;
}

TEST(Rules, BaseKindsAreTheTraitsTablePatterns) {
  const auto* none = coarsen_detail::find_rule_set("none");
  ASSERT_NE(none, nullptr);
  for (const auto& traits : op_traits_table()) {
    auto it = none->kinds.find(traits.type);
    const Kind kind = it == none->kinds.end() ? Kind::Opaque : it->second;
    EXPECT_EQ(kind, kind_of_pattern(traits.pattern)) << traits.type;
  }
  for (const auto& [type, kind] : none->kinds) {
    const OpTraits* traits = find_op_traits(type);
    ASSERT_NE(traits, nullptr) << type << " has a kind but is not in the traits table";
    EXPECT_EQ(kind, kind_of_pattern(traits->pattern)) << type;
  }
}

}  // namespace
}  // namespace moirai
