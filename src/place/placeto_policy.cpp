// Placeto's policy network: forward and hand-written backward of the message-passing embedding and the
// softmax head (see placeto_policy.h for the equations).
#include "placeto_policy.h"

#include <cmath>
#include <utility>

#include "moirai/error.h"

namespace moirai::placeto {
namespace {

// tanh'(pre) expressed with the activation y = tanh(pre).
Eigen::ArrayXd dtanh(const Eigen::VectorXd& y) { return 1.0 - y.array().square(); }

}  // namespace

Policy::Policy(const PolicyShape& shape, std::vector<std::vector<int>> preds, std::vector<std::vector<int>> succs,
               std::mt19937_64& rng)
    : shape_(shape), preds_(std::move(preds)), succs_(std::move(succs)) {
  MOIRAI_CHECK(shape.features > 0 && shape.devices > 0 && shape.hidden > 0 && shape.head > 0 && shape.rounds >= 0,
               "bad policy shape");
  MOIRAI_CHECK(preds_.size() == succs_.size(), "neighbour lists differ in length");
  const Eigen::Index H = shape.hidden, F = shape.features, M = shape.head, K = shape.devices;
  const Eigen::Index Z = H + F + shape.global;
  Eigen::Index offset = 0;
  auto block = [&](Eigen::Index rows, Eigen::Index cols) {
    Block b{offset, rows, cols};
    offset += rows * cols;
    return b;
  };
  W0_ = block(H, F), b0_ = block(H, 1);
  Ws_ = block(H, H), Wp_ = block(H, H), Wc_ = block(H, H), b1_ = block(H, 1);
  W1_ = block(M, Z), bh_ = block(M, 1);
  W2_ = block(K, M), b2_ = block(K, 1);
  theta_ = Eigen::VectorXd::Zero(offset);
  // Glorot-uniform weights, zero biases; the output layer starts small so the first policy is near uniform.
  for (const Block* b : {&W0_, &Ws_, &Wp_, &Wc_, &W1_, &W2_}) {
    double limit = std::sqrt(6.0 / static_cast<double>(b->rows + b->cols));
    if (b == &W2_) limit *= 0.1;
    for (Eigen::Index i = 0; i < b->rows * b->cols; ++i) theta_[b->offset + i] = limit * (2 * unit(rng) - 1);
  }
  local_.assign(preds_.size(), -1);
}

const Eigen::VectorXd& Policy::forward(int v, const Eigen::MatrixXd& X, const Eigen::VectorXd& g) {
  const int R = shape_.rounds;
  // The ball: BFS over predecessors and successors up to R hops.
  for (int u : ball_) local_[static_cast<size_t>(u)] = -1;
  ball_.assign(1, v);
  local_[static_cast<size_t>(v)] = 0;
  within_.assign(static_cast<size_t>(R + 1), 1);
  size_t level_begin = 0;
  for (int r = 1; r <= R; ++r) {
    const size_t level_end = ball_.size();
    for (size_t i = level_begin; i < level_end; ++i)
      for (const auto* list : {&preds_[static_cast<size_t>(ball_[i])], &succs_[static_cast<size_t>(ball_[i])]})
        for (int w : *list)
          if (local_[static_cast<size_t>(w)] < 0) {
            local_[static_cast<size_t>(w)] = static_cast<int>(ball_.size());
            ball_.push_back(w);
          }
    within_[static_cast<size_t>(r)] = static_cast<int>(ball_.size());
    level_begin = level_end;
  }
  const Eigen::Index B = static_cast<Eigen::Index>(ball_.size());
  Xb_.resize(X.rows(), B);
  for (Eigen::Index j = 0; j < B; ++j) Xb_.col(j) = X.col(ball_[static_cast<size_t>(j)]);

  h_.resize(static_cast<size_t>(R + 1));
  mp_.resize(static_cast<size_t>(R + 1));
  mc_.resize(static_cast<size_t>(R + 1));
  h_[0] = ((view(W0_) * Xb_).colwise() + view(b0_).col(0)).array().tanh().matrix();
  const auto Ws = view(Ws_), Wp = view(Wp_), Wc = view(Wc_);
  const auto b1 = view(b1_).col(0);
  const Eigen::Index H = shape_.hidden;
  for (int r = 1; r <= R; ++r) {
    // Round r is needed for operators at distance <= R - r (a prefix of the ball).
    const Eigen::Index n = within_[static_cast<size_t>(R - r)];
    const auto& prev = h_[static_cast<size_t>(r - 1)];
    auto& mp = mp_[static_cast<size_t>(r)];
    auto& mc = mc_[static_cast<size_t>(r)];
    mp = Eigen::MatrixXd::Zero(H, n);
    mc = Eigen::MatrixXd::Zero(H, n);
    for (Eigen::Index j = 0; j < n; ++j) {
      const int u = ball_[static_cast<size_t>(j)];
      const auto& ps = preds_[static_cast<size_t>(u)];
      const auto& cs = succs_[static_cast<size_t>(u)];
      for (int p : ps) mp.col(j) += prev.col(local_[static_cast<size_t>(p)]);
      for (int c : cs) mc.col(j) += prev.col(local_[static_cast<size_t>(c)]);
      if (!ps.empty()) mp.col(j) /= static_cast<double>(ps.size());
      if (!cs.empty()) mc.col(j) /= static_cast<double>(cs.size());
    }
    h_[static_cast<size_t>(r)] =
        ((Ws * prev.leftCols(n) + Wp * mp + Wc * mc).colwise() + b1).array().tanh().matrix();
  }

  z_.resize(H + shape_.features + shape_.global);
  z_ << h_[static_cast<size_t>(R)].col(0), X.col(v), g;
  a1_ = (view(W1_) * z_ + view(bh_).col(0)).array().tanh().matrix();
  logits_ = view(W2_) * a1_ + view(b2_).col(0);
  return logits_;
}

void Policy::backward(const Eigen::VectorXd& dlogits, Eigen::VectorXd& grad) const {
  const int R = shape_.rounds;
  const Eigen::Index H = shape_.hidden;
  // Head.
  view(W2_, grad).noalias() += dlogits * a1_.transpose();
  view(b2_, grad).col(0) += dlogits;
  const Eigen::VectorXd dpre1 = ((view(W2_).transpose() * dlogits).array() * dtanh(a1_)).matrix();
  view(W1_, grad).noalias() += dpre1 * z_.transpose();
  view(bh_, grad).col(0) += dpre1;
  const Eigen::VectorXd dz = view(W1_).transpose() * dpre1;

  // Message-passing rounds, from the last back to the first.
  Eigen::MatrixXd dh = dz.head(H);  // gradient w.r.t. h_R of the ball's first within_[0] = 1 columns
  const auto Ws = view(Ws_), Wp = view(Wp_), Wc = view(Wc_);
  auto gWs = view(Ws_, grad), gWp = view(Wp_, grad), gWc = view(Wc_, grad);
  auto gb1 = view(b1_, grad);
  for (int r = R; r >= 1; --r) {
    const auto& hr = h_[static_cast<size_t>(r)];
    const auto& prev = h_[static_cast<size_t>(r - 1)];
    const auto& mp = mp_[static_cast<size_t>(r)];
    const auto& mc = mc_[static_cast<size_t>(r)];
    const Eigen::Index n = hr.cols();
    const Eigen::MatrixXd gpre = (dh.array() * (1.0 - hr.array().square())).matrix();
    gWs.noalias() += gpre * prev.leftCols(n).transpose();
    gWp.noalias() += gpre * mp.transpose();
    gWc.noalias() += gpre * mc.transpose();
    gb1.col(0) += gpre.rowwise().sum();
    Eigen::MatrixXd dprev = Eigen::MatrixXd::Zero(H, prev.cols());
    dprev.leftCols(n).noalias() += Ws.transpose() * gpre;
    const Eigen::MatrixXd tp = Wp.transpose() * gpre, tc = Wc.transpose() * gpre;
    for (Eigen::Index j = 0; j < n; ++j) {
      const int u = ball_[static_cast<size_t>(j)];
      const auto& ps = preds_[static_cast<size_t>(u)];
      const auto& cs = succs_[static_cast<size_t>(u)];
      for (int p : ps) dprev.col(local_[static_cast<size_t>(p)]) += tp.col(j) / static_cast<double>(ps.size());
      for (int c : cs) dprev.col(local_[static_cast<size_t>(c)]) += tc.col(j) / static_cast<double>(cs.size());
    }
    dh = std::move(dprev);
  }
  // Layer 0 (features -> h0) over the whole ball.
  const auto& h0 = h_[0];
  Eigen::MatrixXd g0 = Eigen::MatrixXd::Zero(H, h0.cols());
  g0.leftCols(dh.cols()) = (dh.array() * (1.0 - h0.leftCols(dh.cols()).array().square())).matrix();
  view(W0_, grad).noalias() += g0 * Xb_.transpose();
  view(b0_, grad).col(0) += g0.rowwise().sum();
}

void Adam::ascend(Eigen::VectorXd& theta, const Eigen::VectorXd& grad) {
  constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
  beta1_t_ *= b1;
  beta2_t_ *= b2;
  m_ = b1 * m_ + (1 - b1) * grad;
  v_ = b2 * v_ + (1 - b2) * grad.cwiseProduct(grad);
  const double step = lr_ * std::sqrt(1 - beta2_t_) / (1 - beta1_t_);
  theta.array() += step * m_.array() / (v_.array().sqrt() + eps);
}

}  // namespace moirai::placeto
