#pragma once
/// @file
/// @brief MAML (Finn et al. 2017): the inner/outer loop for any model that meets the contract
/// of metalearn/model.hpp, with first-order and exact second-order meta-gradients.
///
/// For a task with support set s and query set q, K inner steps of gradient descent
///   θ₀ = θ,   θ_{k+1} = θ_k − α c(∇L_s(θ_k))        (c: optional clipping, else identity)
/// and the meta-loss of the task is L_q(θ_K), or with per-step weights w_k (MAML++'s
/// multi-step loss) Σ_{k=1..K} w_k L_q(θ_k). The meta-loss of a meta-batch is the mean over
/// its tasks, and the meta-gradient is its gradient with respect to θ:
///   second order (exact):  u ← w_K ∇L_q(θ_K);  for k = K−1 … 0:
///                          u ← u − α H_s(θ_k) J_c(θ_k)ᵀ u   (+ w_k ∇L_q(θ_k) for k ≥ 1)
///                          with H_s the support Hessian (exact Hessian-vector products, no
///                          graph) and J_c the Jacobian of the clip (identity without one);
///                          it stores θ₀…θ_K: memory O(K · parameters);
///   first order:           Σ_k w_k ∇L_q(θ_k), i.e. ∇L_q(θ_K) without weights — the
///                          derivative of θ_K with respect to θ taken as the identity;
///                          memory O(parameters).
/// Order::second_finite_difference computes the second-order recursion with H_s v
/// approximated by central differences of gradients (`finite_difference_hvp`), for models
/// without an exact `hessian_vector_product`; it is never chosen silently.
///
/// The tasks of a meta-batch run on the meta-batch engine (meta/engine.hpp): `threads`
/// workers, each with its own workspace, and a summation order fixed by the number of tasks
/// alone, so the result is bit-identical for any thread count. After the first call with a
/// given shape, `meta_loss_and_gradient` and `adapt` do not allocate.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/inner_loop.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>

#include <string>
#include <utility>
#include <vector>

namespace metalearn {

/// Options of `Maml`.
struct MamlOptions {
  double inner_lr = 1e-3;            ///< α, the inner-loop learning rate (finite, > 0); the MAML authors' code default
  int inner_steps = 1;               ///< K, inner steps during meta-training (≥ 0; ≥ 1 for second order)
  Order order = Order::second;       ///< meta-gradient
  Clip inner_clip{};                 ///< clipping of each inner gradient (off by default)
  std::vector<double> step_weights;  ///< w_1…w_K of the query losses after each step; empty: only w_K = 1
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
};

/// MAML for a model type `M` (see metalearn/model.hpp); an algorithm in the sense of
/// meta/algorithm.hpp whose meta-parameters are θ alone. The inner loop, the reverse sweep, the
/// threads and the workspaces are meta/inner_loop.hpp's, shared with Meta-SGD, MAML++ and ANIL;
/// MAML's rate is the one α for every step and every parameter.
template <class M>
class Maml : public detail::GradientInnerLoop<Maml<M>, M> {
  using Base = detail::GradientInnerLoop<Maml<M>, M>;

 public:
  using typename Base::Batch;
  using typename Base::Model;
  using typename Base::Scalar;
  using typename Base::Task;
  using typename Base::Workspace;
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Maml";

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit Maml(M model, MamlOptions options = {})
      : Base(checked(model, options), options.threads, model.parameter_count()), options_(std::move(options)),
        settings_{options_.order, options_.inner_steps, options_.inner_clip, options_.step_weights} {}

  /// The options.
  const MamlOptions& options() const { return options_; }
  /// Draws θ with the model's initialisation.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { this->model().initialize(theta, rng); }
  /// "Maml(order 2, inner_steps 1, inner_lr 0.001, …) on <model>": every option that changes
  /// results (not the thread count, which does not), for logs and checkpoints.
  std::string describe() const {
    std::string loop = detail::describe_inner_loop(options_.order, options_.inner_steps, options_.inner_clip,
                                                   options_.step_weights);
    const std::string steps = "inner_steps " + std::to_string(options_.inner_steps);
    loop.insert(loop.find(steps) + steps.size(), ", inner_lr " + detail::shortest(options_.inner_lr));
    return "Maml(" + loop + ") on " + describe_model(this->model());
  }

  // --- the inner loop's side (meta/inner_loop.hpp) -----------------------------------------

  /// The inner loop's settings (the options').
  const detail::InnerLoopSettings& settings() const { return settings_; }
  /// MAML learns nothing besides θ.
  Index extra_count() const { return 0; }
  /// The one rate α of every step.
  detail::StepRates<Scalar> rates(const Scalar*, int) const {
    detail::StepRates<Scalar> r;
    r.alpha = static_cast<Scalar>(options_.inner_lr);
    return r;
  }

 private:
  // The model, once the options are checked against it.
  static const M& checked(const M& model, const MamlOptions& options) {
    constexpr const char* where = "Maml";
    detail::check_positive(where, "inner_lr", options.inner_lr);
    detail::check_inner_loop(where, {options.order, options.inner_steps, options.inner_clip, options.step_weights},
                             options.threads, model);
    return model;
  }

  MamlOptions options_;
  detail::InnerLoopSettings settings_;
};

}  // namespace metalearn
