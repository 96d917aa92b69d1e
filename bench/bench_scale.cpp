// Scale benchmark (issue 16): every whole-operator method on layered DAGs of 1k to 20k operators x 8 devices, each
// run in its own forked process so that its wall time and peak resident memory (the child's ru_maxrss) are its
// own. The time limit is a promise: search methods must finish within limit + 1 s at any size.
// A plain program printing a Markdown table (runs take seconds to minutes; Google Benchmark's repetitions do not
// fit), linked like every bench/ target.
//   bench_scale [--sizes 1000,5000,10000,20000] [--methods heft,...,milp] [--time-limit S]
// MOIRAI_BENCH_VERBOSE=1 prints the methods' progress lines with timestamps on stderr.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "moirai/placer.h"
#include "moirai/simulate.h"
#include "support/random_table.h"

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

struct Run {
  double seconds = 0, rss_mib = 0, latency_ms = 0;
  std::string outcome;
};

// Places in a child; the child writes "latency mode" (or "error ...") to a pipe.
Run run_child(const moirai::CostTable& table, const std::string& method, double limit) {
  int fd[2];
  if (pipe(fd) != 0) return {0, 0, 0, "pipe failed"};
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    std::string answer;
    auto placer = moirai::make_placer(method);
    moirai::PlaceOptions o;
    o.time_limit_s = limit;
    if (std::getenv("MOIRAI_BENCH_VERBOSE"))  // progress with timestamps, for finding where time goes
      o.progress = [t0](const std::string& line) {
        std::fprintf(stderr, "%8.2f s  %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), line.c_str());
      };
    auto r = placer.ok() ? (*placer)->place(table, o) : moirai::Expected<moirai::PlaceResult>(placer.error());
    if (r.ok()) {
      char line[256];
      std::snprintf(line, sizeof line, "%.6g %s", moirai::simulate(table, r->placement, o.sim).makespan_ms,
                    r->mode.empty() ? "-" : r->mode.c_str());
      answer = line;
    } else {
      answer = "error " + r.error().message.substr(0, 120);
    }
    if (write(fd[1], answer.data(), answer.size()) < 0) _exit(2);
    _exit(0);
  }
  close(fd[1]);
  std::string answer;
  char buf[512];
  for (ssize_t got; (got = read(fd[0], buf, sizeof buf)) > 0;) answer.append(buf, static_cast<size_t>(got));
  close(fd[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  Run run;
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  run.rss_mib = static_cast<double>(usage.ru_maxrss) / 1024.0;  // kilobytes on Linux
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return run.outcome = "crashed", run;
  if (answer.rfind("error", 0) == 0) return run.outcome = answer, run;
  run.latency_ms = std::atof(answer.c_str());
  run.outcome = answer.substr(answer.find(' ') + 1);
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> sizes{"1000", "5000", "10000", "20000"};
  std::vector<std::string> methods{"heft", "cpop", "m-topo", "m-etf", "m-sct", "getf", "milp"};
  double limit = 10;
  auto usage = [](const std::string& why) {
    std::fprintf(stderr, "bench_scale: %s (usage: bench_scale [--sizes N,N,...] [--methods M,M,...] [--time-limit S])\n",
                 why.c_str());
    return 2;
  };
  if (argc % 2 == 0) return usage("every option takes a value");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--sizes")) sizes = split(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--methods")) methods = split(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--time-limit")) limit = std::atof(argv[i + 1]);
    else return usage(std::string("unknown option ") + argv[i]);
  }
  if (!(limit > 0 && limit <= 1e6)) return usage("--time-limit must be a number of seconds from 0 to 1e6");
  for (const auto& size : sizes)
    if (size.empty() || size.size() > 7 || size.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(size) < 2)
      return usage("--sizes: '" + size + "' is not an operator count from 2 to 9999999");
  for (const auto& m : methods)
    if (auto placer = moirai::make_placer(m); !placer.ok()) return usage("--methods: " + placer.error().message);
  std::printf("Layered DAGs (100 operators per layer), 8 devices, time limit %.3g s (search methods).\n\n", limit);
  std::printf("| operators | method | wall s | within limit + 1 s | peak RSS MiB | latency ms | mode |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const auto& size : sizes) {
    const auto table = moirai::testing::layered_table(std::stoi(size), 8);
    for (const auto& m : methods) {
      const Run r = run_child(table, m, limit);
      std::printf("| %s | %s | %.2f | %s | %.0f | %.6g | %s |\n", size.c_str(), m.c_str(), r.seconds,
                  r.seconds <= limit + 1 ? "yes" : "**no**", r.rss_mib, r.latency_ms, r.outcome.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
