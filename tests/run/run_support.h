// Test support for the run stage: start a `moirai worker` process and read its address; talk to it over gRPC.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace moirai::runtest {

/// A `moirai worker --listen HOST:0` child process; killed (SIGKILL) and reaped when the object goes away.
class WorkerProcess {
 public:
  explicit WorkerProcess(const std::string& device, const std::string& host = "127.0.0.1",
                         const std::vector<std::string>& prefix = {}) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      std::vector<std::string> args = prefix;
      for (const std::string& a : {std::string(MOIRAI_CLI), std::string("worker"), std::string("--listen"),
                                   host + ":0", std::string("--device"), device})
        args.push_back(a);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    std::string line;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < until) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    ::close(fds[0]);
    const std::string prefix_text = "listening on ";
    if (line.rfind(prefix_text, 0) != 0) throw std::runtime_error("worker did not start: '" + line + "'");
    address_ = line.substr(prefix_text.size(), line.find('\n') - prefix_text.size());
  }
  ~WorkerProcess() { kill(); }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  /// The caller has reaped the process (waitpid): nothing left to kill.
  void forget() { pid_ = 0; }
  void kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = 0;
    }
  }

 private:
  pid_t pid_ = 0;
  std::string address_;
};

}  // namespace moirai::runtest
