// Fusion rules as data (private to src/coarsen). A backend's rule set has three parts, after TVM FuseOps:
//   1. a table from ONNX op type to an operator-pattern kind (ordered: elementwise < injective < reduction <
//      out-elementwise-fusable < opaque); types not in the table are opaque;
//   2. pattern rules: small DAG patterns over op types (Conv+BN, the LayerNorm decomposition, attention...),
//      applied one after the other, each on the graph the previous rules produced;
//   3. kind rules: TVM's grouping rule over kinds (a node joins its immediate post-dominator when every node on
//      the paths between them has an allowed kind).
// The engine (engine.cpp, match.cpp) names no operator: everything operator-specific lives in rules.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "moirai/graph.h"

namespace moirai::coarsen_detail {

/// Operator-pattern kind, ordered as in TVM's OpPatternKind (kElemWise/kBroadcast merged into ElemWise).
enum class Kind : uint8_t { ElemWise = 0, Injective = 1, Reduction = 2, OutEWiseFusable = 3, Opaque = 4 };

const char* kind_name(Kind kind);

/// How a pattern node is found from the earlier node it links to.
enum class Found : uint8_t {
  Consumer,  ///< reads one of the linked node's outputs
  Producer,  ///< produces one of the linked node's inputs
  Sibling,   ///< reads one of the linked node's input activations too
};

/// An extra condition on a candidate operator, given the matched operator it was found from (e.g. a Transpose
/// whose `perm` FusedMatMul can absorb). Rules name operators; the matcher only calls this.
using Accept = bool (*)(const Graph& graph, OpId candidate, OpId from);

/// One node of a pattern. Node 0 is the root; node i > 0 is found from an earlier node `link` (see Found).
struct PatternNode {
  std::vector<std::string> types;  ///< accepted labels (op type, or the label a previous rule produced)
  int link = -1;
  Found how = Found::Consumer;
  bool optional = false;           ///< when absent, later references to this node mean `link`
  std::vector<int> also_consumes;  ///< earlier nodes whose outputs this node must read as well
  bool const_inputs = false;       ///< inputs not produced by earlier pattern nodes must be parameters
  Accept accept = nullptr;         ///< nullptr: any operator with a matching label
};

/// PatternRule::exit for a multi-output kernel (e.g. the Split that replaces sibling Slices): every member's
/// outputs may leave the group.
constexpr int kAnyExit = -2;

/// A pattern rule: the matched operators become one node. Only the `exit` node's outputs may leave the group.
struct PatternRule {
  std::string name;
  std::string source;  ///< where the fusion is documented
  std::vector<PatternNode> nodes;
  int exit = -1;         ///< -1: the last node; kAnyExit: any node
  std::string produces;  ///< label of the fused node for later rules ("" keeps the anchor's label)
};

/// A TVM-style grouping rule over kinds (see fuse_ops.cc): a node whose group kind lies in [source_min,
/// source_max] joins its immediate post-dominator when every node strictly between has kind <= path_max and
/// the post-dominator's kind is one of `sink`.
struct KindRule {
  std::string name;
  int phase = 0;  ///< rules run phase by phase (TVM defers injective fusion to phase 1 so convolutions fuse first)
  Kind source_min = Kind::ElemWise;
  Kind source_max = Kind::ElemWise;
  Kind path_max = Kind::ElemWise;
  std::vector<Kind> sink;
};

struct RuleSet {
  std::string name;
  std::map<std::string, Kind, std::less<>> kinds;
  std::vector<PatternRule> patterns;  ///< applied first, in order
  std::vector<KindRule> kind_rules;   ///< applied after the patterns
  std::string describes;              ///< the backend, version and level the rules describe
};

/// All rule sets, in a fixed order ("onnxruntime", "onnxruntime-extended", "tensorrt", "tvm", "none").
const std::vector<RuleSet>& rule_sets();
/// The rule set named `name`, or nullptr.
const RuleSet* find_rule_set(const std::string& name);

}  // namespace moirai::coarsen_detail
