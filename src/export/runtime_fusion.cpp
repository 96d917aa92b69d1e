// Coarsening read back from ONNX Runtime (see moirai/runtime_fusion.h): runs tools/ort_optimize.mjs, maps the
// optimised graph back onto the original nodes, and caches the groups keyed by model hash, ORT version, level.
#include "moirai/runtime_fusion.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <set>
#include <unordered_map>

#include "onnx_model.h"
#include "process.h"
#include "moirai/export.h"
#include "moirai/file_io.h"
#include "onnx/onnx_pb.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;
using namespace export_detail;

constexpr const char* kRuntimeFusion = "onnxruntime-runtime";
constexpr int kCacheFormat = 3;  // bump when the mapping changes: older caches are recomputed

// ---------------------------------------------------------------------------------------------------------
// Mapping an optimised graph back onto the original one.

struct NodeView {
  std::string name;  ///< original graph: as the importer names it; optimised graph: as written
  std::string raw_name;
  std::string type;
  std::vector<std::string> inputs, outputs;
};

Expected<std::vector<NodeView>> read_nodes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open the model"};
  onnx::ModelProto proto;
  if (!proto.ParseFromIstream(&in) || !proto.has_graph()) return Error{path + ": not a valid ONNX model"};
  const auto& g = proto.graph();
  const auto names = importer_node_names(g);
  std::vector<NodeView> nodes;
  for (int n = 0; n < g.node_size(); ++n) {
    const auto& node = g.node(n);
    NodeView v{names[static_cast<size_t>(n)], node.name(), node.op_type(), {}, {}};
    if (!node.domain().empty() && node.domain() != "ai.onnx") v.type = node.domain() + ":" + node.op_type();
    for (const auto& i : node.input())
      if (!i.empty()) v.inputs.push_back(i);
    for (const auto& o : node.output())
      if (!o.empty()) v.outputs.push_back(o);
    nodes.push_back(std::move(v));
  }
  return nodes;
}

std::unordered_map<std::string, int> producers(const std::vector<NodeView>& nodes) {
  std::unordered_map<std::string, int> p;
  for (size_t n = 0; n < nodes.size(); ++n)
    for (const auto& t : nodes[n].outputs) p.emplace(t, static_cast<int>(n));
  return p;
}

/// Kahn's algorithm, ties by file order (a file need not list its nodes in order).
std::vector<int> topological(const std::vector<NodeView>& nodes) {
  const auto producer = producers(nodes);
  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<int>> users(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n)
    for (const auto& t : nodes[n].inputs)
      if (auto it = producer.find(t); it != producer.end() && it->second != static_cast<int>(n)) {
        users[static_cast<size_t>(it->second)].push_back(static_cast<int>(n));
        ++pending[n];
      }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (size_t n = 0; n < nodes.size(); ++n)
    if (pending[n] == 0) ready.push(static_cast<int>(n));
  std::vector<int> order;
  while (!ready.empty()) {
    const int n = ready.top();
    ready.pop();
    order.push_back(n);
    for (int u : users[static_cast<size_t>(n)])
      if (--pending[static_cast<size_t>(u)] == 0) ready.push(u);
  }
  return order;  // a cycle leaves nodes out; the caller's coverage check reports them
}

/// The original tensors a runtime node computes: its outputs that keep an original name; failing that, the
/// outputs of the original node whose name it kept, or the tensor its name was derived from (the NCHWc
/// transformer names a node after the original output it computes, "<tensor>_nchwc", and renames the output).
std::vector<std::string> anchors_of(const NodeView& node,
                                    const std::unordered_map<std::string, int>& original_producer,
                                    const std::unordered_map<std::string, int>& original_by_name,
                                    const std::vector<NodeView>& original,
                                    const std::unordered_map<std::string, int>& owner) {
  std::vector<std::string> anchors;
  auto take = [&](const std::string& t) {
    if (original_producer.count(t) && !owner.count(t)) anchors.push_back(t);
  };
  for (const auto& t : node.outputs) take(t);
  if (!anchors.empty()) return anchors;
  // A kept node name; "_new_reshape": a Reshape merged with the one a MatMulAddFusion Gemm put before it.
  for (const std::string suffix : {"", "_new_reshape"}) {
    if (node.raw_name.size() <= suffix.size() || !node.raw_name.ends_with(suffix)) continue;
    auto it = original_by_name.find(node.raw_name.substr(0, node.raw_name.size() - suffix.size()));
    if (it == original_by_name.end()) continue;
    for (const auto& t : original[static_cast<size_t>(it->second)].outputs) take(t);
    if (!anchors.empty()) return anchors;
  }
  // "_bn_nchwc": a batch normalisation the NCHWc transformer turned into a depthwise convolution.
  for (const std::string suffix : {"_bn_nchwc", "_nchwc"})
    if (anchors.empty() && node.raw_name.size() > suffix.size() && node.raw_name.ends_with(suffix))
      take(node.raw_name.substr(0, node.raw_name.size() - suffix.size()));
  return anchors;
}

/// Layout-only nodes a fusion appends to restore the original shape or layout (MatMulAddFusion's Gemm is
/// followed by a Reshape back to 3-D; NCHWc ends in ReorderOutput): they carry the original output's name, but
/// the node before them computed it.
bool restores_layout(const NodeView& node) {
  static const std::set<std::string, std::less<>> types = {"Reshape", "Squeeze", "Unsqueeze", "Flatten",
                                                           "com.microsoft.nchwc:ReorderOutput"};
  return types.count(node.type) > 0;
}

/// Original nodes no runtime node accounts for join the group of a consumer, else of a producer; repeated
/// until nothing changes (a removed chain joins from its end). Returns their names.
std::vector<std::string> attach_removed(const std::vector<NodeView>& original, std::vector<int>& group_of,
                                        std::vector<RuntimeGroup>& groups) {
  const auto producer = producers(original);
  std::unordered_map<std::string, std::vector<int>> consumers;
  for (size_t n = 0; n < original.size(); ++n)
    for (const auto& t : original[n].inputs) consumers[t].push_back(static_cast<int>(n));
  std::vector<std::string> removed;
  for (size_t n = 0; n < original.size(); ++n)
    if (group_of[n] < 0) removed.push_back(original[n].name);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t n = 0; n < original.size(); ++n) {
      if (group_of[n] >= 0) continue;
      int join = -1;
      for (const auto& t : original[n].outputs)
        for (int c : consumers[t])
          if (join < 0 && group_of[static_cast<size_t>(c)] >= 0) join = group_of[static_cast<size_t>(c)];
      for (const auto& t : original[n].inputs)
        if (auto it = producer.find(t);
            join < 0 && it != producer.end() && group_of[static_cast<size_t>(it->second)] >= 0)
          join = group_of[static_cast<size_t>(it->second)];
      if (join >= 0) {
        group_of[n] = join;
        changed = true;
      }
    }
  }
  for (size_t n = 0; n < original.size(); ++n)
    if (group_of[n] < 0) {  // isolated: a group of its own
      group_of[n] = static_cast<int>(groups.size());
      groups.push_back({original[n].name, "(removed)", {}});
    }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------
// Files: hashing, the cache, running the tool.

std::string file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t h = 0xcbf29ce484222325ULL;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i)
      h = (h ^ static_cast<unsigned char>(buffer[i])) * 0x100000001b3ULL;
    if (!in) break;
  }
  return fmt::format("{:016x}", h);
}

/// onnxruntime-node's version from the package Node resolves from tools/, or by asking the tool.
Expected<std::string> ort_version(const std::string& tool) {
  for (fs::path dir = fs::path(tool).parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    std::ifstream in(dir / "node_modules" / "onnxruntime-node" / "package.json");
    if (!in) continue;
    try {
      return nlohmann::json::parse(in).at("version").get<std::string>();
    } catch (const std::exception&) {
      break;
    }
  }
  auto [status, output] = run_command(fmt::format("{} {} --version", quote(node_executable()), quote(tool)));
  if (status != 0)
    return Error{
        fmt::format("ONNX Runtime is not available (node {} --version: {})", tool, last_lines(output, 1))};
  return last_lines(output, 1);
}

std::vector<fs::path> cache_candidates(const std::string& model, const std::string& hash,
                                       const std::string& level) {
  std::vector<fs::path> paths;
  paths.push_back(fs::path(model).string() + ".ort-" + level + ".json");
  fs::path base;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    base = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home)
    base = fs::path(home) / ".cache";
  if (!base.empty()) paths.push_back(base / "moirai" / (hash + ".ort-" + level + ".json"));
  return paths;
}

nlohmann::json to_json(const RuntimeGroups& r) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : r.groups) groups.push_back({{"node", g.node}, {"type", g.type}, {"origin", g.origin}});
  return {{"format", kCacheFormat},
          {"model_hash", r.model_hash},
          {"ort_version", r.ort_version},
          {"level", r.level},
          {"original_nodes", r.original_nodes},
          {"optimized_nodes", r.optimized_nodes},
          {"groups", groups},
          {"added", r.added},
          {"removed", r.removed}};
}

/// The cached groups when the file exists and its key matches; nothing on a stale or unreadable file.
std::optional<RuntimeGroups> read_cache(const fs::path& path, const std::string& hash, const std::string& version,
                                        const std::string& level) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    if (j.at("format").get<int>() != kCacheFormat || j.at("model_hash") != hash ||
        j.at("ort_version") != version || j.at("level") != level)
      return std::nullopt;
    RuntimeGroups r;
    r.model_hash = hash;
    r.ort_version = version;
    r.level = level;
    r.original_nodes = j.at("original_nodes").get<int>();
    r.optimized_nodes = j.at("optimized_nodes").get<int>();
    for (const auto& g : j.at("groups"))
      r.groups.push_back({g.at("node").get<std::string>(), g.at("type").get<std::string>(),
                          g.at("origin").get<std::vector<std::string>>()});
    r.added = j.at("added").get<std::vector<std::string>>();
    r.removed = j.at("removed").get<std::vector<std::string>>();
    r.cache_path = path.string();
    r.from_cache = true;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;  // a damaged cache is recomputed
  }
}

/// A scratch directory removed with the object.
class Scratch {
 public:
  Scratch() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / fmt::format("moirai-ort-{}-{}", ::getpid(), counter++);
    fs::create_directories(path_, ec_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  const fs::path& path() const { return path_; }
  bool ok() const { return !ec_; }

 private:
  fs::path path_;
  std::error_code ec_;
};

/// True when some initializer keeps its data outside the file (a weight-stripped model, or external weights).
bool has_external_data(const std::string& model) {
  std::ifstream in(model, std::ios::binary);
  onnx::ModelProto proto;
  if (!proto.ParseFromIstream(&in)) return false;
  for (const auto& t : proto.graph().initializer())
    if (t.data_location() == onnx::TensorProto_DataLocation_EXTERNAL) return true;
  return false;
}

Expected<RuntimeGroups> ask_runtime(const std::string& model, const std::string& tool,
                                    const RuntimeFusionOptions& options) {
  Scratch scratch;
  if (!scratch.ok()) return Error{fmt::format("{}: cannot create a scratch directory", scratch.path().string())};
  std::string loadable = model;
  if (has_external_data(model)) {
    loadable = (scratch.path() / "weights.onnx").string();
    if (auto m = materialize_weights(model, loadable, options.seed); !m) return m.error();
  }
  const std::string optimized = (scratch.path() / "optimized.onnx").string();
  auto [status, output] = run_command(fmt::format("{} {} {} {} --level {}", quote(node_executable()), quote(tool),
                                                  quote(loadable), quote(optimized), options.level));
  if (status != 0)
    return Error{fmt::format("{}: cannot get ONNX Runtime's optimised graph (node {}: exit {}): {}", model, tool,
                             status, last_lines(output, 1))};
  return map_optimized_graph(model, optimized);
}

}  // namespace

std::vector<std::string> runtime_levels() { return {"basic", "extended", "all"}; }

Expected<RuntimeGroups> map_optimized_graph(const std::string& original_path, const std::string& optimized_path) {
  auto original = read_nodes(original_path);
  if (!original) return original.error();
  auto optimized = read_nodes(optimized_path);
  if (!optimized) return optimized.error();
  const auto original_producer = producers(*original);
  std::unordered_map<std::string, int> original_by_name;
  for (size_t n = 0; n < original->size(); ++n)
    original_by_name.emplace((*original)[n].raw_name, static_cast<int>(n));

  RuntimeGroups result;
  result.original_nodes = static_cast<int>(original->size());
  result.optimized_nodes = static_cast<int>(optimized->size());
  std::vector<int> group_of(original->size(), -1);
  std::unordered_map<std::string, int> owner;  // original tensor -> runtime node that computes it
  const auto order = topological(*optimized);
  const auto runtime_producer = producers(*optimized);
  std::vector<std::vector<std::string>> anchors(optimized->size());
  for (int o : order) {
    const NodeView& node = (*optimized)[static_cast<size_t>(o)];
    auto found = anchors_of(node, original_producer, original_by_name, *original, owner);
    int to = o;
    if (!found.empty() && restores_layout(node) && !node.inputs.empty() &&
        !original_producer.count(node.inputs[0]))
      if (auto it = runtime_producer.find(node.inputs[0]);
          it != runtime_producer.end() && anchors[static_cast<size_t>(it->second)].empty())
        to = it->second;
    for (const auto& t : found) owner[t] = to;
    anchors[static_cast<size_t>(to)] = std::move(found);
  }
  // A runtime node replaced the original nodes behind its anchors, back to tensors that still exist (another
  // runtime node's anchors, graph inputs, initializers): what lies between vanished into it.
  for (int o : order) {
    const NodeView& node = (*optimized)[static_cast<size_t>(o)];
    RuntimeGroup group{node.raw_name, node.type, {}};
    const int id = static_cast<int>(result.groups.size());
    std::vector<int> stack;
    for (const auto& t : anchors[static_cast<size_t>(o)]) stack.push_back(original_producer.at(t));
    bool any = false;
    while (!stack.empty()) {
      const int n = stack.back();
      stack.pop_back();
      if (group_of[static_cast<size_t>(n)] >= 0) continue;
      group_of[static_cast<size_t>(n)] = id;
      any = true;
      for (const auto& t : (*original)[static_cast<size_t>(n)].inputs)
        if (auto it = original_producer.find(t); it != original_producer.end() && !owner.count(t))
          stack.push_back(it->second);
    }
    if (any)
      result.groups.push_back(std::move(group));
    else
      result.added.push_back(fmt::format("{} ({})", node.raw_name, node.type));
  }
  result.removed = attach_removed(*original, group_of, result.groups);
  for (size_t n = 0; n < original->size(); ++n)
    result.groups[static_cast<size_t>(group_of[n])].origin.push_back((*original)[n].name);
  return result;
}

bool is_runtime_fusion(const std::string& fusion) {
  return fusion == kRuntimeFusion || fusion.starts_with(std::string(kRuntimeFusion) + ":");
}

Expected<std::string> runtime_fusion_level(const std::string& fusion) {
  if (fusion == kRuntimeFusion) return std::string("extended");
  const std::string level = fusion.substr(std::string(kRuntimeFusion).size() + 1);
  const auto levels = runtime_levels();
  if (std::find(levels.begin(), levels.end(), level) == levels.end())
    return Error{
        fmt::format("--fusion {}: unknown ONNX Runtime level '{}' (known: basic, extended, all)", fusion, level)};
  return level;
}

Expected<RuntimeGroups> runtime_groups(const std::string& model, const RuntimeFusionOptions& options) {
  const auto levels = runtime_levels();
  if (std::find(levels.begin(), levels.end(), options.level) == levels.end())
    return Error{
        fmt::format("--level: unknown ONNX Runtime level '{}' (known: basic, extended, all)", options.level)};
  std::error_code ec;
  if (!fs::is_regular_file(model, ec)) return Error{model + ": no such model file"};
  auto tool = find_tool("ort_optimize.mjs", "/proc/self/exe");
  if (!tool) return tool.error();
  auto version = ort_version(*tool);
  if (!version) return Error{model + ": " + version.error().message};
  const std::string hash = file_hash(model);
  const auto candidates = cache_candidates(model, hash, options.level);
  if (options.use_cache)
    for (const auto& path : candidates)
      if (auto cached = read_cache(path, hash, *version, options.level)) return *cached;

  auto result = ask_runtime(model, *tool, options);
  if (!result) return result.error();
  result->model_hash = hash;
  result->ort_version = *version;
  result->level = options.level;
  const std::string text = to_json(*result).dump(1) + "\n";
  for (const auto& path : candidates) {
    fs::create_directories(path.parent_path().empty() ? fs::path(".") : path.parent_path(), ec);
    if (write_file_atomic(path.string(), text)) {
      result->cache_path = path.string();
      break;
    }
  }
  return result;
}

Expected<CoarsenResult> coarsen_model(const Graph& graph, const std::string& model_path, const Cluster& cluster,
                                      const CoarsenOptions& options) {
  if (!is_runtime_fusion(options.fusion)) return coarsen(graph, cluster, options);
  auto level = runtime_fusion_level(options.fusion);
  if (!level) return level.error();
  RuntimeFusionOptions ask;
  ask.level = *level;
  auto groups = runtime_groups(model_path, ask);
  if (!groups) return groups.error();
  CoarsenOptions explicit_groups = options;
  for (const auto& g : groups->groups) explicit_groups.groups.push_back(g.origin);
  return coarsen(graph, cluster, explicit_groups);
}

}  // namespace moirai
