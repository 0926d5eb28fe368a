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
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/meta/engine.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/tasks/task.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

/// Which meta-gradient MAML computes.
enum class Order {
  first,                    ///< first-order MAML: ∇L_q at the adapted parameters
  second,                   ///< exact second order, with the model's hessian_vector_product
  second_finite_difference  ///< second order with Hessian-vector products by differences of gradients
};

/// Options of `Maml`.
struct MamlOptions {
  double inner_lr = 1e-3;            ///< α, the inner-loop learning rate (finite, > 0); the MAML authors' code default
  int inner_steps = 1;               ///< K, inner steps during meta-training (≥ 0; ≥ 1 for second order)
  Order order = Order::second;       ///< meta-gradient
  Clip inner_clip{};                 ///< clipping of each inner gradient (off by default)
  std::vector<double> step_weights;  ///< w_1…w_K of the query losses after each step; empty: only w_K = 1
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
};

namespace detail {
template <class W, class = void>
struct has_bytes : std::false_type {};
template <class W>
struct has_bytes<W, std::void_t<decltype(std::declval<const W&>().bytes())>> : std::true_type {};
}  // namespace detail

/// MAML for a model type `M` (see metalearn/model.hpp); an algorithm in the sense of
/// meta/algorithm.hpp whose meta-parameters are θ alone.
template <class M>
class Maml {
 public:
  using Model = M;  ///< the model

 private:
  static_assert(check_model<Model>());
  // Exact second order with a model that can reuse a gradient pass: one workspace per inner
  // step keeps that step's pass for the reverse sweep.
  static constexpr bool kCached = model_traits<Model>::has_cached_hessian_vector_product;

 public:
  using Scalar = typename Model::Scalar;  ///< float or double
  using Batch = typename Model::Batch;    ///< the model's batch
  using Task = metalearn::Task<Batch>;    ///< support and query batches
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Maml";

  /// Scratch memory of one worker: the model's workspaces and the stored inner states. One per
  /// thread that adapts or evaluates concurrently (`adapt(…, ws, …)`); default-constructible,
  /// it grows on first use and is then reused without allocating.
  struct alignas(128) Workspace {  // own cache lines: workers write their workspaces concurrently
    typename Model::Workspace ws{};
    std::vector<typename Model::Workspace> step_ws;  // support passes at θ₀…θ_{K−1} (cached HVPs)
    Matrix<Scalar> thetas;  // θ₀…θ_K (second order), or two alternating columns
    Matrix<Scalar> raw;     // raw inner gradients (second order with clipping)
    Matrix<Scalar> query;   // query gradients at θ₁…θ_{K−1} (second order with step weights)
    Vector<Scalar> g, w, hv, qg, clip_scratch;
    FiniteDifferenceScratch<Scalar> fd;

    void prepare(Index p, int steps, bool second, bool clip, bool weights, bool cached) {
      const Index cols = second ? std::max(steps, 2) : 2;  // θ₁…θ_K, or alternating columns
      if (cached && static_cast<int>(step_ws.size()) < steps) step_ws.resize(static_cast<std::size_t>(steps));
      if (thetas.rows() != p || thetas.cols() < cols) thetas.resize(p, cols);
      if (second && clip && (raw.rows() != p || raw.cols() < steps)) raw.resize(p, steps);
      if (second && weights && (query.rows() != p || query.cols() < steps)) query.resize(p, steps);
      for (Vector<Scalar>* v : {&g, &w, &hv, &qg, &clip_scratch})
        if (v->size() != p) v->resize(p);
    }

    /// Bytes held by the buffers and, when the model's workspace reports them, its buffers.
    std::size_t bytes() const {
      std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(thetas.size() + raw.size() + query.size() + g.size() +
                                                                    w.size() + hv.size() + qg.size() +
                                                                    clip_scratch.size() + fd.shifted.size() +
                                                                    fd.gradient.size());
      if constexpr (detail::has_bytes<typename Model::Workspace>::value) {
        total += ws.bytes();
        for (const auto& s : step_ws) total += s.bytes();
      }
      return total;
    }
  };

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit Maml(Model model, MamlOptions options = {})
      : model_(std::move(model)), options_(checked(std::move(options), model_)),
        engine_(options_.threads, model_.parameter_count()) {}

  /// The model.
  const Model& model() const { return model_; }
  /// The options.
  const MamlOptions& options() const { return options_; }
  /// Length of θ (the meta-parameters: MAML learns θ alone).
  Index parameter_count() const { return model_.parameter_count(); }
  /// Draws θ with the model's initialisation.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { model_.initialize(theta, rng); }
  /// "Maml(order 2, inner_steps 1, inner_lr 0.001, …) on <model>": every option that changes
  /// results (not the thread count, which does not), for logs and checkpoints.
  std::string describe() const {
    const char* order = options_.order == Order::first ? "1" : options_.order == Order::second ? "2" : "2 (differences)";
    std::string weights;
    for (double w : options_.step_weights) weights += (weights.empty() ? "" : " ") + detail::shortest(w);
    return std::string("Maml(order ") + order + ", inner_steps " + std::to_string(options_.inner_steps) + ", inner_lr " +
           detail::shortest(options_.inner_lr) + ", inner_clip value " + detail::shortest(options_.inner_clip.value) +
           " norm " + detail::shortest(options_.inner_clip.norm) + ", step_weights [" + weights + "]) on " +
           describe_model(model_);
  }

  /// Fast weights after `steps` inner steps on `support` (default: options().inner_steps),
  /// written to `fast` (which may be θ itself), using `ws` for scratch. Const: several threads
  /// may adapt at once, each with its own workspace. Does not allocate after the first call.
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, Workspace& ws,
             int steps = -1) const {
    constexpr const char* where = "Maml::adapt";
    const Index p = parameter_count();
    detail::check_size(where, "theta", theta.size(), p);
    detail::check_size(where, "fast", fast.size(), p);
    if (support.size() == 0) detail::fail(where, "the support set is empty");
    if (steps < 0) steps = options_.inner_steps;
    fast = ws.thetas.col(inner_loop(ws, theta, support, steps, [](int, const auto&) {}));
  }

  /// The same with the workspace of the calling thread's worker (not for concurrent use: give
  /// each thread a workspace of its own, or use `evaluate`).
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, int steps = -1) {
    adapt(theta, support, fast, engine_.workspace(0), steps);
  }

  /// Convenience: the fast weights as a new vector.
  Vector<Scalar> adapt(ConstVectorRef<Scalar> theta, const Batch& support, int steps = -1) {
    Vector<Scalar> fast(parameter_count());
    adapt(theta, support, fast, steps);
    return fast;
  }

  /// Mean meta-loss over `tasks` (any container with size() and operator[] giving `Task`s),
  /// and its meta-gradient (of the chosen order) assigned to `grad`. On bad input (a wrong
  /// size, an empty support or query set, a batch the model rejects) it throws and `grad` is
  /// unchanged.
  template <class Tasks>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, const Tasks& tasks, VectorRef<Scalar> grad) {
    return engine_.meta_loss_and_gradient(*this, theta, tasks, grad);
  }

  /// The same, with the tasks drawn as they are needed: `fill(t)` writes task t into
  /// `tasks[t]`. The calls happen on the calling thread in task order, before any other use of
  /// the task; with threads > 1 the other workers start on the tasks already drawn, so drawing
  /// overlaps the work. The result is that of filling every task and then calling the
  /// overload above, for any thread count. If `fill` throws, or a drawn task is empty, the
  /// exception comes out after the running tasks finish, and `grad` is unchanged.
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    return engine_.meta_loss_and_gradient(*this, theta, tasks, grad, std::forward<Fill>(fill));
  }

  /// Query losses after adaptation, for every task and every number of steps in `steps` (0 is
  /// the loss before adaptation): losses(t, j) = L_q(θ_{steps[j]}) of task t. The tasks run in
  /// parallel on the workers; each row depends on its task alone, so the result is the same
  /// for any thread count. `losses` is resized to tasks × steps. Throws `invalid_argument` for
  /// an empty or negative step list, an empty task, or a batch the model rejects (naming the
  /// task), and `numerical_error` for an inner step that makes θ non-finite, with `losses`
  /// unchanged.
  template <class Tasks>
  void evaluate(ConstVectorRef<Scalar> theta, const Tasks& tasks, const std::vector<int>& steps,
                Matrix<Scalar>& losses) {
    constexpr const char* where = "Maml::evaluate";
    detail::check_size(where, "theta", theta.size(), parameter_count());
    if (steps.empty()) detail::fail(where, "the list of step counts is empty");
    int most = 0;
    for (int k : steps) {
      if (k < 0) detail::fail(where, "step counts must be >= 0, got ", k);
      most = std::max(most, k);
    }
    const auto count = static_cast<Index>(tasks.size());
    for (Index t = 0; t < count; ++t) check_task(where, tasks[static_cast<std::size_t>(t)], t);
    evaluated_.resize(count, static_cast<Index>(steps.size()));  // written to `losses` once all succeed
    engine_.for_each(count, [&](Index t, Workspace& ws) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      const auto score = [&](int k, const auto& theta_k) {
        for (std::size_t j = 0; j < steps.size(); ++j)
          if (steps[j] == k) evaluated_(t, static_cast<Index>(j)) = evaluate_loss(model_, theta_k, task.query, ws.ws);
      };
      detail::for_task(where, t, [&] {
        score(0, theta);
        inner_loop(ws, theta, task.support, most, score);
      });
    });
    losses = evaluated_;
  }

  /// Mean meta-loss over `tasks` without the gradient (for validation).
  template <class Tasks>
  Scalar meta_loss(ConstVectorRef<Scalar> theta, const Tasks& tasks) {
    constexpr const char* where = "Maml::meta_loss";
    detail::check_size(where, "theta", theta.size(), parameter_count());
    const auto count = static_cast<Index>(tasks.size());
    if (count == 0) detail::fail(where, "the meta-batch has no tasks");
    for (Index t = 0; t < count; ++t) check_task(where, tasks[static_cast<std::size_t>(t)], t);
    Workspace& wk = engine_.workspace(0);
    const int steps = options_.inner_steps;
    Scalar loss = 0;
    for (Index t = 0; t < count; ++t) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      detail::for_task(where, t, [&] {
        const Index last = inner_loop(wk, theta, task.support, steps, [&](int k, const auto& theta_k) {
          if (k < steps && weight(k) != Scalar(0)) loss += weight(k) * evaluate_loss(model_, theta_k, task.query, wk.ws);
        });
        loss += final_weight() * evaluate_loss(model_, wk.thetas.col(last), task.query, wk.ws);
      });
    }
    return loss / static_cast<Scalar>(count);
  }

  /// Bytes held by the workspaces, the stored inner states (θ_k, gradients) and the engine.
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

  /// One task's meta-loss; its meta-gradient assigned to `u`. θ₀ is θ itself (no copy); θ_k
  /// for k ≥ 1 live in ws.thetas (column k − 1 for second order, alternating columns for first).
  /// θ must be finite: the engine checks it once per meta-step, and the model does not again.
  Scalar task_meta_gradient(ConstVectorRef<Scalar> theta, const Task& task, Workspace& wk, VectorRef<Scalar> u) const {
    prepare(wk);
    const int steps = options_.inner_steps;
    const bool second = options_.order != Order::first;
    const bool clip = options_.inner_clip.enabled();
    const bool weighted = !options_.step_weights.empty();
    auto theta_k = [&](int k) -> ConstVectorRef<Scalar> {
      if (k == 0) return theta;
      return wk.thetas.col(second ? Index(k - 1) : Index(k & 1));
    };
    auto slot = [&](int k) { return wk.thetas.col(second ? Index(k - 1) : Index(k & 1)); };  // θ_k, k ≥ 1

    Scalar loss = 0;
    const bool first_order_terms = weighted && !second;  // u accumulates Σ w_k ∇L_q(θ_k)
    if (first_order_terms) u.setZero();
    // θ₀ = θ was checked finite by the engine, each θ_{k+1} is checked as it is made: the model
    // need not check θ again in every pass (FiniteThetaKey).
    auto gradient = [&](ConstVectorRef<Scalar> th, const Batch& batch, VectorRef<Scalar> out,
                        typename Model::Workspace& mw) {
      return detail::loss_and_gradient_at_finite(model_, th, batch, out, mw);
    };
    for (int k = 0; k < steps; ++k) {
      gradient(theta_k(k), task.support, wk.g,
               use_cached() ? wk.step_ws[static_cast<std::size_t>(k)] : wk.ws);  // g = ∇L_s(θ_k)
      if (clip) {
        if (second) wk.raw.col(k) = wk.g;
        options_.inner_clip.apply(wk.g);
      }
      slot(k + 1) = theta_k(k) - alpha() * wk.g;  // θ_{k+1} = θ_k − α c(g)
      check_iterate(theta_k(k + 1), k + 1);
      const Scalar wq = weight(k + 1);
      if (k + 1 < steps && wq != Scalar(0)) {  // multi-step loss: w_{k+1} L_q(θ_{k+1})
        if (second) {
          loss += wq * gradient(theta_k(k + 1), task.query, wk.query.col(k + 1), wk.ws);
          wk.query.col(k + 1) *= wq;
        } else {
          loss += wq * gradient(theta_k(k + 1), task.query, wk.qg, wk.ws);
          u += wq * wk.qg;
        }
      }
    }
    const Scalar w_final = final_weight();
    if (first_order_terms) {
      loss += w_final * gradient(theta_k(steps), task.query, wk.qg, wk.ws);
      u += w_final * wk.qg;
    } else {
      loss += w_final * gradient(theta_k(steps), task.query, u, wk.ws);  // u = ∇L_q(θ_K)
      if (w_final != Scalar(1)) u *= w_final;                          //   · w_K
    }
    if (second) {
      for (int k = steps - 1; k >= 0; --k) {
        if (clip) {
          wk.w = u;
          options_.inner_clip.jacobian_transpose_product(wk.raw.col(k), wk.w, wk.clip_scratch);  // J_cᵀ u
        }
        const ConstVectorRef<Scalar> v = clip ? ConstVectorRef<Scalar>(wk.w) : ConstVectorRef<Scalar>(u);
        hessian_vector_product(wk, k, theta_k(k), task.support, v, wk.hv);               // H_s(θ_k) J_cᵀ u
        u -= alpha() * wk.hv;                                                             // u ← u − α H_s J_cᵀ u
        if (k >= 1 && weighted && weight(k) != Scalar(0)) u += wk.query.col(k);           //   + w_k ∇L_q(θ_k)
      }
    }
    return loss;
  }

 private:
  static MamlOptions checked(MamlOptions options, const Model& model) {
    constexpr const char* where = "Maml";
    detail::check_positive(where, "inner_lr", options.inner_lr);
    if (options.inner_steps < 0) detail::fail(where, "inner_steps must be >= 0, got ", options.inner_steps);
    if (options.order != Order::first && options.inner_steps == 0)
      detail::fail(where, "second order needs inner_steps >= 1 (with 0 steps there is nothing to differentiate "
                          "through); use Order::first");
    if constexpr (!model_traits<Model>::has_hessian_vector_product) {
      if (options.order == Order::second)
        detail::fail(where, "the model has no hessian_vector_product, so exact second order is impossible; choose "
                            "Order::second_finite_difference (approximate) or Order::first");
    }
    options.inner_clip.validate(where);
    if (!options.step_weights.empty()) {
      if (static_cast<int>(options.step_weights.size()) != options.inner_steps)
        detail::fail(where, "step_weights has ", options.step_weights.size(), " entries, expected inner_steps = ",
                     options.inner_steps);
      for (double w : options.step_weights)
        if (!detail::is_finite(w)) detail::fail(where, "step_weights must be finite, got ", w);
    }
    if (options.threads < 1) detail::fail(where, "threads must be >= 1, got ", options.threads);
    const Index p = model.parameter_count();
    if (p <= 0) detail::fail(where, "the model has ", p, " parameters, expected > 0");
    return options;
  }

  void prepare(Workspace& wk) const {
    wk.prepare(parameter_count(), options_.inner_steps, options_.order != Order::first, options_.inner_clip.enabled(),
               !options_.step_weights.empty(), use_cached());
  }

  bool use_cached() const { return kCached && options_.order == Order::second; }

  // `steps` inner steps θ_{k+1} = θ_k − α c(∇L_s(θ_k)) from θ₀ = θ, alternating between two
  // columns of wk.thetas; calls after_step(k + 1, θ_{k+1}) and returns the column of θ_steps.
  template <class AfterStep>
  Index inner_loop(Workspace& wk, ConstVectorRef<Scalar> theta, const Batch& support, int steps,
                   AfterStep&& after_step) const {
    wk.prepare(parameter_count(), 0, false, false, false, false);
    wk.thetas.col(0) = theta;
    for (int k = 0; k < steps; ++k) {
      model_.loss_and_gradient(wk.thetas.col(k & 1), support, wk.g, wk.ws);
      if (options_.inner_clip.enabled()) options_.inner_clip.apply(wk.g);
      wk.thetas.col((k + 1) & 1) = wk.thetas.col(k & 1) - alpha() * wk.g;  // θ_{k+1} = θ_k − α c(∇L_s(θ_k))
      check_iterate(wk.thetas.col((k + 1) & 1), k + 1);
      after_step(k + 1, wk.thetas.col((k + 1) & 1));
    }
    return steps & 1;
  }

  // Throws numerical_error unless the inner iterate θ_k is finite: the inner loop diverged (a
  // numerical failure, not bad input, so that MetaTrainer's policy skip skips the meta-step).
  static void check_iterate(ConstVectorRef<Scalar> theta, int k) {
    if (detail::all_finite(theta)) return;
    Index i = 0;
    while (detail::is_finite(theta[i])) ++i;
    throw numerical_error(detail::concat("metalearn: inner loop: inner step ", k, " made theta_", k,
                                         " non-finite (entry ", i, " is ", theta[i],
                                         "); lower inner_lr or clip the inner gradient"));
  }

  Scalar alpha() const { return static_cast<Scalar>(options_.inner_lr); }
  Scalar weight(int k) const {  // w_k, k = 1…K
    return options_.step_weights.empty() ? Scalar(k == options_.inner_steps ? 1 : 0)
                                         : static_cast<Scalar>(options_.step_weights[static_cast<std::size_t>(k - 1)]);
  }
  Scalar final_weight() const { return options_.inner_steps == 0 ? Scalar(1) : weight(options_.inner_steps); }

  void hessian_vector_product(Workspace& wk, int k, ConstVectorRef<Scalar> theta, const Batch& batch,
                              ConstVectorRef<Scalar> v, VectorRef<Scalar> hv) const {
    if constexpr (kCached) {
      if (options_.order == Order::second) {
        model_.cached_hessian_vector_product(theta, batch, v, hv, wk.step_ws[static_cast<std::size_t>(k)],
                                             detail::KeyIssuer::cached_pass());  // θ_k and the support are fixed
        return;
      }
    }
    if constexpr (model_traits<Model>::has_hessian_vector_product) {
      if (options_.order == Order::second) {
        model_.hessian_vector_product(theta, batch, v, hv, wk.ws);
        return;
      }
    }
    finite_difference_hvp(model_, theta, batch, v, hv, wk.ws, wk.fd);
  }

  Model model_;
  MamlOptions options_;
  MetaBatchEngine<Maml> engine_;
  Matrix<Scalar> evaluated_;  // evaluate's results until every task has succeeded
};

}  // namespace metalearn
