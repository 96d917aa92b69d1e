// The call probes: a manifest of independent sub-models, each an Identity on a float tensor of one size. Run by
// the same runner as real stages, a one-element probe's time is what a stage costs beyond its work.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "moirai/export.h"
#include "onnx/onnx_pb.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;

void float_value(onnx::ValueInfoProto* v, const std::string& name, int64_t elements) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape()->add_dim()->set_dim_value(elements);
}

}  // namespace

Expected<Manifest> write_call_probes(const std::string& dir, const std::vector<int64_t>& elements) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create a directory: {}", dir, ec.message())};
  Manifest m;
  m.model_name = "call_probes";
  auto write = [&](const std::string& name, size_t first, size_t last) -> Status {
    onnx::ModelProto model;
    model.set_ir_version(8);
    model.set_producer_name("moirai call probe");
    model.add_opset_import()->set_version(17);
    auto* graph = model.mutable_graph();
    graph->set_name(name);
    for (size_t i = first; i < last; ++i) {
      const std::string x = fmt::format("x{}", i), y = fmt::format("y{}", i);
      float_value(graph->add_input(), x, elements[i]);
      float_value(graph->add_output(), y, elements[i]);
      auto* node = graph->add_node();
      node->set_op_type("Identity");
      node->set_name(fmt::format("probe{}", i));
      *node->add_input() = x;
      *node->add_output() = y;
    }
    const fs::path file = fs::path(dir) / (name + ".onnx");
    std::ofstream out(file, std::ios::binary);
    if (!model.SerializeToOstream(&out) || !out.flush())
      return Error{fmt::format("{}: cannot write a call probe", file.string())};
    return Ok{};
  };
  // The reference the runner checks the probes' outputs against: all of them in one model.
  MOIRAI_TRY(write("all", 0, elements.size()));
  m.model = fs::absolute(fs::path(dir) / "all.onnx").string();
  for (size_t i = 0; i < elements.size(); ++i) {
    const std::string name = fmt::format("probe{}", i), x = fmt::format("x{}", i), y = fmt::format("y{}", i);
    MOIRAI_TRY(write(name, i, i + 1));
    const ManifestTensor in{x, "float32", {elements[i]}, "", {}, false, 0};
    const ManifestTensor result{y, "float32", {elements[i]}, name, {}, true, 0};
    m.inputs.push_back(in);
    m.outputs.push_back(result);
    m.submodels.push_back(ManifestModel{name, name + ".onnx", "probe", {name}, {in}, {result}});
  }
  m.path = (fs::path(dir) / "manifest.json").string();
  std::ofstream out(m.path, std::ios::binary);
  out << manifest_json(m);
  if (!out.flush()) return Error{fmt::format("{}: cannot write", m.path)};
  return m;
}

}  // namespace moirai
