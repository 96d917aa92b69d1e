// The largest context (KV-cache length) a decode plan fits: the plan's placement, re-simulated on the problem
// rebuilt at other cache lengths. Memory grows with the length (each layer's cache, attention scores), almost
// linearly, so a secant guess lands on the answer and two probes confirm it; bisection covers the rest.
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "moirai/pipeline.h"

namespace moirai {
namespace {

constexpr int64_t kMaxContext = int64_t{1} << 26;  // 67M tokens: beyond any model's window

struct Probe {
  bool fits = false;
  std::vector<double> peak;
};

}  // namespace

Expected<int64_t> largest_context(const ProblemOptions& options, const Problem& problem, const Placement& placement,
                                  const SimOptions& sim) {
  double state = 0;
  for (double b : problem.table.state_bytes) state += b;
  if (state <= 0) return Error{fmt::format("'{}' has no KV cache: the largest context applies to decode models",
                                           problem.table.name)};
  std::map<std::string, std::string> device_of;  // operator name -> device name
  for (OpId op = 0; op < problem.table.num_ops(); ++op)
    device_of[problem.table.op_names[static_cast<size_t>(op)]] =
        problem.table.device_names[static_cast<size_t>(placement.device[static_cast<size_t>(op)])];
  std::map<int64_t, Probe> seen;
  auto probe = [&](int64_t context) -> Expected<Probe> {
    if (auto it = seen.find(context); it != seen.end()) return it->second;
    ProblemOptions o = options;
    o.dims[kContextDim] = context;
    MOIRAI_ASSIGN_OR_RETURN(auto p, load_problem(o));
    Placement at;
    for (OpId op = 0; op < p.table.num_ops(); ++op) {
      auto it = device_of.find(p.table.op_names[static_cast<size_t>(op)]);
      if (it == device_of.end() || p.table.num_ops() != problem.table.num_ops())
        return Error{fmt::format("'{}': the operators change with the context ({} at context {}), so one placement "
                                 "does not carry over", problem.table.name, p.table.op_names[static_cast<size_t>(op)], context)};
      const auto& names = p.table.device_names;
      at.device.push_back(static_cast<DeviceId>(std::find(names.begin(), names.end(), it->second) - names.begin()));
    }
    const Schedule s = simulate(p.table, at, sim);
    Probe r{s.over_capacity(p.table).empty(), s.peak_memory};
    // Headroom per device, for the secant guess: capacity - peak.
    for (size_t d = 0; d < r.peak.size(); ++d) r.peak[d] = p.table.capacity[d] - r.peak[d];
    seen[context] = r;
    return r;
  };
  // Secant guess from two lengths: the headroom of each device falls linearly with the length.
  const int64_t a = 1024, b = 2048;
  MOIRAI_ASSIGN_OR_RETURN(auto pa, probe(a));
  MOIRAI_ASSIGN_OR_RETURN(auto pb, probe(b));
  double guess = static_cast<double>(kMaxContext);
  for (size_t d = 0; d < pa.peak.size(); ++d) {
    const double slope = (pb.peak[d] - pa.peak[d]) / static_cast<double>(b - a);  // headroom per token (< 0)
    if (slope < 0) guess = std::min(guess, static_cast<double>(a) + pa.peak[d] / -slope);
  }
  int64_t lo = 0, hi = kMaxContext + 1;  // fits at lo (0: none known), not at hi
  int64_t c = std::clamp<int64_t>(static_cast<int64_t>(std::floor(guess)), 1, kMaxContext);
  for (int step = 0; step < 80 && hi - lo > 1; ++step) {
    MOIRAI_ASSIGN_OR_RETURN(auto p, probe(c));
    (p.fits ? lo : hi) = c;
    if (step == 0 && p.fits) c = c + 1;  // the guess fits: confirm that one more token does not
    else if (hi == kMaxContext + 1) c = std::min(kMaxContext, std::max(lo * 2, lo + 1));
    else c = lo + (hi - lo) / 2;
  }
  return lo;
}

Expected<ContextSearch> place_at_largest_context(const ProblemOptions& options, const std::string& method,
                                                 const PlaceOptions& place, bool refine_with_geneflow,
                                                 const ProgressFn& progress) {
  auto probe = [&](int64_t context) -> Expected<ContextSearch> {
    ContextSearch at;
    at.context = context;
    at.options = options;
    at.options.dims[kContextDim] = context;
    MOIRAI_ASSIGN_OR_RETURN(auto p, load_problem(at.options));
    at.problem = std::move(p);
    double state = 0;
    for (double b : at.problem.table.state_bytes) state += b;
    if (state <= 0)
      return Error{options.input + ": a context length applies to decode models only (a KV cache input)", "context"};
    at.run = run_method(at.problem, method, place, refine_with_geneflow);
    return at;
  };
  auto fits = [](const ContextSearch& at) { return at.run.error.empty() && at.run.fits && at.run.violations.empty(); };
  auto say = [&](const ContextSearch& at) {
    if (progress)
      progress(fmt::format("context {}: {}", at.context,
                           fits(at) ? "fits" : at.run.error.empty() ? "does not fit" : at.run.error));
  };
  MOIRAI_ASSIGN_OR_RETURN(auto best, probe(1));
  say(best);
  if (!fits(best))
    return Error{fmt::format("{}: no plan fits even at context 1{}", method,
                             best.run.error.empty() ? "" : ": " + best.run.error)};
  // At context 1 the state is one token's cache: the bytes per token.
  const CostTable& t = best.problem.table;
  double per_token = 0, room = 0;
  for (size_t op = 0; op < t.param_bytes.size(); ++op) {
    per_token += t.state_bytes[op];
    room -= t.param_bytes[op] - t.state_bytes[op];
  }
  for (double c : t.capacity) room += c;
  int64_t lo = 1, hi = std::min<int64_t>(kMaxContext, static_cast<int64_t>(room / per_token)) + 2;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    MOIRAI_ASSIGN_OR_RETURN(auto at, probe(mid));
    say(at);
    if (fits(at)) {
      lo = mid;
      best = std::move(at);
    } else {
      hi = mid;
    }
  }
  return best;
}

}  // namespace moirai
