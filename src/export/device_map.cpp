// Device maps for accelerate and llama.cpp (moirai/export.h DeviceMap). Module names follow Hugging Face's
// LLaMA-family classes (model.embed_tokens, model.layers.N, model.norm, lm_head); accelerate accepts any prefix
// of a parameter name as a key, so these place every weight of a module.
#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/cluster.h"
#include "moirai/export.h"

namespace moirai {

Expected<DeviceMap> device_map(const PlanFile& plan) {
  auto cluster = load_cluster(plan.inputs.cluster);
  if (!cluster) return Error{plan.path + ": the device map needs the plan's cluster file for device kinds: " + cluster.error().message};
  DeviceMap map;
  std::map<std::string, std::string> runtime;  // plan device -> runtime device
  std::vector<std::string> gpus;               // plan devices of kind gpu, cuda order
  bool have_cpu = false;
  for (const Device& d : cluster->devices) {
    if (d.kind == "gpu") {
      runtime[d.name] = fmt::format("cuda:{}", gpus.size());
      gpus.push_back(d.name);
    } else if (d.kind == "cpu" && !have_cpu) {
      runtime[d.name] = "cpu";
      have_cpu = true;
    } else {
      runtime[d.name] = d.name;  // a second CPU or another kind: no runtime name of its own
    }
    map.devices[runtime[d.name]] = d.name;
  }
  // Module of each operator: its layer (the largest index among its nodes, as the layer placers count), else the
  // embedding when it starts before every layered operator, else the final norm or the LM head.
  double first_layered = -1;
  std::vector<int> layer(plan.ops.size(), -1);
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    for (const auto& o : plan.ops[i].origin) layer[i] = std::max(layer[i], layer_index(o));
    if (layer[i] >= 0 && (first_layered < 0 || plan.ops[i].start_ms < first_layered)) first_layered = plan.ops[i].start_ms;
  }
  if (first_layered < 0) return Error{plan.path + ": no operator carries a layer index (\"layers.N\"), so the plan has no device map"};
  std::map<int, std::map<std::string, int>> count;  // module key (-2 embedding, layer, 1e9 norm, 1e9+1 head) -> device -> ops
  constexpr int kEmbed = -2, kNorm = 1000000000, kHead = kNorm + 1;
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    int key = layer[i];
    if (key < 0) {
      bool norm = false;
      for (const auto& o : plan.ops[i].origin) norm = norm || o.find("norm") != std::string::npos;
      key = plan.ops[i].start_ms < first_layered ? kEmbed : norm ? kNorm : kHead;
    }
    ++count[key][plan.ops[i].device];
  }
  std::vector<std::string> slots;  // runtime device of each llama.cpp slot: layers in order, then the output layer
  for (const auto& [key, per_device] : count) {
    const std::string name = key == kEmbed ? "model.embed_tokens" : key == kNorm ? "model.norm" : key == kHead ? "lm_head"
                                                                                   : fmt::format("model.layers.{}", key);
    const auto most = std::max_element(per_device.begin(), per_device.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; });
    map.modules.emplace_back(name, runtime.at(most->first));
    if (per_device.size() > 1) map.split_layers.push_back(name);
    if (key >= 0 && key != kNorm) slots.push_back(runtime.at(most->first));
  }
  map.tensor_split.assign(gpus.size(), 0);
  int last_gpu = -1;
  for (const std::string& s : slots) {
    const auto g = std::find_if(gpus.begin(), gpus.end(), [&](const std::string& n) { return runtime.at(n) == s; });
    if (g == gpus.end()) {  // a CPU slot: llama.cpp runs these first
      if (last_gpu >= 0) map.tensor_split_exact = false;
      continue;
    }
    const int idx = static_cast<int>(g - gpus.begin());
    if (idx < last_gpu) map.tensor_split_exact = false;
    last_gpu = idx;
    ++map.tensor_split[static_cast<size_t>(idx)];
    ++map.n_gpu_layers;
  }
  return map;
}

std::string device_map_json(const DeviceMap& map) {
  nlohmann::ordered_json j;
  j["device_map"] = nlohmann::ordered_json::object();
  for (const auto& [module, device] : map.modules) j["device_map"][module] = device;
  j["devices"] = map.devices;
  j["tensor_split"] = map.tensor_split;
  j["n_gpu_layers"] = map.n_gpu_layers;
  j["tensor_split_exact"] = map.tensor_split_exact;
  std::string split;
  for (int s : map.tensor_split) split += (split.empty() ? "" : ",") + std::to_string(s);
  j["llama_cpp_args"] = fmt::format("--split-mode layer --n-gpu-layers {} --tensor-split {}", map.n_gpu_layers, split);
  j["split_layers"] = map.split_layers;
  return j.dump(2) + "\n";
}

Expected<DeviceMap> parse_device_map(const std::string& text, const std::string& source) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Error{source + ": not JSON: " + e.what()};
  }
  DeviceMap map;
  if (!j.is_object() || !j.contains("device_map") || !j["device_map"].is_object())
    return Error{source + ": missing object 'device_map'"};
  if (!j.contains("devices") || !j["devices"].is_object()) return Error{source + ": missing object 'devices'"};
  for (const auto& [device, name] : j["devices"].items()) {
    if (!name.is_string()) return Error{source + ": devices." + device + " must be a string"};
    map.devices[device] = name.get<std::string>();
  }
  for (const auto& [module, device] : j["device_map"].items()) {
    if (!device.is_string() || !map.devices.count(device.get<std::string>()))
      return Error{source + ": device_map." + module + " must name one of the devices"};
    map.modules.emplace_back(module, device.get<std::string>());
  }
  return map;
}

}  // namespace moirai
