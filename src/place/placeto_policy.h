// Placeto's policy network (internal to src/place): a graph embedding by message passing from predecessors and
// successors, and a softmax head over devices. Forward and backward are written out by hand with Eigen (no
// autodiff): the network is small and one forward/backward runs per visited operator.
//
// Embedding of operator v (R rounds, weights shared across rounds, tanh units):
//   h0_u = tanh(W0 x_u + b0)
//   hr_u = tanh(Ws h(r-1)_u + Wp mean_{p in pred(u)} h(r-1)_p + Wc mean_{c in succ(u)} h(r-1)_c + b1)
//   logits = W2 tanh(W1 [hR_v ; x_v ; g] + bh) + b2      (g: whole-state features, e.g. per-device load)
// Only the R-hop ball around v is evaluated, so one step costs O(ball x hidden^2), not O(graph).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Dense>

namespace moirai::placeto {

struct PolicyShape {
  int features = 0;  ///< rows of the node feature matrix
  int global = 0;    ///< length of the whole-state feature vector
  int devices = 0;   ///< softmax width
  int hidden = 16;   ///< embedding width
  int head = 16;     ///< hidden units of the head
  int rounds = 2;    ///< message-passing rounds
};

/// The policy. Neighbour lists are given once (capped by the caller for high fan-in/fan-out operators).
class Policy {
 public:
  Policy(const PolicyShape& shape, std::vector<std::vector<int>> preds, std::vector<std::vector<int>> succs,
         std::mt19937_64& rng);

  const PolicyShape& shape() const { return shape_; }
  Eigen::VectorXd& params() { return theta_; }
  Eigen::Index num_params() const { return theta_.size(); }

  /// Logits over devices for operator v. X: features x ops (node features), g: global features.
  /// Keeps the activations for backward().
  const Eigen::VectorXd& forward(int v, const Eigen::MatrixXd& X, const Eigen::VectorXd& g);

  /// Adds (d logits / d theta)^T dlogits to grad, for the last forward().
  void backward(const Eigen::VectorXd& dlogits, Eigen::VectorXd& grad) const;

 private:
  using Map = Eigen::Map<Eigen::MatrixXd>;
  using CMap = Eigen::Map<const Eigen::MatrixXd>;
  struct Block {
    Eigen::Index offset, rows, cols;
  };
  CMap view(const Block& b) const { return CMap(theta_.data() + b.offset, b.rows, b.cols); }
  static Map view(const Block& b, Eigen::VectorXd& v) { return Map(v.data() + b.offset, b.rows, b.cols); }

  PolicyShape shape_;
  std::vector<std::vector<int>> preds_, succs_;
  Eigen::VectorXd theta_;
  Block W0_, b0_, Ws_, Wp_, Wc_, b1_, W1_, bh_, W2_, b2_;

  // Activations of the last forward().
  std::vector<int> ball_;      ///< operators within `rounds` hops of v, in BFS order (v first)
  std::vector<int> within_;    ///< within_[r] = number of ball operators at distance <= r
  std::vector<int> local_;     ///< operator -> column in the ball, -1 outside
  Eigen::MatrixXd Xb_;         ///< features of the ball
  std::vector<Eigen::MatrixXd> h_, mp_, mc_;  ///< per round: embeddings, mean of preds / succs of round r-1
  Eigen::VectorXd z_, a1_, logits_;
};

/// Adam (Kingma & Ba) on a flat parameter vector; ascent (maximises).
class Adam {
 public:
  explicit Adam(Eigen::Index n, double lr) : m_(Eigen::VectorXd::Zero(n)), v_(Eigen::VectorXd::Zero(n)), lr_(lr) {}
  void ascend(Eigen::VectorXd& theta, const Eigen::VectorXd& grad);

 private:
  Eigen::VectorXd m_, v_;
  double lr_;
  double beta1_t_ = 1, beta2_t_ = 1;
};

/// A double in [0, 1) from the generator (portable across standard libraries, unlike uniform_real_distribution).
inline double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace moirai::placeto
