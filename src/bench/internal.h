// Helpers shared by the bench sources (not public): file names, method order, the row grid and speed-ups.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "moirai/bench.h"
#include "moirai/pipeline.h"

namespace moirai {

inline std::string rows_path(const std::string& dir) { return dir + "/rows.jsonl"; }

/// Position of a method in placer_names() (unknown names after all known ones).
int method_rank(const std::string& method);
/// Method display order: registry order, then by name.
bool method_before(const std::string& a, const std::string& b);
/// The CSV header fields, in order.
const std::vector<std::string>& bench_csv_columns();

/// Latency with about three significant digits, without exponents: "1234", "12.3", "1.23", "0.123".
std::string format_ms(double ms);

/// Rows looked up by (cluster, model, method); clusters, models per cluster and methods in output order.
struct BenchGrid {
  std::vector<std::string> clusters;
  std::map<std::string, std::vector<std::string>> models;  ///< per cluster
  std::vector<std::string> methods;
  std::map<std::tuple<std::string, std::string, std::string>, const BenchRow*> at;

  explicit BenchGrid(const std::vector<BenchRow>& rows);
  const BenchRow* find(const std::string& cluster, const std::string& model, const std::string& method) const;
};

/// One speed-up of the reference over a baseline on one (cluster, model): baseline latency / reference latency.
struct Speedup {
  std::string cluster, model, baseline;
  double value = 0;
};
/// Every speed-up where both the reference and the baseline have a latency, in grid order.
std::vector<Speedup> speedups(const BenchGrid& grid, const std::string& reference);
double geometric_mean(const std::vector<double>& xs);

/// The options that shape results, as recorded in every row ("time_limit_s=10 gap=0.0001 ...").
std::string bench_settings(const BenchOptions& options);

/// One (model, cluster) problem and the methods still to run on it.
struct BenchTask {
  std::string model_path, model, cluster_path, cluster;  ///< cluster_path empty for an instance
  std::vector<std::string> methods;
};

/// `s` on one line, at most `max` characters ("..." when cut).
std::string clip(std::string s, size_t max);
/// A row naming the combination, with no outcome yet.
BenchRow base_row(const BenchTask& t, const std::string& method, const std::string& settings);
/// The problem's own figures: devices, capacities, node counts, best single device.
void fill_problem(BenchRow& row, const Problem& problem);
/// The row of a finished method run: latency and figures, or "does not fit" / "failed: ..." / "invalid: ...".
BenchRow make_row(BenchRow row, const Problem& problem, const MethodRun& run);
/// run_method (method "throughput": the throughput placer) + make_row + the plan's stream figures; an
/// exception (an internal check) becomes a failed row.
BenchRow run_in_process(const BenchRow& base, const Problem& problem, const std::string& method,
                        const PlaceOptions& options, const StreamOptions& stream);
/// Appends one row as a JSON line to DIR/rows.jsonl and flushes it to disk.
Status append_row(const std::string& dir, const BenchRow& row);

/// What running the grid produced.
struct GridOutcome {
  std::vector<BenchRow> rows;     ///< the rows of this run, in finishing order
  Status status = Ok{};           ///< a system failure (fork, pipe)
  std::optional<BenchRow> invalid;  ///< the first invalid plan (the run stopped dispatching after it)
  std::string append_error;       ///< rows.jsonl could not be written
};
/// Runs the combinations of `tasks` (`total` of them; `skipped` done before, for the progress).
GridOutcome run_grid(const BenchOptions& options, std::vector<BenchTask> tasks, int total, int skipped);

}  // namespace moirai
