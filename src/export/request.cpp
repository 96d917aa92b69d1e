// From a plan file to an export request: checks that the plan was made for this model (by name) and this
// cluster (when the plan's cluster file is at hand), and that every operator sits on one of the plan's devices.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>

#include "moirai/export.h"

namespace moirai {
namespace {
namespace fs = std::filesystem;

/// "gpt_tiny.weights" and "gpt_tiny" name the same model (with and without weights).
std::string base_name(const std::string& name) {
  const std::string suffix = ".weights";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size());
  return name;
}

}  // namespace

Expected<ExportRequest> export_request(const PlanFile& plan, const std::string& model_path) {
  const std::string file_model = fs::path(model_path).stem().string();
  if (!plan.model.empty() && base_name(plan.model) != base_name(file_model))
    return Error{fmt::format("{}: the plan is for model '{}', not for {} ('{}')", plan.path, plan.model, model_path,
                             file_model)};
  if (!plan.inputs.cluster.empty() && fs::exists(plan.inputs.cluster)) {
    auto cluster = load_cluster(plan.inputs.cluster);
    if (cluster && !plan.cluster.empty() && cluster->name != plan.cluster)
      return Error{fmt::format("{}: the plan is for cluster '{}', but its cluster file {} describes '{}'", plan.path,
                               plan.cluster, plan.inputs.cluster, cluster->name)};
  }
  ExportRequest req;
  req.model_path = model_path;
  req.source = plan.path;
  req.model_name = plan.model;
  req.dims = plan.inputs.dims;
  req.fusion = plan.inputs.fusion;
  req.max_nodes = plan.inputs.max_nodes;
  for (const auto& op : plan.ops) {
    if (!plan.devices.empty() && std::find(plan.devices.begin(), plan.devices.end(), op.device) == plan.devices.end())
      return Error{fmt::format("{}: operator '{}' is on device '{}', which is not one of the plan's devices", plan.path,
                               op.name, op.device)};
    req.ops.push_back(ExportOp{op.name, op.device, op.origin, op.start_ms});
  }
  if (req.ops.empty()) return Error{plan.path + ": the plan has no operators"};
  return req;
}

}  // namespace moirai
