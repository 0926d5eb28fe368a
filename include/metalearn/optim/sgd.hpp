#pragma once
/// @file
/// @brief Stochastic gradient descent with (Nesterov) momentum on a flat parameter vector.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/optim/subnormal.hpp>

#include <cmath>
#include <cstdint>

namespace metalearn::optim {

/// SGD as PyTorch's `torch.optim.SGD` (no dampening, no weight decay):
///   b ← μ b + g;   θ ← θ − lr · b   (Nesterov: θ ← θ − lr · (g + μ b));   μ = 0: θ ← θ − lr g.
/// The velocity is allocated at construction; `step` does not allocate, and on bad input
/// throws leaving θ and the state unchanged. Velocity entries below the smallest normal number
/// are set to zero (optim/subnormal.hpp).
template <class Scalar>
class Sgd {
 public:
  using value_type = Scalar;  ///< float or double (the scalar of θ)

  /// Hyper-parameters.
  struct Options {
    double lr = 1e-2;       ///< learning rate
    double momentum = 0;    ///< μ in [0, 1)
    bool nesterov = false;  ///< Nesterov momentum
  };

  /// State for `parameters` entries.
  explicit Sgd(Index parameters, Options options = {})
      : options_(options), b_(Vector<Scalar>::Zero(checked_count(parameters))) {
    detail::check_positive("optim::Sgd", "lr", options.lr);
    if (!detail::is_finite(options.momentum) || !(options.momentum >= 0 && options.momentum < 1))
      detail::fail("optim::Sgd", "momentum must be in [0, 1), got ", options.momentum);
  }

  /// One update of θ with gradient g.
  void step(VectorRef<Scalar> theta, ConstVectorRef<Scalar> g) {
    detail::check_size("optim::Sgd::step", "theta", theta.size(), b_.size());
    detail::check_size("optim::Sgd::step", "gradient", g.size(), b_.size());
    if (!detail::all_finite(g)) detail::check_finite("optim::Sgd::step", "gradient", g);
    ++t_;
    const auto lr = static_cast<Scalar>(options_.lr), mu = static_cast<Scalar>(options_.momentum);
    if (options_.momentum == 0) {
      theta -= lr * g;  // θ ← θ − lr g
      return;
    }
    if (t_ == 1) b_ = g;        // b₁ = g (as PyTorch)
    else b_ = mu * b_ + g;      // b ← μb + g
    detail::flush_subnormals(b_);  // |b| < min normal b₀: it would move θ by less than lr·b₀
    if (options_.nesterov) theta -= lr * (g + mu * b_);                 // θ ← θ − lr (g + μb)
    else theta -= lr * b_;                                               // θ ← θ − lr b
  }

  /// Number of parameters.
  Index parameter_count() const { return b_.size(); }
  /// Steps taken.
  std::int64_t steps() const { return t_; }
  /// The momentum buffer b.
  const Vector<Scalar>& velocity() const { return b_; }
  /// The hyper-parameters.
  const Options& options() const { return options_; }
  /// The learning rate of the next steps.
  double learning_rate() const { return options_.lr; }
  /// Sets the learning rate of the next steps (a schedule, optim/schedule.hpp); finite and
  /// >= 0 (a schedule may end at 0), else `invalid_argument` with nothing changed.
  void set_learning_rate(double lr) {
    detail::check_non_negative("optim::Sgd::set_learning_rate", "lr", lr);
    options_.lr = lr;
  }

  /// Restores a saved state (checkpoints); throws on a size mismatch, a negative count or a
  /// non-finite velocity, leaving the state unchanged.
  void restore(ConstVectorRef<Scalar> velocity, std::int64_t steps) {
    detail::check_size("optim::Sgd::restore", "velocity", velocity.size(), b_.size());
    if (steps < 0) detail::fail("optim::Sgd::restore", "step count must be >= 0, got ", steps);
    detail::check_finite("optim::Sgd::restore", "velocity", velocity);
    b_ = velocity;
    t_ = steps;
  }

 private:
  // Checked before the velocity is sized (a negative size would be undefined behaviour).
  static Index checked_count(Index parameters) {
    if (parameters <= 0) detail::fail("optim::Sgd", "parameter count must be > 0, got ", parameters);
    return parameters;
  }

  Options options_;
  Vector<Scalar> b_;
  std::int64_t t_ = 0;
};

}  // namespace metalearn::optim
