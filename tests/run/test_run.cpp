// `moirai run PLAN MODEL` end to end: plans on 2 and 3 local workers give the original model's outputs with
// activations going worker to worker only; an unreachable worker, a worker killed mid-run and a missed deadline
// end the run with one line naming the worker, device and stage and no run.json; --replan-on-failure places
// again without the lost device; an interrupted run leaves no worker process behind.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "cli/cli_support.h"
#include "run/run_support.h"
#include "worker.grpc.pb.h"

namespace moirai {
namespace {

using clitest::expect_clean_error;
using clitest::moirai;
using clitest::quote;
using clitest::src;
using clitest::TempDir;
namespace fs = std::filesystem;

const std::string kModel = src("models/squeezenet1_1.weights.onnx");
constexpr int64_t kImageBytes = 1 * 3 * 224 * 224 * 4;
constexpr int64_t kLogitsBytes = 1000 * 4;

/// Places squeezenet on a fixture cluster; returns the plan path.
std::string place(const TempDir& dir, const std::string& cluster, const std::string& method) {
  const auto r = moirai(fmt::format("place {} -c {} -m {} --out {}", quote(src("models/squeezenet1_1.onnx")),
                                    quote(src("tests/fixtures/run/" + cluster)), method, quote(dir / "plan")));
  EXPECT_EQ(r.rc, 0) << r.describe();
  return dir / "plan/plan.json";
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(clitest::read_text(path)); }

/// The checks every successful run must pass: outputs equal to the original; the coordinator carried graph
/// inputs and outputs only; every cut tensor went worker to worker (measured bytes per link = exported bytes).
void expect_peer_to_peer_run(const nlohmann::json& run, int requests, size_t devices) {
  EXPECT_TRUE(run["outputs_match"].get<bool>());
  EXPECT_LE(run["max_abs_diff"].get<double>(), run["tolerance"].get<double>());
  EXPECT_EQ(run["latency_ms"].size(), static_cast<size_t>(requests));
  EXPECT_EQ(run["coordinator"]["tensors_sent"], nlohmann::json::array({"image"}));
  EXPECT_EQ(run["coordinator"]["tensors_received"], nlohmann::json::array({"logits"}));
  EXPECT_EQ(run["coordinator"]["bytes_sent"].get<int64_t>(), requests * kImageBytes);
  EXPECT_EQ(run["coordinator"]["bytes_received"].get<int64_t>(), requests * kLogitsBytes);
  ASSERT_EQ(run["devices"].size(), devices);
  for (const auto& d : run["devices"]) EXPECT_GT(d["busy_measured_ms"].get<double>(), 0) << d;
  ASSERT_FALSE(run["links"].empty());
  for (const auto& l : run["links"]) {
    EXPECT_GT(l["bytes_predicted"].get<double>(), 0) << l;
    EXPECT_EQ(l["bytes_measured"].get<double>(), l["bytes_predicted"].get<double>()) << l;
    EXPECT_GT(l["time_measured_ms"].get<double>(), 0) << l;
  }
  EXPECT_GT(run["measured_median_ms"].get<double>(), 0);
  EXPECT_GE(run["measured_p90_ms"].get<double>(), run["measured_median_ms"].get<double>());
  EXPECT_GT(run["throughput_rps"].get<double>(), 0);
  // Per request: push + wait + stages + fetch is its latency; the push and the stages take time.
  const auto& phases = run["request_phases_ms"];
  for (const char* phase : {"push", "wait", "stages", "fetch"})
    ASSERT_EQ(phases[phase].size(), static_cast<size_t>(requests)) << phase;
  for (size_t i = 0; i < static_cast<size_t>(requests); ++i) {
    const double sum = phases["push"][i].get<double>() + phases["wait"][i].get<double>() +
                       phases["stages"][i].get<double>() + phases["fetch"][i].get<double>();
    EXPECT_NEAR(sum, run["latency_ms"][i].get<double>(), 1e-6) << "request " << i;
    EXPECT_GT(phases["push"][i].get<double>(), 0) << "request " << i;
    EXPECT_GT(phases["stages"][i].get<double>(), 0) << "request " << i;
  }
}

TEST(Run, TwoWorkersGiveTheOriginalOutputsPeerToPeer) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  const auto r = moirai(fmt::format("run {} {} --local --requests 3 --warmup 1 --concurrency 2 --out {}", quote(plan),
                                    quote(kModel), quote(dir / "out")));
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.out.find("end to end (median)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("outputs match the original model"), std::string::npos) << r.out;
  const auto run = read_json(dir / "out/run.json");
  expect_peer_to_peer_run(run, 3, 2);
  EXPECT_EQ(run["concurrency"], 2);
  const auto planned = read_json(plan);
  EXPECT_DOUBLE_EQ(run["predicted_ms"].get<double>(), planned["makespan_ms"].get<double>());
  // No coordinator links in local-2.json: free, so the request is the schedule.
  EXPECT_FALSE(planned.contains("predicted_request_ms"));
  EXPECT_DOUBLE_EQ(run["predicted_request_ms"].get<double>(), planned["makespan_ms"].get<double>());
  // Busy time like with like: the simulator's (operators and one stage overhead per stage) against the stages'
  // calls and hand-offs.
  for (const auto& d : run["devices"])
    for (const auto& p : planned["devices"])
      if (p["name"] == d["name"]) {
        EXPECT_DOUBLE_EQ(d["busy_predicted_ms"].get<double>(), p["busy_ms"].get<double>());
      }
  // The measured trace: stage runs on each device's track, transfers on the ports, in the simulator's format.
  const auto trace = read_json(dir / "out/trace.json");
  int stages = 0, sends = 0;
  for (const auto& e : trace["traceEvents"]) {
    if (e["ph"] != "X") continue;
    stages += e["cat"] == "op";
    sends += e["cat"] == "send";
    if (e["cat"] == "send") {
      EXPECT_GT(e["args"]["bytes"].get<double>(), 0);
    }
  }
  const auto manifest = read_json(dir / "out/submodels/manifest.json");
  EXPECT_EQ(stages, 3 * static_cast<int>(manifest["submodels"].size()));
  EXPECT_GT(sends, 0);
}

TEST(Run, ThreeWorkersGiveTheOriginalOutputs) {
  TempDir dir;
  const std::string plan = place(dir, "local-3.json", "m-topo");
  const auto r = moirai(fmt::format("run {} {} --local --requests 2 --warmup 0 --out {}", quote(plan), quote(kModel),
                                    quote(dir / "out")));
  ASSERT_EQ(r.rc, 0) << r.describe();
  const auto run = read_json(dir / "out/run.json");
  expect_peer_to_peer_run(run, 2, 3);
  // local-3.json's coordinator links (2 ms + bytes / 0.2 GB/s each way): the image pushed to the one device that
  // reads it, the logits fetched from the device of the last operator, which ends the schedule.
  const auto planned = read_json(plan);
  const double push = 2 + kImageBytes / 0.2e6, fetch = 2 + kLogitsBytes / 0.2e6;
  EXPECT_NEAR(planned["predicted_request_ms"].get<double>(), push + planned["makespan_ms"].get<double>() + fetch, 1e-9);
  EXPECT_DOUBLE_EQ(run["predicted_request_ms"].get<double>(), planned["predicted_request_ms"].get<double>());
}

TEST(Run, UnreachableWorkerIsOneLineNamingWorkerDeviceAndStages) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = moirai(fmt::format("run {} {} --workers w0=127.0.0.1:1,w1=127.0.0.1:1 --out {}", quote(plan),
                                    quote(kModel), quote(dir / "out")));
  expect_clean_error(r, {"worker 127.0.0.1:1 (device w0), stages s0_w0", "not reachable"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(8));
  EXPECT_FALSE(fs::exists(dir / "out")) << "a failed run leaves no directory it made";
}

TEST(Run, DeadlineExceededNamesWorkerDeviceAndStage) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  const auto r = moirai(fmt::format("run {} {} --local --deadline-ms 1 --out {}", quote(plan), quote(kModel),
                                    quote(dir / "out")));
  expect_clean_error(r, {"exceeded the deadline of 1 ms", "worker 127.0.0.1:", "(device w", "stage s"});
  EXPECT_FALSE(fs::exists(dir / "out/run.json"));
  EXPECT_FALSE(fs::exists(dir / "out")) << "a failed run leaves no directory it made";
}

TEST(Run, BadArgumentsAreOneLine) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  expect_clean_error(moirai(fmt::format("run {} {} --out {}", quote(plan), quote(kModel), quote(dir / "o"))),
                     {"exactly one of --workers and --local"});
  expect_clean_error(moirai(fmt::format("run {} {} --workers w0 --out {}", quote(plan), quote(kModel), quote(dir / "o"))),
                     {"--workers: 'w0' is not DEVICE=HOST:PORT"});
  expect_clean_error(moirai(fmt::format("run {} {} --workers w0=127.0.0.1:1 --out {}", quote(plan), quote(kModel),
                                        quote(dir / "o"))),
                     {"device 'w1' has stages but no worker is given for it (--workers)"});
}

/// Number of stage runs a worker has recorded so far.
int stage_runs(const std::string& address) {
  auto stub = worker::Worker::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  worker::TraceReply reply;
  return stub->Trace(&ctx, worker::TraceRequest{}, &reply).ok() ? reply.stages_size() : -1;
}

/// Starts `moirai ARGS...` with stdout/stderr into files; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::freopen(out.c_str(), "w", stdout);
    std::freopen(err.c_str(), "w", stderr);
    std::vector<std::string> all{MOIRAI_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

/// Waits for a child for at most `seconds`; its exit status, or -1 on timeout (then it is killed).
int wait_for(pid_t pid, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(Run, WorkerKilledMidRunEndsTheRunNamingIt) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  runtest::WorkerProcess w0("w0"), w1("w1");
  const pid_t run = spawn({"run", plan, kModel, "--workers", "w0=" + w0.address() + ",w1=" + w1.address(),
                           "--requests", "100000", "--deadline-ms", "20000", "--out", dir / "out"},
                          dir / "stdout", dir / "stderr");
  // Requests are flowing once w1 has run its stages for the warm-up.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (stage_runs(w1.address()) < 12 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto killed = std::chrono::steady_clock::now();
  w1.kill();
  const int rc = wait_for(run, 20);
  EXPECT_EQ(rc, 1);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(10));
  const std::string err = clitest::read_text(dir / "stderr");
  EXPECT_NE(err.find("moirai: error: worker " + w1.address() + " (device w1) was lost during request"),
            std::string::npos) << err;
  EXPECT_NE(err.find("unfinished"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(fs::exists(dir / "out/run.json"));
}

TEST(Run, ReplanOnFailurePlacesAgainWithoutTheLostDevice) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  runtest::WorkerProcess w0("w0");
  const auto r = moirai(fmt::format("run {} {} --workers w0={},w1=127.0.0.1:1 --replan-on-failure --requests 2 "
                                    "--out {}", quote(plan), quote(kModel), w0.address(), quote(dir / "out")));
  ASSERT_EQ(r.rc, 0) << r.describe();
  EXPECT_NE(r.err.find("not reachable"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("replanned: " + (dir / "out/replan1/plan.json")), std::string::npos) << r.out;
  const auto run = read_json(dir / "out/run.json");
  ASSERT_EQ(run["attempts"].size(), 2u);
  EXPECT_EQ(run["attempts"][0]["plan"], plan);
  EXPECT_EQ(run["attempts"][0]["lost_device"], "w1");
  EXPECT_EQ(run["attempts"][1]["plan"], dir / "out/replan1/plan.json");
  EXPECT_FALSE(run["attempts"][1].contains("error"));
  const auto replan = read_json(dir / "out/replan1/plan.json");
  EXPECT_EQ(replan["method"], "heft");
  for (const auto& op : replan["ops"]) EXPECT_EQ(op["device"], "w0");
  EXPECT_TRUE(run["outputs_match"].get<bool>());
  ASSERT_EQ(run["devices"].size(), 1u);
  EXPECT_TRUE(run["links"].empty());
}

TEST(Run, ReplanStopsWhenNoDeviceIsLeft) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  const auto r = moirai(fmt::format("run {} {} --workers w0=127.0.0.1:1,w1=127.0.0.1:1 --replan-on-failure --out {}",
                                    quote(plan), quote(kModel), quote(dir / "out")));
  expect_clean_error(r, {"worker 127.0.0.1:1 (device w1)", "not reachable", "(no device left to replan on)"});
  EXPECT_NE(r.err.find("replanning without device w0"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out/run.json"));
}

/// Children of `parent` (from /proc), with their command lines.
std::vector<std::pair<pid_t, std::string>> children_of(pid_t parent) {
  std::vector<std::pair<pid_t, std::string>> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = clitest::read_text(e.path() / "stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back({std::stoi(name), clitest::read_text(e.path() / "cmdline")});
  }
  return out;
}

bool gone(pid_t pid) {
  const std::string stat = clitest::read_text("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return stat.empty() || close == std::string::npos || stat[close + 2] == 'Z';  // exited (perhaps not yet reaped)
}

TEST(Run, InterruptedRunLeavesNoWorkerBehind) {
  TempDir dir;
  const std::string plan = place(dir, "local-2.json", "heft");
  for (int sig : {SIGINT, SIGTERM}) {
    const pid_t run = spawn({"run", plan, kModel, "--local", "--requests", "100000", "--out", dir / "out"},
                            dir / "stdout", dir / "stderr");
    std::vector<std::pair<pid_t, std::string>> workers;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (workers.size() < 2 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      workers.clear();
      for (const auto& child : children_of(run))  // a child shows the run's command line until it has exec'd
        if (child.second.find("worker.mjs") != std::string::npos) workers.push_back(child);
    }
    ASSERT_EQ(workers.size(), 2u);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // mid-run
    ::kill(run, sig);
    EXPECT_EQ(wait_for(run, 10), 128 + sig);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (const auto& [pid, cmd] : workers) EXPECT_TRUE(gone(pid)) << "worker " << pid << " outlived the run";
    EXPECT_FALSE(fs::exists(dir / "out/run.json"));
  }
}

}  // namespace
}  // namespace moirai
