#pragma once
// Two models written from scratch against metalearn's model contract (metalearn/model.hpp).
// Neither uses metalearn's networks: they share their own batch type (Points) and each has
// its own parameter layout and hand-written derivatives. examples/custom_model.cpp meta-trains them; the tests use them
// to prove that any type meeting the contract plugs into Maml.
#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/tasks/sine.hpp>
#include <metalearn/tasks/task.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace custom {

using metalearn::ConstMatrixRef;
using metalearn::ConstVectorRef;
using metalearn::Index;
using metalearn::MatrixRef;
using metalearn::VectorRef;

/// The models' own batch: n points (x_j, y_j).
struct Points {
  Eigen::VectorXd x;
  Eigen::VectorXd y;
  Index size() const { return x.size(); }  // the contract asks for the number of examples
};

// Both models reject bad input before writing anything, as the contract asks.
inline void check_points(const char* where, const Points& b) {
  if (b.y.size() != b.x.size())
    throw metalearn::invalid_argument(std::string(where) + ": y has " + std::to_string(b.y.size()) +
                                      " entries, expected " + std::to_string(b.x.size()));
}
inline void check_length(const char* where, const char* what, Index actual, Index expected) {
  if (actual != expected)
    throw metalearn::invalid_argument(std::string(where) + ": " + what + " has " + std::to_string(actual) +
                                      " entries, expected " + std::to_string(expected));
}

/// Linear regression on Fourier features:
///   f(x) = θ₀ + Σ_{k=1..F} θ_{2k−1} sin(kx) + θ_{2k} cos(kx),   L = (1/n) Σ_j (f(x_j) − y_j)².
/// With Φ the n × (2F+1) feature matrix and r = Φθ − y:
///   ∇L = (2/n) Φᵀ r,   ∇²L v = (2/n) Φᵀ (Φ v)   (exact: the model is linear in θ).
class FourierRegression {
 public:
  using Scalar = double;
  using Batch = Points;
  struct Workspace {
    Eigen::MatrixXd phi;   // n × (2F+1), rebuilt per call
    Eigen::VectorXd work;  // n
  };

  explicit FourierRegression(int frequencies) : frequencies_(frequencies) {
    if (frequencies < 0) throw metalearn::invalid_argument("FourierRegression: frequencies must be >= 0");
  }

  Index parameter_count() const { return 2 * frequencies_ + 1; }

  void initialize(VectorRef<double> theta, metalearn::Rng& rng) const {
    for (Index i = 0; i < theta.size(); ++i) theta[i] = 0.1 * rng.normal();
  }

  double loss(ConstVectorRef<double> theta, const Points& b, Workspace& ws) const {
    check("FourierRegression::loss", theta, b);
    features(b.x, ws);
    ws.work.noalias() = ws.phi * theta;
    ws.work -= b.y;                                                // r = Φθ − y
    return ws.work.squaredNorm() / static_cast<double>(b.size());  // L = ‖r‖²/n
  }

  double loss_and_gradient(ConstVectorRef<double> theta, const Points& b, VectorRef<double> grad,
                           Workspace& ws) const {
    check_length("FourierRegression::loss_and_gradient", "grad", grad.size(), parameter_count());
    const double value = loss(theta, b, ws);  // leaves r in ws.work
    grad.noalias() = (2.0 / static_cast<double>(b.size())) * ws.phi.transpose() * ws.work;  // (2/n) Φᵀ r
    return value;
  }

  void hessian_vector_product(ConstVectorRef<double> theta, const Points& b, ConstVectorRef<double> v,
                              VectorRef<double> hv, Workspace& ws) const {
    check("FourierRegression::hessian_vector_product", theta, b);
    check_length("FourierRegression::hessian_vector_product", "v", v.size(), parameter_count());
    check_length("FourierRegression::hessian_vector_product", "hv", hv.size(), parameter_count());
    features(b.x, ws);
    ws.work.noalias() = ws.phi * v;                                                           // Φv
    hv.noalias() = (2.0 / static_cast<double>(b.size())) * ws.phi.transpose() * ws.work;  // (2/n) Φᵀ Φ v
  }

  void predict(ConstVectorRef<double> theta, ConstMatrixRef<double> inputs, MatrixRef<double> outputs,
               Workspace& ws) const {
    check_length("FourierRegression::predict", "theta", theta.size(), parameter_count());
    check_length("FourierRegression::predict", "outputs", outputs.size(), inputs.size());
    features(inputs.reshaped(), ws);
    outputs.reshaped() = ws.phi * theta;
  }

 private:
  void check(const char* where, const ConstVectorRef<double>& theta, const Points& b) const {
    check_length(where, "theta", theta.size(), parameter_count());
    check_points(where, b);
    if (b.size() == 0) throw metalearn::invalid_argument(std::string(where) + ": the batch is empty");
  }

  template <class X>
  void features(const X& x, Workspace& ws) const {
    ws.phi.resize(x.size(), parameter_count());
    ws.phi.col(0).setOnes();
    for (int k = 1; k <= frequencies_; ++k) {
      ws.phi.col(2 * k - 1) = (static_cast<double>(k) * x.array()).sin().matrix();
      ws.phi.col(2 * k) = (static_cast<double>(k) * x.array()).cos().matrix();
    }
  }

  int frequencies_;
};

/// A one-hidden-layer tanh network written by hand, with its own parameter layout: for each
/// hidden unit i the triple [w_i, b_i, v_i] (input weight, bias, output weight), then the
/// output bias c — unlike metalearn's networks, which store W then b layer by layer.
///   h_i = tanh(w_i x + b_i),  f(x) = Σ_i v_i h_i + c,  L = (1/n) Σ_j r_j²,  r_j = f(x_j) − y_j
///   ∂L/∂v_i = (2/n) Σ r h_i,   ∂L/∂w_i = (2/n) Σ r v_i (1 − h_i²) x,
///   ∂L/∂b_i = (2/n) Σ r v_i (1 − h_i²),   ∂L/∂c = (2/n) Σ r.
/// It has no hessian_vector_product: Maml trains it to second order only when asked for
/// Order::second_finite_difference.
class TinyTanhNet {
 public:
  using Scalar = double;
  using Batch = Points;
  struct Workspace {};  // needs none

  explicit TinyTanhNet(int hidden) : hidden_(hidden) {
    if (hidden <= 0) throw metalearn::invalid_argument("TinyTanhNet: hidden must be > 0");
  }

  Index parameter_count() const { return 3 * static_cast<Index>(hidden_) + 1; }

  void initialize(VectorRef<double> theta, metalearn::Rng& rng) const {
    for (int i = 0; i < hidden_; ++i) {
      theta[3 * i] = rng.normal();                // w_i
      theta[3 * i + 1] = rng.uniform(-3.0, 3.0);  // b_i: kinks spread over the input range
      theta[3 * i + 2] = 0.1 * rng.normal();      // v_i
    }
    theta[3 * hidden_] = 0.0;  // c
  }

  double loss_and_gradient(ConstVectorRef<double> theta, const Points& b, VectorRef<double> grad, Workspace&) const {
    check_length("TinyTanhNet::loss_and_gradient", "theta", theta.size(), parameter_count());
    check_length("TinyTanhNet::loss_and_gradient", "grad", grad.size(), parameter_count());
    check_points("TinyTanhNet::loss_and_gradient", b);
    if (b.size() == 0) throw metalearn::invalid_argument("TinyTanhNet::loss_and_gradient: the batch is empty");
    const double scale = 2.0 / static_cast<double>(b.size());
    grad.setZero();
    double loss = 0;
    for (Index j = 0; j < b.size(); ++j) {
      const double x = b.x[j];
      double f = theta[3 * hidden_];
      for (int i = 0; i < hidden_; ++i) f += theta[3 * i + 2] * std::tanh(theta[3 * i] * x + theta[3 * i + 1]);
      const double r = f - b.y[j];
      loss += r * r;
      for (int i = 0; i < hidden_; ++i) {
        const double h = std::tanh(theta[3 * i] * x + theta[3 * i + 1]);
        const double back = scale * r * theta[3 * i + 2] * (1 - h * h);
        grad[3 * i] += back * x;           // ∂L/∂w_i
        grad[3 * i + 1] += back;           // ∂L/∂b_i
        grad[3 * i + 2] += scale * r * h;  // ∂L/∂v_i
      }
      grad[3 * hidden_] += scale * r;  // ∂L/∂c
    }
    return loss / static_cast<double>(b.size());
  }

 private:
  int hidden_;
};

/// Sine tasks as Points, drawn by metalearn's own sampler (tasks/sine.hpp).
class PointsSineTasks {
 public:
  using Task = metalearn::Task<Points>;

  PointsSineTasks(std::uint64_t seed, Index support, Index query)
      : sine_(seed, make_options(support, query)) {}

  void sample(Task& task) {
    sine_.sample(scratch_);
    convert(scratch_.support, task.support);
    convert(scratch_.query, task.query);
  }

 private:
  static metalearn::tasks::SineTasks<double>::Options make_options(Index support, Index query) {
    metalearn::tasks::SineTasks<double>::Options o;
    o.support = support;
    o.query = query;
    return o;
  }
  static void convert(const metalearn::RegressionBatch<double>& from, Points& to) {
    to.x = from.inputs.row(0).transpose();
    to.y = from.targets.row(0).transpose();
  }

  metalearn::tasks::SineTasks<double> sine_;
  metalearn::tasks::SineTasks<double>::Task scratch_;
};

}  // namespace custom
