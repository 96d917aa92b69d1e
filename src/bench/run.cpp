// The bench runner: expands the (model, cluster, method) grid, skips combinations already in OUT/rows.jsonl,
// loads each (model, cluster) problem once and runs its methods, each in a child process (forked after the
// load, so the problem is shared copy-on-write) that a watchdog kills past its deadline. Every finished
// combination is appended to rows.jsonl at once (append + fsync), so a killed bench resumes where it stopped.
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
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include "bench/internal.h"
#include "moirai/pipeline.h"
#include "moirai/report.h"

namespace moirai {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
using Key = std::tuple<std::string, std::string, std::string>;  // model, cluster, method

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool is_instance(const std::string& path) { return fs::path(path).extension() == ".json"; }

std::string settings_of(const BenchOptions& o) {
  return fmt::format("time_limit_s={} gap={} seed={} episodes={} generations={} population={} contention={} "
                     "fusion={} max_nodes={}",
                     o.place.time_limit_s, o.place.gap, o.place.seed, o.place.episodes, o.place.generations,
                     o.place.population, o.place.sim.contention ? "on" : "off", o.coarsen.fusion,
                     o.coarsen.max_nodes);
}

std::string clip(std::string s, size_t max) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() > max ? s.substr(0, max - 3) + "..." : s;
}

// One (model, cluster) problem and the methods still to run on it.
struct Task {
  std::string model_path, model, cluster_path, cluster;
  std::vector<std::string> methods;
};

BenchRow base_row(const Task& t, const std::string& method, const std::string& settings) {
  BenchRow r;
  r.model = t.model;
  r.cluster = t.cluster;
  r.method = method;
  r.settings = settings;
  return r;
}

// The figures of the problem itself, known before any method runs.
void fill_problem(BenchRow& r, const Problem& p) {
  r.devices = p.table.device_names;
  r.capacity = p.table.capacity;
  r.nodes_after = p.table.num_ops();
  r.nodes_before = p.steps.empty() ? r.nodes_after : p.steps.front().nodes_before;
  r.single_device_ms = best_single_device_ms(p.table);
}

// A method's error that says no plan fits the memory capacities (the placers phrase it differently, and every
// such message names the capacities).
bool about_memory(const std::string& error) {
  for (const char* hint : {"capacit", "does not fit", "fits on no device", "no device holds"})
    if (error.find(hint) != std::string::npos) return true;
  return false;
}

BenchRow make_row(BenchRow row, const Problem& p, const MethodRun& run) {
  row.placement_time_s = run.placement_time_s;
  if (!run.error.empty()) {
    row.note = clip(run.error, 2000);
    row.status = about_memory(run.error) ? "does not fit" : "failed: " + clip(run.error, 200);
    return row;
  }
  row.peak_memory = run.schedule.peak_memory;
  row.lower_bound_ms = run.result.lower_bound_ms;
  std::vector<std::string> bugs;  // an over-capacity plan is reported as "does not fit", not as a bug
  for (const auto& v : run.violations)
    if (run.fits || v.find("exceeds its capacity") == std::string::npos) bugs.push_back(v);
  if (!bugs.empty()) {
    row.status = "invalid: " + clip(bugs.front(), 300);
    std::string all;
    for (const auto& b : bugs) all += (all.empty() ? "" : "; ") + b;
    row.note = clip(all, 2000);
    return row;
  }
  if (!run.fits) {
    row.status = "does not fit";
    for (DeviceId d : run.schedule.over_capacity(p.table))
      row.note += fmt::format("{}{} needs {} of {}", row.note.empty() ? "" : "; ", p.table.device_names[d],
                              human_bytes(run.schedule.peak_memory[d]), human_bytes(p.table.capacity[d]));
    return row;
  }
  const double lat = run.schedule.makespan_ms;
  row.latency_ms = lat;
  row.status = run.result.status.empty() ? "ok" : run.result.status;
  if (row.lower_bound_ms > 0 && lat > 0) row.gap = std::max(0.0, (lat - row.lower_bound_ms) / lat);
  if (row.single_device_ms > 0 && lat > 0) row.speedup_vs_single = row.single_device_ms / lat;
  std::vector<std::string> notes;
  if (!run.result.mode.empty()) notes.push_back("mode " + run.result.mode);
  if (run.memory_ordered) notes.push_back("memory-ordered (BTSearch)");
  if (run.result.train_time_s > 0) notes.push_back(fmt::format("training {:.3g} s", run.result.train_time_s));
  for (const auto& n : notes) row.note += (row.note.empty() ? "" : "; ") + n;
  return row;
}

BenchRow run_in_process(const BenchRow& base, const Problem& p, const std::string& method, const PlaceOptions& o) {
  try {
    return make_row(base, p, run_method(p, method, o));
  } catch (const std::exception& e) {  // a MOIRAI_CHECK in a method: a bug, but the bench goes on with a row
    BenchRow row = base;
    row.status = "failed: internal error: " + clip(e.what(), 200);
    row.note = clip(e.what(), 2000);
    return row;
  }
}

Status append_row(const std::string& dir, const BenchRow& row) {
  const std::string path = rows_path(dir);
  const std::string line = bench_row_json(row) + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Error{fmt::format("{}: cannot open for appending: {}", path, std::strerror(errno))};
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return Error{fmt::format("{}: cannot append: {}", path, std::strerror(err))};
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) return Error{fmt::format("{}: cannot flush: {}", path, std::strerror(errno))};
  return Ok{};
}

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
  Runner(const BenchOptions& o, std::vector<Task> tasks, int total)
      : o_(o), tasks_(std::move(tasks)), settings_(settings_of(o)), start_(Clock::now()) {
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
      const Task& t = tasks_[task_];
      if (method_ < t.methods.size()) {
        if (problem_ || load_error_) return problem_ != nullptr || finish_load_error();
        load(t);
        continue;
      }
      ++task_, method_ = 0, problem_.reset(), load_error_.reset();
    }
    return false;
  }

  void load(const Task& t) {
    ProblemOptions po;
    po.input = t.model_path;
    po.cluster_path = t.cluster_path;
    po.coarsen = o_.coarsen;
    const auto t0 = Clock::now();
    auto p = load_problem(po);
    load_s_ += seconds_since(t0), ++loads_;
    if (p) problem_ = std::make_shared<Problem>(std::move(*p));
    else load_error_ = p.error().message;
  }

  // Records a failed row for every method of a problem that could not be loaded; false: nothing to spawn.
  bool finish_load_error() {
    const Task& t = tasks_[task_];
    for (; method_ < t.methods.size(); ++method_) {
      BenchRow row = base_row(t, t.methods[method_], settings_);
      row.status = "failed: cannot load: " + clip(*load_error_, 200);
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
      write_all(fds[1], bench_row_json(run_in_process(c.base, *problem_, method, options)) + "\n");
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
      row.status = fmt::format("failed: killed after {:.0f} s (time limit {} s)", took, o_.place.time_limit_s);
    } else if (WIFSIGNALED(wstatus)) {
      row.status = fmt::format("failed: crashed ({})", strsignal(WTERMSIG(wstatus)));
    } else {
      row.status = fmt::format("failed: exited with status {} without a result", WEXITSTATUS(wstatus));
    }
    record(std::move(row));
  }

  Status run_sequential() {
    while (!stop() && next_method()) {
      BenchRow base = current_base();
      const std::string method = tasks_[task_].methods[method_++];
      PlaceOptions options = o_.place;
      tick(nullptr);
      record(run_in_process(base, *problem_, method, options));
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

  // Time left: per method the mean time of its finished runs (or of all runs, for a method not seen yet),
  // for every pending run and the rest of the running ones, plus the mean load time per problem left.
  std::optional<double> eta() const {
    double all = 0;
    int n = 0;
    for (const auto& [m, st] : took_) all += st.first, n += st.second;
    if (n == 0) return std::nullopt;
    auto est = [&](const std::string& m) {
      const auto it = took_.find(m);
      return it != took_.end() && it->second.second > 0 ? it->second.first / it->second.second : all / n;
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
  std::vector<Task> tasks_;
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

Expected<std::vector<std::string>> expand_models(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      for (const auto& e : fs::directory_iterator(in, ec)) {
        const std::string name = e.path().filename().string();
        if (e.path().extension() == ".onnx" && name.find(".weights.") == std::string::npos)
          found.push_back(e.path().string());
      }
      if (found.empty()) return Error{in + ": no *.onnx models in this directory"};
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::exists(in, ec)) {
      out.push_back(in);
    } else {
      return Error{in + ": no such model file or directory"};
    }
  }
  std::map<std::string, std::string> by_name;
  for (const auto& path : out) {
    const std::string name = fs::path(path).stem().string();
    if (auto [it, fresh] = by_name.emplace(name, path); !fresh)
      return Error{fmt::format("{} and {}: two models named '{}' (rows are keyed by name)", it->second, path, name)};
  }
  return out;
}

Expected<BenchResult> run_bench(const BenchOptions& o) {
  if (o.out_dir.empty()) return Error{"bench: no output directory (--out DIR)"};
  if (o.methods.empty()) return Error{"bench: no methods (--methods)"};
  auto models = expand_models(o.models);
  if (!models) return models.error();
  if (models->empty()) return Error{"bench: no models (--models)"};
  std::vector<std::pair<std::string, std::string>> clusters;  // (path, name)
  for (const auto& c : o.clusters) {
    if (!fs::exists(c)) return Error{c + ": no such cluster file"};
    const std::string name = fs::path(c).stem().string();
    for (const auto& [p, n] : clusters)
      if (n == name) return Error{fmt::format("{} and {}: two clusters named '{}'", p, c, name)};
    clusters.emplace_back(c, name);
  }
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) return Error{fmt::format("{}: cannot create the directory: {}", o.out_dir, ec.message())};

  // Earlier rows: keep what is done, re-run invalid rows (and failed ones on request).
  auto earlier = read_bench_rows(o.out_dir);
  if (!earlier) return earlier.error();
  const std::string settings = settings_of(o);
  std::vector<BenchRow> kept;
  std::set<Key> done;
  for (auto& r : *earlier) {
    if (r.settings != settings)
      return Error{fmt::format("{}: holds results made with other settings ({}; now {}): use the same options or "
                               "another --out", rows_path(o.out_dir), r.settings, settings)};
    if (r.invalid() || (o.retry_failed && r.failed())) continue;
    if (!done.insert({r.model, r.cluster, r.method}).second) continue;  // a duplicate line: keep the first
    kept.push_back(std::move(r));
  }
  std::ifstream raw(rows_path(o.out_dir), std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
  if (kept.size() != earlier->size() || (!text.empty() && text.back() != '\n')) {  // drop re-runs and torn tail
    std::string rewritten;
    for (const auto& r : kept) rewritten += bench_row_json(r) + "\n";
    if (auto s = write_file_atomic(rows_path(o.out_dir), rewritten); !s) return s.error();
  }

  std::vector<Task> tasks;
  int total = 0, skipped = 0;
  for (const auto& m : *models) {
    const std::string model = fs::path(m).stem().string();
    std::vector<std::pair<std::string, std::string>> targets = clusters;
    if (is_instance(m)) targets = {{"", "instance"}};
    else if (clusters.empty()) return Error{m + ": a model needs a cluster (--clusters FILE...)"};
    for (const auto& [cpath, cname] : targets) {
      Task t{m, model, cpath, cname, {}};
      for (const auto& method : o.methods) {
        if (done.count({model, cname, method})) ++skipped;
        else if (std::find(t.methods.begin(), t.methods.end(), method) == t.methods.end()) t.methods.push_back(method);
      }
      total += static_cast<int>(t.methods.size());
      if (!t.methods.empty()) tasks.push_back(std::move(t));
    }
  }

  Runner runner(o, std::move(tasks), total);
  runner.set_skipped(skipped);
  const auto started = Clock::now();
  const Status status = runner.run();

  BenchResult result;
  result.rows = std::move(kept);
  for (auto& r : runner.rows()) result.rows.push_back(std::move(r));
  sort_bench_rows(result.rows);
  result.ran = runner.ran();
  result.skipped = skipped;
  result.elapsed_s = seconds_since(started);
  auto written = write_bench_outputs(result.rows, o.out_dir, o.reference);
  if (!status) return status.error();
  if (!runner.append_error().empty()) return Error{runner.append_error()};
  if (const auto& bad = runner.first_invalid())
    return Error{fmt::format("bench: {} on {} with {} produced an invalid plan: {} (rows written to {})", bad->model,
                             bad->cluster, bad->method, bad->status.substr(9), o.out_dir)};
  if (!written) return written.error();
  result.written = std::move(*written);
  return result;
}

}  // namespace moirai
