#pragma once
/// @file
/// @brief Checks meta-gradients against a separate, naive route: for any algorithm of the
/// contract (meta/algorithm.hpp), central differences of a meta-loss the caller computes
/// separately; for MAML, that route written here: the inner loop re-run from (perturbed) θ with
/// fresh vectors, task by task, using only the model's loss_and_gradient — none of Maml's code.

#include <metalearn/check/result.hpp>
#include <metalearn/check/derivatives.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/model.hpp>

#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace metalearn::check {

namespace detail {
// θ_1 … θ_K of one task by plain gradient steps (with the options' clipping).
template <class Model>
std::vector<Vector<typename Model::Scalar>> naive_inner_loop(const Model& model, const MamlOptions& o,
                                                             ConstVectorRef<typename Model::Scalar> theta,
                                                             const typename Model::Batch& support) {
  using S = typename Model::Scalar;
  typename Model::Workspace ws{};
  std::vector<Vector<S>> path{Vector<S>(theta)};
  for (int k = 0; k < o.inner_steps; ++k) {
    Vector<S> g(theta.size());
    model.loss_and_gradient(path.back(), support, g, ws);
    o.inner_clip.template apply<S>(g);
    path.push_back(path.back() - static_cast<S>(o.inner_lr) * g);
  }
  return path;
}

inline double step_weight(const MamlOptions& o, int k) {  // w_k, k = 1…K (w = 1 for K = 0)
  if (o.inner_steps == 0) return 1.0;
  if (o.step_weights.empty()) return k == o.inner_steps ? 1.0 : 0.0;
  return o.step_weights[static_cast<std::size_t>(k - 1)];
}
}  // namespace detail

/// The mean meta-loss Σ_k w_k L_q(θ_k) over tasks, computed naively in double.
template <class Model, class Tasks>
double naive_meta_loss(const Model& model, const MamlOptions& o, ConstVectorRef<typename Model::Scalar> theta,
                       const Tasks& tasks) {
  typename Model::Workspace ws{};
  double total = 0;
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    const auto path = detail::naive_inner_loop(model, o, theta, tasks[t].support);
    for (int k = (o.inner_steps == 0 ? 0 : 1); k <= o.inner_steps; ++k) {
      const double w = detail::step_weight(o, k);
      if (w != 0) total += w * static_cast<double>(evaluate_loss(model, path[static_cast<std::size_t>(k)], tasks[t].query, ws));
    }
  }
  return total / static_cast<double>(tasks.size());
}

/// The first-order meta-gradient mean_t Σ_k w_k ∇L_q(θ_k), computed naively.
template <class Model, class Tasks>
Vector<typename Model::Scalar> naive_first_order_meta_gradient(const Model& model, const MamlOptions& o,
                                                               ConstVectorRef<typename Model::Scalar> theta,
                                                               const Tasks& tasks) {
  using S = typename Model::Scalar;
  typename Model::Workspace ws{};
  Vector<S> total = Vector<S>::Zero(theta.size()), g(theta.size());
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    const auto path = detail::naive_inner_loop(model, o, theta, tasks[t].support);
    for (int k = (o.inner_steps == 0 ? 0 : 1); k <= o.inner_steps; ++k) {
      const double w = detail::step_weight(o, k);
      if (w == 0) continue;
      model.loss_and_gradient(path[static_cast<std::size_t>(k)], tasks[t].query, g, ws);
      total += static_cast<S>(w) * g;
    }
  }
  return total / static_cast<S>(tasks.size());
}

/// Compares any algorithm's meta-gradient (the algorithm contract, meta/algorithm.hpp) with
/// central differences of `naive_meta_loss(meta)`, a separately computed meta-loss of the same
/// tasks (the algorithm's own naive route: fresh vectors, the model's loss_and_gradient, none of
/// the algorithm's code), entry by entry of the meta-parameters.
template <class Algorithm, class Tasks, class MetaLoss,
          class = std::enable_if_t<std::is_invocable_v<MetaLoss&, const Vector<typename Algorithm::Scalar>&>>>
Result meta_gradient(Algorithm& algorithm, ConstVectorRef<typename Algorithm::Scalar> meta, const Tasks& tasks,
                     MetaLoss&& naive_meta_loss, const Options& options = {}) {
  using S = typename Algorithm::Scalar;
  const double step = detail::default_step<S>(options.step);
  detail::Comparison cmp(std::string(Algorithm::name) + " meta_gradient", detail::default_tolerance<S>(options.tolerance),
                         options.floor, step, options.max_reported);
  Vector<S> grad = Vector<S>::Constant(meta.size(), std::numeric_limits<S>::quiet_NaN());
  algorithm.meta_loss_and_gradient(meta, tasks, grad);
  Vector<S> shifted = meta;
  for (Index i : detail::entries(meta.size(), options)) {
    const S h = static_cast<S>(step * std::max(1.0, std::abs(static_cast<double>(meta[i]))));
    shifted[i] = meta[i] + h;
    const double up = static_cast<double>(shifted[i]);
    const double plus = naive_meta_loss(static_cast<const Vector<S>&>(shifted));
    shifted[i] = meta[i] - h;
    const double minus = naive_meta_loss(static_cast<const Vector<S>&>(shifted));
    const double width = up - static_cast<double>(shifted[i]);
    shifted[i] = meta[i];
    cmp.add(i, static_cast<double>(grad[i]), (plus - minus) / width);
  }
  return cmp.finish();
}

/// Compares an algorithm's meta-gradient with a reference vector entry by entry: for the first
/// orders, which are not gradients of the meta-loss (e.g. `naive_first_order_meta_gradient`).
template <class Algorithm, class Tasks>
Result meta_gradient_against(Algorithm& algorithm, ConstVectorRef<typename Algorithm::Scalar> meta, const Tasks& tasks,
                             ConstVectorRef<typename Algorithm::Scalar> reference, const Options& options = {}) {
  using S = typename Algorithm::Scalar;
  detail::Comparison cmp(std::string(Algorithm::name) + " meta_gradient (first order)",
                         detail::default_tolerance<S>(options.tolerance), options.floor,
                         detail::default_step<S>(options.step), options.max_reported);
  Vector<S> grad = Vector<S>::Constant(meta.size(), std::numeric_limits<S>::quiet_NaN());
  algorithm.meta_loss_and_gradient(meta, tasks, grad);
  for (Index i : detail::entries(meta.size(), options))
    cmp.add(i, static_cast<double>(grad[i]), static_cast<double>(reference[i]));
  return cmp.finish();
}

/// Compares `maml.meta_loss_and_gradient(θ, tasks, ·)` with the naive route: for the
/// second orders, central differences of `naive_meta_loss` entry by entry; for first order
/// (which is not the gradient of the meta-loss), `naive_first_order_meta_gradient`.
template <class Model, class Tasks>
Result meta_gradient(Maml<Model>& maml, ConstVectorRef<typename Model::Scalar> theta, const Tasks& tasks,
                     const Options& options = {}) {
  using S = typename Model::Scalar;
  const MamlOptions& o = maml.options();
  if (o.order == Order::first) {
    const Vector<S> reference = naive_first_order_meta_gradient(maml.model(), o, theta, tasks);
    return meta_gradient_against(maml, theta, tasks, reference, options);
  }
  return meta_gradient(
      maml, theta, tasks, [&](const Vector<S>& shifted) { return naive_meta_loss(maml.model(), o, shifted, tasks); },
      options);
}

}  // namespace metalearn::check
