// Report: turns a placed and simulated problem into files and tables: plan.json (and its reader, for
// `moirai simulate PLAN.json`), a Chrome trace, a Gantt SVG, a self-contained HTML report, and terminal tables.
// Every file goes through write_file_atomic, so a failed run never leaves a half-written file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moirai/coarsen.h"
#include "moirai/cost.h"
#include "moirai/error.h"
#include "moirai/file_io.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "moirai/stream.h"

namespace moirai {


/// "512 B", "1.50 KiB", "3.25 MiB", "1.20 GiB" (binary units).
std::string human_bytes(double bytes);
/// A memory amount of `table` in its unit: human_bytes for bytes, "44 units" for an instance's own unit.
std::string human_memory(const CostTable& table, double amount);
/// Milliseconds as "850 us", "12.3 ms", "1.25 s", "3.1 min".
std::string human_time(double ms);

/// What is needed to rebuild the problem and re-simulate a plan later (kept as plain strings so the report
/// stage does not depend on the pipeline).
struct PlanInputs {
  std::string model;    ///< path of the ONNX model or of the profiled instance
  std::string cluster;  ///< path of the cluster file (empty for an instance)
  std::string fusion;   ///< fusion backend used for coarsening
  int max_nodes = 0;    ///< coarsening node budget (0 = none)
  std::map<std::string, int64_t> dims;  ///< --dim NAME=VALUE
  std::string profile;  ///< measured profile path (empty = none)
};

/// Everything the outputs show: the problem, the placement, its schedule and the figures.
struct Plan {
  CostTable table;
  PlaceResult result;
  Schedule schedule;
  std::string method;
  double placement_time_s = 0;
  SimOptions sim;
  PlanInputs inputs;
  std::vector<CoarsenStep> steps;         ///< coarsening steps, for the record
  std::vector<std::vector<OpPart>> parts;  ///< per operator; empty (or an empty entry) = not split
  std::vector<std::string> split_dims;     ///< per split operator: "channels", "rows" or "tokens" (else empty)
  /// Decode models: the largest context (KV-cache length) at which this placement fits, when computed.
  std::optional<int64_t> max_context;
  std::string objective = "latency";       ///< what the placer optimised: "latency" or "throughput"
  /// `moirai simulate`'s verdict on a re-simulated plan ("valid" or "invalid"): shown and written in place of
  /// the method's status when set.
  std::string verdict;
  /// The status shown and written: the verdict when set, else the method's (plan_status_name).
  std::string status_text() const { return verdict.empty() ? plan_status_name(result.status) : verdict; }
  std::optional<StreamFigures> stream;     ///< the plan serving a stream of requests (whole-operator plans)
  /// One request as `moirai run` measures it: the coordinator's pushes, the schedule and its fetches (request_ms
  /// of moirai/simulate.h); set only when the cluster has coordinator links (plan.json predicted_request_ms).
  std::optional<double> request_ms;

  /// (makespan - lower bound) / makespan, or nullopt without a lower bound.
  std::optional<double> gap() const;
};

/// What an LLM user reads off a plan. A decode model (one with a KV cache, moirai/graph.h KvCache) runs one
/// token per step: its makespan is the time per token. A prefill model (a graph output named `logits`, as the
/// exporters name a language model's output, and no cache) runs the prompt: its makespan is the time to first
/// token.
struct LlmFigures {
  std::string phase;               ///< "decode" or "prefill"
  double ms_per_token = 0;         ///< decode
  double tokens_per_s = 0;         ///< decode
  double time_to_first_token_ms = 0;  ///< prefill
  double kv_cache_bytes = 0;       ///< decode: the whole cache
  std::vector<double> kv_cache_per_device;  ///< decode: per device (table order)
};
/// The LLM figures of a plan, or nullopt when its model is not a language model.
std::optional<LlmFigures> llm_figures(const Plan& plan);

/// Assembles a Plan (copies the table, result and schedule).
Plan make_plan(const CostTable& table, const PlaceResult& result, const Schedule& schedule, std::string method,
               double placement_time_s, const SimOptions& sim, PlanInputs inputs = {},
               std::vector<CoarsenStep> steps = {});

/// plan.json text (version 1): figures, inputs, devices, ops (with origin and optional parts), transfers.
/// With `dir` (the directory the plan is written to), input paths are stored relative to it, so the plan can be
/// re-simulated from any working directory (read_plan resolves them from the plan's directory).
std::string plan_json(const Plan& plan, const std::string& dir = "");

/// One operator as read back from plan.json.
struct PlanFileOp {
  std::string name;
  std::string type;
  std::string device;
  double start_ms = 0;
  double end_ms = 0;
  std::vector<std::string> origin;
  std::vector<std::pair<std::string, OpPart>> parts;  ///< (device name, part); OpPart::device is unset (0)
  std::string split_dim;  ///< how a split operator is divided ("channels", "rows", "tokens"); empty when whole
};

/// One transfer as read back from plan.json.
struct PlanFileTransfer {
  std::string tensor, src, dst;
  double start_ms = 0;
  double end_ms = 0;
};

/// What `moirai simulate PLAN.json` needs from a plan file.
struct PlanFile {
  std::string path;
  int version = 1;
  std::string model, cluster, method, status;
  double makespan_ms = 0;
  std::optional<double> request_ms;  ///< predicted_request_ms, when the plan has one
  bool contention = true;
  PlanInputs inputs;
  std::vector<std::string> devices;  ///< device names, in file order
  std::vector<PlanFileOp> ops;       ///< in file order
  std::vector<PlanFileTransfer> transfers;  ///< in file order
  /// Per device (file order), its peak_memory_bytes; empty when any device lacks one.
  std::vector<double> peak_memory;
  /// Per device (file order), its busy_ms (operators, and one stage overhead per stage when the plan models
  /// stages); empty when any device lacks one.
  std::vector<double> busy_ms;
  /// Placement as (operator name, device name) pairs, in file order.
  std::vector<std::pair<std::string, std::string>> placement() const;
  /// Per device name, its operators ordered by start time (ties by file order).
  std::map<std::string, std::vector<std::string>> order() const;
};

/// Reads plan.json text; `source` names it in errors ("FILE: missing key 'ops'", "FILE: not JSON: ...").
Expected<PlanFile> parse_plan(const std::string& text, const std::string& source);
/// Reads a plan.json file; relative input paths are resolved from the plan's directory (or, for plans written
/// before they were stored that way, from the working directory when that is where the file is).
Expected<PlanFile> read_plan(const std::string& path);

/// Maps a plan file's names onto a cost table: device per operator and per-device order. Errors name the file
/// and the unknown device, the unknown operator, or the first operator the plan misses.
Expected<Placement> resolve_placement(const PlanFile& plan, const CostTable& table);

/// A plan's schedule exactly as its file writes it (operators' and transfers' times, makespan, peak memory), in
/// `table`'s terms, with the file's field paths for validate(). Transfers that name an unknown tensor or device
/// cannot be mapped: each is one message in `problems` (naming the field) and is left out of the schedule.
struct WrittenSchedule {
  Schedule schedule;
  FieldNames names;
  std::vector<std::string> problems;
};
WrittenSchedule written_schedule(const PlanFile& plan, const CostTable& table);

/// Chrome trace (Trace Event Format): per device a process with three labelled tracks ("NAME", "NAME send",
/// "NAME recv"); complete events with ts/dur in microseconds.
std::string trace_json(const Plan& plan);

/// Gantt chart as a standalone SVG document (rows per device and its ports, time axis, legend, <title> hovers).
std::string gantt_svg(const Plan& plan);

/// Self-contained HTML report: figures, the Gantt inline, per-device table, bytes per link.
std::string report_html(const Plan& plan);

/// Writes plan.json, trace.json, gantt.svg and report.html into `dir` (created if missing), each atomically.
/// All contents are produced before the first file is written.
Status write_plan_outputs(const Plan& plan, const std::string& dir);

/// Terminal summary: method, latency, status, placement time, and per device busy / peak memory.
std::string format_plan_summary(const Plan& plan);

/// One method's line in a `--method all` comparison.
struct ComparisonRow {
  std::string method;
  std::string error;  ///< non-empty: the method produced no plan (shown instead of figures)
  std::string status;
  double latency_ms = 0;
  double placement_time_s = 0;
  std::vector<double> peak_memory;  ///< per device (table order)
  bool fits = true;
};

/// A row from a finished plan.
ComparisonRow comparison_row(const Plan& plan);

/// The latency of the best single device, ignoring memory: min over devices of the sum of operator times.
double best_single_device_ms(const CostTable& table);

/// Comparison table, best latency first (failed methods last): latency, speed-up over `baseline_ms` (the best
/// single device; no speed-up column when <= 0), peak memory per device against capacity, placement time, status.
std::string format_comparison(std::vector<ComparisonRow> rows, const CostTable& table, double baseline_ms);

}  // namespace moirai
