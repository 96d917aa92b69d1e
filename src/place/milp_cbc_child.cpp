// Crash isolation for CBC: solve_with_cbc forks, the child runs solve_in_process and streams its progress
// lines and then its result (status, objective, bound, gap, nodes, column values) back through a pipe as text
// lines, and leaves with _exit (no destructors: a broken solver state cannot crash on the way out). The parent
// forwards progress lines as they arrive, waits at most time limit + margin, kills an overrunning child, and
// turns a crash or a truncated answer into status "solver crashed" with a diagnostic. CBC checks its clock only
// between steps (a strong-branching step took 7 s past a 30 s limit on the loaded 2-core machine), so the child
// also streams every improving incumbent: a child killed for overrunning returns "time limit" with the last one
// (or else the start it was given) when it satisfies the model.
//
// Protocol (one record per line): "P <progress text>", "I <value> <value> ..." (an incumbent, one hex float per
// column), "S <status>", "N <has_solution> <objective> <bound> <gap> <nodes> <seconds> <count>", "V <value>
// <value> ..." (count values, hex floats: exact), "E" (end).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include "milp_cbc.h"

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);  // the parent is gone
    done += static_cast<size_t>(w);
  }
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

std::string hex(double v) { return fmt::format("{:a}", v); }

// The fault named by the test hook, after one progress line (so forwarding is exercised too).
void inject_fault(int fd) {
  const char* fault = std::getenv(kMilpFaultEnv);
  if (!fault || !*fault) return;
  write_all(fd, "P milp: solver child started (fault injection: " + one_line(fault) + ")\n");
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);  // an injected crash leaves no core file behind
  const std::string f = fault;
  if (f == "abort") std::abort();
  if (f == "segv") {
    std::signal(SIGSEGV, SIG_DFL);  // die on the signal even when a sanitizer's handler is installed
    std::raise(SIGSEGV);
  }
  if (f == "exit") _exit(7);
  if (f == "hang")
    for (;;) pause();
}

std::string hex_values(const std::vector<double>& values) {
  std::string out;
  for (double v : values) out += ' ' + hex(v);
  return out;
}

// Values of a "V ..." or "I ..." record.
std::vector<double> parse_values(const std::string& line) {
  std::vector<double> values;
  if (line.empty()) return values;
  const char* p = line.c_str() + 1;
  char* next = nullptr;
  for (double v = std::strtod(p, &next); next != p; v = std::strtod(p, &next)) values.push_back(v), p = next;
  return values;
}

[[noreturn]] void run_child(int fd, const MilpModel& model, const MilpSolveOptions& options) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the caller
  inject_fault(fd);
  MilpSolveOptions o = options;
  o.progress = nullptr;
  if (options.progress) o.progress = [fd](const std::string& line) { write_all(fd, "P " + one_line(line) + "\n"); };
  o.incumbent = [fd](double, const std::vector<double>& values) {
    std::string line = "I";
    line += hex_values(values);
    line += '\n';
    write_all(fd, line);
  };
  const MilpSolveResult r = solve_in_process(model, o);
  const char* fault = std::getenv(kMilpFaultEnv);
  if (fault && std::string(fault) == "hang after solve")
    for (;;) pause();
  std::string out = fmt::format("S {}\n", status_name(r.status));
  out += fmt::format("N {} {} {} {} {} {} {}\n", r.has_solution ? 1 : 0, hex(r.objective), hex(r.bound), hex(r.gap),
                     r.nodes, hex(r.seconds), r.values.size());
  out += "V" + hex_values(r.values) + "\nE\n";
  write_all(fd, out);
  _exit(0);
}

// Parses the child's result records; false when they are incomplete or malformed.
bool parse_result(const std::vector<std::string>& lines, size_t num_cols, MilpSolveResult& r) {
  bool status = false, numbers = false, values = false, end = false;
  size_t count = 0;
  for (const auto& line : lines) {
    if (line.rfind("S ", 0) == 0) {
      const auto named = status_named(line.substr(2));
      if (!named) return false;
      r.status = *named;
      status = true;
    }
    if (line.rfind("N ", 0) == 0) {
      std::istringstream in(line.substr(2));
      std::string obj, bound, gap, secs;
      int has = 0;
      if (!(in >> has >> obj >> bound >> gap >> r.nodes >> secs >> count)) return false;
      r.has_solution = has != 0;
      r.objective = std::strtod(obj.c_str(), nullptr);
      r.bound = std::strtod(bound.c_str(), nullptr);
      r.gap = std::strtod(gap.c_str(), nullptr);
      r.seconds = std::strtod(secs.c_str(), nullptr);
      numbers = true;
    }
    if (line.rfind("V", 0) == 0) {
      r.values = parse_values(line);
      values = true;
    }
    if (line == "E") end = true;
  }
  if (!(status && numbers && values && end) || r.values.size() != count) return false;
  return !r.has_solution || r.values.size() == num_cols;
}

std::string describe_exit(int wstatus) {
  if (WIFSIGNALED(wstatus)) {
    const int sig = WTERMSIG(wstatus);
    const char* name = strsignal(sig);
    return fmt::format("the CBC child process died on signal {} ({})", sig, name ? name : "?");
  }
  if (WIFEXITED(wstatus)) return fmt::format("the CBC child process exited with code {} without a result", WEXITSTATUS(wstatus));
  return "the CBC child process stopped without a result";
}

}  // namespace

MilpSolveResult solve_with_cbc(const MilpModel& model, const MilpSolveOptions& options) {
  if (!options.isolate) return solve_in_process(model, options);
  const auto t0 = Clock::now();
  auto crashed = [&](std::string why) {
    MilpSolveResult r;
    r.status = SolveStatus::crashed;
    r.diagnostic = std::move(why);
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (options.progress) options.progress("milp: " + r.diagnostic);
    return r;
  };
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return crashed(fmt::format("cannot create a pipe for the CBC child: {}", std::strerror(errno)));
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]), ::close(fds[1]);
    return crashed(fmt::format("cannot fork the CBC child: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_child(fds[1], model, options);
  }
  ::close(fds[1]);
  const double margin = options.kill_margin_s >= 0 ? options.kill_margin_s : 1.0;
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(std::max(0.05, options.time_limit_s) + margin));
  std::vector<std::string> records;
  std::string pending, last_incumbent;
  bool killed = false;
  char buf[65536];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      killed = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child exited (or closed the pipe by dying)
    pending.append(buf, static_cast<size_t>(got));
    size_t from = 0;
    for (size_t nl; (nl = pending.find('\n', from)) != std::string::npos; from = nl + 1) {
      std::string line = pending.substr(from, nl - from);
      if (line.rfind("P ", 0) == 0) {
        if (options.progress) options.progress(line.substr(2));
      } else if (line.rfind("I ", 0) == 0) {
        last_incumbent = std::move(line);  // parsed only if the child is killed
      } else {
        records.push_back(std::move(line));
      }
    }
    pending.erase(0, from);
  }
  ::close(fds[0]);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  MilpSolveResult r;
  if (!killed && parse_result(records, static_cast<size_t>(model.num_cols()), r)) return r;  // a late crash after
                                                                                               // the answer is harmless
  if (killed) {
    r.status = SolveStatus::time_limit;
    r.diagnostic = fmt::format("the CBC child did not finish within {:.1f} s (limit {:.1f} s + margin {:.1f} s) and was killed",
                               std::max(0.05, options.time_limit_s) + margin, options.time_limit_s, margin);
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    // Its last incumbent, or else the start it was given (what CBC itself returns when it finds nothing better).
    auto values = parse_values(last_incumbent);
    if (values.empty()) values = options.start;
    const bool usable = values.size() == static_cast<size_t>(model.num_cols()) && model.violation(values, 1e-6).empty();
    if (usable) {
      r.has_solution = true;
      r.values = std::move(values);
      r.objective = model.objective(r.values);
      r.gap = 1;  // no bound survives the kill
    }
    if (options.progress)
      options.progress(fmt::format("milp: {}; {}", r.diagnostic,
                                   usable ? fmt::format("keeping its incumbent {:.6g}", r.objective) : "no incumbent"));
    return r;
  }
  return crashed(describe_exit(wstatus));
}

}  // namespace moirai
