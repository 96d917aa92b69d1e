// ONNX import: parse the protobuf, check it, fix dynamic input dims, then one pass over the nodes in dependency
// order that either folds a node (shape arithmetic over known small tensors; Shape of a static tensor) or runs
// the node's ONNX shape-inference function with the folded values as known inputs. The surviving nodes become
// Operators; parameter sizes come from initializer dims and types only (weights may be stripped).
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "moirai/import.h"
#include "onnx/defs/schema.h"
#include "fold.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace moirai {
namespace {
namespace P = onnx;
using onnx_import::Value;

constexpr int64_t kAbsurdElements = int64_t{1} << 40;

void silence_protobuf() {
  // Protobuf logs parse problems to stderr itself; our error value already says what went wrong.
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler([](google::protobuf::LogLevel, const char*, int,
                                                                const std::string&) {}); });
}

DType to_dtype(int32_t t) {
  switch (t) {
    case P::TensorProto_DataType_FLOAT: return DType::Float32;
    case P::TensorProto_DataType_FLOAT16: return DType::Float16;
    case P::TensorProto_DataType_BFLOAT16: return DType::BFloat16;
    case P::TensorProto_DataType_DOUBLE: return DType::Float64;
    case P::TensorProto_DataType_INT8: return DType::Int8;
    case P::TensorProto_DataType_UINT8: return DType::UInt8;
    case P::TensorProto_DataType_INT16: return DType::Int16;
    case P::TensorProto_DataType_INT32: return DType::Int32;
    case P::TensorProto_DataType_INT64: return DType::Int64;
    case P::TensorProto_DataType_BOOL: return DType::Bool;
    default: return DType::Unknown;
  }
}

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

/// Product of dims saturating at 2^62, so absurd shapes cannot overflow.
int64_t safe_elements(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d <= 0) return d < 0 ? -1 : 0;
    n = n > (int64_t{1} << 62) / d ? (int64_t{1} << 62) : n * d;
  }
  return n;
}

/// Inputs that carry shapes or axes rather than data: not dependencies when their value is a constant.
bool shape_like_input(const std::string& op, int index) {
  static const std::unordered_map<std::string, std::vector<int>> table = {
      {"Reshape", {1}}, {"Expand", {1}}, {"Tile", {1}}, {"Slice", {1, 2, 3, 4}}, {"Squeeze", {1}},
      {"Unsqueeze", {1}}, {"Resize", {1, 2, 3}}, {"Upsample", {1}}, {"Pad", {1, 3}}, {"ConstantOfShape", {0}},
      {"TopK", {1}}, {"Range", {0, 1, 2}}, {"Split", {1}}, {"ReduceSum", {1}}, {"ReduceMean", {1}},
      {"ReduceMax", {1}}, {"ReduceMin", {1}}, {"ReduceProd", {1}}, {"ReduceL2", {1}}, {"OneHot", {1}},
      {"CumSum", {1}}, {"Trilu", {1}}, {"Dropout", {1, 2}}};
  auto it = table.find(op);
  return it != table.end() && std::find(it->second.begin(), it->second.end(), index) != it->second.end();
}

/// What we know about a value that is not an activation of a real operator.
struct Constant {
  int32_t dtype = 0;
  std::vector<int64_t> dims;
  std::optional<Value> value;  ///< known contents (small tensors), for folding
};

class Importer {
 public:
  Importer(std::string path, P::ModelProto& model, const ImportOptions& options)
      : path_(std::move(path)), model_(model), g_(*model.mutable_graph()), options_(options) {}

  Expected<Graph> run() {
    for (const auto& o : model_.opset_import())
      opsets_[o.domain() == "ai.onnx" ? "" : o.domain()] = static_cast<int>(o.version());
    if (!opsets_.count("")) opsets_[""] = 13;
    MOIRAI_TRY(name_nodes());
    MOIRAI_TRY(read_sources());
    MOIRAI_ASSIGN_OR_RETURN(auto order, node_order());
    MOIRAI_TRY(infer_and_fold(order));
    return build();
  }

 private:
  Error fail(const std::string& what, const std::string& setting = "") const {
    return Error{fmt::format("{}: {}", path_, what), setting};
  }
  std::string node_label(int n) const {
    return fmt::format("node '{}' ({})", names_[static_cast<size_t>(n)], g_.node(n).op_type());
  }

  Status name_nodes() {
    std::unordered_set<std::string> used;
    names_.reserve(static_cast<size_t>(g_.node_size()));
    for (int n = 0; n < g_.node_size(); ++n) {
      std::string name = g_.node(n).name();
      if (name.empty() || used.count(name)) name = fmt::format("{}_{}", g_.node(n).op_type(), n);
      while (used.count(name)) name += "_";
      used.insert(name);
      names_.push_back(name);
      for (const auto& in : g_.node(n).input()) consumed_.insert(in);
      for (const auto& out : g_.node(n).output()) {
        if (out.empty()) continue;
        if (!producer_.emplace(out, n).second)
          return fail(fmt::format("value '{}' is produced twice (again by {})", out, node_label(n)));
      }
    }
    for (const auto& out : g_.output()) consumed_.insert(out.name());
    return Ok{};
  }

  Status check_dims(const std::string& what, const std::vector<int64_t>& dims) const {
    for (int64_t d : dims)
      if (d < 0) return fail(fmt::format("{} has a negative dimension {} in shape {}", what, d, shape_str(dims)));
    if (safe_elements(dims) > kAbsurdElements)
      return fail(fmt::format("{} has an absurd shape {} (more than 2^40 elements)", what, shape_str(dims)));
    return Ok{};
  }

  Status read_sources() {
    for (const auto& init : g_.initializer()) {
      Constant c;
      c.dtype = init.data_type();
      c.dims.assign(init.dims().begin(), init.dims().end());
      if (auto s = check_dims(fmt::format("initializer '{}'", init.name()), c.dims); !s) return s;
      const bool integer = !Value{c.dtype, {}, {}, {}}.is_float();
      const int64_t n = safe_elements(c.dims);
      if (n <= (integer ? onnx_import::kMaxFoldElements : 4096)) c.value = onnx_import::read_tensor(init);
      if (c.value && integer) input_data_[init.name()] = &init;
      types_[init.name()] = type_of(c);
      constants_[init.name()] = std::move(c);
    }
    std::unordered_set<std::string> used_dims;
    for (auto& input : *g_.mutable_input()) {
      if (constants_.count(input.name())) continue;  // old-style: initializers listed as inputs
      graph_inputs_.insert(input.name());
      auto* tt = input.mutable_type()->mutable_tensor_type();
      auto* shape = tt->mutable_shape();
      std::vector<int64_t> dims;
      for (int k = 0; k < shape->dim_size(); ++k) {
        auto* dim = shape->mutable_dim(k);
        if (dim->has_dim_value()) {
          dims.push_back(dim->dim_value());
          continue;
        }
        const std::string param = dim->has_dim_param() ? dim->dim_param() : "";
        auto it = options_.dims.find(param);
        int64_t value;
        if (!param.empty() && it != options_.dims.end()) {
          value = it->second;
          used_dims.insert(param);
        } else if (k == 0) {
          value = 1;  // an unnamed (or unset) batch dimension
        } else {
          return fail(fmt::format("input '{}' dimension {} ({}) is dynamic; give {} a value", input.name(), k,
                                  param.empty() ? "unnamed" : "'" + param + "'",
                                  param.empty() ? "the dimension a name and" : "'" + param + "'"),
                      "dims");
        }
        dim->set_dim_value(value);
        dims.push_back(value);
      }
      if (auto s = check_dims(fmt::format("input '{}'", input.name()), dims); !s) return s;
      types_[input.name()] = input.mutable_type();
    }
    for (const auto& [name, value] : options_.dims)
      if (!used_dims.count(name) && !options_.optional_dims)
        return fail(fmt::format("the model has no dynamic dimension named '{}' (given the value {})", name, value),
                    "dims");
    for (auto& vi : *g_.mutable_value_info()) file_types_[vi.name()] = &vi.type();
    return Ok{};
  }

  P::TypeProto* type_of(const Constant& c) {
    P::TypeProto& t = type_store_.emplace_back();
    auto* tt = t.mutable_tensor_type();
    tt->set_elem_type(c.dtype);
    auto* shape = tt->mutable_shape();
    for (int64_t d : c.dims) shape->add_dim()->set_dim_value(d);
    return &t;
  }

  /// Kahn's algorithm over nodes (ties by file order); also rejects reads of values nobody provides.
  Expected<std::vector<int>> node_order() const {
    const int n = g_.node_size();
    std::vector<int> pending(static_cast<size_t>(n), 0);
    std::vector<std::vector<int>> users(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) {
      for (const auto& in : g_.node(k).input()) {
        if (in.empty()) continue;
        auto it = producer_.find(in);
        if (it != producer_.end()) {
          users[static_cast<size_t>(it->second)].push_back(k);
          ++pending[static_cast<size_t>(k)];
        } else if (!constants_.count(in) && !graph_inputs_.count(in)) {
          return fail(fmt::format("{} reads '{}', which no node produces and which is not a graph input or "
                                  "initializer", node_label(k), in));
        }
      }
    }
    std::priority_queue<int, std::vector<int>, std::greater<>> ready;
    for (int k = 0; k < n; ++k)
      if (pending[static_cast<size_t>(k)] == 0) ready.push(k);
    std::vector<int> order;
    order.reserve(static_cast<size_t>(n));
    while (!ready.empty()) {
      const int k = ready.top();
      ready.pop();
      order.push_back(k);
      for (int u : users[static_cast<size_t>(k)])
        if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
    }
    if (static_cast<int>(order.size()) != n) {
      for (int k = 0; k < n; ++k)
        if (pending[static_cast<size_t>(k)] > 0) return fail(fmt::format("the graph has a cycle through {}", node_label(k)));
    }
    return order;
  }

  static std::optional<std::vector<int64_t>> static_shape(const P::TypeProto* t) {
    if (!t || !t->has_tensor_type() || !t->tensor_type().has_shape()) return std::nullopt;
    std::vector<int64_t> dims;
    for (const auto& d : t->tensor_type().shape().dim()) {
      if (!d.has_dim_value()) return std::nullopt;
      dims.push_back(d.dim_value());
    }
    return dims;
  }

  void add_constant(const std::string& name, Value v) {
    Constant c;
    c.dtype = v.dtype;
    c.dims = v.dims;
    if (auto proto = onnx_import::to_tensor_proto(v, name)) input_data_[name] = &tensor_store_.emplace_back(*proto);
    c.value = std::move(v);
    types_[name] = type_of(c);
    constants_[name] = std::move(c);
  }

  bool try_fold(int n) {
    const P::NodeProto& node = g_.node(n);
    if (!node.domain().empty() && node.domain() != "ai.onnx") return false;
    const std::string& op = node.op_type();
    if (op == "Constant") {
      if (node.output_size() != 1) return false;
      if (auto v = onnx_import::constant_value(node)) {
        add_constant(node.output(0), std::move(*v));
        return true;
      }
      // A large constant (weights inside the graph): keep dims and type only.
      for (const auto& a : node.attribute())
        if (a.name() == "value") {
          Constant c;
          c.dtype = a.t().data_type();
          c.dims.assign(a.t().dims().begin(), a.t().dims().end());
          types_[node.output(0)] = type_of(c);
          constants_[node.output(0)] = std::move(c);
          return true;
        }
      return false;
    }
    const bool no_op = op == "Identity" || (op == "Dropout" && (node.output_size() == 1 || !consumed_.count(node.output(1))));
    if (no_op && node.input_size() >= 1 && types_.count(node.input(0))) {
      // A no-op at inference: consumers read the original (so a shared parameter is also counted once).
      const std::string& in = node.input(0);
      aliases_[node.output(0)] = resolve(in);
      if (auto c = constants_.find(in); c != constants_.end()) constants_[node.output(0)] = c->second;
      types_[node.output(0)] = types_[in];
      if (auto it = input_data_.find(in); it != input_data_.end()) input_data_[node.output(0)] = it->second;
      return true;
    }
    if ((op == "Shape" || op == "Size") && node.input_size() == 1 && node.output_size() == 1) {
      auto it = types_.find(node.input(0));
      auto shape = static_shape(it == types_.end() ? nullptr : it->second);
      if (!shape) return false;
      add_constant(node.output(0), onnx_import::shape_value(node, *shape));
      return true;
    }
    std::vector<const Value*> inputs;
    for (const auto& in : node.input()) {
      if (in.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      auto it = constants_.find(in);
      if (it == constants_.end() || !it->second.value) return false;
      inputs.push_back(&*it->second.value);
    }
    if (inputs.empty()) return false;
    auto outs = onnx_import::evaluate(node, inputs, opsets_[""]);
    if (!outs) return false;
    for (size_t k = 0; k < outs->size(); ++k) add_constant(node.output(static_cast<int>(k)), std::move((*outs)[k]));
    return true;
  }

  Status infer_and_fold(const std::vector<int>& order) {
    P::shape_inference::SymbolTableImpl symbols;
    symbols.addFromGraph(g_);
    P::shape_inference::GraphInferenceContext graph_ctx(types_, opsets_, &symbols, {},
                                                        P::OpSchemaRegistry::Instance(), nullptr,
                                                        static_cast<int>(model_.ir_version()));
    const std::unordered_map<std::string, const P::SparseTensorProto*> no_sparse;
    folded_.assign(static_cast<size_t>(g_.node_size()), false);
    for (int n : order) {
      if (try_fold(n)) {
        folded_[static_cast<size_t>(n)] = true;
        continue;
      }
      P::NodeProto& node = *g_.mutable_node(n);
      auto dom = opsets_.find(node.domain() == "ai.onnx" ? "" : node.domain());
      const P::OpSchema* schema =
          dom == opsets_.end() ? nullptr : P::OpSchemaRegistry::Schema(node.op_type(), dom->second, node.domain());
      std::vector<P::TypeProto> inferred(static_cast<size_t>(node.output_size()));
      if (schema && schema->has_type_and_shape_inference_function()) {
        P::shape_inference::InferenceContextImpl ctx(node, types_, input_data_, no_sparse, nullptr, &graph_ctx);
        try {
          schema->GetTypeAndShapeInferenceFunction()(ctx);
          inferred = std::move(ctx.allOutputTypes_);
        } catch (const P::InferenceError&) {
          // Fall back on the shapes stored in the file below.
        }
      }
      for (int k = 0; k < node.output_size(); ++k) {
        const std::string& out = node.output(k);
        if (out.empty()) continue;
        P::TypeProto* chosen = &type_store_.emplace_back(std::move(inferred[static_cast<size_t>(k)]));
        if (!static_shape(chosen)) {
          auto file = file_types_.find(out);
          if (file != file_types_.end() && static_shape(file->second)) {
            *chosen = *file->second;
          } else if (!schema && node.input_size() > 0 && types_.count(node.input(0))) {
            *chosen = *types_[node.input(0)];  // an operator ONNX does not know: assume shape-preserving
          } else {
            return fail(fmt::format("cannot infer the shape of '{}', output {} of {}", out, k, node_label(n)));
          }
        }
        types_[out] = chosen;
      }
    }
    return Ok{};
  }

  const std::string& resolve(const std::string& name) const {
    auto it = aliases_.find(name);
    return it == aliases_.end() ? name : it->second;
  }

  TensorId tensor_for(Graph& graph, const std::string& alias) {
    const std::string& name = resolve(alias);
    if (TensorId id = graph.find_tensor(name); id != kNone) return id;
    Tensor t;
    t.name = name;
    const P::TypeProto* type = types_.at(name);
    t.dtype = to_dtype(type->tensor_type().elem_type());
    t.shape = *static_shape(type);
    t.kind = graph_inputs_.count(name) ? TensorKind::Input
             : constants_.count(name)  ? TensorKind::Parameter
                                       : TensorKind::Activation;
    return graph.add_tensor(std::move(t));
  }

  /// Slice (opset >= 10) takes starts, ends, axes and steps as inputs; their folded values become attributes
  /// (fusion rules ask for them, e.g. ONNX Runtime turns only unit-step slices of one axis into a Split).
  void slice_inputs_as_attrs(const P::NodeProto& node, IntAttrs& attrs) const {
    static const char* const kNames[] = {"starts", "ends", "axes", "steps"};
    for (int k = 1; k < node.input_size() && k <= 4; ++k) {
      const auto it = constants_.find(node.input(k));
      if (it != constants_.end() && it->second.value && !it->second.value->is_float())
        attrs[kNames[k - 1]] = it->second.value->i;
    }
  }

  /// A value a runtime knows before the first run: written in the file as a constant (an initializer or a
  /// Constant node), or computed from shapes when every graph input's shape is static in the file. (A shape
  /// computed from a symbolic dim, which --dim fixes only for us, is a run-time value to ONNX Runtime.)
  bool static_value(const std::string& value) const {
    const auto it = producer_.find(value);
    if (it == producer_.end()) return !graph_inputs_.count(value);
    if (g_.node(it->second).op_type() == "Constant") return true;
    for (const auto& in : g_.input()) {
      if (!in.type().has_tensor_type()) return false;
      for (const auto& d : in.type().tensor_type().shape().dim())
        if (!d.has_dim_value()) return false;
    }
    return true;
  }

  Expected<Graph> build() {
    Graph graph;
    graph.name = g_.name().empty() ? std::filesystem::path(path_).stem().string() : g_.name();
    for (int n = 0; n < g_.node_size(); ++n) {
      if (folded_[static_cast<size_t>(n)]) continue;
      const P::NodeProto& node = g_.node(n);
      Operator op;
      op.name = names_[static_cast<size_t>(n)];
      op.type = node.op_type();
      op.origin = {op.name};
      for (int k = 0; k < node.input_size(); ++k) {
        const std::string& in = node.input(k);
        if (in.empty() || (constants_.count(in) && shape_like_input(op.type, k))) continue;
        const TensorId id = tensor_for(graph, in);
        if (std::find(op.inputs.begin(), op.inputs.end(), id) == op.inputs.end()) op.inputs.push_back(id);
      }
      for (const auto& out : node.output()) {
        if (out.empty()) continue;
        const TensorId id = tensor_for(graph, out);
        MOIRAI_TRY(
            check_dims(fmt::format("tensor '{}' (output of {})", out, node_label(n)), graph.tensor(id).shape));
        op.outputs.push_back(id);
      }
      if (op.type == "Slice") slice_inputs_as_attrs(node, op.attrs);
      if (op.type == "Reshape" && node.input_size() > 1 && static_value(node.input(1))) op.attrs["static_shape"] = {1};
      for (const auto& a : node.attribute()) {
        if (a.type() == P::AttributeProto_AttributeType_INT) op.attrs[a.name()] = {a.i()};
        else if (a.type() == P::AttributeProto_AttributeType_INTS)
          op.attrs[a.name()] = std::vector<int64_t>(a.ints().begin(), a.ints().end());
      }
      graph.add_op(std::move(op));
    }
    for (const auto& out : g_.output())
      if (TensorId id = graph.find_tensor(resolve(out.name())); id != kNone) graph.tensor(id).graph_output = true;
    annotate_work(graph);
    return graph;
  }

  std::string path_;
  P::ModelProto& model_;
  P::GraphProto& g_;
  const ImportOptions& options_;
  std::unordered_map<std::string, int> opsets_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, int> producer_;
  std::unordered_map<std::string, Constant> constants_;
  std::unordered_set<std::string> graph_inputs_;
  std::unordered_set<std::string> consumed_;  ///< values read by some node or listed as graph outputs
  std::unordered_map<std::string, P::TypeProto*> types_;
  std::unordered_map<std::string, const P::TypeProto*> file_types_;
  std::unordered_map<std::string, const P::TensorProto*> input_data_;
  std::deque<P::TypeProto> type_store_;
  std::deque<P::TensorProto> tensor_store_;
  std::vector<bool> folded_;
  std::unordered_map<std::string, std::string> aliases_;  ///< Identity of a constant -> the constant
};

}  // namespace

Expected<Graph> import_onnx(const std::string& path, const ImportOptions& options) {
  silence_protobuf();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Error{path + ": no such file"};
  if (!std::filesystem::is_regular_file(path, ec)) return Error{path + ": not a regular file"};
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open the file for reading"};
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return Error{path + ": empty file (0 bytes), not an ONNX model"};
  P::ModelProto model;
  if (!model.ParseFromString(bytes))
    return Error{path + ": not a valid ONNX model (the protobuf data is truncated or corrupt)"};
  if (!model.has_graph() || model.ir_version() < 1 || model.ir_version() > 100 || model.graph().output_size() == 0)
    return Error{path + ": not a valid ONNX model (no graph with outputs, or a bad IR version; truncated or corrupt?)"};
  try {
    return Importer(path, model, options).run();
  } catch (const P::InferenceError& e) {  // ONNX's inference outside one node's (a subgraph's, a function's)
    return Error{fmt::format("{}: cannot import the model: {}", path, e.what())};
  }
}

}  // namespace moirai
