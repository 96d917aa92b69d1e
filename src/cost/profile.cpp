// Measured profiles: {"ops": {OP_NAME: {DEVICE_NAME: ms}}} overrides analytic operator times. Version 2 (written
// by `moirai profile --threads N`) adds the thread count and a per-device stage overhead; its operator times are
// net of that overhead, so the overhead is applied with them. Every entry is checked before any is applied, so a
// bad profile leaves the table unchanged.
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/ranges.h"
#include "json_file.h"
#include "moirai/cost.h"

namespace moirai {

Status apply_profile(CostTable& table, const std::string& path) {
  using nlohmann::json;
  MOIRAI_ASSIGN_OR_RETURN(auto file, cost::read_json_file(path, "the profile file"));
  const json& root = file;
  if (!root.is_object() || !root.contains("ops")) return Error{path + ": missing field ops"};
  if (!root.at("ops").is_object()) return Error{path + ": field ops must be an object"};
  int version = 1;
  if (root.contains("version")) {
    const json& v = root.at("version");
    if (!v.is_number_integer() || (v.get<int>() != 1 && v.get<int>() != 2))
      return Error{fmt::format("{}: field version must be 1 or 2, got {}", path, v.dump())};
    version = v.get<int>();
  }
  if (version == 2) {
    for (const char* field : {"threads", "stage_overhead_ms"})
      if (!root.contains(field)) return Error{fmt::format("{}: missing field {} (a version 2 profile)", path, field)};
    if (auto bad = ranges::problem(root.at("threads"), ranges::kThreads);
        !bad.empty() || !root.at("threads").is_number_integer())
      return Error{fmt::format("{}: field threads {}", path, bad.empty() ? "must be an integer" : bad)};
    if (!root.at("stage_overhead_ms").is_object())
      return Error{path + ": field stage_overhead_ms must be an object of device: ms"};
  }

  std::map<std::string, OpId, std::less<>> op_index;
  for (OpId op = 0; op < table.num_ops(); ++op) op_index.emplace(table.op_names[static_cast<size_t>(op)], op);
  std::map<std::string, DeviceId, std::less<>> dev_index;
  for (DeviceId d = 0; d < table.num_devices(); ++d) dev_index.emplace(table.device_names[static_cast<size_t>(d)], d);
  std::string device_list;
  for (const auto& name : table.device_names) device_list += (device_list.empty() ? "" : ", ") + name;

  std::vector<std::tuple<OpId, DeviceId, double>> updates;
  for (const auto& [op_name, per_device] : root.at("ops").items()) {
    const auto op = op_index.find(op_name);
    if (op == op_index.end())
      return Error{fmt::format("{}: unknown operator '{}' (not in {}, which has {} operators)", path, op_name,
                               table.name, table.num_ops())};
    if (!per_device.is_object()) return Error{fmt::format("{}: ops.{} must be an object of device: ms", path, op_name)};
    for (const auto& [dev_name, ms] : per_device.items()) {
      const auto dev = dev_index.find(dev_name);
      if (dev == dev_index.end())
        return Error{fmt::format("{}: ops.{}: unknown device '{}' (devices: {})", path, op_name, dev_name, device_list)};
      if (auto bad = ranges::problem(ms, ranges::kMilliseconds); !bad.empty())
        return Error{fmt::format("{}: field ops.{}.{} {}", path, op_name, dev_name, bad)};
      updates.emplace_back(op->second, dev->second, ms.get<double>());
    }
  }
  std::vector<std::pair<DeviceId, double>> overheads;
  if (version == 2)
    for (const auto& [dev_name, ms] : root.at("stage_overhead_ms").items()) {
      const auto dev = dev_index.find(dev_name);
      if (dev == dev_index.end())
        return Error{fmt::format("{}: stage_overhead_ms: unknown device '{}' (devices: {})", path, dev_name, device_list)};
      if (auto bad = ranges::problem(ms, ranges::kStageOverheadMs); !bad.empty())
        return Error{fmt::format("{}: field stage_overhead_ms.{} {}", path, dev_name, bad)};
      overheads.emplace_back(dev->second, ms.get<double>());
    }
  const int k = table.num_devices();
  for (const auto& [op, d, ms] : updates) table.time_ms[static_cast<size_t>(op * k + d)] = ms;
  if (table.stage_overhead_ms.size() != static_cast<size_t>(k)) table.stage_overhead_ms.assign(static_cast<size_t>(k), 0.0);
  for (const auto& [d, ms] : overheads) table.stage_overhead_ms[static_cast<size_t>(d)] = ms;
  return Ok{};
}

}  // namespace moirai
