// Profiled instances (shared/instances format, the Moirai authors' data): already a cost table. Operator ids in
// the file are sparse; they map to dense OpIds in file order and keep their number in the name ("op<ID>").
// The format has no tensor identity, so every edge is its own data item (per_edge_data).
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/ranges.h"
#include "json_file.h"
#include "moirai/cost.h"

namespace moirai {
namespace {

using nlohmann::json;

}  // namespace

Expected<CostTable> load_instance(const std::string& path) {
  MOIRAI_ASSIGN_OR_RETURN(auto file, cost::read_json_file(path, "the instance file"));
  const json& root = file;
  auto fail = [&](const std::string& what) { return Error{path + ": " + what}; };
  for (const char* key : {"devices", "ops", "edges"})
    if (!root.is_object() || !root.contains(key) || !root.at(key).is_array())
      return fail(std::string("missing array field ") + key);

  CostTable t;
  for (const char* key : {"name", "cluster"})
    if (root.contains(key) && (!root.at(key).is_string() || root.at(key).get_ref<const std::string&>().empty()))
      return fail(fmt::format("field {} must be a non-empty string, got {}", key, root.at(key).dump()));
  t.name = root.value("name", std::filesystem::path(path).stem().string());
  t.cluster = root.value("cluster", std::string("instance"));
  t.memory_unit = "units";  // the instance's own memory unit (see its "units" field), not bytes
  t.per_edge_data = true;

  const json& devices = root.at("devices");
  const int k = static_cast<int>(devices.size());
  if (k == 0) return fail("no devices");
  for (int d = 0; d < k; ++d) {
    const json& dj = devices[static_cast<size_t>(d)];
    if (!dj.is_object() || !dj.contains("memory")) return fail(fmt::format("missing field devices[{}].memory", d));
    if (auto bad = ranges::problem(dj.at("memory"), ranges::kMemoryUnits); !bad.empty())
      return fail(fmt::format("field devices[{}].memory {}", d, bad));
    if (dj.contains("id") && dj.at("id") != d)
      return fail(fmt::format("devices[{}].id is {}, expected {} (devices in id order)", d, dj.at("id").dump(), d));
    t.device_names.push_back("dev" + std::to_string(d));
    t.capacity.push_back(dj.at("memory").get<double>());
  }

  std::map<int64_t, OpId> dense;
  const json& ops = root.at("ops");
  for (size_t i = 0; i < ops.size(); ++i) {
    const json& oj = ops[i];
    const std::string where = fmt::format("ops[{}]", i);
    if (!oj.is_object() || !oj.contains("id") || !oj.at("id").is_number_integer())
      return fail("missing integer field " + where + ".id");
    const int64_t id = oj.at("id").get<int64_t>();
    if (!dense.emplace(id, static_cast<OpId>(i)).second) return fail(fmt::format("duplicate operator id {}", id));
    if (!oj.contains("time") || !oj.at("time").is_array() || oj.at("time").size() != static_cast<size_t>(k))
      return fail(fmt::format("{}.time must list {} device times", where, k));
    for (size_t d = 0; d < oj.at("time").size(); ++d)
      if (auto bad = ranges::problem(oj.at("time")[d], ranges::kMilliseconds); !bad.empty())
        return fail(fmt::format("field {}.time[{}] {}", where, d, bad));
    if (oj.contains("memory"))
      if (auto bad = ranges::problem(oj.at("memory"), ranges::kMemoryUnits); !bad.empty())
        return fail(fmt::format("field {}.memory {}", where, bad));
    const double memory = oj.value("memory", 0.0);
    t.op_names.push_back("op" + std::to_string(id));
    t.op_types.push_back("Instance");
    t.op_origin.push_back({t.op_names.back()});
    for (const auto& x : oj.at("time")) t.time_ms.push_back(x.get<double>());
    t.param_bytes.push_back(memory);
    t.flops.push_back(0.0);
  }

  const json& edges = root.at("edges");
  for (size_t i = 0; i < edges.size(); ++i) {
    const json& ej = edges[i];
    const std::string where = fmt::format("edges[{}]", i);
    if (!ej.is_object() || !ej.contains("src") || !ej.contains("dst") || !ej.at("src").is_number_integer() ||
        !ej.at("dst").is_number_integer())
      return fail("missing integer field " + where + ".src/dst");
    const auto src = dense.find(ej.at("src").get<int64_t>());
    const auto dst = dense.find(ej.at("dst").get<int64_t>());
    if (src == dense.end()) return fail(fmt::format("{}.src names unknown operator {}", where, ej.at("src").dump()));
    if (dst == dense.end()) return fail(fmt::format("{}.dst names unknown operator {}", where, ej.at("dst").dump()));
    DataItem item;
    item.name = fmt::format("op{}->op{}", src->first, dst->first);
    item.producer = src->second;
    item.consumers = {dst->second};
    item.bytes = 0;  // the format gives times only
    const json* matrix = ej.contains("time") ? &ej.at("time") : nullptr;
    if (!matrix || !matrix->is_array() || matrix->size() != static_cast<size_t>(k))
      return fail(fmt::format("{}.time must be a {}x{} matrix", where, k, k));
    for (size_t s = 0; s < matrix->size(); ++s) {
      const json& row = (*matrix)[s];
      if (!row.is_array() || row.size() != static_cast<size_t>(k))
        return fail(fmt::format("{}.time must be a {}x{} matrix", where, k, k));
      for (size_t d = 0; d < row.size(); ++d) {
        if (auto bad = ranges::problem(row[d], ranges::kMilliseconds); !bad.empty())
          return fail(fmt::format("field {}.time[{}][{}] {}", where, s, d, bad));
        item.transfer_ms.push_back(row[d].get<double>());
      }
    }
    t.data.push_back(std::move(item));
  }
  if (auto status = t.finalize(); !status) return fail(status.error().message);
  return t;
}

}  // namespace moirai
