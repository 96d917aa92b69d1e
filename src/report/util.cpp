// Report helpers: atomic file writing, human-readable units, and assembling a Plan.
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

Status write_file_atomic(const std::string& path, const std::string& contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // mkstemp in the target's directory: rename() is atomic only within one file system.
  std::string tmpl = (dir / ("." + target.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  const int fd = ::mkstemp(name.data());
  if (fd < 0) return Error{fmt::format("{}: cannot create a temporary file: {}", path, std::strerror(errno))};
  const std::string tmp(name.data());
  auto fail = [&](const char* what) -> Status {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error{fmt::format("{}: {}: {}", path, what, std::strerror(err))};
  };
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("cannot write");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot flush");
  // mkstemp creates 0600; give the file the usual rw-r--r-- (reading the umask would change process state).
  ::fchmod(fd, 0644);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error{fmt::format("{}: cannot close: {}", path, std::strerror(err))};
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error{fmt::format("{}: cannot rename the temporary file into place: {}", path, std::strerror(err))};
  }
  return Ok{};
}

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
