// Progress of long work, shown the way a command-line tool shows it. A stage reports through a ProgressFn: one
// line saying what it is doing now ("generation 12/60, best 3.21 ms"). The command renders those lines on a
// Progress board: on a terminal one line per running task, redrawn in place with its elapsed and remaining time;
// elsewhere one summary line per task when it finishes; nothing when quiet; every reported line when verbose.
#pragma once

#include <functional>
#include <memory>
#include <string>

namespace moirai {

/// How a stage reports long work: one line on what it is doing now. May be empty (nobody listens).
using ProgressFn = std::function<void(const std::string&)>;

enum class Verbosity { quiet, normal, verbose };

/// Where a Progress board writes.
struct ProgressSink {
  std::function<void(const std::string&)> write;  ///< text as is (on a terminal with its escape codes)
  bool terminal = false;  ///< redraw the running tasks' lines in place
  size_t width = 100;     ///< columns: a longer live line is cut, else it wraps and the redraw goes wrong
  std::function<double()> clock;  ///< seconds; empty: the steady clock
  double tick_s = 0;  ///< terminal: redraw this often so the times move between reports (0: on reports only)
};

/// stderr: a terminal (with its width, redrawn twice a second) when it is one.
ProgressSink stderr_sink();

/// The board of one command. Thread-safe: tasks may report from any thread (a solver's callback, a reader).
class Progress {
 public:
  class Task;
  Progress(Verbosity verbosity, ProgressSink sink);
  ~Progress();  ///< erases the live lines of tasks never finished (an error is on its way)
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  /// A running task named `name`; `budget_s` > 0 shows the time left of that budget.
  Task start(const std::string& name, double budget_s = 0);
  /// A line kept above the live ones, unless quiet (a replan, a combination that failed).
  void note(const std::string& line);
  /// A line kept only when verbose (how the model was coarsened).
  void detail(const std::string& line);
  bool terminal() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// A handle on one task of a board; the board must outlive it.
class Progress::Task {
 public:
  /// The task's status becomes `line`, less a leading NAME (the live line names the task already).
  void report(const std::string& line) const;
  /// report() as a stage's ProgressFn.
  ProgressFn reporter() const;
  /// The live line gives way to "NAME: SUMMARY [ELAPSED]", kept unless quiet.
  void finish(const std::string& summary) const;
  /// The live line goes away without a summary: the task failed and its error, one line, follows.
  void drop() const;

 private:
  friend class Progress;
  Task(Progress::State* board, int id) : board_(board), id_(id) {}
  Progress::State* board_;
  int id_;
};

}  // namespace moirai
