#pragma once
/// @file
/// @brief Finite-difference checkers for any model's gradient and Hessian-vector product,
/// and the full Hessian assembled from the loss alone (an independent reference).
///
/// Usage on your own model:
/// @code
/// auto r = metalearn::check::gradient(model, theta, batch);
/// if (!r) std::cerr << r.report() << "\n";
/// @endcode

#include <metalearn/check/result.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/model.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace metalearn::check {

namespace detail {
/// The entries to check: all, or a seeded sample of `max_entries` (sorted).
inline std::vector<Index> entries(Index count, const Options& options) {
  std::vector<Index> idx(static_cast<std::size_t>(count));
  std::iota(idx.begin(), idx.end(), Index(0));
  if (options.max_entries > 0 && options.max_entries < count) {
    Rng rng(options.seed, 0xC4EC);
    for (Index i = 0; i < options.max_entries; ++i)  // partial Fisher–Yates
      std::swap(idx[static_cast<std::size_t>(i)],
                idx[static_cast<std::size_t>(i + static_cast<Index>(rng.uniform_index(static_cast<std::uint64_t>(count - i))))]);
    idx.resize(static_cast<std::size_t>(options.max_entries));
    std::sort(idx.begin(), idx.end());
  }
  return idx;
}
}  // namespace detail

/// Compares `loss_and_gradient` with central differences of the loss, entry by entry:
/// ∂L/∂θ_i ≈ (L(θ + h e_i) − L(θ − h e_i)) / (2h). The gradient buffer is filled with NaN
/// before the call, so entries the model forgets to assign fail.
template <class M>
Result gradient(const M& model, ConstVectorRef<typename M::Scalar> theta, const typename M::Batch& batch,
                const Options& options = {}) {
  static_assert(check_model<M>());
  using S = typename M::Scalar;
  const double step = detail::default_step<S>(options.step);
  detail::Comparison cmp("gradient", detail::default_tolerance<S>(options.tolerance),
                                             options.floor, step, options.max_reported);
  typename M::Workspace ws{};
  Vector<S> grad = Vector<S>::Constant(theta.size(), std::numeric_limits<S>::quiet_NaN());
  model.loss_and_gradient(theta, batch, grad, ws);
  Vector<S> shifted = theta;
  for (Index i : detail::entries(theta.size(), options)) {
    const S h = static_cast<S>(step * std::max(1.0, std::abs(static_cast<double>(theta[i]))));
    shifted[i] = theta[i] + h;
    const S plus = evaluate_loss(model, shifted, batch, ws);
    const double up = static_cast<double>(shifted[i]);
    shifted[i] = theta[i] - h;
    const S minus = evaluate_loss(model, shifted, batch, ws);
    const double width = up - static_cast<double>(shifted[i]);  // the step actually taken, after rounding
    shifted[i] = theta[i];
    cmp.add(i, static_cast<double>(grad[i]), (static_cast<double>(plus) - static_cast<double>(minus)) / width);
  }
  return cmp.finish();
}

/// Compares `hessian_vector_product` with central differences of the gradient along v:
/// H v ≈ (∇L(θ + h v) − ∇L(θ − h v)) / (2h), h = step · max(1, ‖θ‖∞) / ‖v‖∞.
template <class M>
Result hessian_vector_product(const M& model, ConstVectorRef<typename M::Scalar> theta,
                              const typename M::Batch& batch, ConstVectorRef<typename M::Scalar> v,
                              const Options& options = {}) {
  static_assert(check_model<M>());
  static_assert(model_traits<M>::has_hessian_vector_product,
                "metalearn::check::hessian_vector_product: the model has no hessian_vector_product");
  using S = typename M::Scalar;
  const double step = detail::default_step<S>(options.step);
  detail::Comparison cmp("hessian_vector_product",
                                             detail::default_tolerance<S>(options.tolerance), options.floor, step,
                                             options.max_reported);
  typename M::Workspace ws{};
  const Index p = theta.size();
  Vector<S> hv = Vector<S>::Constant(p, std::numeric_limits<S>::quiet_NaN());
  model.hessian_vector_product(theta, batch, v, hv, ws);
  const double vmax = static_cast<double>(v.cwiseAbs().maxCoeff());
  const double h = vmax > 0 ? step * std::max(1.0, static_cast<double>(theta.cwiseAbs().maxCoeff())) / vmax : 0;
  Vector<S> plus(p), minus(p), shifted = theta + static_cast<S>(h) * v;
  model.loss_and_gradient(shifted, batch, plus, ws);
  shifted = theta - static_cast<S>(h) * v;
  model.loss_and_gradient(shifted, batch, minus, ws);
  for (Index i : detail::entries(p, options)) {
    const double numeric = h > 0 ? (static_cast<double>(plus[i]) - static_cast<double>(minus[i])) / (2 * h) : 0.0;
    cmp.add(i, static_cast<double>(hv[i]), numeric);
  }
  return cmp.finish();
}

/// The full Hessian ∇²L(θ) (P × P) assembled from second differences of the loss alone:
///   H_ii ≈ (L(θ + h e_i) − 2 L(θ) + L(θ − h e_i)) / h²
///   H_ij ≈ (L(θ + h e_i + h e_j) − L(θ + h e_i − h e_j) − L(θ − h e_i + h e_j) + L(θ − h e_i − h e_j)) / 4h²
/// It never calls the model's gradient or Hessian-vector product, so it is a reference
/// independent of both. O(P²) loss evaluations: for small models. The step defaults to
/// (machine ε)^(1/4), giving errors of about √ε relative (1e-8 in double).
template <class M>
Matrix<double> hessian_from_loss(const M& model, ConstVectorRef<typename M::Scalar> theta,
                                 const typename M::Batch& batch, double step = 0) {
  static_assert(check_model<M>());
  using S = typename M::Scalar;
  if (step <= 0) step = std::pow(static_cast<double>(std::numeric_limits<S>::epsilon()), 0.25);
  typename M::Workspace ws{};
  const Index p = theta.size();
  Vector<S> t = theta;
  auto loss_at = [&](Index i, double di, Index j, double dj) {
    t = theta;
    if (i >= 0) t[i] += static_cast<S>(di);
    if (j >= 0) t[j] += static_cast<S>(dj);
    return static_cast<double>(evaluate_loss(model, t, batch, ws));
  };
  const double l0 = loss_at(-1, 0, -1, 0);
  Matrix<double> hessian(p, p);
  for (Index i = 0; i < p; ++i) {
    const double hi = step * std::max(1.0, std::abs(static_cast<double>(theta[i])));
    hessian(i, i) = (loss_at(i, hi, -1, 0) - 2 * l0 + loss_at(i, -hi, -1, 0)) / (hi * hi);
    for (Index j = 0; j < i; ++j) {
      const double hj = step * std::max(1.0, std::abs(static_cast<double>(theta[j])));
      hessian(i, j) = hessian(j, i) = (loss_at(i, hi, j, hj) - loss_at(i, hi, j, -hj) - loss_at(i, -hi, j, hj) +
                                       loss_at(i, -hi, j, -hj)) / (4 * hi * hj);
    }
  }
  return hessian;
}

}  // namespace metalearn::check
