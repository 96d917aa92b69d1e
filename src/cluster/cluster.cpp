// Cluster files: devices and directed links (clusters/README.md). Units are converted once here: GiB -> bytes,
// GB/s (1 GB = 1e9 bytes) and microseconds stay as given; transfer_ms() applies them.
#include "moirai/cluster.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "moirai/ranges.h"

namespace moirai {
namespace {

using nlohmann::json;

// Reads fields of one JSON object and remembers the first problem, so the parser reads straight through.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  bool failed() const { return !error_.empty(); }
  Error error() const { return Error{source_ + ": " + error_}; }
  void fail(const std::string& message) {
    if (error_.empty()) error_ = message;
  }

  /// A number within `range`; `fallback` when it is optional and absent.
  double number(const json& object, const std::string& key, const std::string& where, bool required,
                double fallback, const ranges::Range& range) {
    const std::string field = where.empty() ? key : where + "." + key;
    if (!object.contains(key)) {
      if (required) fail("missing field " + field);
      return fallback;
    }
    const json& v = object.at(key);
    if (auto problem = ranges::problem(v, range); !problem.empty()) {
      fail("field " + field + " " + problem);
      return fallback;
    }
    return v.get<double>();
  }

  std::string text(const json& object, const std::string& key, const std::string& where, bool required,
                   const std::string& fallback = "") {
    const std::string field = where.empty() ? key : where + "." + key;
    if (!object.contains(key)) {
      if (required) fail("missing field " + field);
      return fallback;
    }
    if (!object.at(key).is_string()) {
      fail("field " + field + " must be a string");
      return fallback;
    }

    return object.at(key).get<std::string>();
  }

  /// A link object {bandwidth_gbps, latency_us}; nullopt when absent (or after a failure).
  std::optional<Link> link(const json& object, const std::string& key, const std::string& where) {
    const std::string field = where.empty() ? key : where + "." + key;
    if (!object.contains(key)) return std::nullopt;
    const json& lj = object.at(key);
    if (!lj.is_object()) {
      fail("field " + field + " must be an object");
      return std::nullopt;
    }
    Link l;
    l.bandwidth_gbps = number(lj, "bandwidth_gbps", field, true, 1.0, ranges::kBandwidthGBps);
    l.latency_us = number(lj, "latency_us", field, false, 0.0, ranges::kMicroseconds);
    return l;
  }

 private:
  std::string source_;
  std::string error_;
};

}  // namespace

// Defaults when a file gives no reserved_gib (clusters/README.md gives the sources). A discrete GPU loses its
// CUDA context (about 0.3-0.5 GiB on recent drivers), the BLAS workspace and allocator slack; a host CPU runs an
// operating system and the runtime itself; devices of unknown kind (profiled instances) keep nothing back.
double default_reserved_gib(const std::string& kind) {
  if (kind == "gpu") return 1.0;
  if (kind == "cpu") return 2.0;
  return 0.0;
}

Cluster generic_cluster() {
  Device d;
  d.name = "device";
  d.kind = "unknown";
  d.peak_gflops = 1000;
  d.mem_bandwidth_gbps = 100;
  d.memory_bytes = 1e18;
  Cluster c;
  c.name = "generic";
  c.devices = {d};
  c.links.assign(1, Link{});
  return c;
}

DeviceId Cluster::find(const std::string& device_name) const {
  for (int d = 0; d < size(); ++d)
    if (devices[static_cast<size_t>(d)].name == device_name) return d;
  return -1;
}


double Cluster::transfer_ms(DeviceId src, DeviceId dst, double bytes) const {
  return src == dst ? 0.0 : link(src, dst).ms(bytes);
}

double Cluster::push_ms(DeviceId d, double bytes) const {
  const auto& l = devices[static_cast<size_t>(d)].from_coordinator;
  return l ? l->ms(bytes) : 0.0;
}

double Cluster::fetch_ms(DeviceId d, double bytes) const {
  const auto& l = devices[static_cast<size_t>(d)].to_coordinator;
  return l ? l->ms(bytes) : 0.0;
}

bool Cluster::has_coordinator_links() const {
  return std::any_of(devices.begin(), devices.end(),
                     [](const Device& d) { return d.from_coordinator || d.to_coordinator; });
}

namespace {

// One device: its figures, range-checked; the Reader holds the first failure.
Device read_device(Reader& r, const json& dj, const std::string& where) {
  Device d;
  d.name = r.text(dj, "name", where, true);
  if (!r.failed() && d.name.empty()) r.fail("field " + where + ".name must not be empty");
  d.kind = r.text(dj, "kind", where, false, "unknown");
  d.peak_gflops = r.number(dj, "peak_gflops", where, false, 0.0, ranges::kGflops);
  d.peak_gflops_fp16 = r.number(dj, "peak_gflops_fp16", where, false, 0.0, ranges::kGflops);
  d.mem_bandwidth_gbps = r.number(dj, "mem_bandwidth_gbps", where, false, 0.0, ranges::kDeviceBandwidthGBps);
  d.memory_bytes = r.number(dj, "memory_gib", where, true, 0.0, ranges::kMemoryGiB) * 1024.0 * 1024.0 * 1024.0;
  d.launch_us = r.number(dj, "kernel_launch_us", where, false, 0.0, ranges::kMicroseconds);
  const double memory_gib = d.memory_bytes / (1024.0 * 1024.0 * 1024.0);
  // A default larger than a small device (a 1 GiB board) keeps half of it back rather than all of it.
  const double reserve_default = std::min(default_reserved_gib(d.kind), memory_gib / 2);
  const double reserved_gib = r.number(dj, "reserved_gib", where, false, reserve_default, ranges::kReservedGiB);
  if (!r.failed() && memory_gib > 0 && reserved_gib >= memory_gib)
    r.fail(fmt::format("field {}.reserved_gib must be less than memory_gib ({:g}), got {:g}", where, memory_gib,
                       reserved_gib));
  d.reserved_bytes = reserved_gib * 1024.0 * 1024.0 * 1024.0;
  d.stage_overhead_us = r.number(dj, "stage_overhead_us", where, false, 0.0, ranges::kStageOverheadUs);
  const double threads = r.number(dj, "threads", where, false, 0.0, ranges::kThreads);
  if (!r.failed() && threads != std::floor(threads)) r.fail(fmt::format("field {}.threads must be an integer, got {}", where, threads));
  d.threads = static_cast<int>(threads);
  d.from_coordinator = r.link(dj, "from_coordinator", where);
  d.to_coordinator = r.link(dj, "to_coordinator", where);
  return d;
}

// links.default for every pair, then the pairs that override some of its figures.
Status read_links(Reader& r, const json& root, const std::string& source, Cluster& c) {
  if (!root.contains("links")) return Error{source + ": missing field links"};
  const json& links = root.at("links");
  if (!links.is_object()) return Error{source + ": field links must be an object"};
  if (!links.contains("default")) return Error{source + ": missing field links.default"};
  const json& def = links.at("default");
  if (!def.is_object()) return Error{source + ": field links.default must be an object"};
  Link base;
  base.bandwidth_gbps = r.number(def, "bandwidth_gbps", "links.default", true, 1.0, ranges::kBandwidthGBps);
  base.latency_us = r.number(def, "latency_us", "links.default", false, 0.0, ranges::kMicroseconds);
  if (r.failed()) return r.error();
  const int n = c.size();
  c.links.assign(static_cast<size_t>(n * n), base);
  if (!links.contains("pairs")) return Ok{};
  const json& pairs = links.at("pairs");
  if (!pairs.is_array()) return Error{source + ": field links.pairs must be an array"};
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string where = fmt::format("links.pairs[{}]", i);
    const json& pj = pairs[i];
    if (!pj.is_object()) return Error{source + ": " + where + " must be an object"};
    const std::string src = r.text(pj, "src", where, true);
    const std::string dst = r.text(pj, "dst", where, true);
    if (r.failed()) return r.error();
    const DeviceId s = c.find(src), d = c.find(dst);
    if (s < 0) return Error{fmt::format("{}: {}.src names an unknown device '{}'", source, where, src)};
    if (d < 0) return Error{fmt::format("{}: {}.dst names an unknown device '{}'", source, where, dst)};
    if (s == d) return Error{fmt::format("{}: {} links device '{}' to itself", source, where, src)};
    // A pair overrides only the figures it gives; the others come from links.default.
    Link& l = c.links[static_cast<size_t>(s * n + d)];
    l.bandwidth_gbps = r.number(pj, "bandwidth_gbps", where, false, base.bandwidth_gbps, ranges::kBandwidthGBps);
    l.latency_us = r.number(pj, "latency_us", where, false, base.latency_us, ranges::kMicroseconds);
    if (r.failed()) return r.error();
  }
  return Ok{};
}

}  // namespace

Expected<Cluster> parse_cluster(const std::string& text, const std::string& source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // also out_of_range: a number too large for a double (1e400)
    return Error{source + ": invalid JSON: " + e.what()};
  }
  if (!root.is_object()) return Error{source + ": expected a JSON object at the top level"};
  Reader r(source);
  Cluster c;
  c.name = r.text(root, "name", "", true);
  if (!r.failed() && c.name.empty()) r.fail("field name must not be empty");
  c.description = r.text(root, "description", "", false);
  if (!root.contains("devices")) r.fail("missing field devices");
  else if (!root.at("devices").is_array() || root.at("devices").empty())
    r.fail("field devices must be a non-empty array");
  if (r.failed()) return r.error();

  std::map<std::string, int> seen;
  const json& devices = root.at("devices");
  for (size_t i = 0; i < devices.size() && !r.failed(); ++i) {
    const std::string where = fmt::format("devices[{}]", i);
    if (!devices[i].is_object()) {
      r.fail(where + " must be an object");
      break;
    }
    Device d = read_device(r, devices[i], where);
    if (r.failed()) break;
    if (auto [it, inserted] = seen.emplace(d.name, static_cast<int>(i)); !inserted) {
      r.fail(fmt::format("duplicate device name '{}' (devices[{}] and devices[{}])", d.name, it->second, i));
      break;
    }
    c.devices.push_back(std::move(d));
  }
  if (r.failed()) return r.error();
  MOIRAI_TRY(read_links(r, root, source, c));
  return c;
}

Expected<Cluster> load_cluster(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot open the cluster file"};
  std::ostringstream text;
  text << in.rdbuf();
  return parse_cluster(text.str(), path);
}

}  // namespace moirai
