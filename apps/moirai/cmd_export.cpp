// `moirai export PLAN.json MODEL.onnx --out DIR`: one ONNX sub-model per device (and stage) plus manifest.json;
// --verify then runs them with ONNX Runtime against the original model.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "commands.h"
#include "moirai/export.h"
#include "moirai/file_io.h"

namespace moirai::cli {
namespace {

struct ExportArgs {
  std::string plan, model, out, device_map;
  bool no_check = false;
  bool verify = false;
};

void write_device_map(const PlanFile& plan, const std::string& path) {
  const DeviceMap map = unwrap(device_map(plan));
  if (auto status = write_file_atomic(path, device_map_json(map)); !status) fail(status.error());
  std::cout << fmt::format("{}: accelerate device_map of {} modules; llama.cpp --split-mode layer --n-gpu-layers {} "
                           "--tensor-split {}{}\n",
                           path, map.modules.size(), map.n_gpu_layers, fmt::join(map.tensor_split, ","),
                           map.tensor_split_exact ? "" : " (counts per GPU only: the plan orders its ranges differently)");
  if (!map.split_layers.empty())
    std::cout << fmt::format("note: the plan spreads {} modules over several devices; each goes where most of its "
                             "operators run\n", map.split_layers.size());
}

void run(const ExportArgs& args) {
  const PlanFile plan = unwrap(read_plan(args.plan));
  if (!args.device_map.empty()) write_device_map(plan, args.device_map);
  if (args.model.empty() && args.out.empty() && !args.device_map.empty()) return;
  if (args.model.empty() || args.out.empty()) fail("export: sub-models need MODEL and --out DIR");
  ExportRequest request = unwrap(export_request(plan, args.model));
  request.check = !args.no_check;
  const Manifest manifest = unwrap(export_submodels(request, args.out));
  std::cout << fmt::format("{}: {} sub-models for {} operators{}\n", manifest.path, manifest.submodels.size(),
                           plan.ops.size(), request.check ? ", each passes the ONNX checker" : "");
  for (const auto& s : manifest.submodels)
    std::cout << fmt::format("  {:<24} {:<16} {:>4} ops, {:>3} inputs, {:>3} outputs\n", s.file, s.device,
                             s.ops.size(), s.inputs.size(), s.outputs.size());
  if (!manifest.weights)
    std::cout << "note: the model's weights are absent (weight-stripped); the sub-models reference weights.absent\n";
  if (args.verify) {
    const RuntimeResult r = unwrap(run_manifest(manifest.path, RuntimeOptions{}));
    std::cout << fmt::format("ONNX Runtime: {}, max |diff| {:.3g} (max |reference| {:.3g})\n",
                             r.match ? "outputs match the original" : "outputs DIFFER", r.max_abs_diff,
                             r.max_reference);
    if (!r.match) fail(fmt::format("{}: the split run does not match the original model", manifest.path));
  }
}

const bool registered = register_command(50, [](CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "Write one ONNX sub-model per device (and stage) of a plan, plus manifest.json");
  cmd->footer(
      "Example:\n"
      "  moirai place models/squeezenet1_1.onnx -c clusters/edge-4.json -m heft --out plan/\n"
      "  moirai export plan/plan.json models/squeezenet1_1.weights.onnx --out split/ --verify\n"
      "A device whose operators are not contiguous in the data flow gets several stages; manifest.json lists\n"
      "the run order and, per sub-model, which tensors it receives from and sends to which sub-models.\n"
      "  moirai export plan/plan.json --device-map device_map.json\n"
      "writes a layer-wise LLM plan as accelerate's device_map (module -> cuda:N/cpu, GPUs numbered in\n"
      "cluster-file order) and llama.cpp's --tensor-split/--n-gpu-layers.");
  cmd->add_option("plan", args->plan, "plan.json written by 'moirai place'")->required();
  cmd->add_option("model", args->model, "The ONNX model the plan was made for (with weights to run it)");
  cmd->add_option("--out,-o", args->out, "Output directory (replaced as a whole; nothing is left on an error)")->check(non_empty());
  cmd->add_option("--device-map", args->device_map,
                  "Also (or only) write the plan as an accelerate device_map and llama.cpp tensor split (JSON FILE)")
      ->check(non_empty());
  cmd->add_flag("--no-check", args->no_check, "Skip the ONNX checker");
  cmd->add_flag("--verify", args->verify, "Run the sub-models with ONNX Runtime (node) and compare with the model");
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
