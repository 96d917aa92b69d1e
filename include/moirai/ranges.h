// Accepted ranges of the figures in input files (clusters/README.md, instances/README.md): generous but finite,
// so an absurd figure is rejected where it is read, naming the file and the field, instead of overflowing later
// (CLP aborts on a 1e308 coefficient).
#pragma once

#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace moirai::ranges {

struct Range {
  double lo, hi;
  const char* unit;
};
inline constexpr Range kBandwidthGBps{1e-6, 1e6, "GB/s"};  // links
inline constexpr Range kDeviceBandwidthGBps{0, 1e6, "GB/s"};  // a device's memory bandwidth (0: unknown)
inline constexpr Range kGflops{0, 1e9, "GFLOP/s"};
inline constexpr Range kMicroseconds{0, 1e9, "us"};
inline constexpr Range kMilliseconds{0, 1e9, "ms"};
inline constexpr Range kStageOverheadUs{0, 1e6, "us"};  // per runtime call: 1 s would already be absurd
inline constexpr Range kStageOverheadMs{0, 1e3, "ms"};  // the same in a profile
inline constexpr Range kThreads{0, 1024, "threads"};      // intra-op threads; 0 = the runtime's default
inline constexpr Range kMemoryGiB{0, 1e6, "GiB"};
inline constexpr Range kReservedGiB{0, 1e6, "GiB"};  // also below the device's memory_gib (checked by the loader)
inline constexpr Range kMemoryUnits{0, 1e15, "units"};  // an instance's own memory unit (bytes at most 1e15)

/// Empty when `v` is a number within `r`; else "must be a number from LO to HI UNIT, got V".
inline std::string problem(const nlohmann::json& v, const Range& r) {
  if (v.is_number() && v.get<double>() >= r.lo && v.get<double>() <= r.hi) return "";
  return fmt::format("must be a number from {:g} to {:g} {}, got {}", r.lo, r.hi, r.unit, v.dump());
}

}  // namespace moirai::ranges
