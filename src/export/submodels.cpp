// Sub-model export: maps a plan's operators back onto the original ONNX nodes, splits each device's operators
// into acyclic stages, and writes one checked ONNX model per stage plus manifest.json.
// Nodes the importer folded (shape arithmetic, Constant, Identity) are in no plan operator: such a "free" node is
// copied into every sub-model that needs its outputs, with Shape/Size of a statically shaped tensor replaced by a
// Constant, so a sub-model never needs an activation only for its shape.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "onnx_model.h"
#include "moirai/export.h"
#include "moirai/import.h"
#include "moirai/stages.h"
#include "onnx/checker.h"
#include "moirai/onnx_fold.h"

namespace moirai {
namespace {
namespace P = onnx;
namespace fs = std::filesystem;
using export_detail::OnnxModel;

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  if (out.size() > 40) out.resize(40);
  return out;
}

std::vector<int64_t> dims_of(const P::TypeProto& t) {
  std::vector<int64_t> d;
  for (const auto& dim : t.tensor_type().shape().dim()) d.push_back(dim.dim_value());
  return d;
}

/// A temporary sibling of the output directory, removed unless committed.
class TempDir {
 public:
  explicit TempDir(const fs::path& target) : target_(target) {
    const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = parent / fmt::format(".{}.tmp-{}-{}", target.filename().string(), ::getpid(), stamp);
  }
  ~TempDir() {
    std::error_code ec;
    if (!committed_) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  Status create() {
    std::error_code ec;
    if (target_.has_parent_path()) fs::create_directories(target_.parent_path(), ec);
    if (!fs::create_directory(path_, ec)) return Error{fmt::format("{}: cannot create a directory: {}", path_.string(), ec.message())};
    return Ok{};
  }
  /// Replaces the target with the temporary directory.
  Status commit() {
    std::error_code ec;
    fs::path old;
    if (fs::exists(target_, ec)) {
      if (!fs::is_directory(target_, ec)) return Error{target_.string() + ": exists and is not a directory"};
      old = path_;
      old += ".old";
      fs::rename(target_, old, ec);
      if (ec) return Error{fmt::format("{}: cannot replace it: {}", target_.string(), ec.message())};
    }
    fs::rename(path_, target_, ec);
    if (ec) {
      if (!old.empty()) fs::rename(old, target_, ec);
      return Error{fmt::format("{}: cannot create it: {}", target_.string(), ec.message())};
    }
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
    return Ok{};
  }

 private:
  fs::path target_, path_;
  bool committed_ = false;
};

/// What one stage holds before it becomes a sub-model.
struct StagePlan {
  std::string name, device;
  std::vector<int> ops;
  std::set<int> nodes;  // node ids (real and copied free ones)
  std::vector<std::string> initializers, graph_inputs;
  std::vector<std::pair<std::string, int>> received;  // (value, producing stage)
  std::vector<std::string> outputs;
  std::map<std::string, std::vector<int>> sent_to;     // value -> consuming stages
  std::set<std::string> graph_outputs;
};

class Exporter {
 public:
  Exporter(const ExportRequest& request, const Graph& graph, OnnxModel& model)
      : req_(request), graph_(graph), m_(model) {}

  Expected<Manifest> run(const std::string& out_dir) {
    MOIRAI_TRY(map_nodes());
    find_constant_shapes();
    MOIRAI_ASSIGN_OR_RETURN(auto stages, assign_stages(stage_input(), req_.source));
    plan_stages(stages);
    TempDir tmp{fs::path(out_dir)};
    MOIRAI_TRY(tmp.create());
    Manifest manifest = base_manifest();
    for (size_t s = 0; s < plans_.size(); ++s) {
      MOIRAI_ASSIGN_OR_RETURN(auto sub, write_stage(static_cast<int>(s), tmp.path()));
      manifest.submodels.push_back(std::move(sub));
    }
    manifest.weights = !weights_absent_;
    if (weights_absent_) std::ofstream(tmp.path() / "weights.absent", std::ios::binary);
    {
      std::ofstream out(tmp.path() / "manifest.json", std::ios::binary);
      out << manifest_json(manifest);
      if (!out) return Error{fmt::format("{}: cannot write manifest.json", out_dir)};
    }
    MOIRAI_TRY(tmp.commit());
    manifest.path = (fs::path(out_dir) / "manifest.json").string();
    return manifest;
  }

 private:
  Error fail(const std::string& what) const { return Error{fmt::format("{}: {}", req_.source, what)}; }

  Status map_nodes() {
    const int nodes = m_.proto.graph().node_size();
    op_of_.assign(static_cast<size_t>(nodes), -1);
    for (size_t i = 0; i < req_.ops.size(); ++i) {
      const ExportOp& op = req_.ops[i];
      if (op.origin.empty()) return fail(fmt::format("operator '{}' lists no ONNX node (no 'origin')", op.name));
      for (const auto& name : op.origin) {
        auto it = m_.node_by_name.find(name);
        if (it == m_.node_by_name.end())
          return fail(fmt::format("operator '{}' lists ONNX node '{}', which {} does not have (a plan for another "
                                  "model?)", op.name, name, req_.model_path));
        int& owner = op_of_[static_cast<size_t>(it->second)];
        if (owner >= 0)
          return fail(fmt::format("ONNX node '{}' is in two operators, '{}' and '{}'", name,
                                  req_.ops[static_cast<size_t>(owner)].name, op.name));
        owner = static_cast<int>(i);
      }
    }
    for (const auto& op : graph_.ops())
      for (const auto& name : op.origin) {
        auto it = m_.node_by_name.find(name);
        MOIRAI_CHECK(it != m_.node_by_name.end(), "imported node missing from the model: " + name);
        if (op_of_[static_cast<size_t>(it->second)] < 0)
          return fail(fmt::format("ONNX node '{}' ({}) of {} is in no operator of the plan (a plan for another "
                                  "model?)", name, op.type, req_.model_path));
      }
    return Ok{};
  }

  /// Free Shape/Size nodes of statically shaped tensors become Constants.
  void find_constant_shapes() {
    const auto& g = m_.proto.graph();
    for (int n = 0; n < g.node_size(); ++n) {
      const auto& node = g.node(n);
      if (op_of_[static_cast<size_t>(n)] >= 0 || (node.op_type() != "Shape" && node.op_type() != "Size")) continue;
      if (node.input_size() != 1 || node.output_size() != 1) continue;
      auto t = m_.types.find(node.input(0));
      if (t == m_.types.end() || !t->second.tensor_type().has_shape()) continue;
      bool known = true;
      for (const auto& d : t->second.tensor_type().shape().dim()) known = known && d.has_dim_value();
      if (!known) continue;
      auto proto = fold_shape_node(node, dims_of(t->second));
      if (proto) constant_[n] = std::move(*proto);
    }
  }

  const std::vector<std::string>& reads(int n) const {
    static const std::vector<std::string> none;
    return constant_.count(n) ? none : m_.reads[static_cast<size_t>(n)];
  }

  /// Plan operators whose outputs `value` depends on through free nodes only.
  const std::set<int>& real_producers(const std::string& value) {
    static const std::set<int> none;
    auto p = m_.producer.find(value);
    if (p == m_.producer.end()) return none;
    const int n = p->second;
    if (auto memo = producers_memo_.find(n); memo != producers_memo_.end()) return memo->second;
    std::set<int> out;
    if (op_of_[static_cast<size_t>(n)] >= 0) {
      out.insert(op_of_[static_cast<size_t>(n)]);
    } else {
      for (const auto& in : reads(n)) {
        const auto& sub = real_producers(in);
        out.insert(sub.begin(), sub.end());
      }
    }
    return producers_memo_[n] = std::move(out);
  }

  StageInput stage_input() {
    StageInput in;
    const size_t k = req_.ops.size();
    in.preds.resize(k);
    device_names_.clear();
    for (const auto& op : req_.ops) {
      auto key = std::find(device_names_.begin(), device_names_.end(), op.device);
      if (key == device_names_.end()) key = device_names_.insert(device_names_.end(), op.device);
      in.names.push_back(op.name);
      in.device.push_back(static_cast<int>(key - device_names_.begin()));
      in.start_ms.push_back(op.start_ms);
    }
    for (int n : m_.order) {
      const int op = op_of_[static_cast<size_t>(n)];
      if (op < 0) continue;
      auto& preds = in.preds[static_cast<size_t>(op)];
      for (const auto& value : reads(n))
        for (int p : real_producers(value))
          if (p != op && std::find(preds.begin(), preds.end(), p) == preds.end()) preds.push_back(p);
    }
    for (auto& p : in.preds) std::sort(p.begin(), p.end());
    return in;
  }

  /// Pulls in what stage `s` needs to compute `values`: free nodes (copied), initializers, graph inputs, and
  /// values received from other stages.
  void resolve(StagePlan& plan, int s, std::vector<std::string> work) {
    std::set<std::string> seen;
    while (!work.empty()) {
      std::string v = std::move(work.back());
      work.pop_back();
      if (!seen.insert(v).second) continue;
      if (auto p = m_.producer.find(v); p != m_.producer.end()) {
        const int n = p->second;
        const int op = op_of_[static_cast<size_t>(n)];
        if (op < 0) {
          if (plan.nodes.insert(n).second)
            for (const auto& in : reads(n)) work.push_back(in);
        } else if (stage_of_op_[static_cast<size_t>(op)] != s) {
          plan.received.emplace_back(v, stage_of_op_[static_cast<size_t>(op)]);
        }
      } else if (m_.initializer.count(v)) {
        plan.initializers.push_back(v);
      } else if (m_.graph_inputs.count(v)) {
        plan.graph_inputs.push_back(v);
      }
    }
  }

  void plan_stages(const Stages& stages) {
    stage_of_op_ = stages.stage;
    const int count = static_cast<int>(stages.device.size());
    plans_.resize(static_cast<size_t>(count));
    for (int s = 0; s < count; ++s) {
      StagePlan& plan = plans_[static_cast<size_t>(s)];
      plan.device = device_names_[static_cast<size_t>(stages.device[static_cast<size_t>(s)])];
      plan.name = fmt::format("s{}_{}", s, sanitize(plan.device));
      plan.ops = stages.ops[static_cast<size_t>(s)];
    }
    for (int n = 0; n < m_.proto.graph().node_size(); ++n)
      if (int op = op_of_[static_cast<size_t>(n)]; op >= 0) plans_[static_cast<size_t>(stage_of_op_[static_cast<size_t>(op)])].nodes.insert(n);
    // Graph outputs: from the stage of their producing operator, or computed by the last stage.
    std::vector<std::vector<std::string>> extra(static_cast<size_t>(count));
    for (const auto& out : m_.proto.graph().output()) {
      auto p = m_.producer.find(out.name());
      const int op = p == m_.producer.end() ? -1 : op_of_[static_cast<size_t>(p->second)];
      const int s = op >= 0 ? stage_of_op_[static_cast<size_t>(op)] : count - 1;
      plans_[static_cast<size_t>(s)].graph_outputs.insert(out.name());
      if (op < 0) extra[static_cast<size_t>(s)].push_back(out.name());
    }
    for (int s = 0; s < count; ++s) {
      StagePlan& plan = plans_[static_cast<size_t>(s)];
      std::vector<std::string> work = extra[static_cast<size_t>(s)];
      for (int n : std::vector<int>(plan.nodes.begin(), plan.nodes.end()))
        for (const auto& in : reads(n)) work.push_back(in);
      resolve(plan, s, std::move(work));
      auto by_position = [&](const std::string& a, const std::string& b) { return value_key(a) < value_key(b); };
      std::sort(plan.received.begin(), plan.received.end(), [&](auto& a, auto& b) { return by_position(a.first, b.first); });
      std::sort(plan.initializers.begin(), plan.initializers.end(), [&](auto& a, auto& b) { return m_.initializer.at(a) < m_.initializer.at(b); });
      std::sort(plan.graph_inputs.begin(), plan.graph_inputs.end(), by_position);
      for (const auto& [v, from] : plan.received) {
        MOIRAI_CHECK(from < s, "a stage receives from a later stage");
        plans_[static_cast<size_t>(from)].sent_to[v].push_back(s);
      }
    }
    for (StagePlan& plan : plans_) {
      std::set<std::string> outs(plan.graph_outputs);
      for (const auto& [v, to] : plan.sent_to) outs.insert(v);
      plan.outputs.assign(outs.begin(), outs.end());
      std::sort(plan.outputs.begin(), plan.outputs.end(), [&](auto& a, auto& b) { return value_key(a) < value_key(b); });
      if (plan.outputs.empty()) {  // a dead end: expose its last output so the model stays valid
        const int last = *std::max_element(plan.nodes.begin(), plan.nodes.end(), [&](int a, int b) {
          return m_.position[static_cast<size_t>(a)] < m_.position[static_cast<size_t>(b)];
        });
        plan.outputs.push_back(m_.proto.graph().node(last).output(0));
      }
    }
  }

  /// Sort key of a value: graph inputs (file order) first, then by producer position and output index.
  std::pair<int, int> value_key(const std::string& v) const {
    auto p = m_.producer.find(v);
    if (p == m_.producer.end()) {
      const auto& inputs = m_.proto.graph().input();
      for (int i = 0; i < inputs.size(); ++i)
        if (inputs[i].name() == v) return {-1, i};
      return {-1, inputs.size()};
    }
    const auto& node = m_.proto.graph().node(p->second);
    int k = 0;
    while (k < node.output_size() && node.output(k) != v) ++k;
    return {m_.position[static_cast<size_t>(p->second)], k};
  }

  Expected<ManifestTensor> tensor(const std::string& v) const {
    auto t = m_.types.find(v);
    if (t == m_.types.end() || !t->second.has_tensor_type())
      return Error{fmt::format("{}: no static type for tensor '{}' (needed at a sub-model boundary)", req_.model_path, v)};
    ManifestTensor mt;
    mt.name = v;
    mt.dtype = export_detail::elem_type_name(t->second.tensor_type().elem_type());
    mt.shape = dims_of(t->second);
    return mt;
  }

  Status add_value_info(P::ValueInfoProto* vi, const std::string& v) const {
    auto t = m_.types.find(v);
    if (t == m_.types.end())
      return Error{fmt::format("{}: no static type for tensor '{}' (needed at a sub-model boundary)", req_.model_path, v)};
    vi->set_name(v);
    *vi->mutable_type() = t->second;
    return Ok{};
  }

  /// Largest valid index for an integer graph input read as Gather indices into an initializer table.
  int64_t index_bound(const std::string& v) const {
    int64_t bound = 0;
    for (const auto& node : m_.proto.graph().node()) {
      if (node.op_type() != "Gather" || node.input_size() < 2 || node.input(1) != v) continue;
      auto init = m_.initializer.find(node.input(0));
      if (init == m_.initializer.end()) continue;
      const auto& table = m_.proto.graph().initializer(init->second);
      int64_t axis = 0;
      for (const auto& a : node.attribute())
        if (a.name() == "axis") axis = a.i();
      if (axis < 0) axis += table.dims_size();
      if (axis < 0 || axis >= table.dims_size()) continue;
      const int64_t size = table.dims(static_cast<int>(axis));
      bound = bound == 0 ? size : std::min(bound, size);
    }
    return bound;
  }

  Manifest base_manifest() const {
    Manifest m;
    std::error_code ec;
    m.model = fs::absolute(req_.model_path, ec).lexically_normal().string();
    m.model_name = req_.model_name.empty() ? fs::path(req_.model_path).stem().string() : req_.model_name;
    m.fusion = req_.fusion;
    m.max_nodes = req_.max_nodes;
    m.dims = req_.dims;
    for (const auto& v : m_.proto.graph().input()) {
      if (!m_.graph_inputs.count(v.name())) continue;
      auto t = tensor(v.name());
      if (!t) continue;
      t->index_bound = index_bound(v.name());
      m.inputs.push_back(std::move(*t));
    }
    for (const auto& v : m_.proto.graph().output()) {
      auto t = tensor(v.name());
      if (!t) continue;
      for (const auto& plan : plans_)
        if (plan.graph_outputs.count(v.name())) t->from = plan.name;
      t->graph_output = true;
      m.outputs.push_back(std::move(*t));
    }
    return m;
  }

  Expected<ManifestModel> write_stage(int s, const fs::path& dir) {
    const StagePlan& plan = plans_[static_cast<size_t>(s)];
    const P::ModelProto& orig = m_.proto;
    P::ModelProto sub;
    sub.set_ir_version(orig.ir_version());
    *sub.mutable_opset_import() = orig.opset_import();
    *sub.mutable_functions() = orig.functions();
    sub.set_producer_name("moirai export");
    sub.set_domain(orig.domain());
    sub.set_model_version(orig.model_version());
    P::GraphProto& g = *sub.mutable_graph();
    g.set_name(plan.name);
    std::vector<int> nodes(plan.nodes.begin(), plan.nodes.end());
    std::sort(nodes.begin(), nodes.end(), [&](int a, int b) { return m_.position[static_cast<size_t>(a)] < m_.position[static_cast<size_t>(b)]; });
    for (int n : nodes) {
      P::NodeProto& node = *g.add_node();
      const P::NodeProto& src = orig.graph().node(n);
      if (auto c = constant_.find(n); c != constant_.end()) {
        node.set_name(src.name());
        node.set_op_type("Constant");
        node.add_output(src.output(0));
        auto* attr = node.add_attribute();
        attr->set_name("value");
        attr->set_type(P::AttributeProto_AttributeType_TENSOR);
        *attr->mutable_t() = c->second;
      } else {
        node = src;
      }
    }
    for (const auto& name : plan.initializers) {
      MOIRAI_ASSIGN_OR_RETURN(auto init, resolved(m_.initializer.at(name)));
      *g.add_initializer() = init.tensor;
      weights_absent_ = weights_absent_ || init.absent;
    }
    ManifestModel mm;
    mm.name = plan.name;
    mm.file = plan.name + ".onnx";
    mm.device = plan.device;
    for (int op : plan.ops) mm.ops.push_back(req_.ops[static_cast<size_t>(op)].name);
    auto add_input = [&](const std::string& v, const std::string& from) -> Status {
      if (auto st = add_value_info(g.add_input(), v); !st) return st;
      MOIRAI_ASSIGN_OR_RETURN(auto t, tensor(v));
      t.from = from;
      if (from.empty()) t.index_bound = index_bound(v);
      mm.inputs.push_back(std::move(t));
      return Ok{};
    };
    for (const auto& v : plan.graph_inputs)
      MOIRAI_TRY(add_input(v, ""));
    for (const auto& [v, from] : plan.received)
      MOIRAI_TRY(add_input(v, plans_[static_cast<size_t>(from)].name));
    if (orig.ir_version() < 4)  // before IR 4 every initializer must also be a graph input
      for (const auto& name : plan.initializers)
        MOIRAI_TRY(add_value_info(g.add_input(), name));
    for (const auto& v : plan.outputs) {
      MOIRAI_TRY(add_value_info(g.add_output(), v));
      MOIRAI_ASSIGN_OR_RETURN(auto t, tensor(v));
      t.graph_output = plan.graph_outputs.count(v) > 0;
      if (auto it = plan.sent_to.find(v); it != plan.sent_to.end())
        for (int to : it->second) t.to.push_back(plans_[static_cast<size_t>(to)].name);
      mm.outputs.push_back(std::move(t));
    }
    const fs::path file = dir / mm.file;
    {
      std::ofstream out(file, std::ios::binary);
      if (!out || !sub.SerializeToOstream(&out)) return Error{fmt::format("{}: cannot write the sub-model", file.string())};
    }
    if (req_.check) {
      if (weights_absent_) std::ofstream(dir / "weights.absent", std::ios::binary);
      try {
        P::checker::check_model(file.string());
      } catch (const std::exception& e) {
        return Error{fmt::format("{}: sub-model '{}' fails the ONNX checker: {}", req_.model_path, plan.name, e.what())};
      }
    }
    return mm;
  }

  Expected<export_detail::ResolvedInitializer> resolved(int index) {
    if (auto it = init_cache_.find(index); it != init_cache_.end()) return it->second;
    MOIRAI_ASSIGN_OR_RETURN(auto r, export_detail::resolve_initializer(m_, index));
    return init_cache_[index] = std::move(r);
  }

  const ExportRequest& req_;
  const Graph& graph_;
  OnnxModel& m_;
  std::vector<int> op_of_;  // per node: plan operator, -1 for a free node
  std::vector<int> stage_of_op_;
  std::vector<std::string> device_names_;  // stage key index -> device (or stage key) name
  std::map<int, P::TensorProto> constant_;
  std::map<int, std::set<int>> producers_memo_;
  std::vector<StagePlan> plans_;
  std::map<int, export_detail::ResolvedInitializer> init_cache_;
  bool weights_absent_ = false;
};

}  // namespace

Expected<Manifest> export_submodels(const ExportRequest& request, const std::string& out_dir) {
  MOIRAI_ASSIGN_OR_RETURN(auto graph, import_onnx(request.model_path, ImportOptions{request.dims}));
  MOIRAI_ASSIGN_OR_RETURN(auto model, export_detail::load_onnx_model(request.model_path, request.dims, graph));
  try {
    return Exporter(request, graph, model).run(out_dir);
  } catch (const std::filesystem::filesystem_error& e) {
    return Error{fmt::format("{}: {}", out_dir, e.what())};
  }
}

}  // namespace moirai
