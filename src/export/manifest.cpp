// manifest.json: writer and reader. The reader checks that the run order respects the data flow: every
// received tensor comes from an earlier sub-model that outputs it; a cycle among sub-models is named.
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/export.h"

namespace moirai {
namespace {

using ojson = nlohmann::ordered_json;
using json = nlohmann::json;

ojson tensor_json(const ManifestTensor& t, bool output) {
  ojson j{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}};
  if (!output || !t.from.empty()) j["from"] = t.from.empty() ? ojson("graph") : ojson(t.from);
  if (output) {
    j["to"] = t.to;
    j["graph_output"] = t.graph_output;
  }
  if (t.index_bound > 0) j["index_bound"] = t.index_bound;
  return j;
}

ManifestTensor tensor_from(const json& j) {
  ManifestTensor t;
  t.name = j.at("name").get<std::string>();
  t.dtype = j.value("dtype", "float32");
  t.shape = j.value("shape", std::vector<int64_t>{});
  t.from = j.value("from", "");
  if (t.from == "graph") t.from.clear();
  t.to = j.value("to", std::vector<std::string>{});
  t.graph_output = j.value("graph_output", false);
  t.index_bound = j.value("index_bound", int64_t{0});
  return t;
}

/// A cycle among sub-models through their "from" links, as "a -> b -> a", or empty.
std::string find_cycle(const std::vector<ManifestModel>& models) {
  std::map<std::string, std::set<std::string>> deps;
  for (const auto& m : models)
    for (const auto& in : m.inputs)
      if (!in.from.empty()) deps[m.name].insert(in.from);
  std::map<std::string, int> state;  // 1 = on the stack, 2 = done
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& v) {
    state[v] = 1;
    stack.push_back(v);
    for (const auto& d : deps[v]) {
      if (state[d] == 1) {
        auto it = std::find(stack.begin(), stack.end(), d);
        for (; it != stack.end(); ++it) cycle += *it + " -> ";
        cycle += d;
        return true;
      }
      if (state[d] == 0 && visit(d)) return true;
    }
    stack.pop_back();
    state[v] = 2;
    return false;
  };
  for (const auto& m : models)
    if (state[m.name] == 0 && visit(m.name)) return cycle;
  return {};
}

}  // namespace

std::string manifest_json(const Manifest& m) {
  ojson j;
  j["version"] = 1;
  j["model"] = m.model;
  j["model_name"] = m.model_name;
  j["fusion"] = m.fusion;
  j["max_nodes"] = m.max_nodes;
  ojson dims = ojson::object();
  for (const auto& [k, v] : m.dims) dims[k] = v;
  j["dims"] = dims;
  j["weights"] = m.weights;
  ojson inputs = ojson::array(), outputs = ojson::array(), order = ojson::array(), subs = ojson::array();
  for (const auto& t : m.inputs) inputs.push_back(tensor_json(t, false));
  for (const auto& t : m.outputs) outputs.push_back(ojson{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"from", t.from}});
  for (const auto& s : m.submodels) {
    order.push_back(s.name);
    ojson sj{{"name", s.name}, {"file", s.file}, {"device", s.device}, {"ops", s.ops}};
    ojson in = ojson::array(), out = ojson::array();
    for (const auto& t : s.inputs) in.push_back(tensor_json(t, false));
    for (const auto& t : s.outputs) out.push_back(tensor_json(t, true));
    sj["inputs"] = in;
    sj["outputs"] = out;
    subs.push_back(std::move(sj));
  }
  j["inputs"] = inputs;
  j["outputs"] = outputs;
  j["run_order"] = order;
  j["submodels"] = subs;
  return j.dump(1) + "\n";
}

Expected<Manifest> parse_manifest(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: not JSON: {}", source, e.what())};
  }
  Manifest m;
  m.path = source;
  std::vector<std::string> order;
  try {
    m.model = j.at("model").get<std::string>();
    m.model_name = j.value("model_name", "");
    m.fusion = j.value("fusion", "");
    m.max_nodes = j.value("max_nodes", 0);
    m.dims = j.value("dims", std::map<std::string, int64_t>{});
    m.weights = j.value("weights", true);
    for (const auto& t : j.at("inputs")) m.inputs.push_back(tensor_from(t));
    for (const auto& t : j.at("outputs")) m.outputs.push_back(tensor_from(t));
    order = j.at("run_order").get<std::vector<std::string>>();
    std::map<std::string, ManifestModel> by_name;
    for (const auto& s : j.at("submodels")) {
      ManifestModel mm;
      mm.name = s.at("name").get<std::string>();
      mm.file = s.at("file").get<std::string>();
      mm.device = s.value("device", "");
      mm.ops = s.value("ops", std::vector<std::string>{});
      for (const auto& t : s.at("inputs")) mm.inputs.push_back(tensor_from(t));
      for (const auto& t : s.at("outputs")) mm.outputs.push_back(tensor_from(t));
      if (!by_name.emplace(mm.name, mm).second) return Error{fmt::format("{}: sub-model '{}' is listed twice", source, mm.name)};
    }
    for (const auto& name : order) {
      auto it = by_name.find(name);
      if (it == by_name.end()) return Error{fmt::format("{}: run_order names '{}', which is not a sub-model", source, name)};
      m.submodels.push_back(std::move(it->second));
      by_name.erase(it);
    }
    if (!by_name.empty())
      return Error{fmt::format("{}: sub-model '{}' is not in run_order", source, by_name.begin()->first)};
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: malformed manifest: {}", source, e.what())};
  }
  if (std::string cycle = find_cycle(m.submodels); !cycle.empty())
    return Error{fmt::format("{}: the sub-models form a cycle: {}", source, cycle)};
  std::map<std::string, std::set<std::string>> outputs_of;  // of the sub-models run so far
  for (const auto& s : m.submodels) {
    for (const auto& in : s.inputs) {
      if (in.from.empty()) continue;
      auto it = outputs_of.find(in.from);
      if (it == outputs_of.end())
        return Error{fmt::format("{}: sub-model '{}' needs '{}' from '{}', which does not run before it", source,
                                 s.name, in.name, in.from)};
      if (!it->second.count(in.name))
        return Error{fmt::format("{}: sub-model '{}' needs '{}' from '{}', which does not output it", source, s.name,
                                 in.name, in.from)};
    }
    for (const auto& out : s.outputs) outputs_of[s.name].insert(out.name);
  }
  return m;
}

Expected<Manifest> read_manifest(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Error{path + ": no such file"};
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_manifest(ss.str(), path);
}

}  // namespace moirai
