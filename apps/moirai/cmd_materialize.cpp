// `moirai materialize MODEL.onnx --out FILE [--seed S]`: a weight-stripped model with seeded random weights,
// so ONNX Runtime can load and run it.
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "moirai/export.h"

namespace moirai::cli {
namespace {

struct MaterializeArgs {
  std::string model, out;
  uint64_t seed = 1;
};

void run(const MaterializeArgs& args) {
  const MaterializeResult r = unwrap(materialize_weights(args.model, args.out, args.seed));
  std::cout << fmt::format("{}: {} initializers given random values (seed {}), {:.1f} MB of weights\n", args.out,
                           r.randomized, args.seed, static_cast<double>(r.bytes) / 1e6);
}

const bool registered = register_command(52, [](CLI::App& app) {
  auto args = std::make_shared<MaterializeArgs>();
  auto* cmd = app.add_subcommand("materialize", "Fill a weight-stripped model with seeded random weights");
  cmd->footer(
      "Every initializer whose data is an external reference to an empty or missing file (the zoo's\n"
      "weights.absent, see models/README.md) gets random values of its own type and shape: matrices and\n"
      "kernels uniform in +-1/sqrt(fan-in), vectors (biases, scales, batch-norm statistics) in [0.5, 1.5],\n"
      "integers 0. The same --seed gives the same bytes. Initializers with data are copied inline. The\n"
      "result holds its weights inline, so it is limited to about 2 GiB (the llama2_* graphs do not fit).\n"
      "Example:\n"
      "  moirai materialize models/gpt_tiny.onnx --seed 7 --out /tmp/gpt_tiny.weights.onnx");
  cmd->add_option("MODEL", args->model, "ONNX model (weight-stripped or not)")->required();
  cmd->add_option("--out,-o", args->out, "Output ONNX file (written atomically)")->required()->check(non_empty());
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->callback([args] { run(*args); });
});

}  // namespace
}  // namespace moirai::cli
