// Link fit: a link's cost is latency + bytes / bandwidth (Cluster::transfer_ms), so a straight line fitted to
// measured (bytes, ms) pairs gives both figures. Ordinary least squares; a negative intercept (timer noise on
// small sizes) is not a latency, so the fit is then redone through the origin. fit_link_relative weighs each
// sample by 1 / ms^2 (least relative error): on a loaded machine the noise grows with the time, and the large
// sizes would otherwise decide the latency too.
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "moirai/ranges.h"
#include "moirai/cluster.h"

namespace moirai {

namespace {

/// Weighted least squares of ms = intercept + slope x bytes (weights[i] for samples[i]).
Expected<LinkFit> fit_weighted(const std::vector<TransferSample>& samples, const std::vector<double>& weights) {
  std::set<double> sizes;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (!std::isfinite(s.bytes) || !std::isfinite(s.ms) || s.bytes < 0 || s.ms < 0)
      return Error{fmt::format("transfer sample {} is not a non-negative finite (bytes, ms) pair: ({}, {})", i, s.bytes, s.ms)};
    sizes.insert(s.bytes);
  }
  if (sizes.size() < 2)
    return Error{fmt::format("fitting a link needs transfers of at least two sizes, got {} sample(s) of {} size(s)",
                             samples.size(), sizes.size())};
  double n = 0, mx = 0, my = 0;
  for (size_t i = 0; i < samples.size(); ++i) n += weights[i];
  for (size_t i = 0; i < samples.size(); ++i) mx += weights[i] * samples[i].bytes / n, my += weights[i] * samples[i].ms / n;
  double sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    sxx += weights[i] * (s.bytes - mx) * (s.bytes - mx);
    sxy += weights[i] * (s.bytes - mx) * (s.ms - my);
    syy += weights[i] * (s.ms - my) * (s.ms - my);
  }
  double slope = sxy / sxx, intercept = my - slope * mx;
  if (intercept < 0) {  // through the origin
    double bb = 0, by = 0;
    for (size_t i = 0; i < samples.size(); ++i)
      bb += weights[i] * samples[i].bytes * samples[i].bytes, by += weights[i] * samples[i].bytes * samples[i].ms;
    slope = by / bb;
    intercept = 0;
  }
  if (!(slope > 0)) return Error{"transfer times do not grow with the size: no bandwidth can be fitted"};
  double ss_res = 0;
  for (size_t i = 0; i < samples.size(); ++i)
    ss_res += weights[i] * std::pow(samples[i].ms - (intercept + slope * samples[i].bytes), 2);
  LinkFit fit;
  fit.link.latency_us = intercept * 1000.0;
  fit.link.bandwidth_gbps = 1.0 / slope * 1000.0 / 1e9;  // bytes per ms -> GB/s
  fit.r2 = syy > 0 ? 1.0 - ss_res / syy : 1.0;
  fit.samples = static_cast<int>(samples.size());
  for (const auto& [value, range, field] : {std::tuple{fit.link.bandwidth_gbps, ranges::kBandwidthGBps, "bandwidth"},
                                            std::tuple{fit.link.latency_us, ranges::kMicroseconds, "latency"}})
    if (auto bad = ranges::problem(value, range); !bad.empty()) return Error{fmt::format("fitted {} {}", field, bad)};
  return fit;
}

}  // namespace

Expected<LinkFit> fit_link(const std::vector<TransferSample>& samples) {
  return fit_weighted(samples, std::vector<double>(samples.size(), 1.0));
}

Expected<LinkFit> fit_link_relative(const std::vector<TransferSample>& samples) {
  std::vector<double> weights;
  for (const auto& s : samples) weights.push_back(s.ms > 0 ? 1.0 / (s.ms * s.ms) : 1.0);
  return fit_weighted(samples, weights);
}

std::string cluster_json(const Cluster& c) {
  using ojson = nlohmann::ordered_json;
  ojson j;
  j["name"] = c.name;
  if (!c.description.empty()) j["description"] = c.description;
  ojson devices = ojson::array();
  for (const auto& d : c.devices) {
    ojson dj{{"name", d.name}, {"kind", d.kind}};
    if (d.peak_gflops > 0) dj["peak_gflops"] = d.peak_gflops;
    if (d.peak_gflops_fp16 > 0) dj["peak_gflops_fp16"] = d.peak_gflops_fp16;
    if (d.mem_bandwidth_gbps > 0) dj["mem_bandwidth_gbps"] = d.mem_bandwidth_gbps;
    dj["memory_gib"] = d.memory_bytes / (1024.0 * 1024.0 * 1024.0);
    if (d.launch_us > 0) dj["kernel_launch_us"] = d.launch_us;
    if (d.stage_overhead_us > 0) dj["stage_overhead_us"] = d.stage_overhead_us;
    if (d.threads > 0) dj["threads"] = d.threads;
    for (const auto& [key, link] : {std::pair{"from_coordinator", &d.from_coordinator}, std::pair{"to_coordinator", &d.to_coordinator}})
      if (*link) dj[key] = ojson{{"bandwidth_gbps", (*link)->bandwidth_gbps}, {"latency_us", (*link)->latency_us}};
    devices.push_back(std::move(dj));
  }
  j["devices"] = devices;
  // The most common off-diagonal link is the default; every other link is a pair.
  const int n = c.size();
  std::map<std::pair<double, double>, int> count;
  for (int s = 0; s < n; ++s)
    for (int d = 0; d < n; ++d)
      if (s != d) ++count[{c.link(s, d).bandwidth_gbps, c.link(s, d).latency_us}];
  std::pair<double, double> base{1.0, 0.0};
  int best = 0;
  for (const auto& [key, times] : count)
    if (times > best) best = times, base = key;
  ojson pairs = ojson::array();
  for (int s = 0; s < n; ++s)
    for (int d = 0; d < n; ++d)
      if (s != d && std::pair{c.link(s, d).bandwidth_gbps, c.link(s, d).latency_us} != base)
        pairs.push_back(ojson{{"src", c.devices[static_cast<size_t>(s)].name}, {"dst", c.devices[static_cast<size_t>(d)].name},
                              {"bandwidth_gbps", c.link(s, d).bandwidth_gbps}, {"latency_us", c.link(s, d).latency_us}});
  j["links"] = ojson{{"default", ojson{{"bandwidth_gbps", base.first}, {"latency_us", base.second}}}};
  if (!pairs.empty()) j["links"]["pairs"] = pairs;
  return j.dump(1) + "\n";
}

}  // namespace moirai
