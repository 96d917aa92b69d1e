// ONNX import: every bundled model, parameter counts against models/README.md, FLOPs, shape folding, dynamic
// dims, and one clear error per kind of bad file (bad models are built here with the ONNX protobuf API).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>

#include "moirai/import.h"
#include "onnx/onnx_pb.h"
#include "support/onnx_builder.h"
#include "support/random_table.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;

// One directory per test process, removed when the process ends.
fs::path temp_dir() {
  static const struct Dir {
    fs::path path = fs::temp_directory_path() / ("moirai_test_import_" + std::to_string(::getpid()));
    Dir() { fs::create_directories(path); }
    ~Dir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } dir;
  return dir.path;
}

std::string write_file(const std::string& name, const std::string& bytes) {
  const fs::path p = temp_dir() / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

// --- tiny ONNX builders -------------------------------------------------------------------------------------
struct ModelBuilder : testing::ModelBuilder {
  std::string save(const std::string& name) const { return save_as((temp_dir() / name).string()); }
};

void expect_error(const Expected<Graph>& g, const std::string& path, const std::string& substring) {
  ASSERT_FALSE(g.ok()) << "expected an error containing: " << substring;
  EXPECT_NE(g.error().message.find(path), std::string::npos) << g.error().message;
  EXPECT_NE(g.error().message.find(substring), std::string::npos) << g.error().message;
}

// --- the bundled models ---------------------------------------------------------------------------------------
std::vector<std::string> model_files() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(testing::source_path("models")))
    if (e.path().extension() == ".onnx") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Import, EveryBundledModelImportsAndValidates) {
  const auto files = model_files();
  ASSERT_GE(files.size(), 15u);
  for (const auto& file : files) {
    SCOPED_TRACE(file);
    auto g = import_onnx(file);
    ASSERT_TRUE(g.ok()) << g.error().message;
    EXPECT_TRUE(g->validate().ok());
    EXPECT_GT(g->num_ops(), 0);
    EXPECT_GT(g->total_flops(), 0);
    std::set<std::string> names;
    for (const Operator& op : g->ops()) {
      EXPECT_NE(op.type, "Shape");     // shape arithmetic is folded away
      EXPECT_NE(op.type, "Constant");
      EXPECT_NE(op.type, "Identity");
      EXPECT_TRUE(names.insert(op.name).second) << "duplicate operator name " << op.name;
      ASSERT_EQ(op.origin.size(), 1u);
      EXPECT_FALSE(op.outputs.empty());
    }
    for (const Tensor& t : g->tensors())
      for (int64_t d : t.shape) EXPECT_GE(d, 0) << t.name;
    bool has_output = false;
    for (const Tensor& t : g->tensors()) has_output |= t.graph_output;
    EXPECT_TRUE(has_output);
  }
}

/// Parameter counts from the table in models/README.md ("6.6 M", "6.74 G (FP16, 13.5 GB)").
TEST(Import, ParameterBytesMatchTheModelTable) {
  std::ifstream readme(testing::source_path("models/README.md"));
  std::string line;
  const std::regex row(R"(^\| (\w+) \|[^|]*\|[^|]*\| ([0-9.]+) ([MG])([^|]*)\|)");
  int checked = 0;
  while (std::getline(readme, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    const std::string name = m[1];
    const std::string digits = m[2];
    const double unit = m[3] == "G" ? 1e9 : 1e6;
    const double expected = std::stod(digits) * unit;
    const size_t decimals = digits.find('.') == std::string::npos ? 0 : digits.size() - digits.find('.') - 1;
    // The table is rounded: allow 1% or half of its last digit, whichever is larger.
    const double tolerance = std::max(0.01 * expected, 0.5 * std::pow(10.0, -static_cast<double>(decimals)) * unit);
    const double bytes_per_param = m[4].str().find("FP16") != std::string::npos ? 2 : 4;
    SCOPED_TRACE(name);
    auto g = import_onnx(testing::source_path("models/" + name + ".onnx"));
    ASSERT_TRUE(g.ok()) << g.error().message;
    EXPECT_NEAR(static_cast<double>(g->parameter_bytes()) / bytes_per_param, expected, tolerance);
    ++checked;
  }
  EXPECT_GE(checked, 15);
}

TEST(Import, KnownParameterCountsAndResnetFlops) {
  auto params = [](const std::string& name) {
    auto g = import_onnx(testing::source_path("models/" + name + ".onnx"));
    return g.ok() ? static_cast<double>(g->parameter_bytes()) / 4 : -1.0;
  };
  EXPECT_NEAR(params("resnet50"), 25.6e6, 0.256e6);
  EXPECT_NEAR(params("vgg19"), 143.7e6, 1.437e6);
  EXPECT_NEAR(params("gpt2_small"), 162.4e6, 1.624e6);
  auto resnet = import_onnx(testing::source_path("models/resnet50.onnx"));
  ASSERT_TRUE(resnet.ok());
  EXPECT_NEAR(resnet->total_flops(), 8.2e9, 0.82e9);  // about 4.1 GMACs
}

TEST(Import, SwinShapeArithmeticIsFolded) {
  auto g = import_onnx(testing::source_path("models/swin_t.onnx"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_LT(g->num_ops(), 1200);  // from 6,532 ONNX nodes
  for (const Operator& op : g->ops()) {
    EXPECT_NE(op.type, "ScatterND") << op.name;  // the shifted-window masks are constant
    EXPECT_NE(op.type, "Dropout") << op.name;
  }
}

TEST(Import, WeightStrippedAndFullFilesAgree) {
  auto stripped = import_onnx(testing::source_path("models/squeezenet1_1.onnx"));
  auto full = import_onnx(testing::source_path("models/squeezenet1_1.weights.onnx"));
  ASSERT_TRUE(stripped.ok() && full.ok());
  EXPECT_EQ(stripped->parameter_bytes(), full->parameter_bytes());
  EXPECT_EQ(stripped->num_ops(), full->num_ops());
  EXPECT_DOUBLE_EQ(stripped->total_flops(), full->total_flops());
}

// --- single operators through ONNX shape inference ------------------------------------------------------------
TEST(Import, ConvWithGroupsStrideDilation) {
  ModelBuilder b;
  b.input("x", {"1", "8", "32", "32"});
  b.weight("w", {16, 4, 3, 3});
  auto* n = b.node("Conv", {"x", "w"}, {"y"});  // unnamed: gets a stable name
  ModelBuilder::attr(n, "group", {2}, true);
  ModelBuilder::attr(n, "strides", {2, 2});
  ModelBuilder::attr(n, "dilations", {2, 2});
  ModelBuilder::attr(n, "pads", {2, 2, 2, 2});
  ModelBuilder::attr(n, "kernel_shape", {3, 3});
  b.output("y");
  auto g = import_onnx(b.save("conv.onnx"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->num_ops(), 1);
  const Operator& op = g->op(0);
  EXPECT_EQ(op.name, "Conv_0");
  EXPECT_EQ(op.origin, std::vector<std::string>{"Conv_0"});
  EXPECT_EQ(op.attrs.at("group"), std::vector<int64_t>{2});
  EXPECT_EQ(op.attrs.at("dilations"), (std::vector<int64_t>{2, 2}));
  // (32 + 4 - 2*2 - 1) / 2 + 1 = 16
  EXPECT_EQ(g->tensor(op.outputs[0]).shape, (std::vector<int64_t>{1, 16, 16, 16}));
  EXPECT_DOUBLE_EQ(op.flops, 2.0 * 4096 * 4 * 9);
  EXPECT_EQ(g->tensor(g->find_tensor("w")).kind, TensorKind::Parameter);
  EXPECT_EQ(g->tensor(g->find_tensor("x")).kind, TensorKind::Input);
  EXPECT_TRUE(g->tensor(g->find_tensor("y")).graph_output);
  EXPECT_EQ(g->parameter_bytes(), 16 * 4 * 9 * 4);
}

TEST(Import, BatchedMatMulAndGemm) {
  ModelBuilder b;
  b.input("a", {"2", "3", "64", "32"});
  b.weight("w", {32, 16});
  b.node("MatMul", {"a", "w"}, {"y"}, "mm");
  b.input("p", {"5", "32"});
  b.weight("q", {32, 10});
  b.weight("c", {10});
  b.node("Gemm", {"p", "q", "c"}, {"z"}, "gemm");
  b.output("y");
  b.output("z");
  auto g = import_onnx(b.save("matmul.onnx"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_DOUBLE_EQ(g->op(0).flops, 2.0 * (2 * 3 * 64 * 16) * 32);
  EXPECT_DOUBLE_EQ(g->op(1).flops, 2.0 * 5 * 10 * 32 + 50);
}

TEST(Import, ShapeSubgraphFoldsIntoReshape) {
  ModelBuilder b;
  b.input("x", {"1", "3", "4", "4"});
  b.node("Shape", {"x"}, {"s"});
  b.ints("zero", {0});
  b.ints("minus_one", {-1});
  b.node("Gather", {"s", "zero"}, {"batch"});
  b.node("Concat", {"batch", "minus_one"}, {"target"})->add_attribute()->CopyFrom([] {
    onnx::AttributeProto a;
    a.set_name("axis");
    a.set_type(onnx::AttributeProto_AttributeType_INT);
    a.set_i(0);
    return a;
  }());
  b.node("Reshape", {"x", "target"}, {"flat"}, "reshape");
  b.node("Relu", {"flat"}, {"y"}, "relu");
  b.output("y");
  auto g = import_onnx(b.save("fold.onnx"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->num_ops(), 2);
  EXPECT_EQ(g->op(0).type, "Reshape");
  EXPECT_EQ(g->op(0).inputs, std::vector<TensorId>{g->find_tensor("x")});  // the shape is not a dependency
  EXPECT_EQ(g->tensor(g->find_tensor("y")).shape, (std::vector<int64_t>{1, 48}));
  EXPECT_EQ(g->parameter_bytes(), 0);
}

TEST(Import, DynamicDimsAreFixedByOptions) {
  ModelBuilder b;
  b.input("ids", {"batch", "seq"});
  b.node("Relu", {"ids"}, {"y"}, "relu");
  b.output("y");
  const std::string path = b.save("dynamic.onnx");
  expect_error(import_onnx(path), path, "dimension 1 ('seq') is dynamic; give 'seq' a value");
  EXPECT_EQ(import_onnx(path).error().setting, "dims");
  auto g = import_onnx(path, ImportOptions{{{"seq", 7}}});
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->tensor(g->find_tensor("y")).shape, (std::vector<int64_t>{1, 7}));  // batch defaults to 1
  expect_error(import_onnx(path, ImportOptions{{{"seq", 7}, {"heads", 2}}}), path,
               "the model has no dynamic dimension named 'heads'");
  // optional_dims (bench --context for every model): a dimension the model lacks is ignored.
  auto lenient = import_onnx(path, ImportOptions{{{"seq", 7}, {"heads", 2}}, true});
  ASSERT_TRUE(lenient.ok()) << lenient.error().message;
  EXPECT_EQ(lenient->tensor(lenient->find_tensor("y")).shape, (std::vector<int64_t>{1, 7}));
}

TEST(Import, UnknownOperatorsAreKept) {
  ModelBuilder b;
  auto* o = b.m.add_opset_import();
  o->set_domain("com.example");
  o->set_version(1);
  b.input("x", {"1", "100"});
  b.node("Frobnicate", {"x"}, {"y"}, "frob")->set_domain("com.example");
  b.output("y");
  auto g = import_onnx(b.save("unknown.onnx"));
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ(g->num_ops(), 1);
  EXPECT_FALSE(g->op(0).known);
  EXPECT_DOUBLE_EQ(g->op(0).flops, 800.0);  // bytes moved
}

// --- bad input: one clear error each --------------------------------------------------------------------------
TEST(ImportErrors, MissingFile) {
  const std::string path = (temp_dir() / "does_not_exist.onnx").string();
  expect_error(import_onnx(path), path, "no such file");
}

TEST(ImportErrors, EmptyFile) {
  const std::string path = write_file("empty.onnx", "");
  expect_error(import_onnx(path), path, "empty file");
}

TEST(ImportErrors, TruncatedFile) {
  std::ifstream in(testing::source_path("models/resnet50.onnx"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string path = write_file("truncated.onnx", bytes.substr(0, bytes.size() / 2));
  expect_error(import_onnx(path), path, "not a valid ONNX model");
}

TEST(ImportErrors, RandomBytes) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed);
    std::string bytes(4096, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const std::string path = write_file("random" + std::to_string(seed) + ".onnx", bytes);
    expect_error(import_onnx(path), path, "not a valid ONNX model");
  }
}

TEST(ImportErrors, Cycle) {
  ModelBuilder b;
  b.input("x", {"1", "4"});
  b.node("Add", {"x", "c"}, {"a"}, "first");
  b.node("Relu", {"a"}, {"c"}, "second");
  b.output("c");
  const std::string path = b.save("cycle.onnx");
  expect_error(import_onnx(path), path, "the graph has a cycle through node 'first' (Add)");
}

TEST(ImportErrors, InputWithoutProducer) {
  ModelBuilder b;
  b.input("x", {"1", "4"});
  b.node("Add", {"x", "ghost"}, {"y"}, "adder");
  b.output("y");
  const std::string path = b.save("orphan.onnx");
  expect_error(import_onnx(path), path,
               "node 'adder' (Add) reads 'ghost', which no node produces and which is not a graph input or "
               "initializer");
}

TEST(ImportErrors, NegativeDimension) {
  ModelBuilder b;
  b.input("x", {"1", "-3"});
  b.node("Relu", {"x"}, {"y"}, "relu");
  b.output("y");
  const std::string path = b.save("negative.onnx");
  expect_error(import_onnx(path), path, "input 'x' has a negative dimension -3");
  ModelBuilder w;
  w.input("x", {"1", "4"});
  w.weight("bad", {4, -2});
  w.node("MatMul", {"x", "bad"}, {"y"}, "mm");
  w.output("y");
  const std::string wpath = w.save("negative_weight.onnx");
  expect_error(import_onnx(wpath), wpath, "initializer 'bad' has a negative dimension -2");
}

TEST(ImportErrors, AbsurdDimension) {
  ModelBuilder b;
  b.input("x", {"1", "1048576", "1048577"});
  b.node("Relu", {"x"}, {"y"}, "relu");
  b.output("y");
  const std::string path = b.save("absurd.onnx");
  expect_error(import_onnx(path), path, "input 'x' has an absurd shape [1, 1048576, 1048577] (more than 2^40 elements)");
  ModelBuilder w;
  w.input("x", {"1", "4"});
  w.weight("huge", {4, int64_t{1} << 40});
  w.node("MatMul", {"x", "huge"}, {"y"}, "mm");
  w.output("y");
  const std::string wpath = w.save("absurd_weight.onnx");
  expect_error(import_onnx(wpath), wpath, "initializer 'huge' has an absurd shape");
}

}  // namespace
}  // namespace moirai
