// Run: executes a plan for real. One worker per device (tools/worker.mjs: Node + ONNX Runtime behind the gRPC
// service of proto/worker.proto) hosts that device's exported stages; workers push activations to each other
// directly, and this coordinator only sends graph inputs, fetches graph outputs, checks them against the
// original model (run in one session as a reference stage), and collects measured times into run.json, a
// Perfetto trace in the simulator's format and a predicted-vs-measured table. gRPC types stay in src/run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "moirai/cluster.h"
#include "moirai/error.h"
#include "moirai/export.h"
#include "moirai/progress.h"

namespace moirai {

struct RunOptions {
  std::string plan_path;
  std::string model_path;  ///< ONNX model with weights (the plan's model may be weight-stripped)
  std::string out_dir;
  std::map<std::string, std::string> workers;  ///< device -> "host:port" (ignored with local)
  bool local = false;       ///< start one worker per device of the plan on this machine
  int threads = 1;          ///< intra-op threads of each local worker
  std::string provider = "cpu";
  int requests = 10;        ///< measured requests
  /// Requests run before measuring (not reported). The first few dozen requests after the workers start run up
  /// to twice as slowly (Node's JIT and heap warming up: squeezenet1_1 on one worker, 17-19 ms falling to 8-10 ms
  /// over 40 requests), and a plan predicts the steady state.
  int warmup = 30;
  int concurrency = 1;      ///< requests in flight at once
  double deadline_ms = 30000;  ///< per request; a request past it fails the run (set-up calls have own bounds)
  uint64_t seed = 1;        ///< inputs: same generator as tools/run_plan.mjs
  double tolerance = 1e-4;  ///< max |diff| allowed, relative to the largest reference magnitude
  bool replan_on_failure = false;  ///< a lost device: place again on the others (same method), retry
  double replan_time_limit_s = 10;  ///< search budget of that placement
  ProgressFn progress;      ///< hears each replan ("WHY; replanning without device D"); may be empty
  std::string argv0;        ///< to find tools/worker.mjs next to the executable
};

/// One plan the run tried: the first, then one per replan.
struct RunAttempt {
  std::string plan;   ///< plan.json path
  std::string error;  ///< why it failed (empty for the attempt that completed)
  std::string lost_device;
};

struct RunSummary {
  std::string run_json;  ///< path of DIR/run.json
  std::string table;     ///< terminal table: predicted vs measured, per device and end to end
  bool outputs_match = false;
  std::vector<RunAttempt> attempts;
};

/// Runs the plan; errors are one line naming the worker, device and stage. On any error no run.json is written.
Expected<RunSummary> run_plan(const RunOptions& options);


/// `moirai profile --local|--workers`: the cost model measured on the executor itself.
struct WorkerProfileOptions {
  ProfileOptions profile;  ///< model, coarsening, base cluster and device; runtime: repeats, warmup, fastest
  std::map<std::string, std::string> workers;  ///< device -> "host:port" (when local_devices is 0)
  int local_devices = 0;   ///< > 0: start this many local workers, devices DEVICE0, DEVICE1, ...
  int threads = 1;         ///< intra-op threads of each local worker
  std::string provider = "cpu";
  std::vector<int64_t> link_elements = {1, 65536, 262144, 1048576};  ///< float32 probe sizes: 4 B .. 4 MiB
  double deadline_ms = 30000;  ///< per request
  std::string argv0;
};

/// A directed link between two workers: the statistic of the transfer times per probe size, and its fit.
struct ProfiledLink {
  std::string src, dst;
  LinkFit fit;
  std::vector<TransferSample> points;
  /// A device's link back to the coordinator: what the whole model's request handed off beyond the fit to the
  /// probes (ms), added to fit.link's latency so that request is predicted as measured; 0 elsewhere.
  double request_excess_ms = 0;
};

/// The name ProfiledLink uses for the coordinator (`moirai run` itself) at one end of a link.
inline constexpr const char* kCoordinator = "coordinator";

struct WorkerProfile {
  std::vector<DeviceProfile> devices;  ///< per worker: its stage overhead and operator times
  std::vector<ProfiledLink> links;     ///< every ordered pair of workers
  std::vector<ProfiledLink> coordinator;  ///< per worker: coordinator -> worker (pushes), worker -> coordinator (fetches)
  Cluster cluster;                     ///< the measured devices and links
};

/// Measures every coarse group as a stage on each worker, the per-stage overhead through the worker, the
/// transfers between every pair of workers and between the coordinator and each worker (see
/// src/run/profile.cpp). Errors are one line (run's failures).
Expected<WorkerProfile> profile_workers(const WorkerProfileOptions& options);

/// `moirai worker`: replaces this process with `node tools/worker.mjs ...` (returns only on failure).
Status exec_worker(const std::string& listen, int threads, const std::string& provider, const std::string& device,
                   const std::string& argv0);

}  // namespace moirai
