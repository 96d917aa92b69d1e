// The split relaxation: a lower bound on the makespan of every plan that may split operators across devices.
//
// A part of an operator computing a share s of its output on device d takes at least s x t(o, d) (expand.cpp:
// launch + (t - launch) x max(share, ...) >= s x t), and a device's busy time never exceeds the makespan. Relax
// every operator to be divisible in any proportions, transfers free and memory unbounded: the best makespan is
// then the LP  min T  s.t.  sum_o x_od t_od <= T (every d),  sum_d x_od = 1,  x >= 0. Its dual is
// max over weights y on the simplex of  f(y) = sum_o min_d y_d t_od,  and every y gives a valid bound, so we
// climb f by mirror ascent (exponentiated subgradient) and keep the best value seen: no solver, no tolerance to
// trust, and the result is a bound whether or not the ascent reaches the LP's optimum.
#include <algorithm>
#include <cmath>
#include <limits>

#include "moirai/partition.h"

namespace moirai {

double split_relaxation_bound(const CostTable& table) {
  const int n = table.num_ops(), k = table.num_devices();
  if (n == 0 || k == 0) return 0.0;
  // Start from weights proportional to each device's speed (1 / its total time): optimal when times are
  // proportional across devices.
  std::vector<double> y(static_cast<size_t>(k), 0.0), grad(static_cast<size_t>(k));
  double total_speed = 0;
  for (int d = 0; d < k; ++d) {
    double sum = 0;
    for (OpId o = 0; o < n; ++o) sum += table.time(o, d);
    y[static_cast<size_t>(d)] = sum > 0 ? 1.0 / sum : 0.0;
    total_speed += y[static_cast<size_t>(d)];
  }
  if (!(total_speed > 0)) return 0.0;  // every operator takes no time anywhere
  for (double& w : y) w /= total_speed;
  double best = 0, scale = 0;
  for (int it = 0; it < 400; ++it) {
    double f = 0;
    std::fill(grad.begin(), grad.end(), 0.0);
    for (OpId o = 0; o < n; ++o) {
      int arg = 0;
      double lo = std::numeric_limits<double>::infinity();
      for (int d = 0; d < k; ++d) {
        const double v = y[static_cast<size_t>(d)] * table.time(o, d);
        if (v < lo) lo = v, arg = d;
      }
      f += lo;
      grad[static_cast<size_t>(arg)] += table.time(o, arg);
    }
    best = std::max(best, f);
    if (scale == 0) scale = *std::max_element(grad.begin(), grad.end());
    if (!(scale > 0)) break;
    const double step = 2.0 / std::sqrt(it + 1.0);
    double sum = 0;
    for (int d = 0; d < k; ++d) {
      y[static_cast<size_t>(d)] *= std::exp(step * (grad[static_cast<size_t>(d)] - f) / scale);
      sum += y[static_cast<size_t>(d)];
    }
    for (double& w : y) w /= sum;
  }
  return best;
}

}  // namespace moirai
