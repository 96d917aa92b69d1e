// The coordinator of `moirai run`: exports the plan, loads each device's stages on its worker (with the routes
// of every output tensor to the worker of its consumers), sends seeded random graph inputs, fetches graph outputs
// and compares them with the original model, which the first worker runs in one session as a reference stage.
// Failures (a worker unreachable or lost, a stage error, a deadline) end the attempt with one line naming the
// worker, device and stage; with --replan-on-failure a lost device is dropped and the plan placed again.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <nlohmann/json.hpp>

#include "moirai/file_io.h"
#include "moirai/pipeline.h"
#include "local_workers.h"
#include "measure.h"
#include "worker.grpc.pb.h"

namespace moirai {
namespace {

namespace fs = std::filesystem;
namespace pb = moirai::worker;
using run_detail::Measured;
using run_detail::RunLayout;

constexpr const char* kReference = "__reference__";  // the original model, as a stage of the first worker
constexpr uint64_t kReferenceRequest = 0;
constexpr double kConnectMs = 5000;   // bound of a ping (connection set-up included)
constexpr double kSetupMs = 120000;   // bound of loading stages and of the reference run (cold sessions)

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::chrono::system_clock::time_point deadline_in(double ms) {
  return std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
}

/// tools/run_plan.mjs's generator (mulberry32), so both give the same inputs for a seed.
struct Mulberry32 {
  uint32_t s;
  double next() {
    s += 0x6d2b79f5u;
    uint32_t t = s;
    t = (t ^ (t >> 15)) * (t | 1u);
    t ^= t + (t ^ (t >> 7)) * (t | 61u);
    return static_cast<double>(t ^ (t >> 14)) / 4294967296.0;
  }
};

template <class T>
void append(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

Expected<std::vector<pb::Tensor>> random_inputs(const Manifest& m, uint64_t seed) {
  Mulberry32 rng{static_cast<uint32_t>(seed)};
  std::vector<pb::Tensor> out;
  for (const auto& spec : m.inputs) {
    pb::Tensor t;
    t.set_name(spec.name);
    t.set_dtype(spec.dtype);
    int64_t n = 1;
    for (int64_t d : spec.shape) {
      t.add_shape(d);
      n *= d;
    }
    const int64_t bound = spec.index_bound > 0 ? spec.index_bound : 10;  // token ids stay inside the table
    std::string& data = *t.mutable_data();
    for (int64_t i = 0; i < n; ++i) {
      if (spec.dtype == "float32") append(data, static_cast<float>(rng.next() * 2 - 1));
      else if (spec.dtype == "float64") append(data, rng.next() * 2 - 1);
      else if (spec.dtype == "int64") append(data, static_cast<int64_t>(std::floor(rng.next() * static_cast<double>(bound))));
      else if (spec.dtype == "int32") append(data, static_cast<int32_t>(std::floor(rng.next() * static_cast<double>(bound))));
      else if (spec.dtype == "bool") append(data, static_cast<uint8_t>(rng.next() < 0.5 ? 1 : 0));
      else return Error{fmt::format("{}: input '{}': random {} inputs are not supported", m.path, spec.name, spec.dtype)};
    }
    out.push_back(std::move(t));
  }
  return out;
}

/// Elements of a tensor as doubles (for the comparison with the reference).
std::vector<double> values(const pb::Tensor& t) {
  std::vector<double> v;
  const std::string& d = t.data();
  auto read = [&](auto zero) {
    using T = decltype(zero);
    const size_t n = d.size() / sizeof(T);
    v.resize(n);
    for (size_t i = 0; i < n; ++i) {
      T x;
      std::memcpy(&x, d.data() + i * sizeof(T), sizeof(T));
      v[i] = static_cast<double>(x);
    }
  };
  const std::string& ty = t.dtype();
  if (ty == "float32") read(float{});
  else if (ty == "float64") read(double{});
  else if (ty == "int64") read(int64_t{});
  else if (ty == "int32") read(int32_t{});
  else if (ty == "bool" || ty == "uint8") read(uint8_t{});
  else if (ty == "int8") read(int8_t{});
  return v;
}

std::string join(const std::vector<std::string>& xs) {
  std::string out;
  for (const auto& x : xs) out += (out.empty() ? "" : ", ") + x;
  return out;
}

/// Why an attempt failed; `lost_device` is set when a worker is gone (unreachable or dead).
struct Failure {
  std::string message;
  std::string lost_device;
};

struct Worker {
  std::string device, address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Worker::Stub> stub;
  std::vector<std::string> stages;  ///< in run order (plus the reference on the first worker)
  double offset_ms = 0;             ///< worker clock - coordinator clock (midpoint of the fastest ping)
  run_detail::WorkerFacts facts;    ///< what it reported of itself (Ping)
};

std::shared_ptr<grpc::Channel> open_channel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

/// One attempt: a plan on a set of workers.
class Attempt {
 public:
  Attempt(const RunOptions& options, RunLayout& layout) : options_(options), layout_(layout) {}

  /// Connects, loads, runs reference + warm-up + measured requests. nullopt-like: failure.message empty = ok.
  Failure run(Measured& m);

 private:
  Failure connect();
  Failure load();
  /// When a request was sent, its inputs acknowledged and its last answer received (coordinator clock, ms).
  struct Clock {
    double start_ms = 0, pushed_ms = 0, end_ms = 0;
  };
  Failure request(uint64_t id, bool reference, double deadline_ms, std::vector<pb::Tensor>* outputs,
                  Clock* clock = nullptr);
  Failure collect_trace(Measured& m);
  std::string pending_stage(const std::string& device, const std::set<std::string>& done) const;
  std::string worker_name(const Worker& w) const { return fmt::format("worker {} (device {})", w.address, w.device); }

  const RunOptions& options_;
  RunLayout& layout_;
  std::vector<Worker> workers_;
  std::vector<pb::Tensor> inputs_;
  std::map<std::string, std::vector<std::pair<size_t, std::vector<std::string>>>> input_targets_;  // input -> (worker, stages)
  std::mutex tally_mu_;
  Measured* m_ = nullptr;
};

std::string Attempt::pending_stage(const std::string& device, const std::set<std::string>& done) const {
  for (const auto& sub : layout_.manifest.submodels)
    if ((device.empty() || sub.device == device) && !done.count(sub.name)) return sub.name;
  return "";
}

Failure Attempt::connect() {
  for (const auto& device : layout_.devices) {
    Worker w;
    w.device = device;
    w.address = layout_.worker.at(device);
    w.stages = run_detail::stages_on(layout_.manifest, device);
    w.channel = open_channel(w.address);
    w.stub = pb::Worker::NewStub(w.channel);
    workers_.push_back(std::move(w));
  }
  // Ping each worker a few times; the fastest round trip gives the clock offset (midpoint method). Set-up calls
  // have their own bounds (connecting: 5 s), the deadline is per request.
  const double timeout = kConnectMs;
  for (auto& w : workers_) {
    double best_rtt = 1e300;
    for (int k = 0; k < 5; ++k) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline_in(timeout));
      pb::PingRequest req;
      pb::PingReply reply;
      const double t0 = now_ms();
      const grpc::Status st = w.stub->Ping(&ctx, req, &reply);
      const double t1 = now_ms();
      if (!st.ok())
        return {fmt::format("{}, stages {}: not reachable: {}", worker_name(w), join(w.stages), st.error_message()),
                w.device};
      if (t1 - t0 < best_rtt) {
        best_rtt = t1 - t0;
        w.offset_ms = reply.now_ms() - (t0 + t1) / 2;
        w.facts = {reply.threads(), reply.provider(), reply.memory_bytes()};
      }
    }
  }
  return {};
}

Failure Attempt::load() {
  const Manifest& man = layout_.manifest;
  const fs::path dir = fs::path(man.path).parent_path();
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < workers_.size(); ++i) index[workers_[i].device] = i;
  auto read_bytes = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  auto spec = [](pb::TensorSpec* s, const ManifestTensor& t) {
    s->set_name(t.name);
    s->set_dtype(t.dtype);
    for (int64_t d : t.shape) s->add_shape(d);
  };
  std::vector<pb::LoadRequest> loads(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) loads[i].set_device(workers_[i].device);
  for (const auto& sub : man.submodels) {
    const size_t w = index.at(sub.device);
    pb::Stage* st = loads[w].add_stages();
    st->set_name(sub.name);
    st->set_model(read_bytes(dir / sub.file));
    for (const auto& t : sub.inputs) spec(st->add_inputs(), t);
    for (const auto& t : sub.outputs) {
      spec(st->add_outputs(), t);
      if (t.graph_output) {
        pb::Route* r = st->add_routes();
        r->set_tensor(t.name);
        r->set_coordinator(true);
      }
      // One route (one transfer) per consuming worker, listing its stages.
      std::map<std::string, std::vector<std::string>> by_device;
      for (const auto& to : t.to) by_device[layout_.stage_device.at(to)].push_back(to);
      for (const auto& [device, stages] : by_device) {
        pb::Route* r = st->add_routes();
        r->set_tensor(t.name);
        r->set_peer(device == sub.device ? "" : layout_.worker.at(device));
        for (const auto& s : stages) r->add_stages(s);
      }
    }
  }
  // The reference: the original model in one session on the first worker, all outputs to the coordinator.
  {
    pb::Stage* st = loads[0].add_stages();
    st->set_name(kReference);
    st->set_model(read_bytes(options_.model_path));
    for (const auto& t : man.inputs) spec(st->add_inputs(), t);
    for (const auto& t : man.outputs) {
      spec(st->add_outputs(), t);
      pb::Route* r = st->add_routes();
      r->set_tensor(t.name);
      r->set_coordinator(true);
    }
  }
  // Load every worker at once (sessions are built in parallel).
  std::vector<grpc::Status> status(workers_.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < workers_.size(); ++i)
    threads.emplace_back([&, i] {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline_in(std::max(options_.deadline_ms, kSetupMs)));
      pb::LoadReply reply;
      status[i] = workers_[i].stub->Load(&ctx, loads[i], &reply);
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < workers_.size(); ++i)
    if (!status[i].ok())
      return {fmt::format("{}: loading stages {} failed: {}", worker_name(workers_[i]), join(workers_[i].stages),
                          status[i].error_message()),
              status[i].error_code() == grpc::StatusCode::UNAVAILABLE ? workers_[i].device : ""};
  // Where each graph input goes: per worker, the stages that read it.
  for (const auto& sub : man.submodels)
    for (const auto& t : sub.inputs)
      if (t.from.empty()) {
        auto& targets = input_targets_[t.name];
        const size_t w = index.at(sub.device);
        auto it = std::find_if(targets.begin(), targets.end(), [&](const auto& p) { return p.first == w; });
        if (it == targets.end()) targets.push_back({w, {sub.name}});
        else it->second.push_back(sub.name);
      }
  workers_[0].stages.push_back(kReference);
  return {};
}

Failure Attempt::request(uint64_t id, bool reference, double deadline_ms, std::vector<pb::Tensor>* outputs,
                         Clock* clock) {
  // Which workers take part, and with which stages.
  std::vector<std::pair<size_t, std::vector<std::string>>> parts;
  if (reference) {
    parts.push_back({0, {kReference}});
  } else {
    for (size_t i = 0; i < workers_.size(); ++i) {
      std::vector<std::string> stages = workers_[i].stages;
      stages.erase(std::remove(stages.begin(), stages.end(), kReference), stages.end());
      if (!stages.empty()) parts.push_back({i, stages});
    }
  }
  struct Shared {
    std::mutex mu;
    std::set<std::string> done;
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
    std::vector<grpc::Status> status;  // per part
    bool failed = false;
    double end_ms = 0;
    void cancel_all() {
      failed = true;
      for (auto& c : contexts) c->TryCancel();
    }
  } shared;
  const double t0 = now_ms();
  const auto deadline = deadline_in(deadline_ms);
  shared.status.resize(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    shared.contexts.push_back(std::make_unique<grpc::ClientContext>());
    shared.contexts.back()->set_deadline(deadline);
  }
  std::vector<std::thread> threads;
  for (size_t p = 0; p < parts.size(); ++p)
    threads.emplace_back([&, p] {
      pb::ResultRequest req;
      req.set_request(id);
      for (const auto& s : parts[p].second) req.add_stages(s);
      auto reader = workers_[parts[p].first].stub->Result(shared.contexts[p].get(), req);
      pb::ResultEvent ev;
      while (reader->Read(&ev)) {
        std::lock_guard lock(shared.mu);
        if (!ev.last()) {
          shared.done.insert(ev.stage());
          continue;
        }
        for (auto& t : *ev.mutable_outputs()) outputs->push_back(std::move(t));
        shared.end_ms = std::max(shared.end_ms, now_ms());
      }
      grpc::Status st = reader->Finish();
      std::lock_guard lock(shared.mu);
      shared.status[p] = st;
      if (!st.ok() && !shared.failed) shared.cancel_all();
    });
  // Graph inputs, to the workers whose stages read them (for the reference: to the reference stage).
  grpc::Status push_status;
  std::string push_worker_stage;
  size_t push_worker = 0;
  for (const auto& t : inputs_) {
    // Read-only here (requests run concurrently): find, never operator[]. An input no stage reads goes nowhere.
    std::vector<std::pair<size_t, std::vector<std::string>>> targets;
    if (reference) targets = {{0, {kReference}}};
    else if (auto it = input_targets_.find(t.name()); it != input_targets_.end()) targets = it->second;
    for (const auto& [w, stages] : targets) {
      {
        std::lock_guard lock(shared.mu);
        if (shared.failed) break;
      }
      pb::PushRequest req;
      req.set_request(id);
      for (const auto& s : stages) req.add_stages(s);
      *req.mutable_tensor() = t;
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      pb::PushReply reply;
      const grpc::Status st = workers_[w].stub->Push(&ctx, req, &reply);
      {
        std::lock_guard lock(tally_mu_);
        if (m_) m_->coordinator_sent[t.name()] += static_cast<int64_t>(t.data().size());
      }
      if (!st.ok()) {
        push_status = st;
        push_worker = w;
        push_worker_stage = join(stages);
        std::lock_guard lock(shared.mu);
        shared.cancel_all();
        break;
      }
    }
  }
  const double pushed = now_ms();
  for (auto& th : threads) th.join();
  if (clock) *clock = {t0, pushed, shared.end_ms};
  {
    std::lock_guard lock(tally_mu_);
    if (m_)
      for (const auto& t : *outputs) m_->coordinator_received[t.name()] += static_cast<int64_t>(t.data().size());
  }
  if (!shared.failed) return {};

  // Name the worker, device and stage. A worker whose connection broke is lost; a stage error names itself;
  // otherwise the request ran past its deadline at the first unfinished stage.
  const std::string what = reference ? "the reference run" : fmt::format("request {}", id);
  if (!push_status.ok()) {
    const Worker& w = workers_[push_worker];
    if (push_status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      return {fmt::format("{}, stage {}: {} exceeded the deadline of {:g} ms while its inputs were sent",
                          worker_name(w), push_worker_stage, what, deadline_ms),
              ""};
    const bool lost = push_status.error_code() == grpc::StatusCode::UNAVAILABLE;
    return {fmt::format("{}, stage {}: {}: sending the inputs failed: {}", worker_name(w), push_worker_stage, what,
                        push_status.error_message()),
            lost ? w.device : ""};
  }
  Failure lost, aborted, late;
  for (size_t p = 0; p < parts.size(); ++p) {
    const Worker& w = workers_[parts[p].first];
    const grpc::Status& st = shared.status[p];
    const std::string stage = reference ? kReference : pending_stage(w.device, shared.done);
    if (st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      if (lost.message.empty())
        lost = {fmt::format("{} was lost during {} (stage {} unfinished): {}", worker_name(w), what, stage,
                          st.error_message()),
                w.device};
    } else if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      if (!late.message.empty()) continue;
      // The first unfinished stage in run order is where the request stalled.
      // (All stages done: the request waited for its last transfers or outputs on this worker.)
      std::string first = reference ? kReference : pending_stage("", shared.done);
      const std::string dev = first.empty() ? w.device : reference ? w.device : layout_.stage_device.at(first);
      if (first.empty()) first = "(its outputs)";
      late = {fmt::format("worker {} (device {}), stage {}: {} exceeded the deadline of {:g} ms",
                          layout_.worker.at(dev), dev, first, what, deadline_ms),
              ""};
    } else if (!st.ok() && st.error_code() != grpc::StatusCode::CANCELLED && aborted.message.empty())
      aborted = {fmt::format("{}: {}: {}", worker_name(w), what, st.error_message()), ""};
  }
  if (lost.message.empty() && !aborted.message.empty()) {
    // A stage error may come from a peer that died (a failed send): ask every worker whether it is alive.
    for (const auto& w : workers_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline_in(500));
      pb::PingReply reply;
      if (!w.stub->Ping(&ctx, pb::PingRequest{}, &reply).ok()) {
        lost = {fmt::format("{} was lost during {} (stage {} unfinished)", worker_name(w), what,
                            pending_stage(w.device, shared.done)),
                w.device};
        break;
      }
    }
  }
  if (!lost.message.empty()) return lost;
  if (!aborted.message.empty()) return aborted;
  if (!late.message.empty()) return late;
  return {fmt::format("{} was cancelled", what), ""};
}

Failure Attempt::collect_trace(Measured& m) {
  const std::set<uint64_t> measured(m.request_ids.begin(), m.request_ids.end());
  std::map<std::string, std::string> device_of_address;
  for (const auto& w : workers_) device_of_address[w.address] = w.device;
  for (const auto& w : workers_) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline_in(kSetupMs));
    pb::TraceRequest req;
    req.set_clear(true);
    pb::TraceReply reply;
    const grpc::Status st = w.stub->Trace(&ctx, req, &reply);
    if (!st.ok()) return {fmt::format("{}: reading its trace failed: {}", worker_name(w), st.error_message()), ""};
    m.clock_offset_ms.push_back(w.offset_ms);
    m.workers.push_back(w.facts);
    for (const auto& s : reply.stages())
      if (measured.count(s.request()))
        m.stages.push_back({s.request(), s.stage(), w.device, s.start_ms() - w.offset_ms, s.end_ms() - w.offset_ms,
                            std::max(s.handed_ms(), s.end_ms()) - w.offset_ms});
    for (const auto& t : reply.transfers())
      if (measured.count(t.request())) {
        const std::string dst = t.stages_size() ? layout_.stage_device[t.stages(0)] : device_of_address[t.peer()];
        m.transfers.push_back({t.request(), t.tensor(), w.device, dst, t.bytes(), t.start_ms() - w.offset_ms,
                               t.end_ms() - w.offset_ms});
      }
  }
  return {};
}

Failure Attempt::run(Measured& m) {
  m_ = nullptr;  // set-up traffic is not counted
  if (Failure f = connect(); !f.message.empty()) return f;
  if (Failure f = load(); !f.message.empty()) return f;
  auto inputs = random_inputs(layout_.manifest, options_.seed);
  if (!inputs) return {inputs.error().message, ""};
  inputs_ = std::move(*inputs);

  std::vector<pb::Tensor> reference;
  if (Failure f = request(kReferenceRequest, true, std::max(options_.deadline_ms, kSetupMs), &reference); !f.message.empty()) return f;
  std::map<std::string, std::vector<double>> expected;
  for (const auto& t : reference) {
    expected[t.name()] = values(t);
    for (double x : expected[t.name()]) m.max_reference = std::max(m.max_reference, std::abs(x));
  }
  for (uint64_t id = 1; id <= static_cast<uint64_t>(options_.warmup); ++id) {
    std::vector<pb::Tensor> out;
    if (Failure f = request(id, false, options_.deadline_ms, &out); !f.message.empty()) return f;
  }

  // Measured requests, `concurrency` in flight: each thread takes the next id until all are sent.
  m_ = &m;
  const uint64_t first = static_cast<uint64_t>(options_.warmup) + 1;
  const auto n = static_cast<size_t>(options_.requests);
  m.request_ids.resize(n);
  m.latency_ms.assign(n, 0);
  m.start_ms.assign(n, 0);
  m.pushed_ms.assign(n, 0);
  std::vector<std::vector<pb::Tensor>> outputs(n);
  std::atomic<size_t> next{0};
  std::mutex fail_mu;
  Failure failure;
  std::atomic<bool> stop{false};
  const double t_begin = now_ms();
  std::vector<std::thread> clients;
  for (int c = 0; c < std::max(1, options_.concurrency); ++c)
    clients.emplace_back([&] {
      for (size_t i; !stop && (i = next++) < n;) {
        m.request_ids[i] = first + i;
        Clock clock;
        Failure f = request(first + i, false, options_.deadline_ms, &outputs[i], &clock);
        m.start_ms[i] = clock.start_ms;
        m.pushed_ms[i] = clock.pushed_ms;
        m.latency_ms[i] = clock.end_ms - clock.start_ms;
        if (!f.message.empty()) {
          std::lock_guard lock(fail_mu);
          if (failure.message.empty()) failure = f;
          stop = true;
        }
      }
    });
  for (auto& t : clients) t.join();
  if (!failure.message.empty()) return failure;
  double t_end = t_begin;
  for (size_t i = 0; i < n; ++i) t_end = std::max(t_end, m.start_ms[i] + m.latency_ms[i]);
  m.wall_ms = t_end - t_begin;

  // Every request against the reference.
  for (size_t i = 0; i < n; ++i) {
    std::set<std::string> seen;
    for (const auto& t : outputs[i]) {
      seen.insert(t.name());
      auto it = expected.find(t.name());
      const std::vector<double> got = values(t);
      if (it == expected.end() || it->second.size() != got.size())
        return {fmt::format("request {}: output '{}' has {} elements, the original model's {}", first + i, t.name(),
                            got.size(), it == expected.end() ? 0 : it->second.size()),
                ""};
      for (size_t k = 0; k < got.size(); ++k) {
        const double d = std::abs(got[k] - it->second[k]);
        m.max_abs_diff = std::max(m.max_abs_diff, std::isnan(d) && !(std::isnan(got[k]) && std::isnan(it->second[k])) ? INFINITY : d);
      }
    }
    for (const auto& t : layout_.manifest.outputs)
      if (!seen.count(t.name))
        return {fmt::format("request {}: graph output '{}' never reached the coordinator (stage {})", first + i,
                            t.name, t.from),
                ""};
  }
  m.tolerance = options_.tolerance * std::max(m.max_reference, 1e-30);
  m.outputs_match = m.max_abs_diff <= m.tolerance;
  return collect_trace(m);
}

/// Reads and exports a plan into `dir`/submodels.
Expected<RunLayout> prepare(const RunOptions& options, const std::string& plan_path, const std::string& dir) {
  auto plan = read_plan(plan_path);
  if (!plan) return plan.error();
  auto request = export_request(*plan, options.model_path);
  if (!request) return request.error();
  auto manifest = export_submodels(*request, (fs::path(dir) / "submodels").string());
  if (!manifest) return manifest.error();
  if (!manifest->weights)
    return Error{fmt::format("{}: the model's weights are absent (a weight-stripped model); run NAME.weights.onnx",
                             options.model_path)};
  RunLayout layout;
  layout.plan = std::move(*plan);
  layout.manifest = std::move(*manifest);
  std::set<std::string> used;
  for (const auto& sub : layout.manifest.submodels) {
    used.insert(sub.device);
    layout.stage_device[sub.name] = sub.device;
  }
  for (const auto& d : layout.plan.devices)
    if (used.count(d)) layout.devices.push_back(d);
  return layout;
}

}  // namespace

namespace run_detail {

Expected<Measured> run_stages(const Manifest& manifest, const std::map<std::string, std::string>& workers,
                              const RunOptions& options) {
  RunLayout layout;
  layout.manifest = manifest;
  for (const auto& sub : manifest.submodels) {
    layout.stage_device[sub.name] = sub.device;
    if (std::find(layout.devices.begin(), layout.devices.end(), sub.device) == layout.devices.end())
      layout.devices.push_back(sub.device);
  }
  for (const auto& d : layout.devices) {
    auto it = workers.find(d);
    if (it == workers.end()) return Error{fmt::format("{}: no worker for device '{}'", manifest.path, d)};
    layout.worker[d] = it->second;
  }
  Measured m;
  Attempt attempt(options, layout);
  if (Failure f = attempt.run(m); !f.message.empty()) return Error{f.message};
  if (!m.outputs_match)
    return Error{fmt::format("{}: the stages' outputs differ from {} (max |diff| {:.3g})", manifest.path,
                             options.model_path, m.max_abs_diff)};
  return m;
}

}  // namespace run_detail

namespace {

/// A copy of a cluster file without one device (and the link overrides that name it).
Expected<std::string> cluster_without(const std::string& path, const std::string& device) {
  std::ifstream in(path);
  if (!in) return Error{fmt::format("{}: cannot read the plan's cluster file", path)};
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(in);
    auto& devices = j.at("devices");
    for (auto it = devices.begin(); it != devices.end(); ++it)
      if (it->value("name", "") == device) {
        devices.erase(it);
        break;
      }
    if (j.contains("links") && j["links"].contains("pairs")) {
      auto& pairs = j["links"]["pairs"];
      nlohmann::ordered_json kept = nlohmann::ordered_json::array();
      for (const auto& p : pairs)
        if (p.value("src", "") != device && p.value("dst", "") != device) kept.push_back(p);
      pairs = kept;
    }
    j["name"] = j.value("name", "cluster") + "-without-" + device;
  } catch (const std::exception& e) {
    return Error{fmt::format("{}: {}", path, e.what())};
  }
  return j.dump(2) + "\n";
}

/// Places the plan's problem again without `lost` (same method) and writes the new plan into `dir`.
Expected<std::string> replan(const RunOptions& options, const PlanFile& plan, const std::string& lost,
                             const std::string& dir) {
  if (plan.inputs.cluster.empty()) return Error{fmt::format("{}: the plan names no cluster file to replan on", plan.path)};
  auto text = cluster_without(plan.inputs.cluster, lost);
  if (!text) return text.error();
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string cluster_path = (fs::path(dir) / "cluster.json").string();
  if (auto st = write_file_atomic(cluster_path, *text); !st) return st.error();
  ProblemOptions po;
  po.input = plan.inputs.model;
  po.cluster_path = cluster_path;
  po.dims = plan.inputs.dims;
  po.coarsen.fusion = plan.inputs.fusion.empty() ? "onnxruntime" : plan.inputs.fusion;
  po.coarsen.max_nodes = plan.inputs.max_nodes;
  po.profile_path = plan.inputs.profile;
  auto problem = load_problem(po);
  if (!problem) return problem.error();
  PlaceOptions place;
  place.sim.contention = plan.contention;
  place.time_limit_s = options.replan_time_limit_s;
  const MethodRun run = run_method(*problem, plan.method, place);
  if (!run.ok())
    return Error{fmt::format("replanning '{}' without device {} failed: {}", plan.method, lost,
                             run.error.empty() ? run.violations.front() : run.error)};
  PlanInputs inputs = plan.inputs;
  inputs.cluster = cluster_path;
  const Plan p = plan_of(*problem, run, place.sim, inputs);
  if (auto st = write_plan_outputs(p, dir); !st) return st.error();
  return (fs::path(dir) / "plan.json").string();
}

Expected<RunSummary> run_into(const RunOptions& options) {
  std::error_code ec;
  const fs::path out = options.out_dir;
  fs::create_directories(out, ec);
  if (ec) return Error{fmt::format("{}: cannot create the output directory: {}", options.out_dir, ec.message())};
  fs::remove(out / "run.json", ec);  // a failed run leaves no (stale) run.json or trace
  fs::remove(out / "trace.json", ec);

  run_detail::LocalWorkers local;
  std::vector<RunAttempt> attempts;
  std::string plan_path = options.plan_path;
  std::string dir = options.out_dir;
  std::map<std::string, std::string> addresses = options.workers;
  std::set<std::string> lost_devices;
  for (;;) {
    auto layout = prepare(options, plan_path, dir);
    if (!layout) return layout.error();
    if (options.local && local.pids().empty()) {
      auto started = local.start(layout->devices, options.threads, options.provider, options.argv0,
                                 std::max(options.deadline_ms, 20000.0));
      if (!started) return started.error();
      for (size_t i = 0; i < layout->devices.size(); ++i) addresses[layout->devices[i]] = (*started)[i];
    }
    for (const auto& d : layout->devices) {
      auto it = addresses.find(d);
      if (it == addresses.end())
        return Error{fmt::format("{}: device '{}' has stages but no worker is given for it", plan_path, d), "workers"};
      layout->worker[d] = it->second;
    }
    Measured m;
    Attempt attempt(options, *layout);
    Failure f = attempt.run(m);
    attempts.push_back({plan_path, f.message, f.lost_device});
    if (f.message.empty()) {
      RunSummary summary;
      summary.attempts = attempts;
      summary.outputs_match = m.outputs_match;
      summary.run_json = (out / "run.json").string();
      if (auto st = write_file_atomic((out / "trace.json").string(), run_detail::measured_trace(*layout, m)); !st)
        return st.error();
      if (auto st = write_file_atomic(summary.run_json, run_detail::run_json(options, *layout, m, attempts)); !st)
        return st.error();
      summary.table = run_detail::run_table(options, *layout, m);
      return summary;
    }
    if (!options.replan_on_failure || f.lost_device.empty() || lost_devices.count(f.lost_device))
      return Error{f.message};
    lost_devices.insert(f.lost_device);
    if (layout->plan.devices.size() <= 1)
      return Error{fmt::format("{} (no device left to replan on)", f.message)};
    if (options.progress) options.progress(fmt::format("{}; replanning without device {}", f.message, f.lost_device));
    dir = (out / fmt::format("replan{}", lost_devices.size())).string();
    auto next = replan(options, layout->plan, f.lost_device, dir);
    if (!next) return Error{fmt::format("{}; {}", f.message, next.error().message)};
    plan_path = *next;
  }
}

}  // namespace

Expected<RunSummary> run_plan(const RunOptions& options) {
  if (options.requests < 1) return Error{"the number of requests must be at least 1", "requests"};
  std::error_code ec;
  const bool existed = fs::exists(options.out_dir, ec);
  auto summary = run_into(options);
  if (!summary && !existed) fs::remove_all(options.out_dir, ec);  // a failed run leaves no directory it made
  return summary;
}

Status exec_worker(const std::string& listen, int threads, const std::string& provider, const std::string& device,
                   const std::string& argv0) {
  auto command = run_detail::worker_command(argv0);
  if (!command) return command.error();
  std::vector<std::string> args = *command;
  for (const std::string& a : {std::string("--listen"), listen, std::string("--threads"), std::to_string(threads),
                               std::string("--provider"), provider})
    args.push_back(a);
  if (!device.empty()) {
    args.push_back("--device");
    args.push_back(device);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  return Error{fmt::format("cannot run {}: {}", args[0], std::strerror(errno))};
}

}  // namespace moirai
