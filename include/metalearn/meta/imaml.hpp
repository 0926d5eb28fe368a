#pragma once
/// @file
/// @brief iMAML (Rajeswaran, Finn, Kakade, Levine 2019): MAML with implicit gradients. A task's
/// parameters solve (approximately) the proximal problem
///   φ* = argmin_φ L_s(φ) + (λ/2) ‖φ − θ‖²,
/// here by K steps of gradient descent from φ₀ = θ,
///   φ_{k+1} = φ_k − α c(∇L_s(φ_k) + λ (φ_k − θ))      (c: optional clipping, which
///                                                      leaves the stationary points alone),
/// and the meta-gradient is the implicit one, dL_q(φ*)/dθ = (I + H_s(φ*)/λ)⁻¹ ∇L_q(φ*) (from
/// ∇L_s(φ*) + λ(φ* − θ) = 0), computed at φ = φ_K by m iterations of conjugate gradient on exact
/// Hessian-vector products of the support loss (or, chosen explicitly, central differences of
/// gradients for models without one). Memory O(P) per worker whatever K is: φ, its gradient and
/// CG's four vectors, no stored inner states (docs/derivations.md, "iMAML").
///
/// The authors' code (and ports of it) solves ((1 + c) I + H/(λ + d)) x = ∇L_q with a
/// regularisation c = 1 and a damping d = 10 by default: a differently scaled system, whose
/// solution is not the implicit gradient. metalearn solves the paper's (I + H/λ) x = ∇L_q.
/// After each meta-step, `last_residual()` is the largest relative CG residual ‖r_m‖ / ‖∇L_q‖
/// over the meta-batch's tasks (r_m: CG's recursively updated residual of ∇L_q − A x), and
/// `last_stationarity()` the largest ‖∇L_s(φ_K) + λ(φ_K − θ)‖, how far φ_K is from solving the
/// proximal problem (the implicit gradient is exact only at its solution); both are maxima, so
/// the same for any thread count. Where I + H/λ is not positive definite along a CG direction
/// (λ too small for the curvature at φ_K), CG stops there and its residual shows it.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/meta/engine.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/tasks/task.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

namespace metalearn {

/// How iMAML multiplies by the support Hessian.
enum class HessianProducts {
  exact,             ///< the model's hessian_vector_product (its cached form when it has one)
  finite_difference  ///< central differences of gradients (`finite_difference_hvp`), for models without one
};

/// Options of `Imaml`.
struct ImamlOptions {
  double lambda = 1.0;               ///< λ (finite, > 0): the proximal term's strength
  double inner_lr = 1e-2;            ///< α (finite, > 0) of the inner gradient descent
  int inner_steps = 5;               ///< K (≥ 1)
  int cg_iterations = 5;             ///< m (≥ 1), conjugate-gradient iterations (the authors' 5)
  /// Clipping of each inner step's direction ∇L_s + λ(φ − θ): it bounds the steps where the
  /// curvature is too high for α, and changes nothing at φ* (c(0) = 0); off by default.
  Clip inner_clip{};
  HessianProducts hessian = HessianProducts::exact;  ///< how H_s v is computed
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
};

/// iMAML for a model type `M` (metalearn/model.hpp): an algorithm (meta/algorithm.hpp) whose
/// meta-parameters are θ and whose meta-gradient is the implicit one.
template <class M>
class Imaml {
 public:
  using Model = M;  ///< the model

 private:
  static_assert(check_model<Model>());
  static constexpr bool kCached = model_traits<Model>::has_cached_hessian_vector_product;

 public:
  using Scalar = typename Model::Scalar;  ///< float or double
  using Batch = typename Model::Batch;    ///< the model's batch
  using Task = metalearn::Task<Batch>;    ///< support and query
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Imaml";

  /// Scratch memory of one worker (O(P), whatever the number of inner steps).
  struct alignas(128) Workspace {
    typename Model::Workspace ws{};
    Vector<Scalar> phi, g, r, p, ap;
    FiniteDifferenceScratch<Scalar> fd;
    double residual = 0;     // the largest relative CG residual of this worker's tasks in the meta-step
    double stationarity = 0;  // the largest ‖∇L_s(φ_K) + λ(φ_K − θ)‖ of them

    void prepare(Index n) {
      for (Vector<Scalar>* v : {&phi, &g, &r, &p, &ap})
        if (v->size() != n) v->resize(n);
    }
    /// Bytes held by the buffers (and the model's workspace when it reports them).
    std::size_t bytes() const {
      std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(phi.size() + g.size() + r.size() + p.size() +
                                                                    ap.size() + fd.shifted.size() + fd.gradient.size());
      if constexpr (detail::has_bytes<typename Model::Workspace>::value) total += ws.bytes();
      return total;
    }
  };

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit Imaml(M model, ImamlOptions options = {})
      : model_(checked(std::move(model), options)), options_(std::move(options)),
        engine_(name, options_.threads, model_.parameter_count()) {}

  /// The model.
  const Model& model() const { return model_; }
  /// The options.
  const ImamlOptions& options() const { return options_; }
  /// Length of θ.
  Index parameter_count() const { return model_.parameter_count(); }
  /// Draws θ with the model's initialisation.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { model_.initialize(theta, rng); }
  /// "Imaml(lambda 1, inner_lr 0.01, inner_steps 5, cg_iterations 5, hessian exact, inner_clip
  /// value 0 norm 0) on <model>".
  std::string describe() const {
    return "Imaml(lambda " + detail::shortest(options_.lambda) + ", inner_lr " + detail::shortest(options_.inner_lr) +
           ", inner_steps " + std::to_string(options_.inner_steps) + ", cg_iterations " +
           std::to_string(options_.cg_iterations) + ", hessian " +
           (options_.hessian == HessianProducts::exact ? "exact" : "differences") + ", inner_clip value " +
           detail::shortest(options_.inner_clip.value) + " norm " + detail::shortest(options_.inner_clip.norm) + ") on " +
           describe_model(model_);
  }

  /// φ_K for `support` (default K: the options'), into `fast`; const, thread-safe with one
  /// workspace per thread, no allocation after the first call.
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, Workspace& ws,
             int steps = -1) const {
    constexpr const char* where = "Imaml::adapt";
    detail::check_size(where, "theta", theta.size(), parameter_count());
    detail::check_size(where, "fast", fast.size(), parameter_count());
    if (support.size() == 0) detail::fail(where, "the support set is empty");
    detail::check_finite(where, "theta", theta);
    ws.prepare(parameter_count());
    inner_loop(theta, support, ws, steps < 0 ? options_.inner_steps : steps);
    fast = ws.phi;
  }

  /// The same with the calling thread's worker's workspace (not for concurrent use).
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, int steps = -1) {
    adapt(theta, support, fast, engine_.workspace(0), steps);
  }

  /// Mean query loss at φ_K over `tasks`, the implicit meta-gradient assigned to `grad`; on bad
  /// input it throws with `grad` unchanged.
  template <class Tasks>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, const Tasks& tasks, VectorRef<Scalar> grad) {
    start_diagnostics();
    const Scalar loss = engine_.meta_loss_and_gradient(*this, theta, tasks, grad);
    finish_diagnostics();
    return loss;
  }

  /// The same with the tasks drawn as they are needed (meta/engine.hpp).
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    start_diagnostics();
    const Scalar loss = engine_.meta_loss_and_gradient(*this, theta, tasks, grad, std::forward<Fill>(fill));
    finish_diagnostics();
    return loss;
  }

  /// The largest relative CG residual ‖r_m‖ / ‖∇L_q‖ of the last meta-step's tasks (r_m: CG's
  /// recursive residual of ∇L_q − (I + H/λ) x; 0 when ∇L_q = 0).
  double last_residual() const { return residual_; }
  /// The largest ‖∇L_s(φ_K) + λ(φ_K − θ)‖ of the last meta-step's tasks: the gradient of the
  /// proximal problem where the inner loop stopped. When it is not small, φ_K is not φ* (raise
  /// inner_steps, or lower inner_lr if the descent oscillates) and the meta-gradient is inexact.
  double last_stationarity() const { return stationarity_; }

  /// Shares every later meta-batch with other processes (distributed/mpi.hpp; null: this
  /// process alone); results stay bit-identical to one process's.
  void set_exchange(BlockExchange<Scalar>* exchange) { engine_.set_exchange(exchange); }

  /// Bytes held by the workspaces and the engine: O(P) per worker, independent of the steps.
  std::size_t bytes() const {
    std::size_t total = engine_.bytes();
    engine_.for_each_workspace([&](const Workspace& w) { total += w.bytes(); });
    return total;
  }

  // --- the engine's side (meta/engine.hpp) ------------------------------------------------

  /// Throws `invalid_argument` for a task with an empty support or query set.
  static void check_task(const char* where, const Task& task, Index t) {
    if (task.support.size() == 0) detail::fail(where, "task ", t, ": the support set is empty");
    if (task.query.size() == 0) detail::fail(where, "task ", t, ": the query set is empty");
  }

  /// One task: L_q(φ_K); the implicit meta-gradient x ≈ (I + H_s(φ_K)/λ)⁻¹ ∇L_q(φ_K) into `x`.
  Scalar task_meta_gradient(ConstVectorRef<Scalar> theta, const Task& task, Workspace& wk, VectorRef<Scalar> x) const {
    wk.prepare(parameter_count());
    inner_loop(theta, task.support, wk, options_.inner_steps);
    // ∇L_q(φ) into r (CG's first residual, x₀ = 0); then the support pass at φ, whose state the
    // cached products reuse (it must be the workspace's last pass) and whose gradient measures
    // how stationary φ is
    const Scalar loss = detail::loss_and_gradient_at_finite(model_, wk.phi, task.query, wk.r, wk.ws);
    const double b_norm = std::sqrt(static_cast<double>(wk.r.squaredNorm()));
    detail::loss_and_gradient_at_finite(model_, wk.phi, task.support, wk.g, wk.ws);
    const auto lambda = static_cast<Scalar>(options_.lambda);
    wk.g += lambda * (wk.phi - theta);  // ∇L_s(φ) + λ(φ − θ)
    wk.stationarity = std::max(wk.stationarity, static_cast<double>(wk.g.norm()));
    x.setZero();
    wk.p = wk.r;
    Scalar rs = wk.r.squaredNorm();
    const Scalar inv_lambda = Scalar(1) / lambda;
    for (int i = 0; i < options_.cg_iterations && rs > Scalar(0); ++i) {
      hessian_vector_product(wk, task.support);          // ap = H p
      wk.ap = wk.p + inv_lambda * wk.ap;                  // A p = p + H p / λ
      const Scalar curvature = wk.p.dot(wk.ap);
      const Scalar step = rs / curvature;
      if (!(curvature > Scalar(0)) || !std::isfinite(step)) break;  // A not positive definite along p: stop
      x += step * wk.p;                                   // x ← x + a p
      wk.r -= step * wk.ap;                               // r ← r − a A p
      const Scalar rs_next = wk.r.squaredNorm();
      wk.p = wk.r + (rs_next / rs) * wk.p;                // p ← r + (‖r'‖²/‖r‖²) p
      rs = rs_next;
    }
    if (!detail::all_finite(x))
      throw numerical_error("metalearn: conjugate gradient: the implicit meta-gradient is not finite");
    if (b_norm > 0) wk.residual = std::max(wk.residual, std::sqrt(static_cast<double>(rs)) / b_norm);
    return loss;
  }

 private:
  static M checked(M model, const ImamlOptions& o) {
    constexpr const char* where = "Imaml";
    detail::check_positive(where, "lambda", o.lambda);
    detail::check_positive(where, "inner_lr", o.inner_lr);
    if (o.inner_steps < 1) detail::fail(where, "inner_steps must be >= 1, got ", o.inner_steps);
    if (o.cg_iterations < 1) detail::fail(where, "cg_iterations must be >= 1, got ", o.cg_iterations);
    o.inner_clip.validate(where);
    if constexpr (!model_traits<M>::has_hessian_vector_product) {
      if (o.hessian == HessianProducts::exact)
        detail::fail(where, "the model has no hessian_vector_product; choose HessianProducts::finite_difference "
                            "(approximate) explicitly");
    }
    if (o.threads < 1) detail::fail(where, "threads must be >= 1, got ", o.threads);
    if (model.parameter_count() <= 0) detail::fail(where, "the model has ", model.parameter_count(), " parameters, expected > 0");
    return model;
  }

  bool use_cached() const { return kCached && options_.hessian == HessianProducts::exact; }

  // φ_K of the proximal problem's gradient descent from φ₀ = θ, into wk.phi (θ finite).
  void inner_loop(ConstVectorRef<Scalar> theta, const Batch& support, Workspace& wk, int steps) const {
    const auto alpha = static_cast<Scalar>(options_.inner_lr), lambda = static_cast<Scalar>(options_.lambda);
    wk.phi = theta;
    for (int k = 0; k < steps; ++k) {
      detail::loss_and_gradient_at_finite(model_, wk.phi, support, wk.g, wk.ws);  // ∇L_s(φ_k)
      wk.g += lambda * (wk.phi - theta);                                         // ∇L_s + λ(φ − θ)
      if (options_.inner_clip.enabled()) options_.inner_clip.apply(wk.g);
      wk.phi -= alpha * wk.g;                                                    // φ ← φ − α c(∇L_s + λ(φ − θ))
      if (!detail::all_finite(wk.phi))
        throw numerical_error(detail::concat("metalearn: inner loop: inner step ", k + 1,
                                             " made phi non-finite; lower inner_lr"));
    }
  }

  // wk.ap = H_s(φ) wk.p
  void hessian_vector_product(Workspace& wk, const Batch& support) const {
    if constexpr (kCached) {
      if (options_.hessian == HessianProducts::exact) {
        model_.cached_hessian_vector_product(wk.phi, support, wk.p, wk.ap, wk.ws, detail::KeyIssuer::cached_pass());
        return;
      }
    }
    if constexpr (model_traits<Model>::has_hessian_vector_product) {
      if (options_.hessian == HessianProducts::exact) {
        model_.hessian_vector_product(wk.phi, support, wk.p, wk.ap, wk.ws);
        return;
      }
    }
    finite_difference_hvp(model_, wk.phi, support, wk.p, wk.ap, wk.ws, wk.fd);
  }

  void start_diagnostics() {
    engine_.for_each_workspace([](Workspace& w) { w.residual = w.stationarity = 0; });
  }
  void finish_diagnostics() {
    double r = 0, s = 0;
    engine_.for_each_workspace([&](const Workspace& w) {
      r = std::max(r, w.residual);
      s = std::max(s, w.stationarity);
    });
    residual_ = r;
    stationarity_ = s;
  }

  Model model_;
  ImamlOptions options_;
  MetaBatchEngine<Imaml> engine_;
  double residual_ = 0, stationarity_ = 0;
};

}  // namespace metalearn
