// The progress board: exact output on a fake terminal and on a plain sink, per verbosity, under a fake clock.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "moirai/progress.h"

namespace moirai {
namespace {

struct Fake {
  std::string out;
  double now = 0;
  ProgressSink sink(bool terminal, size_t width = 100) {
    ProgressSink s;
    s.write = [this](const std::string& text) { out += text; };
    s.terminal = terminal;
    s.width = width;
    s.clock = [this] { return now; };
    return s;
  }
  std::string take() { return std::exchange(out, ""); }
};

TEST(Progress, PlainSinkPrintsOneSummaryLinePerTask) {
  Fake f;
  Progress board(Verbosity::normal, f.sink(false));
  auto milp = board.start("milp", 60);
  milp.report("milp: incumbent 12 ms, bound 10 ms");
  board.detail("coarsen onnxruntime: 120 -> 40 nodes");
  EXPECT_EQ(f.take(), "");
  f.now = 4.5;
  milp.finish("12.000 ms (optimal)");
  board.note("a kept line");
  EXPECT_EQ(f.take(), "milp: 12.000 ms (optimal) [4.5 s]\na kept line\n");
  milp.report("after the end");  // a finished task is silent
  EXPECT_EQ(f.take(), "");
}

TEST(Progress, TerminalRedrawsOneLinePerRunningTaskInPlace) {
  Fake f;
  auto board = std::make_unique<Progress>(Verbosity::normal, f.sink(true));
  auto milp = board->start("milp", 60);
  EXPECT_EQ(f.take(), "milp: running [0.0 s, 60.0 s left]");
  f.now = 1;
  auto placeto = board->start("placeto");
  EXPECT_EQ(f.take(), "\r\033[Jmilp: running [1.0 s, 59.0 s left]\nplaceto: running [0.0 s]");
  f.now = 2;
  milp.report("milp lns: window 3, incumbent 12 ms");  // the task's own name is not repeated
  EXPECT_EQ(f.take(), "\r\033[1A\033[Jmilp: lns: window 3, incumbent 12 ms [2.0 s, 58.0 s left]\nplaceto: running [1.0 s]");
  f.now = 2.5;
  milp.report("milp: incumbent 11 ms, bound 10 ms");
  EXPECT_EQ(f.take(), "\r\033[1A\033[Jmilp: incumbent 11 ms, bound 10 ms [2.5 s, 57.5 s left]\nplaceto: running [1.5 s]");
  placeto.report("placetoy: kept whole");  // a longer word is not the name
  EXPECT_EQ(f.take(), "\r\033[1A\033[Jmilp: incumbent 11 ms, bound 10 ms [2.5 s, 57.5 s left]\nplaceto: placetoy: kept whole [1.5 s]");
  f.now = 3;
  milp.finish("12.000 ms (optimal)");
  EXPECT_EQ(f.take(), "\r\033[1A\033[Jmilp: 12.000 ms (optimal) [3.0 s]\nplaceto: placetoy: kept whole [2.0 s]");
  board->note("kept");
  EXPECT_EQ(f.take(), "\r\033[Jkept\nplaceto: placetoy: kept whole [2.0 s]");
  board.reset();  // a task left running (an error on its way): its line is erased
  EXPECT_EQ(f.take(), "\r\033[J");
}

// A failed task leaves no line: its error, one line, is all the user reads.
TEST(Progress, DroppedTaskLeavesNoLine) {
  Fake plain;
  Progress board(Verbosity::normal, plain.sink(false));
  board.start("run").drop();
  EXPECT_EQ(plain.take(), "");
  Fake tty;
  Progress live(Verbosity::normal, tty.sink(true));
  auto run = live.start("run");
  auto bench = live.start("bench");
  tty.take();
  run.drop();
  EXPECT_EQ(tty.take(), "\r\033[1A\033[Jbench: running [0.0 s]");
  bench.drop();
  EXPECT_EQ(tty.take(), "\r\033[J");
  run.finish("after the drop");  // a dropped task is silent
  EXPECT_EQ(tty.take(), "");
}

// Between reports the times still move: a terminal's board redraws on its own every tick_s.
TEST(Progress, TerminalRedrawsBetweenReports) {
  std::atomic<int> writes = 0;
  ProgressSink sink;
  sink.write = [&writes](const std::string&) { ++writes; };
  sink.terminal = true;
  sink.tick_s = 0.001;
  Progress board(Verbosity::normal, sink);
  board.start("milp", 60);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (writes < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GE(writes, 3);  // the start, then ticks
}

TEST(Progress, TerminalLinesAreCutToTheWidth) {
  Fake f;
  Progress board(Verbosity::normal, f.sink(true, 20));
  board.start("placeto", 0).report("episode 10/200, best 3.2 ms");
  EXPECT_EQ(f.take(), "placeto: running [0\r\033[Jplaceto: episode 10");
}

TEST(Progress, VerboseKeepsEveryReportedLine) {
  Fake f;
  Progress board(Verbosity::verbose, f.sink(false));
  auto g = board.start("geneflow", 10);
  g.reporter()("geneflow: generation 1/60, best 3.2 ms");
  board.detail("coarsen onnxruntime: 120 -> 40 nodes");
  f.now = 2;
  g.finish("3.100 ms");
  EXPECT_EQ(f.take(),
            "[geneflow] geneflow: generation 1/60, best 3.2 ms\ncoarsen onnxruntime: 120 -> 40 nodes\n"
            "geneflow: 3.100 ms [2.0 s]\n");
}

TEST(Progress, QuietWritesNothing) {
  for (bool terminal : {false, true}) {
    Fake f;
    {
      Progress board(Verbosity::quiet, f.sink(terminal));
      auto t = board.start("milp", 60);
      t.report("incumbent 12 ms");
      board.note("kept");
      board.detail("detail");
      t.finish("done");
    }
    EXPECT_EQ(f.out, "") << "terminal " << terminal;
  }
}

// Tasks report from several threads at once (a solver's callback, a pipe reader): every line arrives whole.
TEST(Progress, ReportsFromManyThreadsArriveWhole) {
  Fake f;
  Progress board(Verbosity::verbose, f.sink(false));
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&board, k] {
      auto t = board.start("task" + std::to_string(k));
      for (int i = 0; i < 200; ++i) t.report("step " + std::to_string(i));
      t.finish("done");
    });
  for (auto& t : threads) t.join();
  std::istringstream in(f.out);
  int reports = 0, summaries = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("[task", 0) == 0 && line.find("] step ") != std::string::npos) ++reports;
    else if (line.find(": done [0.0 s]") != std::string::npos) ++summaries;
    else ADD_FAILURE() << "a broken line: " << line;
  }
  EXPECT_EQ(reports, 800);
  EXPECT_EQ(summaries, 4);
}

}  // namespace
}  // namespace moirai
