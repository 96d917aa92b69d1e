// Cluster: devices and the directed links between them. Every device has one send and one receive port.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai {

using DeviceId = int32_t;

struct Link {
  double bandwidth_gbps = 0;  ///< GB/s in this direction
  double latency_us = 0;
  /// Milliseconds to move `bytes`: latency + bytes / bandwidth (1 GB = 1e9 bytes).
  double ms(double bytes) const { return latency_us / 1000.0 + bytes / (bandwidth_gbps * 1e9) * 1000.0; }
};

struct Device {
  std::string name;
  std::string kind;             ///< "gpu", "cpu", "unknown" ...
  double peak_gflops = 0;       ///< dense FP32 GFLOP/s (0 when unknown, e.g. instance-only devices)
  double peak_gflops_fp16 = 0;  ///< dense FP16 GFLOP/s, 0 when not given
  double mem_bandwidth_gbps = 0;  ///< GB/s, 1 GB = 1e9 bytes
  double memory_bytes = 0;        ///< capacity in bytes (files give GiB)
  double reserved_bytes = 0;      ///< held back for the runtime (context, allocator, workspace, OS); never placed on
  double launch_us = 0;           ///< fixed per-kernel overhead in microseconds

  /// What a plan may use: memory_bytes - reserved_bytes.
  double usable_bytes() const { return memory_bytes - reserved_bytes; }
  /// Fixed cost of one stage (one runtime call running a maximal run of this device's operators, see
  /// moirai/stages.h), in microseconds; measured by `moirai profile`. 0 = operators are scheduled one by one.
  double stage_overhead_us = 0;
  int threads = 0;                ///< intra-operator threads the runtime uses on this device; 0 = its default
  /// The coordinator of `moirai run` pushes graph inputs to this device over `from_coordinator` and fetches its
  /// graph outputs over `to_coordinator` (measured by `moirai profile --local/--workers`). Absent = free (0 ms).
  std::optional<Link> from_coordinator, to_coordinator;
};

/// GiB a device of this kind keeps free when its file gives no `reserved_gib` (clusters/README.md says why).
double default_reserved_gib(const std::string& kind);

struct Cluster {
  std::string name;
  std::string description;
  std::vector<Device> devices;
  std::vector<Link> links;  ///< size() x size(), row = source, column = destination; diagonal unused

  int size() const { return static_cast<int>(devices.size()); }
  const Link& link(DeviceId src, DeviceId dst) const { return links[static_cast<size_t>(src) * static_cast<size_t>(size()) + static_cast<size_t>(dst)]; }
  /// Device id by name, or kNone (-1).
  DeviceId find(const std::string& name) const;
  /// Milliseconds to move `bytes` from src to dst (0 on the same device).
  double transfer_ms(DeviceId src, DeviceId dst, double bytes) const;
  /// Milliseconds for the coordinator to push `bytes` to device d, and to fetch them from it (0 without a link).
  double push_ms(DeviceId d, double bytes) const;
  double fetch_ms(DeviceId d, double bytes) const;
  /// True when some device has a coordinator link (in either direction).
  bool has_coordinator_links() const;
};

/// Cluster JSON text (the schema of clusters/README.md) that parse_cluster reads back to an equal cluster: every
/// link is written as a pair override of the most common link.
std::string cluster_json(const Cluster& cluster);

/// One measured transfer: `bytes` moved from one worker to another in `ms`.
struct TransferSample {
  double bytes = 0;
  double ms = 0;
};

/// A link fitted to samples: ms = latency + bytes / bandwidth (least squares; when the free fit's latency is
/// negative, the line through the origin).
struct LinkFit {
  Link link;
  double r2 = 0;   ///< coefficient of determination of the fit
  int samples = 0;
};

/// Fits a link's latency and bandwidth to measured transfers (moirai profile's worker-to-worker measurements).
/// Errors: fewer than two distinct sizes, a negative or non-finite sample, or times that do not grow with size.
/// The result is checked against the ranges a cluster file accepts.
Expected<LinkFit> fit_link(const std::vector<TransferSample>& samples);

/// fit_link minimizing relative errors (each sample weighted by 1 / ms^2; r2 is weighted too): every size counts
/// alike, so a noisy large transfer on a busy machine does not swamp the latency the small ones show.
Expected<LinkFit> fit_link_relative(const std::vector<TransferSample>& samples);

/// Reads a cluster JSON file (see clusters/README.md for the schema). Errors name the file and the field.
Expected<Cluster> load_cluster(const std::string& path);
/// Same from JSON text; `source` names it in errors.
Expected<Cluster> parse_cluster(const std::string& text, const std::string& source);
/// One device of generic figures with unbounded memory, for what does not depend on the device (the peak memory of
/// an order, `moirai schedule` without --cluster).
Cluster generic_cluster();

}  // namespace moirai
