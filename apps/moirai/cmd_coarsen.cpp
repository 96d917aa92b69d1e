// `moirai coarsen MODEL --fusion BACKEND [--max-nodes N] [--cluster FILE] [--dim NAME=VALUE]... [--json]`:
// node counts before and after each coarsening step, and the largest fused groups.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/import.h"
#include "moirai/pipeline.h"

namespace moirai::cli {
namespace {

struct CoarsenArgs {
  std::string model;
  std::string cluster;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::vector<std::string> dims;
  int top = 10;
  bool json = false;
};

void run_coarsen(const CoarsenArgs& args) {
  ImportOptions import;
  import.dims = parse_dims(args.dims);
  const Graph graph = unwrap(import_onnx(args.model, import));
  Cluster cluster;  // without one, the budget step uses nominal link and device speeds
  if (!args.cluster.empty()) cluster = unwrap(load_cluster(args.cluster));
  CoarsenOptions options;
  options.fusion = args.fusion;
  options.max_nodes = args.max_nodes;
  const CoarsenResult result = unwrap(coarsen(graph, cluster, options));

  std::vector<OpId> fused;
  for (OpId op = 0; op < result.graph.num_ops(); ++op)
    if (result.graph.op(op).origin.size() > 1) fused.push_back(op);
  std::stable_sort(fused.begin(), fused.end(), [&](OpId a, OpId b) {
    return result.graph.op(a).origin.size() > result.graph.op(b).origin.size();
  });
  if (static_cast<int>(fused.size()) > args.top) fused.resize(static_cast<size_t>(std::max(args.top, 0)));

  if (args.json) {
    nlohmann::json out;
    out["model"] = graph.name;
    out["steps"] = nlohmann::json::array();
    for (const auto& s : result.steps)
      out["steps"].push_back({{"name", s.name}, {"nodes_before", s.nodes_before}, {"nodes_after", s.nodes_after}});
    out["groups"] = nlohmann::json::array();
    for (OpId op : fused) {
      const Operator& o = result.graph.op(op);
      out["groups"].push_back({{"name", o.name}, {"type", o.type}, {"flops", o.flops}, {"origin", o.origin}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{}: {} operators, fusion rules '{}'\n\n", args.model, graph.num_ops(), args.fusion);
  std::cout << fmt::format("{:<24} {:>12} {:>12}\n", "step", "nodes before", "nodes after");
  for (const auto& s : result.steps)
    std::cout << fmt::format("{:<24} {:>12} {:>12}\n", s.name, s.nodes_before, s.nodes_after);
  if (fused.empty()) return;
  std::cout << "\nlargest fused groups:\n";
  for (OpId op : fused) {
    const Operator& o = result.graph.op(op);
    std::string members = fmt::format("{}", fmt::join(o.origin, ", "));
    if (members.size() > 100) members = members.substr(0, 97) + "...";
    std::cout << fmt::format("  {} ({}, {} ops, {:.3g} MFLOPs): {}\n", o.name, o.type, o.origin.size(), o.flops / 1e6,
                             members);
  }
}

const bool registered = register_command(15, [](CLI::App& app) {
  auto args = std::make_shared<CoarsenArgs>();
  auto* cmd = app.add_subcommand("coarsen", "Contract what an inference backend fuses; print node counts per step");
  cmd->add_option("MODEL", args->model, "ONNX model")->required();
  cmd->add_option("--fusion", args->fusion, "Fusion rules: onnxruntime, tensorrt, tvm or none")->capture_default_str();
  cmd->add_option("--max-nodes", args->max_nodes, "After fusion, merge further until at most N nodes remain (0: off)")
      ->check(within(0, 1e7, true));
  cmd->add_option("--cluster,-c", args->cluster, "Cluster file whose link and device speeds guide --max-nodes");
  cmd->add_option("--dim", args->dims, "Fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--top", args->top, "How many fused groups to list")->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable output: {\"steps\": [...], \"groups\": [...]}");
  cmd->callback([args] { run_coarsen(*args); });
});

}  // namespace
}  // namespace moirai::cli
