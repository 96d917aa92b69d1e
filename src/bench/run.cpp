// The bench entry point: checks the inputs, expands the (model, cluster, method) grid, reads OUT/rows.jsonl to
// skip what is done (dropping invalid rows, failed ones on request, and a torn last line), runs the rest
// (runner.cpp) and writes the outputs from all rows.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "internal.h"
#include "moirai/report.h"

namespace moirai {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::tuple<std::string, std::string, std::string>;  // model, cluster, method

bool is_instance(const std::string& path) { return fs::path(path).extension() == ".json"; }

}  // namespace

std::string bench_settings(const BenchOptions& o) {
  return fmt::format("time_limit_s={} gap={} seed={} episodes={} generations={} population={} contention={} "
                     "fusion={} max_nodes={}",
                     o.place.time_limit_s, o.place.gap, o.place.seed, o.place.episodes, o.place.generations,
                     o.place.population, o.place.sim.contention ? "on" : "off", o.coarsen.fusion,
                     o.coarsen.max_nodes) +
         // The stream's settings only when not the defaults, so rows written before streams still resume.
         (o.stream.requests != 64 || o.stream.max_in_flight != 0 || o.stream.arrival_rps != 0
              ? fmt::format(" requests={} in_flight={} arrival_rps={}", o.stream.requests, o.stream.max_in_flight,
                            o.stream.arrival_rps)
              : std::string()) +
         (o.context > 0 ? fmt::format(" context={}", o.context) : std::string());
}

Expected<std::vector<std::string>> expand_models(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(in, ec)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".onnx" && name.find(".weights.") == std::string::npos)
          found.push_back(e.path().string());
      }
      if (found.empty()) return Error{in + ": no *.onnx models in this directory"};
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(in, ec)) {
      out.push_back(in);
    } else {
      return Error{in + ": no such model file or directory"};
    }
  }
  std::map<std::string, std::string> by_name;
  for (const auto& path : out) {
    const std::string name = fs::path(path).stem().string();
    if (auto [it, fresh] = by_name.emplace(name, path); !fresh)
      return Error{fmt::format("{} and {}: two models named '{}' (rows are keyed by name)", it->second, path, name)};
  }
  return out;
}

Expected<BenchResult> run_bench(const BenchOptions& o) {
  if (o.out_dir.empty()) return Error{"bench: no output directory", "out_dir"};
  if (o.methods.empty()) return Error{"bench: no methods", "methods"};
  MOIRAI_ASSIGN_OR_RETURN(auto models, expand_models(o.models));
  if (models.empty()) return Error{"bench: no models", "models"};
  std::vector<std::pair<std::string, std::string>> clusters;  // (path, name)
  for (const auto& c : o.clusters) {
    if (!fs::exists(c)) return Error{c + ": no such cluster file"};
    const std::string name = fs::path(c).stem().string();
    for (const auto& [p, n] : clusters)
      if (n == name) return Error{fmt::format("{} and {}: two clusters named '{}'", p, c, name)};
    clusters.emplace_back(c, name);
  }
  for (const auto& m : models)  // before anything is written
    if (!is_instance(m) && clusters.empty()) return Error{m + ": a model needs a cluster file", "clusters"};
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create the directory: {}", o.out_dir, ec.message())};

  // Earlier rows: keep what is done, re-run invalid rows (and failed ones on request).
  MOIRAI_ASSIGN_OR_RETURN(auto earlier, read_bench_rows(o.out_dir));
  const std::string settings = bench_settings(o);
  std::vector<BenchRow> kept;
  std::set<Key> done;
  for (auto& r : earlier) {
    if (r.settings != settings)
      return Error{fmt::format("{}: holds results made with other settings ({}; now {}): use the same settings or "
                               "another output directory", rows_path(o.out_dir), r.settings, settings), "out_dir"};
    if (r.invalid() || (o.retry_failed && r.failed())) continue;
    if (!done.insert({r.model, r.cluster, r.method}).second) continue;  // a duplicate line: keep the first
    kept.push_back(std::move(r));
  }
  std::ifstream raw(rows_path(o.out_dir), std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
  if (kept.size() != earlier.size() || (!text.empty() && text.back() != '\n')) {  // drop re-runs and torn tail
    std::string rewritten;
    for (const auto& r : kept) rewritten += bench_row_json(r) + "\n";
    MOIRAI_TRY(write_file_atomic(rows_path(o.out_dir), rewritten));
  }

  std::vector<BenchTask> tasks;
  int total = 0, skipped = 0;
  for (const auto& m : models) {
    const std::string model = fs::path(m).stem().string();
    std::vector<std::pair<std::string, std::string>> targets = clusters;
    if (is_instance(m)) targets = {{"", "instance"}};
    for (const auto& [cpath, cname] : targets) {
      BenchTask t{m, model, cpath, cname, {}};
      for (const auto& method : o.methods) {
        if (done.count({model, cname, method})) ++skipped;
        else if (std::find(t.methods.begin(), t.methods.end(), method) == t.methods.end()) t.methods.push_back(method);
      }
      total += static_cast<int>(t.methods.size());
      if (!t.methods.empty()) tasks.push_back(std::move(t));
    }
  }

  const auto started = Clock::now();
  GridOutcome grid = run_grid(o, std::move(tasks), total, skipped);

  BenchResult result;
  result.rows = std::move(kept);
  result.ran = static_cast<int>(grid.rows.size());
  for (auto& r : grid.rows) result.rows.push_back(std::move(r));
  sort_bench_rows(result.rows);
  result.skipped = skipped;
  result.elapsed_s = std::chrono::duration<double>(Clock::now() - started).count();
  auto written = write_bench_outputs(result.rows, o.out_dir, o.reference);
  if (!grid.status) return grid.status.error();
  if (!grid.append_error.empty()) return Error{grid.append_error};
  if (const auto& bad = grid.invalid)
    return Error{fmt::format("bench: {} on {} with {} produced an invalid plan: {} (rows written to {})", bad->model,
                             bad->cluster, bad->method, bad->status.reason, o.out_dir)};
  if (!written) return written.error();
  result.written = std::move(*written);
  return result;
}

}  // namespace moirai
