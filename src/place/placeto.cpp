// Placeto: a reinforcement-learning placer. Follows Addanki, Bojja Venkatakrishnan, Gupta, Mao, Alizadeh,
// "Placeto: Learning Generalizable Device Placement Algorithms for Distributed Machine Learning", NeurIPS 2019.
//
// As in the paper: the state is the graph with the current placement; an episode visits every operator once
// (here in topological order) and the policy re-places it (softmax over devices on a graph embedding computed by
// message passing from predecessors and successors, with per-operator features: time on each device, transfer
// cost in and out, memory, current device one-hot, "visited" and "current" flags); training is REINFORCE with a
// moving-average baseline and the simulator's latency as reward.
//
// Where this version departs from the paper:
//  - Reward: the per-step improvement of the paper (cost before minus cost after re-placing the operator, cost =
//    simulated makespan / best single-device work, +1 + relative overflow when a peak exceeds a capacity), with
//    undiscounted returns and a per-step moving-average baseline, plus a small entropy bonus. Above 128 operators
//    the placement is simulated only every few steps (the reward goes to the block's last step): at most 128
//    simulations per episode, fewer on large graphs (about 65k simulated operators per episode, at least 8).
//  - Embedding: R rounds (2; 1 above 2,000 operators) of mean aggregation over predecessors and successors with
//    weights shared across rounds, evaluated only on the R-hop ball around the visited operator, instead of the
//    paper's full bottom-up/top-down propagation plus parallel-group pooling. Neighbour lists are capped at 8 per
//    direction. No graph partitioning into groups beyond the coarsening moirai does before placement.
//  - Small network (16 hidden units), trained from scratch on each problem (no generalisation across graphs).
//  - Memory: devices whose resident parameters would overflow are masked out of the softmax (a necessary
//    condition). Each episode starts from the best feasible placement found so far (initially a capacity-aware
//    packing), so the agent improves an existing placement step by step.
//  - Extra state features for the visited operator: per device its load, resident parameters, and the transfer
//    time the operator would cause there given its neighbours' current devices.
//  - Returned plan: the best feasible placement seen in training, or the final greedy (argmax) pass of the policy
//    from it if that is better. The greedy pass is the inference; training time is reported apart.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "placeto_policy.h"
#include "placers.h"

namespace moirai {
namespace {

using placeto::unit;
using Clock = std::chrono::steady_clock;

constexpr int kNeighbourCap = 8;
constexpr double kEntropyWeight = 0.01;  // per step, against advantages normalised to unit spread
constexpr double kLearningRate = 0.01;
constexpr double kDiscount = 1.0;  // returns: undiscounted sums of the per-step improvements
constexpr double kMaxGradNorm = 5;
// Simulations per episode: one per step up to 128 operators, then rewards come per block of steps, with fewer
// blocks on large graphs (a simulation costs O(operators)): about 64k simulated operators per episode, at least 8.
constexpr int kMaxSimsPerEpisode = 128;
constexpr int kSimulatedOpsPerEpisode = 1 << 16;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Static facts about the problem and the mutable episode state (placement, per-device load and parameters).
class Environment {
 public:
  Environment(const CostTable& table, const SimOptions& sim) : t_(table), sim_(sim), n_(table.num_ops()),
                                                                k_(table.num_devices()) {
    ref_ = 0;
    for (int d = 0; d < k_; ++d) {
      double work = 0;
      for (int u = 0; u < n_; ++u) work += t_.time(u, d);
      ref_ = d == 0 ? work : std::min(ref_, work);
    }
    if (!(ref_ > 0)) ref_ = 1;
    tmean_ = ref_ / std::max(1, n_);
    max_cap_ = 0;
    for (double c : t_.capacity) max_cap_ = std::max(max_cap_, c);
    if (!(max_cap_ > 0)) max_cap_ = 1;
    // Static node features: rows 0..k-1 times, k transfer out, k+1 transfer in, k+2 parameters, k+3 output bytes;
    // dynamic rows: k+4..2k+3 device one-hot, 2k+4 visited, 2k+5 current.
    X_ = Eigen::MatrixXd::Zero(2 * k_ + 6, n_);
    for (int u = 0; u < n_; ++u) {
      for (int d = 0; d < k_; ++d) X_(d, u) = std::log1p(t_.time(u, d) / tmean_);
      double out = 0, in = 0, bytes = 0;
      for (int id : t_.op_outputs[static_cast<size_t>(u)]) out += mean_transfer(id), bytes += t_.data[id].bytes;
      for (int id : t_.op_inputs[static_cast<size_t>(u)]) in += mean_transfer(id);
      X_(k_, u) = std::log1p(out / tmean_);
      X_(k_ + 1, u) = std::log1p(in / tmean_);
      X_(k_ + 2, u) = t_.param_bytes[static_cast<size_t>(u)] / max_cap_;
      X_(k_ + 3, u) = bytes / max_cap_;
    }
    device_.assign(static_cast<size_t>(n_), 0);
  }

  int ops() const { return n_; }
  int devices() const { return k_; }
  double ref() const { return ref_; }
  const Eigen::MatrixXd& features() const { return X_; }
  Eigen::VectorXd& global() { return g_; }
  const std::vector<DeviceId>& placement() const { return device_; }

  /// Starts an episode from this placement: nothing visited.
  void reset(const std::vector<DeviceId>& start) {
    device_ = start;
    load_.assign(static_cast<size_t>(k_), 0);
    params_.assign(static_cast<size_t>(k_), 0);
    X_.bottomRows(k_ + 2).setZero();
    for (int u = 0; u < n_; ++u) {
      const DeviceId d = device_[static_cast<size_t>(u)];
      load_[static_cast<size_t>(d)] += t_.time(u, d);
      params_[static_cast<size_t>(d)] += t_.param_bytes[static_cast<size_t>(u)];
      X_(k_ + 4 + d, u) = 1;
    }
  }

  /// Marks u as the operator being visited and refreshes the features of the state seen from u: per device,
  /// its load, its resident parameters, and the transfer time u would cause there given its neighbours' devices.
  void focus(int u) {
    X_(2 * k_ + 5, u) = 1;
    g_.resize(3 * k_);
    for (int d = 0; d < k_; ++d) {
      g_[d] = load_[static_cast<size_t>(d)] / ref_;
      const double cap = t_.capacity[static_cast<size_t>(d)];
      g_[k_ + d] = cap > 0 ? params_[static_cast<size_t>(d)] / cap : (params_[static_cast<size_t>(d)] > 0 ? 2 : 0);
      double comm = 0;
      for (int id : t_.op_inputs[static_cast<size_t>(u)])
        comm += t_.transfer(id, device_[static_cast<size_t>(t_.data[static_cast<size_t>(id)].producer)], d);
      for (int id : t_.op_outputs[static_cast<size_t>(u)]) {
        seen_.assign(static_cast<size_t>(k_), 0);  // one transfer per remote device
        for (OpId c : t_.data[static_cast<size_t>(id)].consumers) {
          const DeviceId e = device_[static_cast<size_t>(c)];
          if (e != d && !seen_[static_cast<size_t>(e)]) comm += t_.transfer(id, d, e), seen_[static_cast<size_t>(e)] = 1;
        }
      }
      g_[2 * k_ + d] = std::log1p(comm / tmean_);
    }
  }

  /// Devices u may move to without its device's resident parameters exceeding the capacity.
  std::vector<char> allowed(int u) const {
    std::vector<char> ok(static_cast<size_t>(k_), 0);
    const double p = t_.param_bytes[static_cast<size_t>(u)];
    const DeviceId cur = device_[static_cast<size_t>(u)];
    bool any = false;
    for (int d = 0; d < k_; ++d) {
      const double used = params_[static_cast<size_t>(d)] - (d == cur ? p : 0) + p;
      ok[static_cast<size_t>(d)] = used <= t_.capacity[static_cast<size_t>(d)] * (1 + 1e-12);
      any = any || ok[static_cast<size_t>(d)];
    }
    if (!any) ok[static_cast<size_t>(cur)] = 1;  // nowhere fits: stay (the reward penalises it)
    return ok;
  }

  /// Places u on d and marks it visited.
  void place(int u, DeviceId d) {
    const DeviceId cur = device_[static_cast<size_t>(u)];
    load_[static_cast<size_t>(cur)] -= t_.time(u, cur);
    params_[static_cast<size_t>(cur)] -= t_.param_bytes[static_cast<size_t>(u)];
    load_[static_cast<size_t>(d)] += t_.time(u, d);
    params_[static_cast<size_t>(d)] += t_.param_bytes[static_cast<size_t>(u)];
    device_[static_cast<size_t>(u)] = d;
    X_(k_ + 4 + cur, u) = 0;
    X_(k_ + 4 + d, u) = 1;
    X_(2 * k_ + 4, u) = 1;
    X_(2 * k_ + 5, u) = 0;
  }

  struct Outcome {
    double makespan_ms = 0;
    bool feasible = false;
    double overflow = 0;  ///< sum over devices of (peak - capacity) / capacity
  };
  Outcome evaluate(const std::vector<DeviceId>& device) const {
    Placement p;
    p.device = device;
    const Schedule s = simulate(t_, p, sim_);
    Outcome o{s.makespan_ms, true, 0};
    for (int d = 0; d < k_; ++d) {
      const double cap = t_.capacity[static_cast<size_t>(d)], peak = s.peak_memory[static_cast<size_t>(d)];
      if (peak > cap) o.feasible = false, o.overflow += (peak - cap) / std::max(cap, 1e-9);
    }
    o.feasible = o.feasible && s.over_capacity(t_).empty();
    return o;
  }

 private:
  double mean_transfer(int id) const {
    if (k_ < 2) return 0;
    double sum = 0;
    for (int s = 0; s < k_; ++s)
      for (int d = 0; d < k_; ++d) sum += s == d ? 0 : t_.transfer(id, s, d);
    return sum / (k_ * (k_ - 1));
  }

  const CostTable& t_;
  SimOptions sim_;
  int n_, k_;
  double ref_ = 1, tmean_ = 1, max_cap_ = 1;
  Eigen::MatrixXd X_;
  Eigen::VectorXd g_;
  std::vector<DeviceId> device_;
  std::vector<double> load_, params_;
  std::vector<char> seen_;
};

// A starting placement whose resident parameters fit: worst-fit decreasing (balances), else first-fit
// decreasing (packs tighter); the first that fits, else the worst-fit one.
std::vector<DeviceId> packing(const CostTable& t) {
  const int n = t.num_ops(), k = t.num_devices();
  std::vector<int> by_size(static_cast<size_t>(n));
  std::iota(by_size.begin(), by_size.end(), 0);
  std::stable_sort(by_size.begin(), by_size.end(), [&](int a, int b) {
    return t.param_bytes[static_cast<size_t>(a)] > t.param_bytes[static_cast<size_t>(b)];
  });
  std::vector<DeviceId> worst;
  for (bool worst_fit : {true, false}) {
    std::vector<DeviceId> dev(static_cast<size_t>(n), 0);
    std::vector<double> room = t.capacity;
    bool fits = true;
    for (int u : by_size) {
      const double p = t.param_bytes[static_cast<size_t>(u)];
      int best = -1;
      for (int d = 0; d < k; ++d) {
        const double r = room[static_cast<size_t>(d)];
        if (r < p) continue;
        if (best < 0 || (worst_fit && r > room[static_cast<size_t>(best)])) best = d;
      }
      if (best < 0) {  // nothing fits: the device with most room
        fits = false;
        best = static_cast<int>(std::max_element(room.begin(), room.end()) - room.begin());
      }
      dev[static_cast<size_t>(u)] = best;
      room[static_cast<size_t>(best)] -= p;
    }
    if (fits) return dev;
    if (worst.empty()) worst = dev;
  }
  return worst;
}

// The first kNeighbourCap neighbours (ascending ids): bounds the cost of a step on high fan-out operators.
std::vector<int> capped(const std::vector<OpId>& list) {
  return {list.begin(), list.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(list.size(), kNeighbourCap))};
}

// Policy inputs: each operator's first kNeighbourCap predecessors and successors.
std::vector<std::vector<int>> neighbours(const CostTable& table, bool predecessors) {
  std::vector<std::vector<int>> out(static_cast<size_t>(table.num_ops()));
  for (int u = 0; u < table.num_ops(); ++u)
    out[static_cast<size_t>(u)] = capped(predecessors ? table.predecessors(u) : table.successors(u));
  return out;
}

placeto::PolicyShape policy_shape(const Environment& env, int n, int k) {
  placeto::PolicyShape shape;
  shape.features = static_cast<int>(env.features().rows());
  shape.global = 3 * k;
  shape.devices = k;
  shape.rounds = n > 2000 ? 1 : 2;
  return shape;
}

// REINFORCE on one problem: episodes that re-place every operator of the incumbent, each step rewarded with the
// drop in simulated cost, and the incumbent (best feasible placement seen).
class Trainer {
 public:
  Trainer(const CostTable& table, const PlaceOptions& options)
      : table_(table), options_(options), n_(table.num_ops()), k_(table.num_devices()), env_(table, options.sim),
        rng_(options.seed),
        policy_(policy_shape(env_, n_, k_), neighbours(table, true), neighbours(table, false), rng_),
        adam_(policy_.num_params(), kLearningRate), probs_(k_), dlogits_(k_), grad_(policy_.num_params()),
        actions_(static_cast<size_t>(n_)), rewards_(static_cast<size_t>(n_)), baseline_(static_cast<size_t>(n_), 0.0) {
    const int sims = std::clamp(kSimulatedOpsPerEpisode / n_, 8, kMaxSimsPerEpisode);
    stride_ = std::max(1, (n_ + sims - 1) / sims);
    best_ = packing(table);
    consider(best_, env_.evaluate(best_));
  }

  // Trains until `episodes` or the time limit; returns the episodes run.
  int train(Clock::time_point t0) {
    const int episodes = std::max(0, options_.episodes);
    const int report_every = std::max(1, episodes / 10);
    double window_sum = 0;
    int window = 0, done = 0;
    for (int ep = 0; ep < episodes && k_ > 1; ++ep) {
      if (seconds_since(t0) > options_.time_limit_s) break;
      window_sum += -cost(learn(ep)), ++window, ++done;
      if (options_.progress && (done % report_every == 0 || done == episodes)) {
        options_.progress(fmt::format("placeto: episode {}/{}: best {} ms, mean reward {:.4f}", done, episodes,
                                      have_best_ ? fmt::format("{:.4f}", best_ms_) : std::string("(none feasible)"),
                                      window_sum / window));
        window_sum = 0, window = 0;
      }
    }
    return done;
  }

  // Inference: one greedy pass of the trained policy from the incumbent.
  void infer() { episode(best_, false); }

  bool have_best() const { return have_best_; }
  const std::vector<DeviceId>& best() const { return best_; }
  double best_ms() const { return best_ms_; }

 private:
  void consider(const std::vector<DeviceId>& dev, const Environment::Outcome& o) {
    if (o.feasible && (!have_best_ || o.makespan_ms < best_ms_)) best_ = dev, best_ms_ = o.makespan_ms, have_best_ = true;
  }

  // Cost of a placement in reward units: makespan / (best single-device work), plus a penalty when over capacity.
  double cost(const Environment::Outcome& o) const {
    return o.makespan_ms / env_.ref() + (o.feasible ? 0.0 : 1.0 + o.overflow);
  }

  // The policy's distribution over the devices v may take (forward pass on the current state).
  void distribution(OpId v) {
    env_.focus(v);
    const Eigen::VectorXd& logits = policy_.forward(v, env_.features(), env_.global());
    const auto ok = env_.allowed(v);
    double top = -INFINITY, sum = 0;
    for (int d = 0; d < k_; ++d) if (ok[static_cast<size_t>(d)]) top = std::max(top, logits[d]);
    for (int d = 0; d < k_; ++d) sum += probs_[d] = ok[static_cast<size_t>(d)] ? std::exp(logits[d] - top) : 0.0;
    probs_ /= sum;
  }

  int sample_device() {
    const double r = unit(rng_);
    double acc = 0;
    int choice = -1;
    for (int d = 0; d < k_ && choice < 0; ++d) if (probs_[d] > 0 && (acc += probs_[d]) > r) choice = d;
    if (choice < 0) for (int d = 0; d < k_; ++d) if (probs_[d] > 0) choice = d;  // rounding
    return choice;
  }

  // One pass over the operators from `start`, sampling (training) or taking the argmax (inference). In
  // training, the placement is simulated every `stride` steps and the cost drop since the last simulation
  // is the reward of that step (the paper's per-step improvement when stride = 1).
  Environment::Outcome episode(const std::vector<DeviceId>& start, bool sample) {
    env_.reset(start);
    auto o = env_.evaluate(start);
    consider(start, o);
    double last = cost(o);
    std::fill(rewards_.begin(), rewards_.end(), 0.0);
    for (int i = 0; i < n_; ++i) {
      const OpId v = table_.topo_order[static_cast<size_t>(i)];
      distribution(v);
      int choice = 0;
      if (sample) {
        choice = sample_device();
      } else {
        for (int d = 1; d < k_; ++d) if (probs_[d] > probs_[choice]) choice = d;
      }
      env_.place(v, choice);
      actions_[static_cast<size_t>(i)] = choice;
      if (!sample && i + 1 < n_) continue;
      if ((i + 1) % stride_ == 0 || i + 1 == n_) {
        o = env_.evaluate(env_.placement());
        consider(env_.placement(), o);
        const double now = cost(o);
        rewards_[static_cast<size_t>(i)] = last - now;
        last = now;
      }
    }
    return o;
  }

  // Episode `ep` from the incumbent, then one policy-gradient step on it; returns the episode's outcome.
  Environment::Outcome learn(int ep) {
    // Every episode improves the incumbent (random starts were tried: they learned less in the same budget).
    const std::vector<DeviceId> start = best_;
    const auto o = episode(start, true);
    // Discounted returns, advantages against a per-step moving-average baseline, normalised by their spread.
    std::vector<double> advantage(static_cast<size_t>(n_));
    double ret = 0, square = 0;
    for (int i = n_ - 1; i >= 0; --i) {
      ret = rewards_[static_cast<size_t>(i)] + kDiscount * ret;
      double& b = baseline_[static_cast<size_t>(i)];
      if (ep == 0) b = ret;
      advantage[static_cast<size_t>(i)] = ret - b;
      b = 0.9 * b + 0.1 * ret;
      square += advantage[static_cast<size_t>(i)] * advantage[static_cast<size_t>(i)];
    }
    spread_ = ep == 0 ? square / n_ : 0.9 * spread_ + 0.1 * square / n_;
    const double scale = 1 / (std::sqrt(spread_) + 1e-8);
    // Replay the episode (same states, same actions) to accumulate the policy gradient with the entropy bonus.
    grad_.setZero();
    env_.reset(start);
    for (int i = 0; i < n_; ++i) {
      const OpId v = table_.topo_order[static_cast<size_t>(i)];
      distribution(v);
      const int a = actions_[static_cast<size_t>(i)];
      double entropy = 0;
      for (int d = 0; d < k_; ++d) if (probs_[d] > 0) entropy -= probs_[d] * std::log(probs_[d]);
      for (int d = 0; d < k_; ++d)  // A (1[a = d] - p_d) + beta dH/dlogit_d, with dH/dlogit_d = -p_d (log p_d + H)
        dlogits_[d] = advantage[static_cast<size_t>(i)] * scale * ((d == a) - probs_[d]) -
                      (probs_[d] > 0 ? kEntropyWeight * probs_[d] * (std::log(probs_[d]) + entropy) : 0.0);
      policy_.backward(dlogits_, grad_);
      env_.place(v, a);
    }
    const double norm = grad_.norm();
    if (norm > kMaxGradNorm) grad_ *= kMaxGradNorm / norm;
    adam_.ascend(policy_.params(), grad_);
    return o;
  }

  const CostTable& table_;
  const PlaceOptions& options_;
  const int n_, k_;
  Environment env_;
  std::mt19937_64 rng_;
  placeto::Policy policy_;
  placeto::Adam adam_;
  Eigen::VectorXd probs_, dlogits_, grad_;
  std::vector<int> actions_;
  std::vector<double> rewards_, baseline_;
  double spread_ = 0;
  int stride_ = 1;
  std::vector<DeviceId> best_;  // the incumbent
  double best_ms_ = 0;
  bool have_best_ = false;
};

class PlacetoPlacer final : public Placer {
 public:
  std::string name() const override { return "placeto"; }
  std::string summary() const override {
    return "Placeto (Addanki et al. 2019): graph-embedding policy trained with REINFORCE on simulated latency";
  }

  Expected<PlaceResult> place(const CostTable& table, const PlaceOptions& options) const override {
    const auto t0 = Clock::now();
    const int n = table.num_ops(), k = table.num_devices();
    PlaceResult result;
    result.mode = "reinforce";
    if (n == 0) return result;
    if (k == 0) return Error{"placeto: the cluster has no devices"};
    Trainer trainer(table, options);
    const int done = trainer.train(t0);
    result.train_time_s = seconds_since(t0);
    trainer.infer();
    if (!trainer.have_best()) {
      double params = 0;
      for (double p : table.param_bytes) params += p;
      std::string caps;
      for (int d = 0; d < k; ++d)
        caps += fmt::format("{}{} {}", d ? ", " : "", table.device_names[static_cast<size_t>(d)],
                            table.capacity[static_cast<size_t>(d)]);
      return Error{fmt::format("placeto: no placement of '{}' within memory capacity found in {} episodes: the "
                               "operators' parameters need {} bytes in total (plus activations); capacities: {}",
                               table.name, done, params, caps)};
    }
    result.placement.device = trainer.best();
    result.objective_ms = trainer.best_ms();
    result.mode = fmt::format("reinforce, {} episodes", done);  // the training the plan got, for fair comparisons
    if (options.progress)
      options.progress(fmt::format("placeto: {} episodes in {:.3f} s, inference {:.3f} s, latency {:.4f} ms", done,
                                   result.train_time_s, seconds_since(t0) - result.train_time_s, trainer.best_ms()));
    return result;
  }
};

}  // namespace

std::unique_ptr<Placer> make_placeto_placer() { return std::make_unique<PlacetoPlacer>(); }

}  // namespace moirai
