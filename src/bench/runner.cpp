// Runs the grid of combinations not done yet: loads each (model, cluster) problem once and runs its methods,
// each in a child process forked after the load (the problem is shared copy-on-write) that a watchdog kills
// past its deadline; a crash or a kill becomes a row. Every row is appended to rows.jsonl as it arrives.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <memory>

#include "internal.h"
#include "moirai/report.h"

namespace moirai {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t w = ::write(fd, s.data() + done, s.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

// A method running in a child process.
struct Child {
  pid_t pid = -1;
  int fd = -1;
  Clock::time_point start;
  BenchRow base;  // the row to report if the child dies without an answer
  std::string out;
};

// Drives the grid: dispatches methods (forked or in process), collects rows, reports progress.
class Runner {
 public:
  Runner(const BenchOptions& o, std::vector<BenchTask> tasks, int total)
      : o_(o), tasks_(std::move(tasks)), settings_(bench_settings(o)), start_(Clock::now()) {
    progress_.total = total;
    for (const auto& t : tasks_)
      for (const auto& m : t.methods) ++pending_[m];
    kill_after_s_ = o.kill_after_s > 0 ? o.kill_after_s : 3 * o.place.time_limit_s + 60;
  }

  Status run() {
    if (!o_.isolate) return run_sequential();
    const size_t jobs = static_cast<size_t>(std::max(1, o_.jobs));
    for (;;) {
      while (!stop() && children_.size() < jobs && next_method()) {
        if (auto s = spawn(); !s) return s;
      }
      if (children_.empty() && (stop() || !has_work())) break;
      if (auto s = wait_children(); !s) return s;
    }
    return Ok{};
  }

  std::vector<BenchRow>& rows() { return rows_; }
  const std::optional<BenchRow>& first_invalid() const { return invalid_; }
  int ran() const { return progress_.done; }

 private:
  bool stop() const { return invalid_.has_value() || !append_error_.empty(); }
  bool has_work() const { return task_ < tasks_.size(); }

  // Positions (task_, method_) on the next method to run, loading its problem if needed. A problem that does
  // not load gives every one of its methods a failed row.
  bool next_method() {
    while (task_ < tasks_.size()) {
      const BenchTask& t = tasks_[task_];
      if (method_ < t.methods.size()) {
        if (problem_ || load_error_) return problem_ != nullptr || finish_load_error();
        load(t);
        continue;
      }
      ++task_, method_ = 0, problem_.reset(), load_error_.reset();
    }
    return false;
  }

  void load(const BenchTask& t) {
    ProblemOptions po;
    po.input = t.model_path;
    po.cluster_path = t.cluster_path;
    po.coarsen = o_.coarsen;
    if (o_.context > 0) {
      po.dims[kContextDim] = o_.context;
      po.optional_dims = true;
    }
    const auto t0 = Clock::now();
    auto p = load_problem(po);
    load_s_ += seconds_since(t0), ++loads_;
    if (p) problem_ = std::make_shared<Problem>(std::move(*p));
    else load_error_ = p.error().message;
  }

  // Records a failed row for every method of a problem that could not be loaded; false: nothing to spawn.
  bool finish_load_error() {
    const BenchTask& t = tasks_[task_];
    for (; method_ < t.methods.size(); ++method_) {
      BenchRow row = base_row(t, t.methods[method_], settings_);
      row.status = {RowOutcome::failed, PlanStatus::ok, "cannot load: " + clip(*load_error_, 200)};
      row.note = clip(*load_error_, 2000);
      record(std::move(row));
    }
    return next_method();
  }

  BenchRow current_base() const {
    BenchRow row = base_row(tasks_[task_], tasks_[task_].methods[method_], settings_);
    fill_problem(row, *problem_);
    return row;
  }

  Status spawn() {
    Child c;
    c.base = current_base();
    const std::string method = tasks_[task_].methods[method_++];
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Error{fmt::format("bench: cannot create a pipe: {}", std::strerror(errno))};
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return Error{fmt::format("bench: cannot fork: {}", std::strerror(errno))};
    if (pid == 0) {  // child: run the method, send the row as one JSON line, leave without destructors
      ::close(fds[0]);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::setpgid(0, 0);  // its own group, so a kill reaches the solver processes it forks too
      PlaceOptions options = o_.place;
      options.progress = nullptr;
      write_all(fds[1], bench_row_json(run_in_process(c.base, *problem_, method, options, o_.stream)) + "\n");
      ::_exit(0);
    }
    ::setpgid(pid, pid);
    ::close(fds[1]);
    c.pid = pid;
    c.fd = fds[0];
    c.start = Clock::now();
    children_.push_back(std::move(c));
    tick(nullptr);
    return Ok{};
  }

  Status wait_children() {
    std::vector<pollfd> pfds;
    for (const auto& c : children_) pfds.push_back(pollfd{c.fd, POLLIN, 0});
    const int n = ::poll(pfds.data(), pfds.size(), 250);
    if (n < 0 && errno != EINTR) return Error{fmt::format("bench: poll failed: {}", std::strerror(errno))};
    for (size_t i = children_.size(); i-- > 0;) {
      Child& c = children_[i];
      bool done = false;
      if (n > 0 && (pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        char buf[4096];
        const ssize_t got = ::read(c.fd, buf, sizeof buf);
        if (got > 0) c.out.append(buf, static_cast<size_t>(got));
        else if (got == 0 || errno != EINTR) done = true;
      }
      if (done) {
        finish(c, false);
        children_.erase(children_.begin() + static_cast<long>(i));
      } else if (seconds_since(c.start) > kill_after_s_) {
        finish(c, true);
        children_.erase(children_.begin() + static_cast<long>(i));
      }
    }
    if (seconds_since(last_tick_) >= 1) tick(nullptr);
    return Ok{};
  }

  // Reaps a child and records its row (or why there is none).
  void finish(Child& c, bool kill_it) {
    const double took = seconds_since(c.start);
    if (kill_it) {
      ::kill(-c.pid, SIGKILL);
      ::kill(c.pid, SIGKILL);
    }
    int wstatus = 0;
    while (::waitpid(c.pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    ::close(c.fd);
    BenchRow row = c.base;
    row.placement_time_s = took;
    const auto eol = c.out.find('\n');
    auto parsed = eol == std::string::npos ? Expected<BenchRow>(Error{"no answer"}) : parse_bench_row(c.out.substr(0, eol));
    if (parsed) {  // answered (perhaps just before the deadline passed)
      row = std::move(*parsed);
    } else if (kill_it) {
      row.status = {RowOutcome::killed, PlanStatus::ok,
                    fmt::format("killed after {:.0f} s (time limit {} s)", took, o_.place.time_limit_s)};
    } else if (WIFSIGNALED(wstatus)) {
      row.status = {RowOutcome::failed, PlanStatus::ok, fmt::format("crashed ({})", strsignal(WTERMSIG(wstatus)))};
    } else {
      row.status = {RowOutcome::failed, PlanStatus::ok,
                    fmt::format("exited with status {} without a result", WEXITSTATUS(wstatus))};
    }
    record(std::move(row));
  }

  Status run_sequential() {
    while (!stop() && next_method()) {
      BenchRow base = current_base();
      const std::string method = tasks_[task_].methods[method_++];
      PlaceOptions options = o_.place;
      tick(nullptr);
      record(run_in_process(base, *problem_, method, options, o_.stream));
    }
    return Ok{};
  }

  void record(BenchRow row) {
    --pending_[row.method];
    auto& [sum, count] = took_[row.method];
    sum += row.placement_time_s, ++count;
    if (auto s = append_row(o_.out_dir, row); !s && append_error_.empty()) append_error_ = s.error().message;
    if (row.invalid() && !invalid_) invalid_ = row;
    rows_.push_back(std::move(row));
    ++progress_.done;
    tick(&rows_.back());
  }

  // Time left: per method the mean time of its finished runs (the time limit for a method not seen yet),
  // for every pending run and the rest of the running ones, plus the mean load time per problem left.
  std::optional<double> eta() const {
    double all = 0;
    int n = 0;
    for (const auto& [m, st] : took_) all += st.first, n += st.second;
    if (n == 0) return std::nullopt;
    auto est = [&](const std::string& m) {
      const auto it = took_.find(m);
      if (it != took_.end() && it->second.second > 0) return it->second.first / it->second.second;
      return std::max(all / n, o_.place.time_limit_s);  // not seen yet: assume a search method (it corrects itself)
    };
    double left = 0;
    for (const auto& [m, count] : pending_) left += std::max(0, count) * est(m);
    for (const auto& c : children_) left -= std::min(est(c.base.method), seconds_since(c.start));
    const size_t tasks_left = tasks_.size() - std::min(tasks_.size(), task_ + 1);
    if (loads_ > 0) left += static_cast<double>(tasks_left) * load_s_ / loads_;
    return std::max(0.0, left) / std::max(1, o_.jobs);
  }

  void tick(const BenchRow* last) {
    last_tick_ = Clock::now();
    if (!o_.progress) return;
    progress_.running = static_cast<int>(children_.size());
    progress_.elapsed_s = seconds_since(start_);
    progress_.eta_s = eta();
    progress_.last = last;
    o_.progress(progress_);
  }

 public:
  const std::string& append_error() const { return append_error_; }
  void set_skipped(int n) { progress_.skipped = n; }

 private:
  const BenchOptions& o_;
  std::vector<BenchTask> tasks_;
  std::string settings_;
  Clock::time_point start_, last_tick_;
  double kill_after_s_ = 0;
  size_t task_ = 0, method_ = 0;
  std::shared_ptr<Problem> problem_;
  std::optional<std::string> load_error_;
  std::vector<Child> children_;
  std::vector<BenchRow> rows_;
  std::optional<BenchRow> invalid_;
  std::map<std::string, int> pending_;  // runs not finished yet, per method
  std::map<std::string, std::pair<double, int>> took_;  // per method: seconds summed, runs
  double load_s_ = 0;
  int loads_ = 0;
  std::string append_error_;
  BenchProgress progress_;
};

}  // namespace

GridOutcome run_grid(const BenchOptions& options, std::vector<BenchTask> tasks, int total, int skipped) {
  Runner runner(options, std::move(tasks), total);
  runner.set_skipped(skipped);
  GridOutcome out;
  out.status = runner.run();
  out.rows = std::move(runner.rows());
  out.invalid = runner.first_invalid();
  out.append_error = runner.append_error();
  return out;
}

}  // namespace moirai
