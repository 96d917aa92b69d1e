// Helpers shared by the bench sources (not public): file names, method order, the row grid and speed-ups.
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "moirai/bench.h"

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

}  // namespace moirai
