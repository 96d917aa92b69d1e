// `moirai coarsen MODEL --fusion BACKEND [--from-runtime [--level L]] [--compare-runtime] [--max-nodes N]
// [--cluster FILE] [--dim NAME=VALUE]... [--json]`: node counts before and after each coarsening step, and the
// largest fused groups; or our rules' groups against the ones ONNX Runtime really fuses.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "commands.h"
#include "moirai/cluster.h"
#include "moirai/coarsen.h"
#include "moirai/import.h"
#include "moirai/pipeline.h"
#include "moirai/runtime_fusion.h"

namespace moirai::cli {
namespace {

struct CoarsenArgs {
  std::string model;
  std::string cluster;
  std::string fusion = "onnxruntime";
  bool from_runtime = false;
  bool compare_runtime = false;
  std::string level;  ///< "" = extended for --from-runtime, the level the rules claim for --compare-runtime
  int max_nodes = 0;
  std::vector<std::string> dims;
  int top = 10;
  bool json = false;
};

std::string members_text(const std::vector<std::string>& names, size_t width = 100) {
  std::string text = fmt::format("{}", fmt::join(names, ", "));
  return text.size() > width ? text.substr(0, width - 3) + "..." : text;
}

/// The fused operators of a coarse graph, largest first, at most `top`.
std::vector<OpId> largest_groups(const Graph& coarse, int top) {
  std::vector<OpId> fused;
  for (OpId op = 0; op < coarse.num_ops(); ++op)
    if (coarse.op(op).origin.size() > 1) fused.push_back(op);
  std::stable_sort(fused.begin(), fused.end(),
                   [&](OpId a, OpId b) { return coarse.op(a).origin.size() > coarse.op(b).origin.size(); });
  if (static_cast<int>(fused.size()) > top) fused.resize(static_cast<size_t>(std::max(top, 0)));
  return fused;
}

void print_runtime(const RuntimeGroups& r) {
  std::cout << fmt::format(
      "ONNX Runtime {} (level {}, CPU): {} nodes -> {} optimised nodes = {} groups + {} added{}\n", r.ort_version,
      r.level, r.original_nodes, r.optimized_nodes, r.groups.size(), r.added.size(),
      r.from_cache           ? fmt::format(" (cached: {})", r.cache_path)
      : r.cache_path.empty() ? ""
                             : fmt::format(" (cached now: {})", r.cache_path));
  if (!r.added.empty()) std::cout << "  added by the runtime: " << members_text(r.added) << "\n";
  if (!r.removed.empty())
    std::cout << fmt::format("  removed by the runtime (joined a neighbour's group): {}\n",
                             members_text(r.removed));
}

nlohmann::json runtime_json(const RuntimeGroups& r) {
  return {{"ort_version", r.ort_version},
          {"level", r.level},
          {"original_nodes", r.original_nodes},
          {"optimized_nodes", r.optimized_nodes},
          {"groups", r.groups.size()},
          {"added", r.added},
          {"removed", r.removed},
          {"cache", r.cache_path},
          {"from_cache", r.from_cache}};
}

void run_coarsen(const CoarsenArgs& args, const Graph& graph, const Cluster& cluster) {
  CoarsenOptions options;
  options.fusion =
      args.from_runtime ? "onnxruntime-runtime:" + (args.level.empty() ? "extended" : args.level) : args.fusion;
  options.max_nodes = args.max_nodes;
  std::optional<RuntimeGroups> runtime;
  if (is_runtime_fusion(options.fusion)) {
    RuntimeFusionOptions ask;
    ask.level = unwrap(runtime_fusion_level(options.fusion));
    runtime = unwrap(runtime_groups(args.model, ask));  // cached: coarsen_model below reads the same file
  }
  const CoarsenResult result = unwrap(coarsen_model(graph, args.model, cluster, options));
  const auto fused = largest_groups(result.graph, args.top);

  if (args.json) {
    nlohmann::json out;
    out["model"] = graph.name;
    out["fusion"] = options.fusion;
    out["steps"] = nlohmann::json::array();
    for (const auto& s : result.steps)
      out["steps"].push_back({{"name", s.name}, {"nodes_before", s.nodes_before}, {"nodes_after", s.nodes_after}});
    out["groups"] = nlohmann::json::array();
    for (OpId op : fused) {
      const Operator& o = result.graph.op(op);
      out["groups"].push_back({{"name", o.name}, {"type", o.type}, {"flops", o.flops}, {"origin", o.origin}});
    }
    if (runtime) out["runtime"] = runtime_json(*runtime);
    std::cout << out.dump(2) << "\n";
    return;
  }
  const std::string describes = fusion_description(options.fusion);
  std::cout << fmt::format("{}: {} operators, fusion '{}'{}\n", args.model, graph.num_ops(), options.fusion,
                           describes.empty() ? "" : " (" + describes + ")");
  if (runtime) print_runtime(*runtime);
  std::cout << fmt::format("\n{:<38} {:>12} {:>12}\n", "step", "nodes before", "nodes after");
  for (const auto& s : result.steps)
    std::cout << fmt::format("{:<38} {:>12} {:>12}\n", s.name, s.nodes_before, s.nodes_after);
  if (fused.empty()) return;
  std::cout << "\nlargest fused groups:\n";
  for (OpId op : fused) {
    const Operator& o = result.graph.op(op);
    std::cout << fmt::format("  {} ({}, {} ops, {:.3g} MFLOPs): {}\n", o.name, o.type, o.origin.size(),
                             o.flops / 1e6, members_text(o.origin));
  }
}

/// Per original node name, the index of the coarse operator that holds it.
std::map<std::string, int> group_index(const Graph& coarse) {
  std::map<std::string, int> index;
  for (OpId op = 0; op < coarse.num_ops(); ++op)
    for (const auto& name : coarse.op(op).origin) index.emplace(name, op);
  return index;
}

/// Groups of `a` that `b` splits: for each, the pieces (b's groups) it falls into, largest group first.
std::vector<std::pair<OpId, std::vector<std::vector<std::string>>>> split_groups(const Graph& a, const Graph& b) {
  const auto in_b = group_index(b);
  std::vector<std::pair<OpId, std::vector<std::vector<std::string>>>> out;
  for (OpId op = 0; op < a.num_ops(); ++op) {
    std::map<int, std::vector<std::string>> pieces;
    for (const auto& name : a.op(op).origin) pieces[in_b.at(name)].push_back(name);
    if (pieces.size() < 2) continue;
    std::vector<std::vector<std::string>> list;
    for (auto& [_, names] : pieces) list.push_back(std::move(names));
    out.emplace_back(op, std::move(list));
  }
  std::stable_sort(out.begin(), out.end(), [&](const auto& x, const auto& y) {
    return a.op(x.first).origin.size() > a.op(y.first).origin.size();
  });
  return out;
}

int identical_groups(const Graph& a, const Graph& b) {
  std::set<std::vector<std::string>> in_b;
  for (const auto& op : b.ops()) {
    auto names = op.origin;
    std::sort(names.begin(), names.end());
    in_b.insert(std::move(names));
  }
  int same = 0;
  for (const auto& op : a.ops()) {
    auto names = op.origin;
    std::sort(names.begin(), names.end());
    same += in_b.count(names) ? 1 : 0;
  }
  return same;
}

void print_splits(const std::string& title, const Graph& whole,
                  const std::vector<std::pair<OpId, std::vector<std::vector<std::string>>>>& splits, int top) {
  std::cout << fmt::format("\n{} ({}):\n", title, splits.size());
  for (size_t k = 0; k < splits.size() && static_cast<int>(k) < top; ++k) {
    const Operator& o = whole.op(splits[k].first);
    std::cout << fmt::format("  {} ({}, {} ops) = {} pieces:\n", o.name, o.type, o.origin.size(),
                             splits[k].second.size());
    for (const auto& piece : splits[k].second) std::cout << "      [" << members_text(piece, 96) << "]\n";
  }
}

void run_compare(const CoarsenArgs& args, const Graph& graph, const Cluster& cluster) {
  if (is_runtime_fusion(args.fusion))
    fail(
        "--compare-runtime compares a rule set (--fusion onnxruntime, onnxruntime-extended, tensorrt, tvm) with "
        "the "
        "runtime");
  CoarsenOptions rules_options;
  rules_options.fusion = args.fusion;
  const CoarsenResult rules = unwrap(coarsen(graph, cluster, rules_options));
  RuntimeFusionOptions ask;
  ask.level = !args.level.empty() ? args.level : args.fusion == "onnxruntime" ? "all" : "extended";
  const RuntimeGroups runtime = unwrap(runtime_groups(args.model, ask));
  CoarsenOptions runtime_options;
  runtime_options.fusion = "onnxruntime-runtime:" + ask.level;
  const CoarsenResult ort = unwrap(coarsen_model(graph, args.model, cluster, runtime_options));
  const auto runtime_splits = split_groups(ort.graph, rules.graph);  // runtime fuses, the rules do not
  const auto rules_splits = split_groups(rules.graph, ort.graph);    // the rules fuse, the runtime does not
  const int same = identical_groups(rules.graph, ort.graph);

  if (args.json) {
    auto splits_json = [&](const Graph& g, const auto& splits) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& [op, pieces] : splits)
        list.push_back(
            {{"name", g.op(op).name}, {"type", g.op(op).type}, {"origin", g.op(op).origin}, {"pieces", pieces}});
      return list;
    };
    nlohmann::json out{{"model", graph.name},
                       {"operators", graph.num_ops()},
                       {"rules", {{"fusion", args.fusion}, {"nodes", rules.graph.num_ops()}}},
                       {"runtime", runtime_json(runtime)},
                       {"runtime_nodes", ort.graph.num_ops()},
                       {"identical_groups", same},
                       {"runtime_fuses_rules_split", splits_json(ort.graph, runtime_splits)},
                       {"rules_fuse_runtime_splits", splits_json(rules.graph, rules_splits)}};
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::cout << fmt::format("{}: {} operators\n", args.model, graph.num_ops());
  print_runtime(runtime);
  std::cout << fmt::format("\n{:<40} {:>8}\n", "coarsening", "nodes");
  std::cout << fmt::format("{:<40} {:>8}\n", "rules '" + args.fusion + "'", rules.graph.num_ops());
  std::cout << fmt::format("{:<40} {:>8}\n", "ONNX Runtime " + ask.level, ort.graph.num_ops());
  std::cout << fmt::format("{:<40} {:>8}\n", "identical groups", same);
  print_splits("ONNX Runtime fuses, the rules split", ort.graph, runtime_splits, args.top);
  print_splits("the rules fuse, ONNX Runtime splits", rules.graph, rules_splits, args.top);
}

void run(const CoarsenArgs& args) {
  if (args.from_runtime && args.fusion != "onnxruntime")
    fail("--from-runtime reads ONNX Runtime's own groups: it goes with --fusion onnxruntime, not '" + args.fusion +
         "'");
  ImportOptions import;
  import.dims = parse_dims(args.dims);
  const Graph graph = unwrap(import_onnx(args.model, import));
  Cluster cluster;  // without one, the budget step uses nominal link and device speeds
  if (!args.cluster.empty()) cluster = unwrap(load_cluster(args.cluster));
  if (args.compare_runtime)
    run_compare(args, graph, cluster);
  else
    run_coarsen(args, graph, cluster);
}

const bool registered = register_command(15, [](CLI::App& app) {
  auto args = std::make_shared<CoarsenArgs>();
  auto* cmd =
      app.add_subcommand("coarsen", "Contract what an inference backend fuses; print node counts per step");
  cmd->footer(
      "Rule sets (--fusion) say which backend version and level they describe (docs/fusion.md). With\n"
      "--from-runtime the groups come from ONNX Runtime itself: tools/ort_optimize.mjs (Node, onnxruntime-node)\n"
      "loads the model (weight-stripped models get seeded random weights first, as 'moirai materialize') at\n"
      "--level on the CPU execution provider and writes its optimised graph; every runtime node is mapped back\n"
      "to the original nodes it replaced by the tensors at its boundary. Nodes the runtime adds (ReorderInput,\n"
      "ReorderOutput of the NCHWc layout at level all) are listed and replace nothing. The groups are cached in\n"
      "MODEL.ort-LEVEL.json beside the model (else $XDG_CACHE_HOME/moirai or ~/.cache/moirai), keyed by the\n"
      "model's hash, the ONNX Runtime version and the level. 'place', 'bench' and the other commands take\n"
      "--fusion onnxruntime-runtime (level extended) or onnxruntime-runtime:LEVEL to place on these groups.\n"
      "Examples:\n"
      "  moirai coarsen models/gpt2_small.onnx --from-runtime --level extended\n"
      "  moirai coarsen models/resnet50.onnx --compare-runtime\n"
      "  moirai coarsen models/bert_base.onnx --fusion onnxruntime-extended --compare-runtime");
  cmd->add_option("MODEL", args->model, "ONNX model")->required();
  cmd->add_option("--fusion", args->fusion,
                  "Fusion rules: onnxruntime (ORT level all), onnxruntime-extended, tensorrt, tvm, none; or "
                  "onnxruntime-runtime[:LEVEL]")
      ->capture_default_str();
  cmd->add_flag("--from-runtime", args->from_runtime, "Use the groups ONNX Runtime really fuses (needs Node)");
  cmd->add_option(
         "--level", args->level,
         "ONNX Runtime optimisation level: basic, extended, all (default: extended for --from-runtime; for "
         "--compare-runtime the level the rules describe, all for onnxruntime)")
      ->check(CLI::IsMember(runtime_levels()));
  cmd->add_flag("--compare-runtime", args->compare_runtime,
                "Print the rules' groups against ONNX Runtime's, with the groups where they differ");
  cmd->add_option("--max-nodes", args->max_nodes,
                  "After fusion, merge further until at most N nodes remain (0: off)")
      ->check(within(0, 1e7, true));
  cmd->add_option("--cluster,-c", args->cluster, "Cluster file whose link and device speeds guide --max-nodes");
  cmd->add_option("--dim", args->dims, "Fix a dynamic dimension, NAME=VALUE (repeatable)");
  cmd->add_option("--top", args->top, "How many fused groups (or differences) to list")->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable output: {\"steps\": [...], \"groups\": [...]}");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
