// Loading the original model for export: the same node names and fixed input dims as the importer (so plan
// origins match), a topological order, what every node reads, static types, and initializer data.
#include "onnx_model.h"

#include <google/protobuf/stubs/logging.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <queue>

#include <fmt/format.h>

#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"

namespace moirai::export_detail {
namespace {
namespace P = onnx;
namespace fs = std::filesystem;

void silence_protobuf() {
  static std::once_flag once;
  std::call_once(once, [] {
    google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  });
}

bool static_type(const P::TypeProto& t) {
  if (!t.has_tensor_type() || !t.tensor_type().has_shape() || t.tensor_type().elem_type() == 0) return false;
  for (const auto& d : t.tensor_type().shape().dim())
    if (!d.has_dim_value()) return false;
  return true;
}

/// Values a subgraph (If/Loop/Scan body) reads from the enclosing scope.
void outer_reads(const P::GraphProto& g, std::unordered_set<std::string> local, std::vector<std::string>& out) {
  for (const auto& i : g.input()) local.insert(i.name());
  for (const auto& i : g.initializer()) local.insert(i.name());
  for (const auto& node : g.node()) {
    for (const auto& in : node.input())
      if (!in.empty() && !local.count(in)) out.push_back(in);
    for (const auto& a : node.attribute()) {
      if (a.has_g()) outer_reads(a.g(), local, out);
      for (const auto& sub : a.graphs()) outer_reads(sub, local, out);
    }
    for (const auto& o : node.output()) local.insert(o);
  }
}

Status fix_input_dims(OnnxModel& m, const std::map<std::string, int64_t>& dims) {
  for (auto& input : *m.proto.mutable_graph()->mutable_input()) {
    if (m.initializer.count(input.name())) continue;
    m.graph_inputs.insert(input.name());
    auto* shape = input.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (int k = 0; k < shape->dim_size(); ++k) {
      auto* dim = shape->mutable_dim(k);
      if (dim->has_dim_value()) continue;
      auto it = dims.find(dim->has_dim_param() ? dim->dim_param() : "");
      if (it != dims.end()) dim->set_dim_value(it->second);
      else if (k == 0) dim->set_dim_value(1);  // the importer's rule for a batch dimension
      else return Error{fmt::format("{}: input '{}' dimension {} is dynamic and has no value", m.path, input.name(), k),
                        "dims"};
    }
  }
  return Ok{};
}

Status order_nodes(OnnxModel& m) {
  const auto& g = m.proto.graph();
  const int n = g.node_size();
  std::vector<int> pending(static_cast<size_t>(n), 0);
  std::vector<std::vector<int>> users(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k)
    for (const auto& in : m.reads[static_cast<size_t>(k)]) {
      auto it = m.producer.find(in);
      if (it == m.producer.end() || it->second == k) continue;
      users[static_cast<size_t>(it->second)].push_back(k);
      ++pending[static_cast<size_t>(k)];
    }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int k = 0; k < n; ++k)
    if (pending[static_cast<size_t>(k)] == 0) ready.push(k);
  while (!ready.empty()) {
    const int k = ready.top();
    ready.pop();
    m.order.push_back(k);
    for (int u : users[static_cast<size_t>(k)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
  }
  if (static_cast<int>(m.order.size()) != n) return Error{m.path + ": the graph has a cycle"};
  m.position.assign(static_cast<size_t>(n), 0);
  for (int i = 0; i < n; ++i) m.position[static_cast<size_t>(m.order[static_cast<size_t>(i)])] = i;
  return Ok{};
}

void collect_types(OnnxModel& m, const Graph& graph) {
  P::ModelProto inferred = m.proto;
  try {
    P::ShapeInferenceOptions options{false, 0, true};
    P::shape_inference::InferShapes(inferred, P::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception&) {
    // Shapes of real operators come from the imported graph below; inference only fills gaps.
  }
  auto keep = [&](const P::ValueInfoProto& vi) {
    if (vi.has_type() && (static_type(vi.type()) || !m.types.count(vi.name()))) m.types[vi.name()] = vi.type();
  };
  for (const auto& vi : inferred.graph().value_info()) keep(vi);
  for (const auto& vi : inferred.graph().output()) keep(vi);
  for (const auto& vi : m.proto.graph().input()) keep(vi);
  for (const auto& init : m.proto.graph().initializer()) {
    P::TypeProto t;
    t.mutable_tensor_type()->set_elem_type(init.data_type());
    auto* shape = t.mutable_tensor_type()->mutable_shape();
    for (int64_t d : init.dims()) shape->add_dim()->set_dim_value(d);
    m.types[init.name()] = t;
  }
  for (const auto& tensor : graph.tensors()) {
    const int32_t elem = elem_type_of(tensor.dtype);
    if (elem == 0) continue;
    P::TypeProto t;
    t.mutable_tensor_type()->set_elem_type(elem);
    auto* shape = t.mutable_tensor_type()->mutable_shape();
    for (int64_t d : tensor.shape) shape->add_dim()->set_dim_value(d);
    m.types[tensor.name] = t;
  }
}

}  // namespace

std::string elem_type_name(int32_t elem_type) {
  switch (elem_type) {
    case P::TensorProto_DataType_FLOAT: return "float32";
    case P::TensorProto_DataType_FLOAT16: return "float16";
    case P::TensorProto_DataType_BFLOAT16: return "bfloat16";
    case P::TensorProto_DataType_DOUBLE: return "float64";
    case P::TensorProto_DataType_INT8: return "int8";
    case P::TensorProto_DataType_UINT8: return "uint8";
    case P::TensorProto_DataType_INT16: return "int16";
    case P::TensorProto_DataType_INT32: return "int32";
    case P::TensorProto_DataType_INT64: return "int64";
    case P::TensorProto_DataType_BOOL: return "bool";
    default: return "unknown";
  }
}

int32_t elem_type_of(DType type) {
  switch (type) {
    case DType::Float32: return P::TensorProto_DataType_FLOAT;
    case DType::Float16: return P::TensorProto_DataType_FLOAT16;
    case DType::BFloat16: return P::TensorProto_DataType_BFLOAT16;
    case DType::Float64: return P::TensorProto_DataType_DOUBLE;
    case DType::Int8: return P::TensorProto_DataType_INT8;
    case DType::UInt8: return P::TensorProto_DataType_UINT8;
    case DType::Int16: return P::TensorProto_DataType_INT16;
    case DType::Int32: return P::TensorProto_DataType_INT32;
    case DType::Int64: return P::TensorProto_DataType_INT64;
    case DType::Bool: return P::TensorProto_DataType_BOOL;
    default: return 0;
  }
}

std::vector<std::string> importer_node_names(const onnx::GraphProto& g) {
  // Exactly as src/onnx/import.cpp names them (the plan's origins use these).
  std::vector<std::string> names;
  std::unordered_set<std::string> used;
  for (int n = 0; n < g.node_size(); ++n) {
    std::string name = g.node(n).name();
    if (name.empty() || used.count(name)) name = fmt::format("{}_{}", g.node(n).op_type(), n);
    while (used.count(name)) name += "_";
    used.insert(name);
    names.push_back(std::move(name));
  }
  return names;
}

Expected<OnnxModel> load_onnx_model(const std::string& path, const std::map<std::string, int64_t>& dims,
                                    const Graph& graph) {
  silence_protobuf();
  OnnxModel m;
  m.path = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open the model"};
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!m.proto.ParseFromString(bytes) || !m.proto.has_graph()) return Error{path + ": not a valid ONNX model"};
  const auto& g = m.proto.graph();
  for (int i = 0; i < g.initializer_size(); ++i) m.initializer.emplace(g.initializer(i).name(), i);
  if (auto s = fix_input_dims(m, dims); !s) return s.error();
  m.names = importer_node_names(g);
  for (int n = 0; n < g.node_size(); ++n) {
    const auto& node = g.node(n);
    m.node_by_name.emplace(m.names[static_cast<size_t>(n)], n);
    for (const auto& out : node.output())
      if (!out.empty()) m.producer.emplace(out, n);
    std::vector<std::string> reads;
    for (const auto& i : node.input())
      if (!i.empty()) reads.push_back(i);
    for (const auto& a : node.attribute()) {
      if (a.has_g()) outer_reads(a.g(), {}, reads);
      for (const auto& sub : a.graphs()) outer_reads(sub, {}, reads);
    }
    std::vector<std::string> unique;
    for (auto& r : reads)
      if (std::find(unique.begin(), unique.end(), r) == unique.end()) unique.push_back(std::move(r));
    m.reads.push_back(std::move(unique));
  }
  if (auto s = order_nodes(m); !s) return s.error();
  collect_types(m, graph);
  return m;
}

Expected<ExternalData> inline_external_data(P::TensorProto& t, const std::string& model) {
  if (t.data_location() != P::TensorProto_DataLocation_EXTERNAL) return ExternalData::Inlined;
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& e : t.external_data()) {
    if (e.key() == "location") location = e.value();
    else if (e.key() == "offset") offset = std::stoll(e.value());
    else if (e.key() == "length") length = std::stoll(e.value());
  }
  const fs::path file = fs::path(model).parent_path() / location;
  std::error_code ec;
  if (location.empty() || !fs::is_regular_file(file, ec)) return ExternalData::Missing;
  const auto size = static_cast<int64_t>(fs::file_size(file, ec));
  if (length < 0) length = size - offset;
  if (ec || length <= 0 || offset + length > size) return ExternalData::Stripped;
  std::ifstream in(file, std::ios::binary);
  std::string data(static_cast<size_t>(length), '\0');
  in.seekg(offset);
  if (!in.read(data.data(), length))
    return Error{fmt::format("{}: cannot read the data of initializer '{}' from '{}'", model, t.name(), file.string())};
  t.clear_external_data();
  t.set_data_location(P::TensorProto_DataLocation_DEFAULT);
  t.set_raw_data(std::move(data));
  return ExternalData::Inlined;
}

Expected<ResolvedInitializer> resolve_initializer(const OnnxModel& model, int index) {
  ResolvedInitializer r;
  r.tensor = model.proto.graph().initializer(index);
  P::TensorProto& t = r.tensor;
  MOIRAI_ASSIGN_OR_RETURN(const ExternalData data, inline_external_data(t, model.path));
  if (data == ExternalData::Inlined) return r;
  if (data == ExternalData::Missing) {
    std::string location;
    for (const auto& e : t.external_data())
      if (e.key() == "location") location = e.value();
    return Error{fmt::format("{}: initializer '{}' keeps its data in '{}', which does not exist (missing weights file)",
                             model.path, t.name(), (fs::path(model.path).parent_path() / location).string())};
  }
  // A weight-stripped model: keep the reference, to an empty weights.absent beside the sub-model.
  r.absent = true;
  for (auto& e : *t.mutable_external_data())
    if (e.key() == "location") e.set_value("weights.absent");
  return r;
}

}  // namespace moirai::export_detail
