// Local workers (private to src/run): `moirai run --local` starts one worker process per device, all in one
// process group of their own, and reaps them when the run ends, fails or is interrupted (SIGINT/SIGTERM), so no
// worker outlives the run. Each child also gets SIGKILL from the kernel if the coordinator dies (PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "moirai/error.h"

namespace moirai::run_detail {

/// The node command that runs tools/worker.mjs: [node, script] ($MOIRAI_NODE overrides node).
Expected<std::vector<std::string>> worker_command(const std::string& argv0);

class LocalWorkers {
 public:
  LocalWorkers() = default;
  ~LocalWorkers();
  LocalWorkers(const LocalWorkers&) = delete;
  LocalWorkers& operator=(const LocalWorkers&) = delete;

  /// Starts one worker per device on 127.0.0.1 (free ports); returns their addresses in device order. Waits up
  /// to `timeout_ms` for each to print its address.
  Expected<std::vector<std::string>> start(const std::vector<std::string>& devices, int threads,
                                           const std::string& provider, const std::string& argv0,
                                           double timeout_ms);
  /// Terminates every worker (SIGTERM, then SIGKILL after a grace period) and waits for them.
  void stop();
  /// Worker process ids, in device order.
  const std::vector<pid_t>& pids() const { return pids_; }

 private:
  pid_t group_ = 0;
  std::vector<pid_t> pids_;
};

}  // namespace moirai::run_detail
