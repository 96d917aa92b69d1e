// The call probe: a manifest whose one sub-model is an Identity on a one-element tensor. Run by the same runner
// as real stages, its time is what a stage costs when it does no work: the per-call (per-stage) overhead.
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "moirai/export.h"
#include "onnx/onnx_pb.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;

void scalar_value(onnx::ValueInfoProto* v, const std::string& name) {
  v->set_name(name);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  t->mutable_shape()->add_dim()->set_dim_value(1);
}

}  // namespace

Expected<Manifest> write_call_probe(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create a directory: {}", dir, ec.message())};
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("moirai call probe");
  model.add_opset_import()->set_version(17);
  auto* graph = model.mutable_graph();
  graph->set_name("call_probe");
  scalar_value(graph->add_input(), "x");
  scalar_value(graph->add_output(), "y");
  auto* node = graph->add_node();
  node->set_op_type("Identity");
  node->set_name("probe");
  node->add_input("x");
  node->add_output("y");
  const fs::path file = fs::path(dir) / "probe.onnx";
  {
    std::ofstream out(file, std::ios::binary);
    if (!model.SerializeToOstream(&out) || !out.flush()) return Error{fmt::format("{}: cannot write the call probe", file.string())};
  }
  Manifest m;
  m.model = fs::absolute(file).string();
  m.model_name = "call_probe";
  const ManifestTensor x{"x", "float32", {1}, "", {}, false, 0};
  ManifestTensor y{"y", "float32", {1}, "probe", {}, true, 0};
  m.inputs = {x};
  m.outputs = {y};
  m.submodels.push_back(ManifestModel{"probe", "probe.onnx", "probe", {"probe"}, {x}, {y}});
  m.path = (fs::path(dir) / "manifest.json").string();
  std::ofstream out(m.path, std::ios::binary);
  out << manifest_json(m);
  if (!out.flush()) return Error{fmt::format("{}: cannot write", m.path)};
  return m;
}

}  // namespace moirai
