// summary.md: the paper-style tables of a bench. Per cluster: latency (models as rows, methods as columns,
// the best in bold, "does not fit" where no plan fits), the speed-up of the reference method (the MILP) over
// every other method with geometric mean and maximum, and placement times. Rows without a plan are listed
// with their reason at the end, so nothing is dropped silently.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "internal.h"
#include "moirai/report.h"

namespace moirai {

std::string format_ms(double ms) {
  const double a = std::abs(ms);
  if (a >= 100) return fmt::format("{:.0f}", ms);
  if (a >= 10) return fmt::format("{:.1f}", ms);
  if (a >= 1) return fmt::format("{:.2f}", ms);
  if (a >= 0.01) return fmt::format("{:.3f}", ms);
  return fmt::format("{:.2g}", ms);
}

BenchGrid::BenchGrid(const std::vector<BenchRow>& rows) {
  std::set<std::string> clusters_seen;
  std::map<std::string, std::set<std::string>> models_seen;
  std::vector<std::string> methods_seen;
  for (const auto& r : rows) {
    clusters_seen.insert(r.cluster);
    models_seen[r.cluster].insert(r.model);
    if (std::find(methods_seen.begin(), methods_seen.end(), r.method) == methods_seen.end())
      methods_seen.push_back(r.method);
    at[{r.cluster, r.model, r.method}] = &r;
  }
  clusters.assign(clusters_seen.begin(), clusters_seen.end());
  for (const auto& [c, ms] : models_seen) models[c].assign(ms.begin(), ms.end());
  std::sort(methods_seen.begin(), methods_seen.end(), method_before);
  methods = std::move(methods_seen);
}

const BenchRow* BenchGrid::find(const std::string& cluster, const std::string& model,
                                const std::string& method) const {
  const auto it = at.find({cluster, model, method});
  return it == at.end() ? nullptr : it->second;
}

std::vector<Speedup> speedups(const BenchGrid& grid, const std::string& reference) {
  std::vector<Speedup> out;
  for (const auto& c : grid.clusters)
    for (const auto& m : grid.models.at(c)) {
      const BenchRow* ref = grid.find(c, m, reference);
      if (!ref || !ref->has_latency() || *ref->latency_ms <= 0) continue;
      for (const auto& b : grid.methods) {
        if (b == reference) continue;
        const BenchRow* base = grid.find(c, m, b);
        if (base && base->has_latency()) out.push_back({c, m, b, *base->latency_ms / *ref->latency_ms});
      }
    }
  return out;
}

double geometric_mean(const std::vector<double>& xs) {
  if (xs.empty()) return 0;
  double s = 0;
  for (double x : xs) s += std::log(x);
  return std::exp(s / static_cast<double>(xs.size()));
}

namespace {

// The table cell of a row without a latency.
std::string no_plan_cell(const BenchRow& r) {
  switch (r.status.outcome) {
    case RowOutcome::does_not_fit: return "does not fit";
    case RowOutcome::invalid: return "INVALID";
    case RowOutcome::killed: return "time limit";
    default: return "failed";
  }
}

std::string header(const std::string& first, const std::vector<std::string>& cols) {
  std::string h = "| " + first + " |", sep = "|---|";
  for (const auto& c : cols) h += " " + c + " |", sep += "---:|";
  return h + "\n" + sep + "\n";
}

void latency_table(std::string& out, const BenchGrid& g, const std::string& c) {
  out += "Latency in ms (simulated makespan; **bold**: best per model).\n\n";
  out += header("model (nodes)", g.methods);
  for (const auto& m : g.models.at(c)) {
    double best = INFINITY;
    int nodes_before = 0, nodes_after = 0;
    for (const auto& meth : g.methods)
      if (const BenchRow* r = g.find(c, m, meth)) {
        if (r->has_latency()) best = std::min(best, *r->latency_ms);
        if (r->nodes_after > 0) nodes_before = r->nodes_before, nodes_after = r->nodes_after;
      }
    out += fmt::format("| {} ({} → {}) |", m, nodes_before, nodes_after);
    for (const auto& meth : g.methods) {
      const BenchRow* r = g.find(c, m, meth);
      std::string cell = "–";
      if (r && r->has_latency()) {
        cell = format_ms(*r->latency_ms);
        if (format_ms(*r->latency_ms) == format_ms(best)) cell = "**" + cell + "**";
      } else if (r) {
        cell = no_plan_cell(*r);
      }
      out += " " + cell + " |";
    }
    out += "\n";
  }
  out += "\n";
}

void speedup_table(std::string& out, const BenchGrid& g, const std::string& c, const std::string& ref) {
  std::vector<std::string> bases;
  for (const auto& b : g.methods)
    if (b != ref) bases.push_back(b);
  out += fmt::format("Speed-up of {} over each method (its latency / {}'s latency; > 1: {} is faster). "
                     "\"{} only\": only {} found a plan that fits.\n\n", ref, ref, ref, ref, ref);
  out += header("model", bases);
  std::map<std::string, std::vector<double>> per_base;
  for (const auto& m : g.models.at(c)) {
    const BenchRow* r = g.find(c, m, ref);
    out += "| " + m + " |";
    for (const auto& b : bases) {
      const BenchRow* base = g.find(c, m, b);
      std::string cell = "–";
      if (r && r->has_latency() && base && base->has_latency()) {
        const double s = *base->latency_ms / *r->latency_ms;
        per_base[b].push_back(s);
        cell = fmt::format("{:.2f}×", s);
      } else if (r && r->has_latency() && base && base->status.outcome == RowOutcome::does_not_fit) {
        cell = ref + " only";
      }
      out += " " + cell + " |";
    }
    out += "\n";
  }
  for (const auto& [label, max] : {std::pair{"**geometric mean**", false}, std::pair{"**maximum**", true}}) {
    out += std::string("| ") + label + " |";
    for (const auto& b : bases) {
      const auto& xs = per_base[b];
      if (xs.empty()) {
        out += " – |";
        continue;
      }
      const double v = max ? *std::max_element(xs.begin(), xs.end()) : geometric_mean(xs);
      out += fmt::format(" {:.2f}× |", v);
    }
    out += "\n";
  }
  out += "\n";
}

void time_table(std::string& out, const BenchGrid& g, const std::string& c) {
  out += "Placement time (wall clock of the method; Placeto includes its training).\n\n";
  out += header("model", g.methods);
  for (const auto& m : g.models.at(c)) {
    out += "| " + m + " |";
    for (const auto& meth : g.methods) {
      const BenchRow* r = g.find(c, m, meth);
      out += " " + (r ? human_time(r->placement_time_s * 1000) : std::string("–")) + " |";
    }
    out += "\n";
  }
  out += "\n";
}

// Headline: per cluster, geometric mean and maximum speed-up of the reference over each baseline.
void headline(std::string& out, const BenchGrid& g, const std::string& ref) {
  const auto all = speedups(g, ref);
  if (all.empty()) return;
  std::vector<std::string> bases;
  for (const auto& b : g.methods)
    if (b != ref) bases.push_back(b);
  out += fmt::format("## Headline: speed-up of {} (geometric mean / maximum over the models)\n\n", ref);
  out += header("cluster", bases);
  for (const auto& c : g.clusters) {
    out += "| " + c + " |";
    for (const auto& b : bases) {
      std::vector<double> xs;
      for (const auto& s : all)
        if (s.cluster == c && s.baseline == b) xs.push_back(s.value);
      out += xs.empty() ? std::string(" – |")
                        : fmt::format(" {:.2f}× / {:.2f}× |", geometric_mean(xs),
                                      *std::max_element(xs.begin(), xs.end()));
    }
    out += "\n";
  }
  out += "\n";
}

// The comparisons a reviewer asks for: the reference against the best of the Moirai paper's three baselines and
// against the best of every other whole-operator method (GenEFlow splits operators: another problem), one number
// per (cluster, model).
void fair_headline(std::string& out, const BenchGrid& g, const std::string& ref) {
  const std::vector<std::string> paper{"m-topo", "m-etf", "m-sct"};
  auto best_of = [&](const std::string& c, const std::string& m, bool paper_only) {
    double best = 0;
    for (const auto& b : g.methods) {
      if (b == ref || b == "geneflow" || (paper_only && std::find(paper.begin(), paper.end(), b) == paper.end())) continue;
      const BenchRow* r = g.find(c, m, b);
      if (r && r->has_latency() && (best == 0 || *r->latency_ms < best)) best = *r->latency_ms;
    }
    return best;
  };
  std::string rows;
  for (const auto& [label, paper_only] : {std::pair{"best of m-topo, m-etf, m-sct", true}, std::pair{"best other whole-operator method", false}}) {
    std::vector<double> xs;
    for (const auto& c : g.clusters)
      for (const auto& m : g.models.at(c)) {
        const BenchRow* r = g.find(c, m, ref);
        const double base = best_of(c, m, paper_only);
        if (r && r->has_latency() && *r->latency_ms > 0 && base > 0) xs.push_back(base / *r->latency_ms);
      }
    if (xs.empty()) continue;
    rows += fmt::format("| {} | {} | {:.3f}× | {:.3f}× | {:.3f}× |\n", label, xs.size(), geometric_mean(xs),
                        *std::min_element(xs.begin(), xs.end()), *std::max_element(xs.begin(), xs.end()));
  }
  if (rows.empty()) return;
  out += fmt::format("## Speed-up of {} over the best baseline of each problem\n\n", ref);
  out += "| against | problems | geometric mean | minimum | maximum |\n|---|---|---|---|---|\n" + rows + "\n";
}

// What each step of the reference gave (rows that report it): warm start, local search, final plan, bound.
void ablation_table(std::string& out, const BenchGrid& g, const std::string& c, const std::string& ref) {
  std::string rows;
  for (const auto& m : g.models.at(c)) {
    const BenchRow* r = g.find(c, m, ref);
    if (!r || !r->has_latency() || r->warm_start_method.empty()) continue;
    rows += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", m, r->warm_start_method, format_ms(r->warm_start_ms),
                        format_ms(r->polished_ms), format_ms(*r->latency_ms),
                        r->lower_bound_ms > 0 ? format_ms(r->lower_bound_ms) : std::string("–"),
                        r->lower_bound_source.empty() ? std::string("–") : r->lower_bound_source,
                        r->gap ? fmt::format("{:.1f}%", 100 * *r->gap) : std::string("–"));
  }
  if (rows.empty()) return;
  out += fmt::format("Where {}'s plan comes from (ms; warm start and local search in the MILP's own schedule model, which "
                     "charges every edge; final is simulated).\n\n", ref);
  out += "| model | warm start | warm ms | after local search | final | lower bound | bound from | gap |\n"
         "|---|---|---|---|---|---|---|---|\n" + rows + "\n";
}

std::string one_line(std::string s, size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '|', '/');
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

}  // namespace

std::string bench_summary_md(const std::vector<BenchRow>& rows, const std::string& reference) {
  const BenchGrid g(rows);
  std::string out = "# Bench results\n\n";
  int with_plan = 0;
  for (const auto& r : rows) with_plan += r.has_latency() ? 1 : 0;
  out += fmt::format("{} rows ({} with a plan that fits) over {} cluster(s) and {} method(s).", rows.size(),
                     with_plan, g.clusters.size(), g.methods.size());
  if (!rows.empty() && !rows.front().settings.empty()) out += " Settings: `" + rows.front().settings + "`.";
  out += " Latencies are simulated makespans of validated plans; model sizes are operator counts before → after "
         "coarsening.\n\n";
  const bool has_ref = std::find(g.methods.begin(), g.methods.end(), reference) != g.methods.end();
  if (has_ref) headline(out, g, reference), fair_headline(out, g, reference);
  for (const auto& c : g.clusters) {
    out += "## " + c + "\n\n";
    latency_table(out, g, c);
    if (has_ref && g.methods.size() > 1) speedup_table(out, g, c, reference);
    if (has_ref) ablation_table(out, g, c, reference);
    time_table(out, g, c);
  }
  std::string missing;
  for (const auto& r : rows)
    if (!r.has_latency())
      missing += fmt::format("| {} | {} | {} | {} | {} |\n", r.cluster, r.model, r.method,
                             one_line(r.status_text(), 60), one_line(r.note, 160));
  if (!missing.empty())
    out += "## Rows without a plan\n\n| cluster | model | method | status | note |\n|---|---|---|---|---|\n" +
           missing + "\n";
  return out;
}

}  // namespace moirai
