// Coarsening read back from ONNX Runtime: `materialize` (seeded, deterministic, loadable), the mapping of an
// optimised graph back onto the original nodes (hand-made graphs with kept names, eliminated nodes, added
// layout nodes and NCHWc renaming; then ONNX Runtime itself on squeezenet1_1 and gpt_tiny: every original node in
// exactly one group, groups = optimised nodes minus added ones), the cache (miss, hit, stale key), coarsening
// along the runtime's groups, and one-line errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/export.h"
#include "moirai/import.h"
#include "moirai/runtime_fusion.h"
#include "support/onnx_builder.h"
#include "support/random_table.h"

namespace moirai {
namespace {

namespace fs = std::filesystem;
using testing::ModelBuilder;
using testing::source_path;

struct Scratch {
  fs::path path;
  Scratch() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("moirai-ortfusion-test-{}-{}", ::getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() { fs::remove_all(path); }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string runtime_missing() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not on PATH";
  if (!fs::exists(source_path("node_modules/onnxruntime-node"))) return "node_modules/onnxruntime-node is missing";
  return {};
}

/// A copy of a zoo model (and its empty weights file) in `dir`, so caches land there and not in models/.
std::string copy_model(const std::string& name, const fs::path& dir) {
  fs::copy_file(source_path("models/" + name), dir / name, fs::copy_options::overwrite_existing);
  fs::copy_file(source_path("models/weights.absent"), dir / "weights.absent", fs::copy_options::overwrite_existing);
  return (dir / name).string();
}

/// Every original node in exactly one group; groups = optimised nodes minus the nodes the runtime added.
void expect_partition(const RuntimeGroups& r, const std::string& model) {
  std::map<std::string, int> seen;
  for (const auto& g : r.groups) {
    EXPECT_FALSE(g.origin.empty()) << g.node;
    for (const auto& name : g.origin) ++seen[name];
  }
  EXPECT_EQ(static_cast<int>(seen.size()), r.original_nodes) << model;
  for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << model << ": " << name;
  EXPECT_EQ(static_cast<int>(r.groups.size()), r.optimized_nodes - static_cast<int>(r.added.size())) << model;
}

// ---- materialize ------------------------------------------------------------------------------------------

TEST(Materialize, SameSeedSameBytesOtherSeedOtherBytes) {
  Scratch dir;
  const std::string model = source_path("models/gpt_tiny.onnx");
  auto a = materialize_weights(model, (dir.path / "a.onnx").string(), 7);
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_TRUE(materialize_weights(model, (dir.path / "b.onnx").string(), 7).ok());
  ASSERT_TRUE(materialize_weights(model, (dir.path / "c.onnx").string(), 8).ok());
  EXPECT_GT(a->randomized, 0);
  EXPECT_GT(a->bytes, 3'000'000 * 4);  // 3.7 M parameters, float32
  EXPECT_EQ(read_bytes(dir.path / "a.onnx"), read_bytes(dir.path / "b.onnx"));
  EXPECT_NE(read_bytes(dir.path / "a.onnx"), read_bytes(dir.path / "c.onnx"));
  // Same graph, every initializer inline with as many bytes as its type and shape need.
  onnx::ModelProto in, out;
  ASSERT_TRUE(in.ParseFromString(read_bytes(model)));
  ASSERT_TRUE(out.ParseFromString(read_bytes(dir.path / "a.onnx")));
  ASSERT_EQ(in.graph().node_size(), out.graph().node_size());
  for (const auto& t : out.graph().initializer()) {
    EXPECT_NE(t.data_location(), onnx::TensorProto_DataLocation_EXTERNAL) << t.name();
    if (t.data_type() != onnx::TensorProto_DataType_FLOAT || t.raw_data().empty()) continue;
    int64_t n = 1;
    for (int64_t d : t.dims()) n *= d;
    EXPECT_EQ(static_cast<int64_t>(t.raw_data().size()), 4 * n) << t.name();
  }
}

TEST(Materialize, ModelWithWeightsIsCopied) {
  Scratch dir;
  auto r = materialize_weights(source_path("models/squeezenet1_1.weights.onnx"), (dir.path / "s.onnx").string(), 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->randomized, 0);
}

TEST(Materialize, BadInputNamesTheFileAndWritesNothing) {
  Scratch dir;
  const auto out = dir.path / "out.onnx";
  auto missing = materialize_weights((dir.path / "absent.onnx").string(), out.string(), 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.onnx: cannot open the model"), std::string::npos);
  std::ofstream(dir.path / "junk.onnx") << "not a model";
  auto junk = materialize_weights((dir.path / "junk.onnx").string(), out.string(), 1);
  ASSERT_FALSE(junk.ok());
  EXPECT_NE(junk.error().message.find("junk.onnx: not a valid ONNX model"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

// ---- mapping an optimised graph back, on hand-made graphs ----------------------------------------------------

TEST(MapOptimizedGraph, FusedKeptNamesEliminatedAndAddedNodes) {
  Scratch dir;
  // Original: Conv -> Relu -> Identity -> MatMul -> Add -> out, with Shape feeding nothing (dead code).
  ModelBuilder o;
  o.input("x", {"1", "4"});
  o.node("Conv", {"x"}, {"c"}, "conv");
  o.node("Relu", {"c"}, {"r"}, "relu");
  o.node("Identity", {"r"}, {"i"}, "identity");
  o.node("MatMul", {"i"}, {"m"}, "matmul");
  o.node("Add", {"m"}, {"y"}, "add");
  o.node("Shape", {"x"}, {"dead"}, "shape");
  o.output("y");
  // Optimised: FusedConv computes r (Conv+Relu), Identity gone, a layout node added, MatMul+Add fused under a
  // new output name but the Add's node name, and the NCHWc-style naming for a renamed output.
  ModelBuilder p;
  p.input("x", {"1", "4"});
  p.node("FusedConv", {"x"}, {"r"}, "fused_conv")->set_domain("com.microsoft");
  p.node("ReorderOutput", {"r"}, {"r2"}, "reorder");
  p.node("FusedMatMul", {"r2"}, {"token"}, "m_nchwc");
  p.node("Transpose", {"token"}, {"y"}, "added_transpose");
  p.output("y");
  const auto original = o.save_as((dir.path / "o.onnx").string());
  const auto optimized = p.save_as((dir.path / "p.onnx").string());
  auto r = map_optimized_graph(original, optimized);
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::map<std::string, std::vector<std::string>> by_node;
  for (const auto& g : r->groups) by_node[g.node] = g.origin;
  EXPECT_EQ(by_node["fused_conv"], (std::vector<std::string>{"conv", "relu"}));
  EXPECT_EQ(by_node["m_nchwc"], (std::vector<std::string>{"identity", "matmul"}));  // the Identity it reads through
  EXPECT_EQ(by_node["added_transpose"], (std::vector<std::string>{"add"}));       // computes y, the Add's output
  EXPECT_EQ(r->added, (std::vector<std::string>{"reorder (ReorderOutput)"}));
  EXPECT_EQ(r->removed, (std::vector<std::string>{"shape"}));  // dead code reading only a graph input: alone
  EXPECT_EQ(by_node["fused_conv"].size() + by_node["m_nchwc"].size() + by_node["added_transpose"].size(), 5u);
  std::string types;
  for (const auto& g : r->groups) types += g.type + ";";
  EXPECT_NE(types.find("com.microsoft:FusedConv"), std::string::npos);
}

// ---- ONNX Runtime itself ---------------------------------------------------------------------------------

TEST(RuntimeGroups, SqueezenetEveryLevelPartitionsTheNodes) {
  if (const auto missing = runtime_missing(); !missing.empty()) GTEST_SKIP() << missing;
  Scratch dir;
  const std::string model = copy_model("squeezenet1_1.onnx", dir.path);
  std::map<std::string, size_t> groups;
  for (const auto& level : runtime_levels()) {
    RuntimeFusionOptions options;
    options.level = level;
    auto r = runtime_groups(model, options);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->original_nodes, 65);
    EXPECT_EQ(r->level, level);
    expect_partition(*r, model + "@" + level);
    groups[level] = r->groups.size();
    if (level == "all") {  // the NCHWc layout: ONNX Runtime adds reorder nodes that replace nothing
      ASSERT_FALSE(r->added.empty());
      EXPECT_NE(r->added.front().find("Reorder"), std::string::npos) << r->added.front();
    } else {
      EXPECT_TRUE(r->added.empty()) << level;
    }
  }
  // Conv+Relu fuses at extended (26 Relus follow a Conv): 65 - 26 = 39.
  EXPECT_EQ(groups["extended"], 39u);
  EXPECT_LE(groups["extended"], groups["basic"]);
}

TEST(RuntimeGroups, GptTinyTransformer) {
  if (const auto missing = runtime_missing(); !missing.empty()) GTEST_SKIP() << missing;
  Scratch dir;
  const std::string model = copy_model("gpt_tiny.onnx", dir.path);
  auto r = runtime_groups(model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->original_nodes, 263);
  expect_partition(*r, model);
  EXPECT_LT(r->groups.size(), 263u);
  // Coarsening along the groups: every operator of the imported graph in exactly one coarse operator, and one
  // coarse operator per runtime group that holds an imported operator.
  auto graph = import_onnx(model);
  ASSERT_TRUE(graph.ok()) << graph.error().message;
  CoarsenOptions options;
  options.fusion = "onnxruntime-runtime";
  auto coarse = coarsen_model(*graph, model, Cluster{}, options);
  ASSERT_TRUE(coarse.ok()) << coarse.error().message;
  std::set<std::string> ops;
  for (const auto& op : graph->ops()) ops.insert(op.origin.front());
  std::multiset<std::string> covered;
  for (const auto& op : coarse->graph.ops()) covered.insert(op.origin.begin(), op.origin.end());
  EXPECT_EQ(covered, std::multiset<std::string>(ops.begin(), ops.end()));
  size_t holding = 0;
  for (const auto& g : r->groups)
    holding += std::any_of(g.origin.begin(), g.origin.end(), [&](const std::string& n) { return ops.count(n) > 0; });
  EXPECT_EQ(static_cast<size_t>(coarse->graph.num_ops()), holding);
  EXPECT_EQ(coarse->steps.front().name, "fusion:onnxruntime-runtime");
}

TEST(RuntimeGroups, CacheMissHitAndStaleKey) {
  if (const auto missing = runtime_missing(); !missing.empty()) GTEST_SKIP() << missing;
  Scratch dir;
  const std::string model = copy_model("squeezenet1_1.onnx", dir.path);
  RuntimeFusionOptions options;
  options.level = "basic";
  auto first = runtime_groups(model, options);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->from_cache);
  const fs::path cache = model + ".ort-basic.json";
  EXPECT_EQ(first->cache_path, cache.string());
  ASSERT_TRUE(fs::exists(cache));
  auto second = runtime_groups(model, options);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->from_cache);
  EXPECT_EQ(second->groups.size(), first->groups.size());
  // Another ORT version in the key: stale, recomputed and rewritten.
  auto j = nlohmann::json::parse(read_bytes(cache));
  j["ort_version"] = "0.0.1";
  std::ofstream(cache) << j.dump();
  auto third = runtime_groups(model, options);
  ASSERT_TRUE(third.ok());
  EXPECT_FALSE(third->from_cache);
  EXPECT_NE(nlohmann::json::parse(read_bytes(cache))["ort_version"], "0.0.1");
  // Another model file under the same name: its hash differs, so the cache is not used.
  fs::copy_file(source_path("models/gpt_tiny.onnx"), model, fs::copy_options::overwrite_existing);
  auto other = runtime_groups(model, options);
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_FALSE(other->from_cache);
  EXPECT_EQ(other->original_nodes, 263);
}

// ---- errors -------------------------------------------------------------------------------------------------

TEST(RuntimeGroups, ErrorsAreOneLine) {
  Scratch dir;
  auto level = runtime_fusion_level("onnxruntime-runtime:fast");
  ASSERT_FALSE(level.ok());
  EXPECT_EQ(level.error().message,
            "--fusion onnxruntime-runtime:fast: unknown ONNX Runtime level 'fast' (known: basic, extended, all)");
  EXPECT_TRUE(is_runtime_fusion("onnxruntime-runtime"));
  EXPECT_TRUE(is_runtime_fusion("onnxruntime-runtime:all"));
  EXPECT_FALSE(is_runtime_fusion("onnxruntime"));
  EXPECT_EQ(*runtime_fusion_level("onnxruntime-runtime"), "extended");

  auto absent = runtime_groups((dir.path / "none.onnx").string());
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.error().message, (dir.path / "none.onnx").string() + ": no such model file");

  // Node that is not there: a one-line error naming the model, and no cache written.
  const std::string model = copy_model("squeezenet1_1.onnx", dir.path);
  const char* saved = std::getenv("MOIRAI_NODE");
  const std::string saved_value = saved ? saved : "";
  ::setenv("MOIRAI_NODE", "/nonexistent/node", 1);
  auto no_node = runtime_groups(model);
  if (saved) ::setenv("MOIRAI_NODE", saved_value.c_str(), 1);
  else ::unsetenv("MOIRAI_NODE");
  ASSERT_FALSE(no_node.ok());
  EXPECT_EQ(no_node.error().message.find(model + ": cannot get ONNX Runtime's optimised graph"), 0u)
      << no_node.error().message;
  EXPECT_EQ(no_node.error().message.find('\n'), std::string::npos);
  EXPECT_FALSE(fs::exists(model + ".ort-extended.json"));
}

}  // namespace
}  // namespace moirai

namespace moirai {
namespace {

// The `onnxruntime` rules' group counts on the transformers of the zoo, as docs/fusion.md records them next to
// ONNX Runtime 1.30's own counts (268, 330, 244, 407): a change to the rules that moves a count must update that
// table. No runtime needed.
TEST(OnnxRuntimeRules, TransformerGroupCountsMatchTheDocumentedOnes) {
  const std::map<std::string, int> expected = {
      {"vit_b_16", 272}, {"transformer_base", 336}, {"llama_tiny", 243}, {"swin_t", 416}};
  for (const auto& [model, groups] : expected) {
    auto g = import_onnx(source_path("models/" + model + ".onnx"));
    ASSERT_TRUE(g.ok()) << g.error().message;
    CoarsenOptions options;
    options.fusion = "onnxruntime";
    auto coarse = coarsen(*g, Cluster{}, options);
    ASSERT_TRUE(coarse.ok()) << coarse.error().message;
    EXPECT_EQ(coarse->graph.num_ops(), groups) << model;
  }
}

}  // namespace
}  // namespace moirai
