// Terminal tables (plain text, aligned columns): the summary of one plan and the `--method all` comparison.
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "moirai/report.h"

namespace moirai {
namespace {

/// Aligned text table: column 0 left-aligned, the rest right-aligned unless `left` says otherwise.
std::string render(const std::vector<std::vector<std::string>>& rows, const std::vector<bool>& left) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t c = 0; c < r.size(); ++c) {
      if (width.size() <= c) width.push_back(0);
      // Count UTF-8 code points, not bytes, so "·" or "→" do not break the alignment.
      size_t len = 0;
      for (unsigned char ch : r[c]) len += (ch & 0xC0) != 0x80;
      width[c] = std::max(width[c], len);
    }
  std::string out;
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    std::string line;
    for (size_t c = 0; c < rows[ri].size(); ++c) {
      size_t len = 0;
      for (unsigned char ch : rows[ri][c]) len += (ch & 0xC0) != 0x80;
      const std::string pad(width[c] - len, ' ');
      const bool l = c < left.size() ? left[c] : c == 0;
      line += (c ? "  " : "") + (l ? rows[ri][c] + pad : pad + rows[ri][c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (ri == 0) {
      size_t total = 0;
      for (size_t c = 0; c < width.size(); ++c) total += width[c] + (c ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

std::string peak_cell(const CostTable& table, double peak, double cap) {
  return human_memory(table, peak) + (cap > 0 && peak > cap ? " (over)" : "");
}

}  // namespace

std::string format_plan_summary(const Plan& plan) {
  const CostTable& t = plan.table;
  const Schedule& s = plan.schedule;
  std::string status = plan.status_text();
  if (!plan.result.mode.empty()) status += ", " + plan.result.mode;
  if (auto g = plan.gap()) status += fmt::format(", gap {:.2f}%", *g * 100);
  std::string out = fmt::format("{} on {}\n", t.name, t.cluster);
  out += fmt::format("  method          {} ({}){}\n", plan.method, status,
                     plan.objective == "latency" ? "" : ", objective " + plan.objective);
  out += fmt::format("  latency         {}{}\n", human_time(s.makespan_ms),
                     plan.result.lower_bound_ms > 0 ? " (lower bound " + human_time(plan.result.lower_bound_ms) + ")" : "");
  if (auto llm = llm_figures(plan)) {
    if (llm->phase == "decode")
      out += fmt::format("  decode          {:.1f} tokens/s ({} per token), KV cache {}\n", llm->tokens_per_s,
                         human_time(llm->ms_per_token), human_bytes(llm->kv_cache_bytes));
    else
      out += fmt::format("  first token     {} (prefill)\n", human_time(llm->time_to_first_token_ms));
  }
  if (plan.max_context) out += fmt::format("  largest context {} tokens fit this placement\n", *plan.max_context);
  if (plan.stream) {
    const StreamFigures& f = *plan.stream;
    if (f.tokens_per_s > 0)
      out += fmt::format("  throughput      {:.4g} tokens/s ({} decode steps, {} sequences in flight, each with its "
                         "KV cache; period {}, bottleneck {})\n",
                         f.tokens_per_s, f.requests, f.sequences, human_time(f.period_ms), f.bottleneck);
    else
      out += fmt::format("  throughput      {:.4g} requests/s ({} requests, {} in flight; period {}, bottleneck {})\n",
                         f.throughput_rps, f.requests, f.in_flight, human_time(f.period_ms), f.bottleneck);
    out += fmt::format("  stream latency  p50 {}, p90 {}, max {}\n", human_time(f.latency_p50_ms),
                       human_time(f.latency_p90_ms), human_time(f.latency_max_ms));
  }
  out += fmt::format("  placement time  {}\n", human_time(plan.placement_time_s * 1000));
  if (plan.result.train_time_s > 0) out += fmt::format("  training time   {}\n", human_time(plan.result.train_time_s * 1000));
  out += fmt::format("  transfers       {}\n\n", s.transfers.size());

  // Operators per device; a split operator counts once on every device that runs one of its parts.
  std::vector<int> ops(static_cast<size_t>(t.num_devices()), 0);
  const auto& device = plan.result.placement.device;
  for (size_t op = 0; op < device.size(); ++op) {
    if (op < plan.parts.size() && !plan.parts[op].empty()) {
      for (const OpPart& part : plan.parts[op])
        if (part.device >= 0 && part.device < t.num_devices()) ++ops[static_cast<size_t>(part.device)];
    } else if (device[op] >= 0 && device[op] < t.num_devices()) {
      ++ops[static_cast<size_t>(device[op])];
    }
  }
  std::vector<std::vector<std::string>> rows{{"device", "ops", "busy", "util", "peak memory", "capacity"}};
  for (DeviceId d = 0; d < t.num_devices(); ++d) {
    const auto i = static_cast<size_t>(d);
    const double busy = i < s.busy_ms.size() ? s.busy_ms[i] : 0;
    const double peak = i < s.peak_memory.size() ? s.peak_memory[i] : 0;
    const double cap = i < t.capacity.size() ? t.capacity[i] : 0;
    rows.push_back({t.device_names[i], std::to_string(ops[i]), human_time(busy),
                    fmt::format("{:.0f}%", s.makespan_ms > 0 ? busy / s.makespan_ms * 100 : 0.0), peak_cell(t, peak, cap),
                    human_memory(t, cap)});
  }
  return out + render(rows, {});
}

ComparisonRow comparison_row(const Plan& plan) {
  ComparisonRow row;
  row.method = plan.method;
  row.status = plan.status_text();
  if (auto g = plan.gap()) row.status += fmt::format(" (gap {:.2f}%)", *g * 100);
  row.latency_ms = plan.schedule.makespan_ms;
  row.placement_time_s = plan.placement_time_s;
  row.peak_memory = plan.schedule.peak_memory;
  for (size_t i = 0; i < row.peak_memory.size() && i < plan.table.capacity.size(); ++i)
    if (row.peak_memory[i] > plan.table.capacity[i]) row.fits = false;
  return row;
}

std::string format_comparison(std::vector<ComparisonRow> rows, const CostTable& table, double baseline_ms) {
  // Best first: plans that fit, then those over capacity, then failures; by latency (equal up to rounding
  // noise counts as a tie), then by placement time, then by method name.
  auto rank = [](const ComparisonRow& r) { return !r.error.empty() ? 2 : r.fits ? 0 : 1; };
  std::stable_sort(rows.begin(), rows.end(), [&](const ComparisonRow& a, const ComparisonRow& b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    const double tol = 1e-9 * std::max(std::fabs(a.latency_ms), std::fabs(b.latency_ms));
    if (a.error.empty() && std::fabs(a.latency_ms - b.latency_ms) > tol) return a.latency_ms < b.latency_ms;
    if (a.placement_time_s != b.placement_time_s) return a.placement_time_s < b.placement_time_s;
    return a.method < b.method;
  });
  const bool speedup = baseline_ms > 0;
  std::vector<std::string> head{"method", "latency"};
  if (speedup) head.push_back("speed-up");
  for (const auto& d : table.device_names) head.push_back(d + " peak");
  head.push_back("placement");
  head.push_back("status");
  std::vector<bool> left(head.size(), false);
  left[0] = true;
  left.back() = true;
  std::vector<std::vector<std::string>> out{head};
  std::vector<std::string> notes;
  for (const auto& r : rows) {
    std::vector<std::string> line{r.method};
    if (!r.error.empty()) {
      line.push_back("-");
      if (speedup) line.push_back("-");
      for (int d = 0; d < table.num_devices(); ++d) line.push_back("-");
      line.push_back(r.placement_time_s > 0 ? human_time(r.placement_time_s * 1000) : "-");
      // The full reason goes below the table so one long message does not stretch every row.
      line.push_back(fmt::format("failed (note {})", notes.size() + 1));
      notes.push_back(r.method + ": " + r.error);
    } else {
      line.push_back(human_time(r.latency_ms));
      if (speedup) line.push_back(r.latency_ms > 0 ? fmt::format("{:.2f}x", baseline_ms / r.latency_ms) : "-");
      for (size_t d = 0; d < table.device_names.size(); ++d) {
        const double peak = d < r.peak_memory.size() ? r.peak_memory[d] : 0;
        line.push_back(peak_cell(table, peak, d < table.capacity.size() ? table.capacity[d] : 0));
      }
      line.push_back(human_time(r.placement_time_s * 1000));
      line.push_back(r.status + (r.fits ? "" : ", does not fit"));
    }
    out.push_back(std::move(line));
  }
  std::string text = render(out, left);
  for (size_t i = 0; i < notes.size(); ++i) text += fmt::format("note {}: {}\n", i + 1, notes[i]);
  if (speedup) text += fmt::format("speed-up over the best single device ({}, memory ignored)\n", human_time(baseline_ms));
  return text;
}

}  // namespace moirai
