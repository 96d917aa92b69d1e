// The MILP placer's benchmark table (issue 7): for each model in models/ on hetero-gpu-server and edge-4 after
// coarsening (onnxruntime fusion, then the largest --max-nodes budget from a ladder at which the exact model is
// attempted), one MILP run with a short time limit: nodes, binaries, rows, solve time, status, makespan, bound
// and gap; then the GoogLeNet instance (60 s) against every heuristic and the best single device.
// A solve takes seconds to a minute, which Google Benchmark's repetition model does not fit: this is a plain
// program printing a Markdown table (it still links benchmark, like every bench/ target).
//   bench_milp [--seconds S] [--only SUBSTRING] [--clusters a,b] [--googlenet-seconds S] [--no-googlenet]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "moirai/pipeline.h"
#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "place/milp_formulation.h"
#include "support/random_table.h"

namespace {

using namespace moirai;

// The placer's own test for the exact model (milp.cpp): at most 150 operators and 800 binaries.
bool exact_attempted(const CostTable& t, int& binaries, int& rows) {
  FormulationOptions fo;
  fo.upper_bound = 1e6;
  auto f = build_formulation(t, fo);
  if (!f.ok()) return binaries = rows = -1, false;
  binaries = f->model.num_integer();
  rows = f->model.num_rows();
  return t.num_ops() <= 150 && binaries <= 800;
}

struct Row {
  std::string model, cluster, coarsening;
  int nodes = 0, binaries = 0, rows = 0;
  double seconds = 0, makespan = 0, simulated = 0, bound = 0;
  std::string status, mode, note;
};

void print_header() {
  std::printf("| model | cluster | coarsening | nodes | binaries | rows | solve s | status (mode) | makespan ms | "
              "simulated ms | bound ms | gap |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
}

void print(const Row& r) {
  if (!r.note.empty()) {
    std::printf("| %s | %s | %s | %d | | | | %s | | | | |\n", r.model.c_str(), r.cluster.c_str(), r.coarsening.c_str(),
                r.nodes, r.note.c_str());
  } else {
    const double gap = r.makespan > 0 ? 100 * (r.makespan - r.bound) / r.makespan : 0;
    std::printf("| %s | %s | %s | %d | %d | %d | %.1f | %s (%s) | %.4g | %.4g | %.4g | %.1f%% |\n", r.model.c_str(),
                r.cluster.c_str(), r.coarsening.c_str(), r.nodes, r.binaries, r.rows, r.seconds, r.status.c_str(),
                r.mode.c_str(), r.makespan, r.simulated, r.bound, gap);
  }
  std::fflush(stdout);
}

Row run_model(const std::string& model, const std::string& cluster, double seconds) {
  Row row;
  row.model = std::filesystem::path(model).stem().string();
  row.cluster = cluster;
  std::optional<Problem> problem;
  for (int budget : {0, 120, 80, 60, 40, 25}) {
    ProblemOptions po;
    po.input = model;
    po.cluster_path = testing::source_path("clusters/" + cluster + ".json");
    po.coarsen.fusion = "onnxruntime";
    po.coarsen.max_nodes = budget;
    auto p = load_problem(po);
    if (!p.ok()) return row.note = "load failed: " + p.error().message, row;
    row.nodes = p->table.num_ops();
    row.coarsening = budget ? fmt::format("max-nodes {}", budget) : "fusion only";
    problem = std::move(*p);
    if (exact_attempted(problem->table, row.binaries, row.rows)) break;
  }
  const CostTable& t = problem->table;
  PlaceOptions o;
  o.time_limit_s = seconds;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*make_placer("milp"))->place(t, o);
  row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) return row.note = r.error().message, row;
  row.status = plan_status_name(r->status);
  row.mode = r->mode;
  row.makespan = r->objective_ms;
  row.bound = r->lower_bound_ms;
  const Schedule s = simulate(t, r->placement, o.sim);
  row.simulated = s.makespan_ms;
  if (!s.over_capacity(t).empty()) row.status += ", over capacity";
  return row;
}

void googlenet(double seconds) {
  auto t = load_instance(testing::source_path("instances/GoogLeNet.json"));
  if (!t.ok()) {
    std::printf("GoogLeNet: %s\n", t.error().message.c_str());
    return;
  }
  PlaceOptions o;
  o.time_limit_s = seconds;
  std::printf("\nGoogLeNet instance (%d operators, %d devices), MILP limit %.0f s:\n\n| method | makespan ms |\n|---|---|\n",
              t->num_ops(), t->num_devices(), seconds);
  for (const auto& name : placer_names()) {
    if (name == "milp" || name == "placeto" || name == "geneflow") continue;
    PlaceOptions ho = o;
    ho.time_limit_s = std::min(seconds, 10.0);
    auto r = (*make_placer(name))->place(*t, ho);
    if (!r.ok()) continue;
    const Schedule s = simulate(*t, r->placement, o.sim);
    std::printf("| %s | %.6g%s |\n", name.c_str(), s.makespan_ms, s.over_capacity(*t).empty() ? "" : " (over capacity)");
  }
  Placement single;
  single.device.assign(static_cast<size_t>(t->num_ops()), 0);
  std::printf("| device 0 alone | %.6g |\n", simulate(*t, single, o.sim).makespan_ms);
  int binaries = 0, rows = 0;
  exact_attempted(*t, binaries, rows);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = (*make_placer("milp"))->place(*t, o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    std::printf("| milp | %s |\n", r.error().message.c_str());
    return;
  }
  const Schedule s = simulate(*t, r->placement, o.sim);
  std::printf("| milp | %.6g (simulated %.6g) |\n\nmilp: %s (%s), %.1f s, exact model would have %d binaries and %d rows, "
              "bound %.6g ms, gap %.1f%%\n",
              r->objective_ms, s.makespan_ms, plan_status_name(r->status), r->mode.c_str(), secs, binaries, rows,
              r->lower_bound_ms, 100 * (r->objective_ms - r->lower_bound_ms) / r->objective_ms);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10, google_seconds = 60;
  bool with_googlenet = true, with_models = true;
  std::string only;
  std::vector<std::string> clusters{"hetero-gpu-server", "edge-4"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--only") only = next();
    else if (a == "--googlenet-seconds") google_seconds = std::atof(next().c_str());
    else if (a == "--no-googlenet") with_googlenet = false;
    else if (a == "--no-models") with_models = false;
    else if (a == "--clusters") {
      clusters.clear();
      const std::string list = next();
      for (size_t from = 0; from <= list.size();) {
        const size_t comma = std::min(list.find(',', from), list.size());
        if (comma > from) clusters.push_back(list.substr(from, comma - from));
        from = comma + 1;
      }
    } else {
      std::fprintf(stderr, "usage: bench_milp [--seconds S] [--only SUBSTRING] [--clusters a,b] "
                           "[--googlenet-seconds S] [--no-googlenet] [--no-models]\n");
      return 2;
    }
  }
  if (with_models) {
    std::vector<std::string> models;
    for (const auto& e : std::filesystem::directory_iterator(testing::source_path("models"))) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() != ".onnx" || name.find(".weights.") != std::string::npos) continue;
      if (!only.empty() && name.find(only) == std::string::npos) continue;
      models.push_back(e.path().string());
    }
    std::sort(models.begin(), models.end());
    std::printf("MILP per model, %.0f s limit each (onnxruntime fusion, then --max-nodes until the exact model fits):\n\n",
                seconds);
    print_header();
    for (const auto& m : models)
      for (const auto& c : clusters) print(run_model(m, c, seconds));
  }
  if (with_googlenet) googlenet(google_seconds);
  return 0;
}
