// Bench: the paper-style evaluation in one call. Runs every (model, cluster, method) combination through the
// pipeline (each plan re-simulated and validated), records one row per combination in OUT/rows.jsonl as it
// finishes (append + fsync, so a re-run with the same OUT resumes where it stopped), and writes results.csv,
// results.json, summary.md and SVG plots from all rows.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "moirai/coarsen.h"
#include "moirai/error.h"
#include "moirai/placer.h"
#include "moirai/stream.h"

namespace moirai {

/// What became of one combination: a plan (with the method's own status), or why there is none.
enum class RowOutcome {
  planned,       ///< a valid plan within the memory capacities
  does_not_fit,  ///< no plan within the memory capacities
  failed,        ///< no plan: the method's error, a crash, a model that cannot be loaded
  killed,        ///< no plan: stopped past its time limit
  invalid        ///< the plan broke an invariant: a bug (the bench fails on it)
};

struct RowStatus {
  RowOutcome outcome = RowOutcome::planned;
  PlanStatus plan = PlanStatus::ok;  ///< planned: the method's status (optimal, time limit, ...)
  std::string reason;                ///< failed, killed, invalid: why, in one line
};

/// The status as rows.jsonl, results.csv and the tables show it: the plan status's name ("ok", "optimal", ...),
/// "does not fit", "failed: WHY", "failed: killed after ..." or "invalid: WHY".
std::string row_status_text(const RowStatus& status);
/// The inverse of row_status_text (rows.jsonl is read back on resume); an error for an unknown status.
Expected<RowStatus> parse_row_status(const std::string& text);

/// One (model, cluster, method) result. Every combination gets a row, whatever happened to it.
struct BenchRow {
  std::string model;    ///< file stem of the model (or instance)
  std::string cluster;  ///< file stem of the cluster file; "instance" for a profiled instance
  std::string method;
  RowStatus status;
  std::string note;  ///< details: the error message, the over-capacity devices, "memory-ordered (BTSearch)"
  std::optional<double> latency_ms;  ///< makespan of a valid plan that fits; empty otherwise
  double placement_time_s = 0;       ///< wall time of the method (Placeto: training included)
  std::vector<std::string> devices;  ///< device names, in table order
  std::vector<double> peak_memory;   ///< bytes per device (empty without a schedule)
  std::vector<double> capacity;      ///< bytes per device
  double lower_bound_ms = 0;         ///< proven lower bound (0: none)
  std::string lower_bound_source;    ///< which bound (moirai/bounds.h)
  std::string mode;                  ///< the method's mode (MILP: exact or lns)
  std::string warm_start_method;     ///< MILP ablation: the heuristic that seeded it,
  double warm_start_ms = 0;          ///<   its makespan (MILP model),
  double polished_ms = 0;            ///<   after the local search, before CBC
  std::optional<double> gap;         ///< (latency - lower bound) / latency, with a bound and a latency
  int nodes_before = 0;              ///< operators before coarsening (imported graph)
  int nodes_after = 0;               ///< operators the methods placed
  double single_device_ms = 0;       ///< best single device ignoring memory (best_single_device_ms)
  std::optional<double> speedup_vs_single;  ///< single_device_ms / latency_ms
  std::string settings;  ///< the options that shape results (resume refuses to mix different settings)
  /// Serving a stream with the plan (moirai/stream.h; whole-operator plans that fit): steady-state requests/s,
  /// latency percentiles under the stream, the period model's figure and each device's utilisation.
  std::optional<double> throughput_rps, stream_p50_ms, stream_p90_ms;
  double period_ms = 0;
  std::vector<double> stream_utilisation;
  std::string stream_note;  ///< devices whose memory the stream overflows ("" = it fits)

  /// A plan that fits and is valid (has a latency).
  bool has_latency() const { return latency_ms.has_value(); }
  std::string status_text() const { return row_status_text(status); }
  bool invalid() const { return status.outcome == RowOutcome::invalid; }
  /// No plan for a reason other than memory (a killed run counts: --retry-failed runs it again).
  bool failed() const { return status.outcome == RowOutcome::failed || status.outcome == RowOutcome::killed; }
};

/// Where a bench stands, passed to the progress callback after every finished (or skipped) combination.
struct BenchProgress {
  int done = 0;      ///< finished in this run
  int skipped = 0;   ///< already in rows.jsonl
  int total = 0;     ///< combinations to run in this run (excluding skipped)
  int running = 0;
  double elapsed_s = 0;
  std::optional<double> eta_s;  ///< estimate of the time left (none before the first result)
  const BenchRow* last = nullptr;  ///< the row just finished (null for a plain tick)
};

struct BenchOptions {
  std::vector<std::string> models;    ///< ONNX files, instance .json files, or directories (their *.onnx,
                                      ///< except *.weights.onnx)
  std::vector<std::string> clusters;  ///< cluster files (instances ignore them)
  std::vector<std::string> methods;   ///< method names (method_names()); an unknown name yields failed rows
  std::string out_dir;                ///< created if missing; holds rows.jsonl and the outputs
  PlaceOptions place;                 ///< time limit, episodes, contention, threads... for every method
  CoarsenOptions coarsen;             ///< fusion backend and --max-nodes for every model
  /// KV-cache length of decode models (the dimension `context`); models without that dimension ignore it.
  /// 0 = none given (a decode model then fails to load, naming the dimension).
  int64_t context = 0;
  int jobs = 1;  ///< combinations run at the same time (each in its own process)
  /// Each method runs in a child process that is killed after this many seconds (row "failed: killed after
  /// N s"); 0 = 3 x time limit + 60 s. Crashes become rows too.
  double kill_after_s = 0;
  bool isolate = true;        ///< false: run methods in this process, one at a time (no kill, no crash guard)
  bool retry_failed = false;  ///< re-run rows whose status is "failed: ..." (invalid rows are always re-run)
  std::string reference = "milp";  ///< the method whose speed-up over the others the summary reports
  StreamOptions stream{64};        ///< the stream every plan is measured under (throughput_rps and percentiles)
  std::function<void(const BenchProgress&)> progress;  ///< may be empty
};

/// What a bench run did.
struct BenchResult {
  std::vector<BenchRow> rows;  ///< every row in rows.jsonl (earlier runs included), in output order
  int ran = 0;                 ///< combinations run now
  int skipped = 0;             ///< combinations found in rows.jsonl
  double elapsed_s = 0;
  std::vector<std::string> written;  ///< output files, paths relative to out_dir
};

/// Expands directories into their *.onnx models (not *.weights.onnx), sorted; checks that files exist and
/// that no two models share a name.
Expected<std::vector<std::string>> expand_models(const std::vector<std::string>& inputs);

/// Runs the grid, appending each finished row to OUT/rows.jsonl, then writes every output. Fails (after
/// writing the rows and outputs it has) when a plan is invalid, naming model, cluster, method and violation;
/// fails before running anything on bad input (missing files, rows.jsonl written with other settings).
Expected<BenchResult> run_bench(const BenchOptions& options);

/// The rows in OUT/rows.jsonl (a torn last line, from a killed run, is ignored).
Expected<std::vector<BenchRow>> read_bench_rows(const std::string& out_dir);

/// One row as a single JSON line (no newline), and back.
std::string bench_row_json(const BenchRow& row);
Expected<BenchRow> parse_bench_row(const std::string& line);

/// Output order: cluster, model (by name), method (method_names() order, unknown names after, by name).
void sort_bench_rows(std::vector<BenchRow>& rows);

/// The CSV header and rows (peak memory per device as a ';'-separated list of bytes).
std::string bench_csv(const std::vector<BenchRow>& rows);
/// {"rows": [...]}, peak memory as an array.
std::string bench_json(const std::vector<BenchRow>& rows);
/// Paper-style markdown: per cluster a latency table (models x methods, best in bold), speed-ups of
/// `reference` over every other method with geometric mean and maximum, placement times.
std::string bench_summary_md(const std::vector<BenchRow>& rows, const std::string& reference = "milp");

/// Serving a stream, per cluster: each model's throughput (requests/s) and p50 latency under the stream for
/// every method, and the ratios the throughput objective is judged by: the "throughput" plan over the best
/// latency plan (`reference`) and over the best single device ("single"). Empty when no row has a throughput.
std::string bench_throughput_md(const std::vector<BenchRow>& rows, const std::string& reference = "milp");

/// Grouped bars: latency per model per method on one cluster (log scale when the range is wide).
std::string bench_latency_svg(const std::vector<BenchRow>& rows, const std::string& cluster);
/// Strip plot: speed-up of `reference` over each other method, one point per (model, cluster), log scale.
std::string bench_speedup_svg(const std::vector<BenchRow>& rows, const std::string& reference = "milp");
/// Scatter: placement time vs graph size (nodes placed), log-log, one colour per method.
std::string bench_time_svg(const std::vector<BenchRow>& rows);

/// Writes results.csv, results.json, summary.md and the plots into `dir`, each atomically; returns the names.
Expected<std::vector<std::string>> write_bench_outputs(const std::vector<BenchRow>& rows, const std::string& dir,
                                                       const std::string& reference = "milp");

/// One progress line: "[ 12/68] 17% ETA 4.2 min | resnet50 / edge-4 / milp: 12.3 ms (optimal, 10.1 s)"; with
/// `bar`, a bar of `width` columns replaces the counter (for a terminal, redrawn with '\r').
std::string format_bench_progress(const BenchProgress& progress, bool bar, int width = 30);

}  // namespace moirai
