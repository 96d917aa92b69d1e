// Report helpers: human-readable units, and assembling a Plan.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "moirai/report.h"

namespace moirai {

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  const double a = std::fabs(bytes);
  if (a < 1024) return fmt::format("{:.0f} B", bytes);
  int u = 0;
  double v = bytes;
  while (std::fabs(v) >= 1024 && u < 4) v /= 1024, ++u;
  return fmt::format(fmt::runtime(std::fabs(v) >= 100 ? "{:.0f} {}" : std::fabs(v) >= 10 ? "{:.1f} {}" : "{:.2f} {}"), v, units[u]);
}

std::string human_time(double ms) {
  const double a = std::fabs(ms);
  if (a == 0) return "0 ms";
  if (a < 1) return fmt::format(fmt::runtime(a < 0.01 ? "{:.2f} us" : "{:.0f} us"), ms * 1000);
  if (a < 1000) return fmt::format(fmt::runtime(a >= 100 ? "{:.0f} ms" : a >= 10 ? "{:.1f} ms" : "{:.2f} ms"), ms);
  if (a < 60000) return fmt::format("{:.2f} s", ms / 1000);
  return fmt::format("{:.1f} min", ms / 60000);
}

std::optional<double> Plan::gap() const {
  const double m = schedule.makespan_ms;
  if (result.lower_bound_ms <= 0 || m <= 0) return std::nullopt;
  return std::max(0.0, (m - result.lower_bound_ms) / m);
}

std::optional<LlmFigures> llm_figures(const Plan& plan) {
  const CostTable& t = plan.table;
  const double ms = plan.schedule.makespan_ms;
  LlmFigures f;
  f.kv_cache_per_device.assign(static_cast<size_t>(t.num_devices()), 0.0);
  const auto& device = plan.result.placement.device;
  for (size_t op = 0; op < t.state_bytes.size() && op < device.size(); ++op) {
    f.kv_cache_bytes += t.state_bytes[op];
    f.kv_cache_per_device[static_cast<size_t>(device[op])] += t.state_bytes[op];
  }
  if (f.kv_cache_bytes > 0) {
    f.phase = "decode";
    f.ms_per_token = ms;
    f.tokens_per_s = ms > 0 ? 1000.0 / ms : 0.0;
    return f;
  }
  const bool logits = std::any_of(t.data.begin(), t.data.end(),
                                  [](const DataItem& d) { return d.name == "logits" && d.consumers.empty(); });
  if (!logits) return std::nullopt;
  f.phase = "prefill";
  f.kv_cache_per_device.clear();
  f.time_to_first_token_ms = ms;
  return f;
}

Plan make_plan(const CostTable& table, const PlaceResult& result, const Schedule& schedule, std::string method,
               double placement_time_s, const SimOptions& sim, PlanInputs inputs, std::vector<CoarsenStep> steps) {
  Plan plan;
  plan.table = table;
  plan.result = result;
  plan.schedule = schedule;
  plan.method = std::move(method);
  plan.placement_time_s = placement_time_s;
  plan.sim = sim;
  plan.inputs = std::move(inputs);
  plan.steps = std::move(steps);
  return plan;
}

double best_single_device_ms(const CostTable& table) {
  double best = std::numeric_limits<double>::infinity();
  for (DeviceId d = 0; d < table.num_devices(); ++d) {
    double sum = 0;
    for (OpId op = 0; op < table.num_ops(); ++op) sum += table.time(op, d);
    best = std::min(best, sum);
  }
  return std::isfinite(best) ? best : 0.0;
}

std::string human_memory(const CostTable& table, double amount) {
  if (table.memory_unit == "bytes") return human_bytes(amount);
  return fmt::format("{:g} {}", amount, table.memory_unit);
}

}  // namespace moirai
