// Export: turns a plan into something that runs. One ONNX sub-model per device (and per stage when a device's
// operators are not contiguous), plus manifest.json that says what each sub-model receives, sends, and the order
// to run them in. Also drives the Node/ONNX Runtime script (tools/run_plan.mjs) that runs a manifest, checks it
// against the original model and times it, and builds measured per-operator profiles from those timings.
// ONNX/protobuf types stay in src/export.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "moirai/error.h"
#include "moirai/report.h"

namespace moirai {

/// One (possibly fused) operator to export.
struct ExportOp {
  std::string name;
  std::string device;               ///< device (or any stage key) that runs it
  std::vector<std::string> origin;  ///< original ONNX node names (as the importer names them)
  double start_ms = 0;              ///< planned start: orders the operators (ties by position)
};

/// What to export: the model file and the operators with their devices.
struct ExportRequest {
  std::string model_path;   ///< ONNX model; weights inline or as external data beside it
  std::string source;       ///< what the operators come from (the plan path), named in errors
  std::string model_name;   ///< the name the plan gives the model; empty = not checked
  std::vector<ExportOp> ops;
  std::map<std::string, int64_t> dims;  ///< values of named dynamic dimensions (as for import)
  std::string fusion;       ///< recorded in the manifest so `moirai run` can re-cost the same coarse graph
  int max_nodes = 0;        ///< idem
  bool check = true;        ///< run the ONNX checker on every sub-model
};

/// One tensor at a sub-model boundary (or a graph input/output of the whole model).
struct ManifestTensor {
  std::string name;
  std::string dtype;            ///< ONNX element type name: "float32", "int64", ...
  std::vector<int64_t> shape;   ///< static
  std::string from;             ///< producing sub-model; empty for a graph input
  std::vector<std::string> to;  ///< consuming sub-models (outputs only)
  bool graph_output = false;    ///< an output of the whole model
  int64_t index_bound = 0;      ///< integer inputs used as indices: values must lie in [0, index_bound) (0 = unknown)
};

/// One exported sub-model.
struct ManifestModel {
  std::string name;
  std::string file;    ///< relative to the manifest's directory
  std::string device;
  std::vector<std::string> ops;  ///< plan operators it runs
  std::vector<ManifestTensor> inputs;
  std::vector<ManifestTensor> outputs;
};

/// manifest.json: sub-models in run order.
struct Manifest {
  std::string path;          ///< where it was read from (empty when built in memory)
  std::string model;         ///< absolute path of the original model
  std::string model_name;
  std::string fusion;
  int max_nodes = 0;
  std::map<std::string, int64_t> dims;
  bool weights = true;       ///< false: the model's weights are absent (stripped), the sub-models cannot run
  std::vector<ManifestTensor> inputs;   ///< graph inputs of the whole model
  std::vector<ManifestTensor> outputs;  ///< graph outputs, with the sub-model that produces each
  std::vector<ManifestModel> submodels; ///< in run order
};

/// Builds the export request for a plan: checks that the plan names this model, its devices and operators.
Expected<ExportRequest> export_request(const PlanFile& plan, const std::string& model_path);

/// Writes the sub-models and manifest.json into `out_dir` (replacing it). Everything is written into a
/// temporary sibling directory first and renamed at the end: on any error no output directory is left.
/// Errors name the plan or model file and the offending operator, node or tensor.
Expected<Manifest> export_submodels(const ExportRequest& request, const std::string& out_dir);

/// manifest.json text.
std::string manifest_json(const Manifest& manifest);
/// Reads manifest.json; rejects a run order that does not respect the data flow (naming a cycle if there is one).
Expected<Manifest> read_manifest(const std::string& path);
Expected<Manifest> parse_manifest(const std::string& text, const std::string& source);

/// A layer-wise plan in the terms of the runtimes people split LLMs with: Hugging Face accelerate's `device_map`
/// (module name -> "cuda:N" / "cpu"; GPUs numbered in cluster-file order) and llama.cpp's `--tensor-split`
/// (slots per GPU: its L layers and the output layer, split contiguously in GPU order) with `--n-gpu-layers`.
struct DeviceMap {
  std::vector<std::pair<std::string, std::string>> modules;  ///< "model.layers.12" -> "cuda:1", in model order
  std::map<std::string, std::string> devices;                ///< runtime device ("cuda:1") -> plan device name
  std::vector<int> tensor_split;  ///< per GPU in cuda order: slots it holds
  int n_gpu_layers = 0;           ///< slots on GPUs
  /// llama.cpp puts the CPU's slots first and the GPUs' in cuda order; false when the plan's order differs, so
  /// that --tensor-split reproduces the counts per GPU but not which layers each holds.
  bool tensor_split_exact = true;
  std::vector<std::string> split_layers;  ///< modules whose operators the plan spreads over several devices
};

/// The device map of a plan whose operators carry layer indices in their node names ("layers.12/..."): each
/// module goes where most of its operators run. Device kinds come from the plan's cluster file. Errors name the
/// plan when no operator carries a layer index.
Expected<DeviceMap> device_map(const PlanFile& plan);
/// {"device_map": {...}, "devices": {...}, "tensor_split": [...], "n_gpu_layers": N, "llama_cpp_args": "..."}.
std::string device_map_json(const DeviceMap& map);
/// Reads device_map_json's output back (modules and devices); errors name `source` and the field.
Expected<DeviceMap> parse_device_map(const std::string& text, const std::string& source);

/// What materialize_weights did.
struct MaterializeResult {
  int randomized = 0;  ///< initializers filled with random values (their data was absent)
  int64_t bytes = 0;   ///< weight bytes written inline, copied and random together
};

/// `moirai materialize`: writes `out`, the model `model` with every weight-stripped initializer (external data
/// whose file is empty or missing) filled with random values of its type and shape, deterministic for `seed`;
/// initializers with data are copied inline. Weights go inline, so at most about 2 GiB. Atomic: on error no file
/// is written.
Expected<MaterializeResult> materialize_weights(const std::string& model, const std::string& out, uint64_t seed);

/// How to call tools/run_plan.mjs.
struct RuntimeOptions {
  std::string script;   ///< path of run_plan.mjs; empty = find_tool("run_plan.mjs", "")
  std::string original; ///< original model to compare against; empty = the manifest's model
  int repeats = 1;      ///< timed repetitions (median reported)
  int warmup = 1;
  uint64_t seed = 1;
  double tolerance = 1e-4;  ///< max |diff| allowed, relative to the largest reference magnitude
  bool fastest = false;     ///< report the fastest repetition instead of the median (steadier on a busy machine)
  int threads = 0;          ///< intra-operator threads per session (0 = ONNX Runtime's default, one per core)
};

/// What one run of a manifest measured.
struct RuntimeResult {
  bool match = false;
  double max_abs_diff = 0;
  double max_reference = 0;
  double original_ms = 0;  ///< median (or fastest) time of the original model
  double split_ms = 0;     ///< median (or fastest) time of all sub-models run in order
  std::map<std::string, double> submodel_ms;  ///< median (or fastest) per sub-model
  std::string output;      ///< the script's report (stdout)
};

/// Locates a script of tools/: $MOIRAI_TOOLS, then next to the executable `argv0` (../tools, ../../tools),
/// then ./tools. Error when none exists.
Expected<std::string> find_tool(const std::string& name, const std::string& argv0);

/// Runs `node run_plan.mjs MANIFEST ORIGINAL --json`; an error when node fails to start or the script fails
/// for a reason other than a mismatch (a mismatch is a result with match = false).
Expected<RuntimeResult> run_manifest(const std::string& manifest_path, const RuntimeOptions& options);

/// Writes DIR/probeI.onnx (an Identity on a float tensor of elements[I] elements, independent of each other),
/// DIR/all.onnx (all of them in one model, the reference) and DIR/manifest.json running the probes: the runner's
/// time for a one-element probe is the per-call (per-stage) overhead.
Expected<Manifest> write_call_probes(const std::string& dir, const std::vector<int64_t>& elements);
/// Writes a chain of `length` Identity stages on a float tensor of `elements` elements (probeI: xI -> xI+1), stage
/// I on devices[I % devices.size()], with DIR/all.onnx (x0 -> xLENGTH) as the reference and DIR/manifest.json:
/// over two devices every hand-off in the chain is a transfer between them.
Expected<Manifest> write_probe_chain(const std::string& dir, int64_t elements, const std::vector<std::string>& devices,
                                     int length);

/// `moirai profile`: measured time of every coarse operator on this CPU, and the per-stage overhead.
struct ProfileOptions {
  std::string model;
  std::string fusion = "onnxruntime";
  int max_nodes = 0;
  std::map<std::string, int64_t> dims;
  std::string device = "cpu";   ///< device name written into the profile
  std::string cluster;          ///< optional: a cluster whose `device` gives the analytic estimate to compare
  RuntimeOptions runtime;       ///< runtime.threads: the intra-op threads every measured session uses
};

struct OpProfile {
  std::string name;
  std::string type;
  double measured_ms = 0;   ///< the group as its own session: one call, overhead included
  double handoff_bytes = 0; ///< activation bytes it receives from and sends to other operators
  /// measured_ms minus one session call and the hand-off of handoff_bytes, at least 0, times the result's
  /// compute_scale: the groups' compute adds up to the whole model in one session less its call.
  double compute_ms = 0;
  double analytic_ms = -1;  ///< -1 without a cluster
};

struct ProfileResult {
  std::vector<OpProfile> ops;  ///< coarse operators, in graph order
  double measured_total_ms = 0;
  double analytic_total_ms = -1;
  double original_ms = 0;  ///< the whole model in one session, for reference
  int threads = 0;         ///< intra-op threads of every session (0 = the runtime's default)
  double call_ms = 0;  ///< the call probe's session call: the fixed cost of one session call
  /// Speed of moving an activation out of or into a session, from what the groups (each its own session) take
  /// beyond the whole model in one session and their calls, per activation byte they hand off (GB/s; 1e6 when
  /// the groups take no more).
  double handoff_gbps = 0;
  /// Per-stage overhead: the call probe's end-to-end time in the runner (its session call and the runner's loop).
  double stage_overhead_ms = 0;
  /// What the groups' compute times were multiplied by to add up to the whole model less one call: 1 unless
  /// groups smaller than the call probe clipped at 0 (the probe's call costs more than theirs).
  double compute_scale = 1;
};

/// One coarse operator as profiled: its own exported sub-model.
struct ProfileGroup {
  std::string name, type;
  double analytic_ms = -1;   ///< -1 without a cluster
  double handoff_bytes = 0;  ///< activation bytes it receives from and sends to other operators
};
/// The coarse operators of a model (topological order), exported one sub-model each (sub-model `ops` name it).
struct ProfileGroups {
  std::vector<ProfileGroup> groups;
  Manifest manifest;
  double flops = 0, bytes = 0;  ///< the whole model's work: FLOPs, and bytes its operators read and write
};
/// Imports and coarsens the model as ProfileOptions says and exports one sub-model per coarse operator into dir.
Expected<ProfileGroups> export_profile_groups(const ProfileOptions& options, const std::string& dir);

/// What one device (a worker, or the in-process runner) measured for the groups.
struct GroupTimes {
  std::map<std::string, double> submodel_ms;  ///< per exported sub-model: its session call
  double original_ms = 0;        ///< the whole model in one session
  double call_ms = 0;            ///< a session call that does no work (the call probe)
  double stage_overhead_ms = 0;  ///< what a stage costs the executor beyond its operators
  int threads = 0;
};
/// The profile of one device from its measurements: each group's compute time is its time minus one session
/// call and its hand-off bytes at the hand-off speed (what the groups take beyond the whole model and their calls),
/// scaled if need be so that they add up to the whole model less one call (ProfileResult::compute_scale).
ProfileResult profile_result(const ProfileGroups& groups, const GroupTimes& times);

/// Imports and coarsens the model, exports one sub-model per coarse operator, runs them in order (real
/// intermediate values, warm-up, median of repeats) and collects the times; then times the call probe with the
/// same runtime options.
Expected<ProfileResult> profile_model(const ProfileOptions& options);
/// Profile version 2 for `devices` (every device named gets the same figures: they stand for workers of this
/// machine with the same thread count): {"version": 2, "threads", "stage_overhead_ms": {DEVICE: ms},
/// "ops": {OP: {DEVICE: compute ms}}, ...}, readable by apply_profile.
std::string profile_json(const ProfileResult& result, const std::vector<std::string>& devices);
/// One profiled device (a worker) and what it measured.
struct DeviceProfile {
  std::string device;
  ProfileResult result;
};
/// Profile version 2 with each device's own figures (at least one device); the top-level threads, call_ms,
/// handoff_gbps, measured_total_ms and whole_model_ms are the first device's, "per_device" has every device's.
std::string profile_json(const std::vector<DeviceProfile>& devices);
/// The measured cluster: `base`'s device `device` copied once per name in `devices` with the measured
/// stage overhead and thread count and this machine's memory; links between them are in-process hand-offs
/// (latency 0: the call cost is in the stage overhead; bandwidth: out of one session and into the next, at
/// handoff_gbps each way) until measured worker-to-worker links replace them (fit_link).
Expected<Cluster> measured_cluster(const ProfileResult& result, const Cluster& base, const std::string& device,
                                   const std::vector<std::string>& devices);
/// Table: per operator measured vs analytic and the relative error, then totals.
std::string format_profile(const ProfileResult& result);

}  // namespace moirai
