#pragma once
/// @file
/// @brief Adam on a flat parameter vector, with its state sized once.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/optim/subnormal.hpp>

#include <cmath>
#include <cstdint>

namespace metalearn::optim {

/// Adam (Kingma & Ba), exactly as PyTorch's `torch.optim.Adam` (no weight decay):
///   m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
///   θ ← θ − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// The moments are allocated at construction for the parameter count; `step` does not
/// allocate. On bad input (wrong size, non-finite gradient) `step` throws and leaves θ and
/// the state unchanged. First-moment entries below the smallest normal number are set to zero
/// (their update is below 2e-31 in float; subnormal arithmetic is slow: optim/subnormal.hpp).
template <class Scalar>
class Adam {
 public:
  using value_type = Scalar;  ///< float or double (the scalar of θ)

  /// Hyper-parameters.
  struct Options {
    double lr = 1e-3;       ///< learning rate
    double beta1 = 0.9;     ///< decay of the first moment
    double beta2 = 0.999;   ///< decay of the second moment
    double epsilon = 1e-8;  ///< added to the denominator
  };

  /// State for `parameters` entries.
  explicit Adam(Index parameters, Options options = {})
      : options_(options), m_(Vector<Scalar>::Zero(checked_count(parameters))), v_(Vector<Scalar>::Zero(parameters)) {
    detail::check_positive("optim::Adam", "lr", options.lr);
    if (!detail::is_finite(options.beta1) || !(options.beta1 >= 0 && options.beta1 < 1))
      detail::fail("optim::Adam", "beta1 must be in [0, 1), got ", options.beta1);
    if (!detail::is_finite(options.beta2) || !(options.beta2 >= 0 && options.beta2 < 1))
      detail::fail("optim::Adam", "beta2 must be in [0, 1), got ", options.beta2);
    detail::check_positive("optim::Adam", "epsilon", options.epsilon);
  }

  /// One update of θ with gradient g.
  void step(VectorRef<Scalar> theta, ConstVectorRef<Scalar> g) {
    detail::check_size("optim::Adam::step", "theta", theta.size(), m_.size());
    detail::check_size("optim::Adam::step", "gradient", g.size(), m_.size());
    if (!detail::all_finite(g)) detail::check_finite("optim::Adam::step", "gradient", g);
    ++t_;
    const double bc1 = 1 - std::pow(options_.beta1, static_cast<double>(t_));
    const double bc2 = 1 - std::pow(options_.beta2, static_cast<double>(t_));
    const auto b1 = static_cast<Scalar>(options_.beta1), b2 = static_cast<Scalar>(options_.beta2);
    const auto step_size = static_cast<Scalar>(options_.lr / bc1);
    const auto sqrt_bc2 = static_cast<Scalar>(std::sqrt(bc2));
    const auto eps = static_cast<Scalar>(options_.epsilon);
    m_ = b1 * m_ + (Scalar(1) - b1) * g;                                    // m ← β₁m + (1−β₁)g
    v_ = b2 * v_ + (Scalar(1) - b2) * g.cwiseAbs2();                        // v ← β₂v + (1−β₂)g²
    // An entry with |m| below the smallest normal number m₀ would move θ by less than
    // (lr/bc₁)·m₀/ε; while lr/(bc₁ε) ≤ 2²⁴ that is below 2²⁴m₀ (≈ 2e-31 in float), which moves
    // no θ entry larger than ~1e-23 in magnitude: flushing it to zero is exact in practice.
    if (options_.lr / (bc1 * options_.epsilon) <= 16777216.0) detail::flush_subnormals(m_);
    theta.array() -= step_size * m_.array() / (v_.array().sqrt() / sqrt_bc2 + eps);  // θ −= lr/bc₁ · m / (√v/√bc₂ + ε)
  }

  /// Number of parameters.
  Index parameter_count() const { return m_.size(); }
  /// Steps taken.
  std::int64_t steps() const { return t_; }
  /// First moment m.
  const Vector<Scalar>& first_moment() const { return m_; }
  /// Second moment v.
  const Vector<Scalar>& second_moment() const { return v_; }
  /// The hyper-parameters.
  const Options& options() const { return options_; }
  /// The learning rate of the next steps.
  double learning_rate() const { return options_.lr; }
  /// Sets the learning rate of the next steps (a schedule, optim/schedule.hpp); finite and
  /// >= 0 (a schedule may end at 0), else `invalid_argument` with nothing changed.
  void set_learning_rate(double lr) {
    detail::check_non_negative("optim::Adam::set_learning_rate", "lr", lr);
    options_.lr = lr;
  }

  /// Restores a saved state (checkpoints); throws on a size mismatch, a negative count, a
  /// non-finite moment or a negative second moment, leaving the state unchanged.
  void restore(ConstVectorRef<Scalar> m, ConstVectorRef<Scalar> v, std::int64_t steps) {
    detail::check_size("optim::Adam::restore", "first moment", m.size(), m_.size());
    detail::check_size("optim::Adam::restore", "second moment", v.size(), v_.size());
    if (steps < 0) detail::fail("optim::Adam::restore", "step count must be >= 0, got ", steps);
    detail::check_finite("optim::Adam::restore", "first moment", m);
    detail::check_finite("optim::Adam::restore", "second moment", v);
    if ((v.array() < Scalar(0)).any()) detail::fail("optim::Adam::restore", "second moment must be >= 0");
    m_ = m;
    v_ = v;
    t_ = steps;
  }

  /// Back to the initial state.
  void reset() {
    m_.setZero();
    v_.setZero();
    t_ = 0;
  }

 private:
  // Checked before the moments are sized (a negative size would be undefined behaviour).
  static Index checked_count(Index parameters) {
    if (parameters <= 0) detail::fail("optim::Adam", "parameter count must be > 0, got ", parameters);
    return parameters;
  }

  Options options_;
  Vector<Scalar> m_;
  Vector<Scalar> v_;
  std::int64_t t_ = 0;
};

}  // namespace metalearn::optim
