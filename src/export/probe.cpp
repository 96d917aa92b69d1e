// The call probes: manifests of Identity sub-models on float tensors. Run by the same runner as real stages, a
// one-element probe's time is what a stage costs beyond its work; a chain of probes over several devices makes
// every hand-off between two stages a transfer between those devices.
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

/// One Identity per (input, output) pair, all on float tensors of `elements[i]` elements, as DIR/NAME.onnx.
struct IdentityPair {
  std::string in, out;
  int64_t elements = 1;
};
Status write_identities(const std::string& dir, const std::string& name, const std::vector<IdentityPair>& pairs) {
  onnx::ModelProto model;
  model.set_ir_version(8);
  model.set_producer_name("moirai call probe");
  model.add_opset_import()->set_version(17);
  auto* graph = model.mutable_graph();
  graph->set_name(name);
  for (size_t i = 0; i < pairs.size(); ++i) {
    float_value(graph->add_input(), pairs[i].in, pairs[i].elements);
    float_value(graph->add_output(), pairs[i].out, pairs[i].elements);
    auto* node = graph->add_node();
    node->set_op_type("Identity");
    node->set_name(fmt::format("{}_{}", name, i));
    *node->add_input() = pairs[i].in;
    *node->add_output() = pairs[i].out;
  }
  const fs::path file = fs::path(dir) / (name + ".onnx");
  std::ofstream out(file, std::ios::binary);
  if (!model.SerializeToOstream(&out) || !out.flush())
    return Error{fmt::format("{}: cannot write a call probe", file.string())};
  return Ok{};
}

Status make_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create a directory: {}", dir, ec.message())};
  return Ok{};
}

Expected<Manifest> write_manifest(Manifest m, const std::string& dir) {
  m.path = (fs::path(dir) / "manifest.json").string();
  std::ofstream out(m.path, std::ios::binary);
  out << manifest_json(m);
  if (!out.flush()) return Error{fmt::format("{}: cannot write", m.path)};
  return m;
}

}  // namespace

Expected<Manifest> write_call_probes(const std::string& dir, const std::vector<int64_t>& elements) {
  MOIRAI_TRY(make_dir(dir));
  Manifest m;
  m.model_name = "call_probes";
  std::vector<IdentityPair> all;
  for (size_t i = 0; i < elements.size(); ++i) all.push_back({fmt::format("x{}", i), fmt::format("y{}", i), elements[i]});
  // The reference the runner checks the probes' outputs against: all of them in one model.
  MOIRAI_TRY(write_identities(dir, "all", all));
  m.model = fs::absolute(fs::path(dir) / "all.onnx").string();
  for (size_t i = 0; i < elements.size(); ++i) {
    const std::string name = fmt::format("probe{}", i);
    MOIRAI_TRY(write_identities(dir, name, {all[i]}));
    const ManifestTensor in{all[i].in, "float32", {elements[i]}, "", {}, false, 0};
    const ManifestTensor result{all[i].out, "float32", {elements[i]}, name, {}, true, 0};
    m.inputs.push_back(in);
    m.outputs.push_back(result);
    m.submodels.push_back(ManifestModel{name, name + ".onnx", "probe", {name}, {in}, {result}});
  }
  return write_manifest(std::move(m), dir);
}

Expected<Manifest> write_probe_chain(const std::string& dir, int64_t elements, const std::vector<std::string>& devices,
                                     int length) {
  if (devices.empty() || length < 1) return Error{"a probe chain needs at least one device and one stage"};
  MOIRAI_TRY(make_dir(dir));
  Manifest m;
  m.model_name = "probe_chain";
  auto value = [](int i) { return fmt::format("x{}", i); };
  MOIRAI_TRY(write_identities(dir, "all", {{value(0), value(length), elements}}));
  m.model = fs::absolute(fs::path(dir) / "all.onnx").string();
  for (int i = 0; i < length; ++i) {
    const std::string name = fmt::format("probe{}", i);
    MOIRAI_TRY(write_identities(dir, name, {{value(i), value(i + 1), elements}}));
    const ManifestTensor in{value(i), "float32", {elements}, i == 0 ? "" : fmt::format("probe{}", i - 1), {}, false, 0};
    ManifestTensor out{value(i + 1), "float32", {elements}, name, {}, i + 1 == length, 0};
    if (i + 1 < length) out.to = {fmt::format("probe{}", i + 1)};
    if (i == 0) m.inputs.push_back(in);
    if (i + 1 == length) m.outputs.push_back(out);
    m.submodels.push_back(ManifestModel{name, name + ".onnx", devices[static_cast<size_t>(i) % devices.size()],
                                        {name}, {in}, {out}});
  }
  return write_manifest(std::move(m), dir);
}

}  // namespace moirai
