// What one run measured, and how it is reported (private to src/run): run.json, the measured Perfetto trace and
// the predicted-vs-measured table.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "moirai/export.h"
#include "moirai/report.h"
#include "moirai/run.h"

namespace moirai::run_detail {

/// A stage run or a transfer on the coordinator's clock (ms), for one request.
struct StageSpan {
  uint64_t request = 0;
  std::string stage, device;
  double start_ms = 0, end_ms = 0;  ///< its session call
  double handed_ms = 0;             ///< its outputs handed on: the end of what it costs its worker
};
struct TransferSpanMeasured {
  uint64_t request = 0;
  std::string tensor, src, dst;  ///< devices
  int64_t bytes = 0;
  double start_ms = 0, end_ms = 0;
};

/// What a worker reports of itself (Ping).
struct WorkerFacts {
  int threads = 0;
  std::string provider;
  double memory_bytes = 0;  ///< its machine's memory (0: an older worker that does not say)
};

/// Everything a completed attempt measured.
struct Measured {
  std::vector<uint64_t> request_ids;    ///< measured requests
  std::vector<double> start_ms;         ///< per measured request: coordinator clock when its inputs were sent
  std::vector<double> pushed_ms;        ///< per measured request: when its last input push was acknowledged
  std::vector<double> latency_ms;       ///< per measured request
  double wall_ms = 0;                   ///< first measured request sent to last one answered
  double max_abs_diff = 0, max_reference = 0, tolerance = 0;
  bool outputs_match = false;
  std::vector<StageSpan> stages;
  std::vector<TransferSpanMeasured> transfers;
  std::vector<double> clock_offset_ms;  ///< per worker (device order): worker clock - coordinator clock
  std::vector<WorkerFacts> workers;     ///< per worker (device order)
  // What passed through the coordinator (graph inputs out, graph outputs in; never activations).
  std::map<std::string, int64_t> coordinator_sent, coordinator_received;  ///< tensor -> bytes
};

/// The plan as run: stages per device, workers, and the plan's own predictions.
struct RunLayout {
  PlanFile plan;
  Manifest manifest;
  std::vector<std::string> devices;          ///< devices that run stages, in plan order
  std::map<std::string, std::string> worker;  ///< device -> address
  std::map<std::string, std::string> stage_device;
};

/// Bytes of one tensor of the manifest (element size x elements).
int64_t tensor_bytes(const ManifestTensor& t);

/// run.json text.
/// The stages a device runs, in run order.
inline std::vector<std::string> stages_on(const Manifest& manifest, const std::string& device) {
  std::vector<std::string> out;
  for (const auto& sub : manifest.submodels)
    if (sub.device == device) out.push_back(sub.name);
  return out;
}

std::string run_json(const RunOptions& options, const RunLayout& layout, const Measured& m,
                     const std::vector<RunAttempt>& attempts);
/// Measured Perfetto trace (same writer and format as the simulated one: report's trace_json).
std::string measured_trace(const RunLayout& layout, const Measured& m);
/// Terminal table: predicted vs measured, per device, per link and end to end.
std::string run_table(const RunOptions& options, const RunLayout& layout, const Measured& m);

/// Where each measured request's time goes (ms), per request in request_ids order (requests without a stage are
/// left out): the coordinator's pushes until the last acknowledgement, from there to the first stage's start
/// (negative when a stage starts before the acknowledgement is back), first stage start to last stage end (what
/// the schedule's makespan predicts), and the last end to the last answer. Per request they add up to its latency.
struct Phases {
  std::vector<double> push, wait, stages, fetch;
};
Phases request_phases(const Measured& m);

/// The whole model's request on one worker as the coordinator saw it: its latency less its one stage (pushes
/// and fetch, free of the clock offset), and the bytes it pushed and fetched.
struct WholeRequest {
  std::vector<double> input_bytes;  ///< per graph input (one push each)
  double output_bytes = 0;
  double hand_off_ms = 0;
};

/// What `request` handed off beyond the fitted push and fetch links becomes fetch latency (recorded in
/// fetch.request_excess_ms); a request within the fit changes nothing.
void calibrate_fetch(const ProfiledLink& push, ProfiledLink& fetch, const WholeRequest& request);

/// Local workers are one machine with the same threads: each figure becomes the mean of the devices' (operator
/// times, whole model, call, stage overhead). Apart, the placer prefers whichever worker measured luckier and
/// predicts that luck (gpt_tiny: the same model measured 3.4 ms on one worker and 4.2 ms on the other, one
/// minute apart, and a plan on the first then ran at 4.5-5.0 ms).
void pool_identical_devices(std::vector<DeviceProfile>& devices);

/// Runs a manifest's stages on the workers of its devices (device -> "host:port"): options.warmup then
/// options.requests requests of seeded random inputs, outputs checked against options.model_path run in one
/// session. What `moirai run` does for a plan, for any manifest (moirai profile's groups and probes). Errors
/// are run's one-line failures, or outputs that differ.
Expected<Measured> run_stages(const Manifest& manifest, const std::map<std::string, std::string>& workers,
                              const RunOptions& options);

}  // namespace moirai::run_detail
