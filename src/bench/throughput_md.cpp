// throughput.md: the bench seen as a server. Per cluster and model, the rate (requests/s, steady state under
// the bench's stream) of the best single device, of the latency plan (the reference method) and of the
// throughput plan, with their ratios, latencies and the throughput plan's device utilisation.
#include <fmt/format.h>

#include <algorithm>

#include "internal.h"

namespace moirai {
namespace {

// A rate; marked with a dagger when the stream overflows a device's memory (listed under the table).
std::string rate(const BenchRow* r) {
  if (!r) return "-";
  if (!r->throughput_rps) return r->has_latency() ? "-" : r->status_text();
  return fmt::format("{:.4g}{}", *r->throughput_rps, r->stream_note.empty() ? "" : " (†)");
}

std::string ratio(const BenchRow* a, const BenchRow* b) {
  if (!a || !b || !a->throughput_rps || !b->throughput_rps || *b->throughput_rps <= 0) return "-";
  return fmt::format("{:.2f}x", *a->throughput_rps / *b->throughput_rps);
}

}  // namespace

std::string bench_throughput_md(const std::vector<BenchRow>& rows, const std::string& reference) {
  const BenchGrid grid(rows);
  if (std::find(grid.methods.begin(), grid.methods.end(), "throughput") == grid.methods.end()) return "";
  std::string out = "# Serving a stream: throughput plan vs latency plan vs best single device\n\n";
  for (const auto& r : rows)
    if (!r.settings.empty()) {
      out += fmt::format("Settings: `{}`. Rates are requests per second in steady state under the bench's stream "
                         "(first quarter of completions ignored); for decode models (`*_decode`) a request is one "
                         "decode step of a sequence, so the rate is tokens/s, and every sequence in flight holds its "
                         "own KV cache. Latency is one request alone, p50 is under the stream.\n\n",
                         r.settings);
      break;
    }
  for (const auto& c : grid.clusters) {
    out += fmt::format("## {}\n\n", c);
    out += fmt::format("| model | single: req/s | {0}: latency ms | {0}: req/s | throughput: latency ms | throughput: p50 "
                       "ms | throughput: req/s | x {0} | x single | period ms (bottleneck load) | utilisation |\n",
                       reference);
    out += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
    for (const auto& m : grid.models.at(c)) {
      const BenchRow* single = grid.find(c, m, "single");
      const BenchRow* ref = grid.find(c, m, reference);
      const BenchRow* thr = grid.find(c, m, "throughput");
      std::string util;
      if (thr)
        for (size_t d = 0; d < thr->stream_utilisation.size() && d < thr->devices.size(); ++d)
          util += fmt::format("{}{} {:.0f}%", d ? ", " : "", thr->devices[d], thr->stream_utilisation[d] * 100);
      auto lat = [](const BenchRow* r) { return r && r->has_latency() ? format_ms(*r->latency_ms) : std::string("-"); };
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", m, rate(single), lat(ref), rate(ref),
                         lat(thr), thr && thr->stream_p50_ms ? format_ms(*thr->stream_p50_ms) : "-", rate(thr),
                         ratio(thr, ref), ratio(thr, single), thr && thr->period_ms > 0 ? format_ms(thr->period_ms) : "-",
                         util.empty() ? "-" : util);
    }
    std::string notes;
    for (const auto& m : grid.models.at(c))
      for (const auto& method : grid.methods)
        if (const BenchRow* r = grid.find(c, m, method); r && !r->stream_note.empty())
          notes += fmt::format("- † {} / {}: {}\n", m, method, r->stream_note);
    out += notes.empty() ? "\n" : "\n" + notes + "\n";
  }
  return out;
}

}  // namespace moirai
