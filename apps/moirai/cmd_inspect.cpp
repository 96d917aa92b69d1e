// `moirai inspect MODEL.onnx [--json] [--dim NAME=VALUE]... [--dot FILE]` and `moirai inspect --cluster FILE`:
// what is in a model (operators, parameters, FLOPs, shapes, the heaviest operators) or in a cluster file.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <utility>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "moirai/file_io.h"
#include "moirai/cluster.h"
#include "moirai/import.h"

namespace moirai::cli {
namespace {

struct InspectArgs {
  std::string model;
  std::string cluster;
  std::vector<std::string> dims;
  int64_t context = 0;  ///< --context N: the `context` dim of a decode model
  std::string dot;
  bool json = false;
};

std::string count_text(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.1f} M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.1f} K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

std::string bytes_text(double b) {
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.1f} KiB", b / 1024.0);
  return fmt::format("{:.0f} B", b);
}

std::string flops_text(double f) {
  if (f >= 1e12) return fmt::format("{:.2f} TFLOPs", f / 1e12);
  if (f >= 1e9) return fmt::format("{:.2f} GFLOPs", f / 1e9);
  if (f >= 1e6) return fmt::format("{:.2f} MFLOPs", f / 1e6);
  if (f >= 1e3) return fmt::format("{:.2f} KFLOPs", f / 1e3);
  return fmt::format("{:.0f} FLOPs", f);
}

std::string shape_text(const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, "x")); }

void inspect_model(const InspectArgs& args) {
  ImportOptions options;
  options.dims = parse_dims(args.dims);
  if (args.context > 0) options.dims["context"] = args.context;
  const Graph g = unwrap(import_onnx(args.model, options));
  if (!args.dot.empty()) {
    if (auto status = write_file_atomic(args.dot, to_dot(g)); !status) fail(status.error());
  }
  struct TypeRow { int count = 0; double flops = 0; };
  std::map<std::string, TypeRow> by_type;
  std::set<std::string> unknown;
  for (const Operator& op : g.ops()) {
    by_type[op.type].count++;
    by_type[op.type].flops += op.flops;
    if (!op.known) unknown.insert(op.type);
  }
  double params = 0, activation_bytes = 0;
  int n_inputs = 0, n_params = 0, n_acts = 0;
  for (const Tensor& t : g.tensors()) {
    if (t.kind == TensorKind::Parameter) params += static_cast<double>(t.elements()), ++n_params;
    if (t.kind == TensorKind::Activation) activation_bytes += static_cast<double>(t.bytes()), ++n_acts;
    if (t.kind == TensorKind::Input) ++n_inputs;
  }
  std::vector<OpId> largest(static_cast<size_t>(g.num_ops()));
  for (OpId i = 0; i < g.num_ops(); ++i) largest[static_cast<size_t>(i)] = i;
  std::stable_sort(largest.begin(), largest.end(), [&](OpId a, OpId b) { return g.op(a).flops > g.op(b).flops; });
  largest.resize(std::min<size_t>(largest.size(), 10));
  // KV caches (decode models): bytes per layer (key + value) and in all.
  const std::vector<KvCache> caches = find_kv_caches(g);
  std::map<int, double> cache_per_layer;
  double cache_total = 0;
  for (const KvCache& c : caches) {
    cache_per_layer[c.layer] += static_cast<double>(c.bytes);
    cache_total += static_cast<double>(c.bytes);
  }
  std::vector<const Tensor*> inputs, outputs;
  for (const Tensor& t : g.tensors()) {
    if (t.kind == TensorKind::Input) inputs.push_back(&t);
    if (t.graph_output) outputs.push_back(&t);
  }

  if (args.json) {
    nlohmann::ordered_json j;
    j["model"] = args.model;
    j["graph"] = g.name;
    j["operator_count"] = g.num_ops();
    j["operators"] = nlohmann::ordered_json::object();  // count by operator type
    for (const auto& [type, row] : by_type) j["operators"][type] = row.count;
    j["tensor_count"] = g.num_tensors();
    j["parameter_count"] = params;
    j["parameter_bytes"] = g.parameter_bytes();
    j["flops"] = g.total_flops();
    j["activation_bytes"] = activation_bytes;
    auto values = [](const std::vector<const Tensor*>& list) {
      auto arr = nlohmann::ordered_json::array();
      for (const Tensor* t : list) arr.push_back({{"name", t->name}, {"shape", t->shape}, {"dtype", dtype_name(t->dtype)}});
      return arr;
    };
    j["inputs"] = values(inputs);
    j["outputs"] = values(outputs);
    j["largest_operators"] = nlohmann::ordered_json::array();
    for (OpId id : largest) {
      const Operator& op = g.op(id);
      j["largest_operators"].push_back({{"name", op.name}, {"type", op.type}, {"flops", op.flops},
                                        {"param_bytes", op.param_bytes}, {"bytes_read", op.bytes_read},
                                        {"bytes_written", op.bytes_written}});
    }
    j["unknown_operator_types"] = unknown;
    if (!caches.empty()) {
      j["kv_cache_bytes"] = cache_total;
      j["kv_cache_per_layer"] = nlohmann::ordered_json::array();
      for (const auto& [layer, bytes] : cache_per_layer) j["kv_cache_per_layer"].push_back({{"layer", layer}, {"bytes", bytes}});
    }
    std::cout << j.dump(2) << "\n";
    return;
  }

  const double total = std::max(1.0, g.total_flops());
  std::cout << fmt::format("model        {} (graph '{}')\n", args.model, g.name);
  std::cout << fmt::format("operators    {}\n", g.num_ops());
  std::cout << fmt::format("tensors      {} ({} inputs, {} parameters, {} activations)\n", g.num_tensors(), n_inputs,
                           n_params, n_acts);
  std::cout << fmt::format("parameters   {} params ({})\n", count_text(params),
                           bytes_text(static_cast<double>(g.parameter_bytes())));
  std::cout << fmt::format("compute      {}\n", flops_text(g.total_flops()));
  std::cout << fmt::format("activations  {} (all activation tensors)\n", bytes_text(activation_bytes));
  if (!caches.empty()) {
    // Layers usually hold equal caches: list runs of equal sizes, not one line per layer.
    std::cout << fmt::format("KV cache     {} in {} tensors, resident with the attention that appends to them\n",
                             bytes_text(cache_total), caches.size());
    for (auto it = cache_per_layer.begin(); it != cache_per_layer.end();) {
      auto end = it;
      while (end != cache_per_layer.end() && end->second == it->second) ++end;
      const int last = std::prev(end)->first;
      std::cout << fmt::format("  {:<18} {} per layer\n",
                               it->first < 0 ? std::string("(no layer index)")
                               : last == it->first ? fmt::format("layer {}", it->first)
                                                   : fmt::format("layers {}-{}", it->first, last),
                               bytes_text(it->second));
      it = end;
    }
  }
  std::cout << "\n";
  size_t w = 10;
  for (const Tensor* t : inputs) w = std::max(w, t->name.size());
  for (const Tensor* t : outputs) w = std::max(w, t->name.size());
  for (const auto& [label, list] : {std::pair{"inputs", &inputs}, std::pair{"outputs", &outputs}}) {
    std::cout << label << ":\n";
    for (const Tensor* t : *list)
      std::cout << fmt::format("  {:<{}}  {:<20} {}\n", t->name, w, shape_text(t->shape), dtype_name(t->dtype));
  }
  std::vector<std::pair<std::string, TypeRow>> types(by_type.begin(), by_type.end());
  std::stable_sort(types.begin(), types.end(), [](auto& a, auto& b) { return a.second.count > b.second.count; });
  std::cout << fmt::format("\n{:<24} {:>6} {:>14} {:>7}\n", "operator type", "count", "FLOPs", "share");
  for (const auto& [type, row] : types)
    std::cout << fmt::format("{:<24} {:>6} {:>14} {:>6.1f}%\n", type, row.count, flops_text(row.flops),
                             100.0 * row.flops / total);
  size_t nw = 4;
  for (OpId id : largest) nw = std::max(nw, std::min<size_t>(g.op(id).name.size(), 48));
  std::cout << fmt::format("\nlargest operators by FLOPs:\n  {:<{}}  {:<12} {:>14} {:>10} {:>11}\n", "name", nw, "type",
                           "FLOPs", "params", "output");
  for (OpId id : largest) {
    const Operator& op = g.op(id);
    std::string name = op.name.size() > 48 ? "..." + op.name.substr(op.name.size() - 45) : op.name;
    std::cout << fmt::format("  {:<{}}  {:<12} {:>14} {:>10} {:>11}\n", name, nw, op.type, flops_text(op.flops),
                             bytes_text(static_cast<double>(op.param_bytes)),
                             op.outputs.empty() ? "" : bytes_text(static_cast<double>(g.tensor(op.outputs[0]).bytes())));
  }
  if (!unknown.empty())
    std::cout << fmt::format("\nunknown operator types (FLOPs = bytes moved): {}\n", fmt::join(unknown, ", "));
}

void inspect_cluster(const InspectArgs& args) {
  const Cluster c = unwrap(load_cluster(args.cluster));
  if (args.json) {
    nlohmann::ordered_json j;
    j["cluster"] = c.name;
    j["devices"] = nlohmann::ordered_json::array();
    for (const Device& d : c.devices)
      j["devices"].push_back({{"name", d.name}, {"kind", d.kind}, {"peak_gflops", d.peak_gflops},
                              {"peak_gflops_fp16", d.peak_gflops_fp16}, {"mem_bandwidth_gbps", d.mem_bandwidth_gbps},
                              {"memory_bytes", d.memory_bytes}, {"reserved_bytes", d.reserved_bytes},
                              {"launch_us", d.launch_us}});
    j["links"] = nlohmann::ordered_json::array();
    for (DeviceId s = 0; s < c.size(); ++s)
      for (DeviceId d = 0; d < c.size(); ++d)
        if (s != d)
          j["links"].push_back({{"src", c.devices[static_cast<size_t>(s)].name},
                                {"dst", c.devices[static_cast<size_t>(d)].name},
                                {"bandwidth_gbps", c.link(s, d).bandwidth_gbps}, {"latency_us", c.link(s, d).latency_us}});
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("cluster {} ({} devices)\n", c.name, c.size());
  if (!c.description.empty()) std::cout << c.description << "\n";
  size_t w = 6;
  for (const Device& d : c.devices) w = std::max(w, d.name.size());
  std::cout << fmt::format("\n{:<{}}  {:<8} {:>12} {:>12} {:>10} {:>10} {:>10} {:>9}\n", "device", w, "kind",
                           "FP32 GFLOP/s", "FP16 GFLOP/s", "mem GB/s", "memory", "reserved", "launch us");
  for (const Device& d : c.devices)
    std::cout << fmt::format("{:<{}}  {:<8} {:>12.0f} {:>12.0f} {:>10.0f} {:>10} {:>10} {:>9.1f}\n", d.name, w, d.kind,
                             d.peak_gflops, d.peak_gflops_fp16, d.mem_bandwidth_gbps, bytes_text(d.memory_bytes),
                             bytes_text(d.reserved_bytes), d.launch_us);
  std::cout << "\nlinks (row = source, column = destination): bandwidth GB/s / latency us\n";
  const size_t cw = std::max<size_t>(w, 13);
  std::cout << fmt::format("{:<{}}", "", w);
  for (const Device& d : c.devices) std::cout << fmt::format("  {:>{}}", d.name, cw);
  std::cout << "\n";
  for (DeviceId s = 0; s < c.size(); ++s) {
    std::cout << fmt::format("{:<{}}", c.devices[static_cast<size_t>(s)].name, w);
    for (DeviceId d = 0; d < c.size(); ++d) {
      const std::string cell =
          s == d ? "-" : fmt::format("{:g} / {:g}", c.link(s, d).bandwidth_gbps, c.link(s, d).latency_us);
      std::cout << fmt::format("  {:>{}}", cell, cw);
    }
    std::cout << "\n";
  }
}

const bool registered = register_command(10, [](CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Show what is in a model (operators, FLOPs, parameters) or a cluster file");
  cmd->add_option("model", args->model, "ONNX model file (a cluster JSON file here is inspected as with --cluster)");
  cmd->add_option("--cluster", args->cluster, "cluster JSON file: print its devices and link matrix");
  cmd->add_option("--dim", args->dims, "fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--context", args->context, "decode models: tokens in the KV cache (same as --dim context=N)")
      ->check(CLI::Range(int64_t{1}, int64_t{10000000}));
  cmd->add_option("--dot", args->dot, "also write the operator graph in Graphviz format to FILE");
  cmd->add_flag("--json", args->json, "write JSON instead of tables (\"operators\" is a count per type)");
  cmd->callback([args] {
    if (args->model.empty() && args->cluster.empty()) fail("inspect: give a MODEL.onnx or --cluster FILE");
    // A JSON file in the model's place: a cluster file (devices, no ops) is inspected as one, and so is broken
    // JSON (the cluster loader says where it breaks); anything else (a profiled instance) is named.
    if (args->model.size() > 5 && args->model.compare(args->model.size() - 5, 5, ".json") == 0) {
      if (!args->cluster.empty()) fail("inspect: " + args->model + " is JSON, not an ONNX model");
      std::ifstream in(args->model);
      const auto root = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
      if (!root.is_discarded() && (!root.is_object() || !root.contains("devices") || root.contains("ops")))
        fail("inspect: " + args->model + " is JSON, not an ONNX model (a profiled instance is placed directly: "
             "moirai place " + args->model + " --method all)");
      args->cluster = std::exchange(args->model, "");
    }
    if (!args->model.empty()) inspect_model(*args);
    if (!args->cluster.empty()) inspect_cluster(*args);
  });
});

}  // namespace
}  // namespace moirai::cli
