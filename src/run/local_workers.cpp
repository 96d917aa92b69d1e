// Starting and reaping local worker processes (see local_workers.h).
#include "local_workers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "moirai/export.h"

namespace moirai::run_detail {
namespace {

// Process groups to kill when a signal ends the coordinator (async-signal-safe: a fixed array of atomics).
constexpr int kMaxGroups = 16;
volatile sig_atomic_t g_groups[kMaxGroups] = {};

void on_signal(int sig) {
  for (int i = 0; i < kMaxGroups; ++i)
    if (g_groups[i] > 0) ::kill(-static_cast<pid_t>(g_groups[i]), SIGKILL);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void register_group(pid_t group) {
  static bool installed = false;
  if (!installed) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
    installed = true;
  }
  for (int i = 0; i < kMaxGroups; ++i)
    if (g_groups[i] == 0) {
      g_groups[i] = group;
      return;
    }
}

void unregister_group(pid_t group) {
  for (int i = 0; i < kMaxGroups; ++i)
    if (g_groups[i] == group) g_groups[i] = 0;
}

/// Reads the child's first stdout line ("listening on HOST:PORT"), waiting at most `timeout_ms`.
Expected<std::string> first_line(int fd, pid_t pid, double timeout_ms) {
  std::string line;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::milli>(timeout_ms);
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) return Error{fmt::format("local worker (pid {}) did not report its address within {:.0f} ms", pid, timeout_ms)};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return Error{fmt::format("local worker (pid {}) exited before listening (see its message above)", pid)};
    line.append(buf, static_cast<size_t>(n));
  }
  line.resize(line.find('\n'));
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) != 0) return Error{fmt::format("local worker (pid {}) printed '{}' instead of its address", pid, line)};
  return line.substr(prefix.size());
}

}  // namespace

Expected<std::vector<std::string>> worker_command(const std::string& argv0) {
  auto script = find_tool("worker.mjs", argv0.empty() ? "/proc/self/exe" : argv0);
  if (!script) return script.error();
  const char* node = std::getenv("MOIRAI_NODE");
  return std::vector<std::string>{node && *node ? node : "node", *script};
}

Expected<std::vector<std::string>> LocalWorkers::start(const std::vector<std::string>& devices, int threads,
                                                        const std::string& provider, const std::string& argv0,
                                                        double timeout_ms) {
  auto command = worker_command(argv0);
  if (!command) return command.error();
  std::vector<std::string> addresses;
  for (const auto& device : devices) {
    std::vector<std::string> args = *command;
    for (const std::string& a : {std::string("--listen"), std::string("127.0.0.1:0"), std::string("--threads"),
                                 std::to_string(threads), std::string("--provider"), provider,
                                 std::string("--device"), device})
      args.push_back(a);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Error{fmt::format("cannot create a pipe: {}", std::strerror(errno))};
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return Error{fmt::format("cannot start a local worker: {}", std::strerror(errno))};
    if (pid == 0) {
      ::setpgid(0, group_);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);  // the coordinator died before prctl
      ::dup2(fds[1], STDOUT_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      const std::string msg = fmt::format("moirai: cannot run {}: {}\n", args[0], std::strerror(errno));
      (void)!::write(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(127);
    }
    ::close(fds[1]);
    ::setpgid(pid, group_);  // also here: no race with the child
    if (group_ == 0) {
      group_ = pid;
      register_group(group_);
    }
    pids_.push_back(pid);
    auto address = first_line(fds[0], pid, timeout_ms);
    ::close(fds[0]);
    if (!address) {
      stop();
      return Error{fmt::format("device '{}': {}", device, address.error().message)};
    }
    addresses.push_back(*address);
  }
  return addresses;
}

void LocalWorkers::stop() {
  if (group_ == 0) return;
  ::kill(-group_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (pid_t pid : pids_) {
    while (::waitpid(pid, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(-group_, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  unregister_group(group_);
  group_ = 0;
  pids_.clear();
}

LocalWorkers::~LocalWorkers() { stop(); }

}  // namespace moirai::run_detail
