// Stage DP for throughput (moirai/throughput.h). A plan is a sequence of stages [a, b) of topo_order, each on
// its own device. Interchangeable devices (same operator times, capacity and links) form classes, and the DP
// state after position a is how many devices of each class are used plus the class of the last stage, so 8
// equal GPUs give 9 states instead of 256 subsets. Stage cost on a device of class q after class p:
// compute = sum of its operator times; port = the tensors crossing cut a sent from p to q (the send port of p
// and the receive port of q carry them and nothing else, since each device holds one stage); memory =
// parameters + in_flight x (KV caches + bytes produced in the stage + bytes it reads from before a), the
// bound of stream_memory_bound().
// Without a latency bound the DP minimises the largest stage cost in one pass. With a bound L it bisects on the
// period P: "least latency (sum of stage compute and cut transfers) with every stage cost <= P" is monotone in P.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "moirai/stream.h"
#include "moirai/throughput.h"

namespace moirai {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kChooseShare = 0.5;  // of the time limit, what choose_in_flight may spend

template <class V>
auto& at(V& v, long i) {
  return v[static_cast<size_t>(i)];
}

// Class per device: devices interchangeable under any permutation of the class's members.
std::vector<int> device_classes(const CostTable& t) {
  const int k = t.num_devices(), n = t.num_ops();
  std::vector<int> cls(static_cast<size_t>(k), -1);
  auto same = [&](int a, int b) {
    if (at(t.capacity, a) != at(t.capacity, b)) return false;
    for (int op = 0; op < n; ++op)
      if (t.time(op, a) != t.time(op, b)) return false;
    for (int i = 0; i < static_cast<int>(t.data.size()); ++i) {
      if (t.transfer(i, a, b) != t.transfer(i, b, a)) return false;
      for (int e = 0; e < k; ++e)
        if (e != a && e != b && (t.transfer(i, a, e) != t.transfer(i, b, e) || t.transfer(i, e, a) != t.transfer(i, e, b)))
          return false;
    }
    return true;
  };
  int next = 0;
  for (int d = 0; d < k; ++d) {
    if (at(cls, d) >= 0) continue;
    at(cls, d) = next;
    for (int e = d + 1; e < k; ++e)
      if (at(cls, e) < 0 && same(d, e)) at(cls, e) = next;
    ++next;
  }
  return cls;
}

struct Dp {
  const CostTable& t;
  bool contention;
  int in_flight;
  int n = 0, C = 0, S = 1;
  std::vector<std::vector<DeviceId>> members;  // per class
  std::vector<int> radix;                      // state = sum count[c] * radix[c]
  std::vector<std::vector<double>> pre;        // per class: prefix sums of operator times over topo_order
  std::vector<double> pre_params;
  std::vector<double> cut;                     // (n + 1) x C x C: crossing tensors sent from class p to class q
  std::vector<std::vector<double>> act;        // act[a][b - a - 1]: activation bytes of a stage [a, b)

  Dp(const CostTable& table, bool contention_, int in_flight_) : t(table), contention(contention_), in_flight(in_flight_) {
    n = t.num_ops();
    const int k = t.num_devices();
    const std::vector<int> cls = device_classes(t);
    C = *std::max_element(cls.begin(), cls.end()) + 1;
    members.resize(static_cast<size_t>(C));
    for (int d = 0; d < k; ++d) at(members, at(cls, d)).push_back(d);
    radix.resize(static_cast<size_t>(C));
    for (int c = 0; c < C; ++c) {
      at(radix, c) = S;
      S *= static_cast<int>(at(members, c).size()) + 1;
    }
    std::vector<int> pos(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) at(pos, at(t.topo_order, i)) = i;
    pre.assign(static_cast<size_t>(C), std::vector<double>(static_cast<size_t>(n + 1), 0.0));
    pre_params.assign(static_cast<size_t>(n + 1), 0.0);
    for (int i = 0; i < n; ++i) {
      const OpId op = at(t.topo_order, i);
      for (int c = 0; c < C; ++c) at(at(pre, c), i + 1) = at(at(pre, c), i) + t.time(op, at(members, c).front());
      at(pre_params, i + 1) = at(pre_params, i) + resident_bytes(t, op, in_flight);
    }
    // Crossing tensors at every cut.
    const int m = static_cast<int>(t.data.size());
    std::vector<int> last(static_cast<size_t>(m), -1);
    for (int i = 0; i < m; ++i)
      for (OpId c : at(t.data, i).consumers) at(last, i) = std::max(at(last, i), at(pos, c));
    cut.assign(static_cast<size_t>((n + 1) * C * C), 0.0);
    for (int i = 0; i < m; ++i) {
      const int from = at(pos, at(t.data, i).producer) + 1;
      for (int p = 0; p < C; ++p)
        for (int q = 0; q < C; ++q) {
          const DeviceId s = at(members, p).front();
          if (p == q && at(members, p).size() < 2) continue;
          const DeviceId d = p == q ? at(members, p)[1] : at(members, q).front();
          const double ms = t.transfer(i, s, d);
          for (int a = from; a <= at(last, i); ++a) at(cut, (static_cast<long>(a) * C + p) * C + q) += ms;
        }
    }
    // Activation bytes of each stage [a, b): produced inside, or produced before a and read inside.
    act.resize(static_cast<size_t>(n));
    std::vector<int> stamp(static_cast<size_t>(m), -1);
    for (int a = 0; a < n; ++a) {
      double sum = 0;
      auto& row = at(act, a);
      row.resize(static_cast<size_t>(n - a));
      for (int b = a + 1; b <= n; ++b) {
        const OpId op = at(t.topo_order, b - 1);
        for (int i : at(t.op_outputs, op)) sum += at(t.data, i).bytes - at(t.data, i).in_place_bytes;
        for (int i : at(t.op_inputs, op))
          if (at(pos, at(t.data, i).producer) < a && at(stamp, i) != a) {
            at(stamp, i) = a;
            sum += at(t.data, i).bytes;
          }
        at(row, b - a - 1) = sum;
      }
    }
  }

  double cut_ms(int a, int p, int q) const { return at(cut, (static_cast<long>(a) * C + p) * C + q); }
  int count(int s, int c) const { return (s / at(radix, c)) % (static_cast<int>(at(members, c).size()) + 1); }

  struct Solution {
    double value = kInf;     // period (min-max mode) or latency (capped mode)
    double period = 0, latency = 0;
    std::vector<std::pair<int, int>> stages;  // (end position, class), in order
  };

  // cap < 0: minimise the largest stage cost. cap >= 0: minimise the latency with every stage cost <= cap.
  Solution solve(double cap) const {
    const bool minmax = cap < 0;
    const long width = static_cast<long>(S) * (C + 1);
    std::vector<double> val(static_cast<size_t>((n + 1) * width), kInf);
    std::vector<int> from_a(val.size(), -1), from_p(val.size(), -1);  // the entry each value came from
    auto idx = [&](int a, int s, int p) { return static_cast<long>(a) * width + static_cast<long>(s) * (C + 1) + p; };
    at(val, idx(0, 0, C)) = 0;
    double best = kInf;
    long best_idx = -1;
    for (int a = 0; a < n; ++a)
      for (int s = 0; s < S; ++s)
        for (int p = 0; p <= C; ++p) {
          const double v = at(val, idx(a, s, p));
          if (v == kInf || (minmax && v >= best)) continue;
          for (int q = 0; q < C; ++q) {
            if (count(s, q) >= static_cast<int>(at(members, q).size())) continue;
            const double c = p == C ? 0.0 : cut_ms(a, p, q);
            const double port = contention ? c : 0.0;
            if (!minmax && port > cap) continue;
            const double capacity = at(t.capacity, at(members, q).front());
            const int s2 = s + at(radix, q);
            for (int b = a + 1; b <= n; ++b) {
              const double load = at(at(pre, q), b) - at(at(pre, q), a);
              const double mem = at(pre_params, b) - at(pre_params, a) + in_flight * at(at(act, a), b - a - 1);
              if (mem > capacity * (1 + 1e-12)) break;  // grows with b
              double nv;
              if (minmax) {
                nv = std::max({v, load, port});
                if (nv >= best) break;  // grows with b
              } else {
                if (load > cap) break;
                nv = v + load + c;
              }
              const long j = idx(b, s2, q);
              if (nv < at(val, j)) {
                at(val, j) = nv;
                at(from_a, j) = a;
                at(from_p, j) = p;
                if (b == n && nv < best) {
                  best = nv;
                  best_idx = j;
                }
              }
            }
          }
        }
    Solution sol;
    if (best_idx < 0) return sol;
    sol.value = best;
    for (long j = best_idx; j != idx(0, 0, C);) {
      const int b = static_cast<int>(j / width), s = static_cast<int>((j % width) / (C + 1)), q = static_cast<int>(j % (C + 1));
      sol.stages.emplace_back(b, q);
      j = idx(at(from_a, j), s - at(radix, q), at(from_p, j));
    }
    std::reverse(sol.stages.begin(), sol.stages.end());
    // Both figures of the plan in the DP's model.
    int a = 0, p = C;
    for (const auto& [b, q] : sol.stages) {
      const double c = p == C ? 0.0 : cut_ms(a, p, q);
      const double load = at(at(pre, q), b) - at(at(pre, q), a);
      sol.period = std::max({sol.period, load, contention ? c : 0.0});
      sol.latency += load + c;
      a = b;
      p = q;
    }
    return sol;
  }

  Placement placement_of(const Solution& sol) const {
    Placement pl;
    pl.device.assign(static_cast<size_t>(n), 0);
    std::vector<int> used(static_cast<size_t>(C), 0);
    int a = 0;
    for (const auto& [b, q] : sol.stages) {
      const DeviceId d = at(members, q)[static_cast<size_t>(at(used, q)++)];
      for (int i = a; i < b; ++i) at(pl.device, at(t.topo_order, i)) = d;
      a = b;
    }
    return pl;
  }
};

}  // namespace

int throughput_in_flight(const ThroughputOptions& options, int devices) {
  StreamOptions s;
  s.max_in_flight = options.in_flight;
  return stream_in_flight(s, devices);
}

Expected<ThroughputResult> stage_dp(const CostTable& table, const PlaceOptions& place, const ThroughputOptions& options) {
  if (table.num_ops() == 0) return Error{fmt::format("'{}' has no operators to place", table.name)};
  const int in_flight = throughput_in_flight(options, table.num_devices());
  const Dp dp(table, place.sim.contention, in_flight);
  Dp::Solution sol = dp.solve(-1);
  if (sol.stages.empty())
    return Error{fmt::format("throughput: no plan of stages holds {} requests in flight; {}", in_flight,
                             table.memory_summary())};
  if (options.max_latency_ms > 0 && sol.latency > options.max_latency_ms) {
    // Least latency at any period, then bisect on the period cap.
    Dp::Solution any = dp.solve(kInf);
    if (any.stages.empty() || any.value > options.max_latency_ms)
      return Error{fmt::format("throughput: no plan of stages meets the latency bound of {} ms (the least latency of "
                               "a stage plan that fits is {:.4g} ms)",
                               options.max_latency_ms, any.stages.empty() ? kInf : any.value), "max_latency_ms"};
    double lo = sol.period, hi = any.period;
    sol = any;
    for (int iter = 0; iter < 60 && hi - lo > 1e-12 * std::max(1.0, hi); ++iter) {
      const double mid = 0.5 * (lo + hi);
      Dp::Solution s = dp.solve(mid);
      if (!s.stages.empty() && s.value <= options.max_latency_ms) {
        hi = s.period;
        sol = std::move(s);
      } else {
        lo = mid;
      }
    }
  }
  ThroughputResult r;
  r.placement = dp.placement_of(sol);
  r.model_period_ms = sol.period;
  r.period_ms = period_loads(table, r.placement, place.sim).period_ms;
  r.latency_ms = simulate(table, r.placement, place.sim).makespan_ms;
  r.status = PlanStatus::optimal;
  r.source = "stage-dp";
  return r;
}

Expected<int> choose_in_flight(const CostTable& table, const PlaceOptions& place, const ThroughputOptions& options,
                               int requests) {
  const auto t0 = std::chrono::steady_clock::now();
  auto spent_s = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int best = 0;
  double best_rate = 0;
  std::optional<Error> first_error;
  const int most = 2 * std::max(1, table.num_devices());
  for (int k = 1; k <= most; ++k) {
    if (best > 0 && spent_s() > kChooseShare * place.time_limit_s) {  // the MILP needs the rest of the limit
      if (place.progress)
        place.progress(fmt::format("throughput: in-flight counts 1 to {} of {} tried within {:.0f}% of the time limit",
                                   k - 1, most, 100 * kChooseShare));
      break;
    }
    ThroughputOptions o = options;
    o.in_flight = k;
    auto dp = stage_dp(table, place, o);
    if (!dp) {
      if (!first_error) first_error = dp.error();
      continue;
    }
    if (options.max_latency_ms > 0 && dp->latency_ms > options.max_latency_ms) continue;
    StreamOptions so;
    so.requests = requests;
    so.max_in_flight = k;
    const double rate = simulate_stream(table, dp->placement, so, place.sim).throughput_rps;
    if (rate > best_rate * (1 + 1e-9)) {
      best_rate = rate;
      best = k;
    }
  }
  if (best == 0)
    return first_error ? *first_error
                       : Error{fmt::format("throughput: no stage plan meets the latency bound of {} ms",
                                           options.max_latency_ms), "max_latency_ms"};
  return best;
}

}  // namespace moirai
