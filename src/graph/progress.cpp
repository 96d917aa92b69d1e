// The progress board (see include/moirai/progress.h).
#include "moirai/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include <fmt/format.h>

namespace moirai {
namespace {

std::string seconds(double s) { return fmt::format("{:.1f} s", std::max(0.0, s)); }

// "milp lns: window 3" of task "milp" is shown as "lns: window 3": the live line names the task already.
std::string without_name(const std::string& line, const std::string& name) {
  const size_t n = name.size();
  if (line.compare(0, n, name) != 0 || line.size() == n || (line[n] != ':' && line[n] != ' ')) return line;
  const size_t rest = line.find_first_not_of(": ", n);
  return rest == std::string::npos ? "" : line.substr(rest);
}

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

struct Progress::State {
  struct Live {
    int id;
    std::string name;
    double start_s, budget_s;
    std::string status;
  };

  Verbosity verbosity;
  ProgressSink sink;
  std::mutex mutex;
  std::condition_variable_any tick;
  std::vector<Live> live;
  int next_id = 0;
  size_t drawn = 0;    // live lines on the terminal now, below the kept ones; the cursor ends the last
  std::jthread ticker;  // last: stopped before the rest goes

  double now() const { return sink.clock ? sink.clock() : steady_seconds(); }

  Live* find(int id) {
    auto it = std::find_if(live.begin(), live.end(), [id](const Live& t) { return t.id == id; });
    return it == live.end() ? nullptr : &*it;
  }

  // "NAME: STATUS [ELAPSED, REMAINING left]", cut to the terminal's width.
  std::string live_line(const Live& t, double now_s) const {
    const double elapsed = now_s - t.start_s;
    std::string line = fmt::format("{}: {} [{}", t.name, t.status.empty() ? "running" : t.status, seconds(elapsed));
    line += t.budget_s > 0 ? fmt::format(", {} left]", seconds(t.budget_s - elapsed)) : "]";
    if (sink.width > 1 && line.size() >= sink.width) line.resize(sink.width - 1);
    return line;
  }

  // Writes `kept` lines for good; on a terminal the live lines are erased first and drawn again below them.
  // The caller holds the mutex.
  void emit(const std::vector<std::string>& kept) {
    std::string text;
    if (sink.terminal && drawn > 0) text += drawn > 1 ? fmt::format("\r\033[{}A\033[J", drawn - 1) : "\r\033[J";
    for (const auto& line : kept) text += line + "\n";
    if (sink.terminal) {
      const double now_s = now();
      for (size_t i = 0; i < live.size(); ++i) text += (i ? "\n" : "") + live_line(live[i], now_s);
      drawn = live.size();
    }
    if (!text.empty()) sink.write(text);
  }

  // Task `t` leaves the live lines; `summary`, unless empty, is kept in its place. The caller holds the mutex.
  void end(Live* t, const std::string& summary) {
    live.erase(live.begin() + (t - live.data()));
    if (!summary.empty()) emit({summary});
    else if (sink.terminal) emit({});
  }

  void run_ticker() {
    ticker = std::jthread([this](std::stop_token stop) {
      std::unique_lock lock(mutex);
      while (!tick.wait_for(lock, stop, std::chrono::duration<double>(sink.tick_s),
                            [&stop] { return stop.stop_requested(); }))
        if (!live.empty()) emit({});
    });
  }
};

Progress::Progress(Verbosity verbosity, ProgressSink sink) : state_(std::make_unique<State>()) {
  state_->verbosity = verbosity;
  state_->sink = std::move(sink);
  if (state_->sink.terminal && state_->sink.tick_s > 0 && verbosity != Verbosity::quiet) state_->run_ticker();
}

Progress::~Progress() {
  state_->ticker.request_stop();
  if (state_->ticker.joinable()) state_->ticker.join();
  std::lock_guard lock(state_->mutex);
  state_->live.clear();
  if (state_->drawn > 0) state_->emit({});
}

Progress::Task Progress::start(const std::string& name, double budget_s) {
  std::lock_guard lock(state_->mutex);
  const int id = state_->next_id++;
  if (state_->verbosity == Verbosity::quiet) return Task(state_.get(), id);
  state_->live.push_back(State::Live{id, name, state_->now(), budget_s, ""});
  if (state_->sink.terminal) state_->emit({});
  return Task(state_.get(), id);
}

void Progress::note(const std::string& line) {
  std::lock_guard lock(state_->mutex);
  if (state_->verbosity != Verbosity::quiet) state_->emit({line});
}

void Progress::detail(const std::string& line) {
  std::lock_guard lock(state_->mutex);
  if (state_->verbosity == Verbosity::verbose) state_->emit({line});
}

bool Progress::terminal() const { return state_->sink.terminal; }

void Progress::Task::report(const std::string& line) const {
  std::lock_guard lock(board_->mutex);
  State::Live* t = board_->find(id_);
  if (!t) return;  // quiet, or finished
  t->status = without_name(line, t->name);
  std::vector<std::string> kept;
  if (board_->verbosity == Verbosity::verbose) kept.push_back("[" + t->name + "] " + line);
  if (board_->sink.terminal || !kept.empty()) board_->emit(kept);
}

ProgressFn Progress::Task::reporter() const {
  return [task = *this](const std::string& line) { task.report(line); };
}

void Progress::Task::finish(const std::string& summary) const {
  std::lock_guard lock(board_->mutex);
  if (State::Live* t = board_->find(id_))
    board_->end(t, fmt::format("{}: {} [{}]", t->name, summary, seconds(board_->now() - t->start_s)));
}

void Progress::Task::drop() const {
  std::lock_guard lock(board_->mutex);
  if (State::Live* t = board_->find(id_)) board_->end(t, {});
}

ProgressSink stderr_sink() {
  ProgressSink sink;
  sink.write = [](const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  };
  sink.terminal = ::isatty(::fileno(stderr)) != 0;
  winsize ws{};
  if (sink.terminal && ::ioctl(::fileno(stderr), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) sink.width = ws.ws_col;
  sink.tick_s = 0.5;
  return sink;
}

}  // namespace moirai
