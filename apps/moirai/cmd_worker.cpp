// `moirai worker --listen HOST:PORT`: serves the stages of one device to `moirai run` (tools/worker.mjs, Node +
// ONNX Runtime behind the gRPC service of proto/worker.proto). This process becomes the worker (exec).
#include <fmt/format.h>

#include "commands.h"
#include "moirai/run.h"

namespace moirai::cli {
namespace {

struct WorkerArgs {
  std::string listen;
  int threads = 1;
  std::string provider = "cpu";
  std::string device;
};

const bool registered = register_command(65, [](CLI::App& app) {
  auto args = std::make_shared<WorkerArgs>();
  auto* cmd = app.add_subcommand("worker", "Serve one device's stages to 'moirai run' (gRPC)");
  cmd->footer(
      "Runs until stopped. 'moirai run' loads the device's sub-models into it (one ONNX Runtime session per\n"
      "stage), sends graph inputs, and tells it where each output goes: workers push activations to each other\n"
      "directly. With port 0 a free port is bound; the first line printed is 'listening on HOST:PORT'.\n"
      "A malformed tensor, an unknown stage or a model that does not load is answered with an error; the\n"
      "worker keeps serving.\n"
      "Example (one machine per device, then the run from anywhere):\n"
      "  moirai worker --listen 0.0.0.0:7000 --threads 4\n"
      "  moirai run plan.json model.onnx --workers a=10.0.0.2:7000,b=10.0.0.3:7000 --out run/\n"
      "Needs node and the npm packages of package.json (scripts/setup installs them).");
  cmd->add_option("--listen", args->listen, "HOST:PORT to listen on (port 0: any free port)")->required();
  cmd->add_option("--threads", args->threads, "Intra-op threads of each stage's session")->capture_default_str()->check(within(1, 1024, true));
  cmd->add_option("--provider", args->provider, "ONNX Runtime execution provider: cpu or cuda:K")->capture_default_str();
  cmd->add_option("--device", args->device, "Device name reported to the coordinator (default: set by 'run')");
  cmd->callback([args] {
    const Status st = exec_worker(args->listen, args->threads, args->provider, args->device, "/proc/self/exe");
    fail(st.ok() ? "the worker did not start" : st.error().message);
  });
});

}  // namespace
}  // namespace moirai::cli
