#pragma once
/// @file
/// @brief The gradient-descent inner loop that MAML, Meta-SGD, MAML++ and ANIL share, and its
/// exact reverse sweep: one implementation, on the meta-batch engine, into which each algorithm
/// plugs only its rates (docs/derivations.md, "Learned and restricted inner loops").
///
/// For a task with support set s and query set q, K inner steps
///   θ₀ = θ,   θ_{k+1} = θ_k − A_k ⊙ c(M ∇L_s(θ_k))        (c: optional clipping)
/// with rates A_k (one value for all of θ, one per group of θ, or one per parameter; learned or
/// not) and a mask M of the adapted entries (all of θ unless the rates leave groups out). The
/// meta-loss of a task is Σ_{k=1..K} w_k L_q(θ_k) (only w_K = 1 without step weights), the
/// meta-loss of a meta-batch the mean over its tasks; the meta-parameters are θ followed by the
/// learned rates, and the meta-gradient is the gradient with respect to all of them:
///   second order (exact):  u ← w_K ∇L_q(θ_K);  for k = K−1 … 0:
///                          ∂/∂A_k += −c_k ⊙ u   (learned rates only)
///                          u ← u − H_s(θ_k) M J_cᵀ (A_k ⊙ u)   (+ w_k ∇L_q(θ_k) for k ≥ 1)
///                          with exact Hessian-vector products (no graph), storing θ₀…θ_K;
///   first order:           the Jacobians ∂θ_{k+1}/∂θ_k taken as I: u = Σ_k w_k ∇L_q(θ_k) and
///                          ∂/∂A_k = −c_k ⊙ Σ_{j>k} w_j ∇L_q(θ_j).
/// `Order::second_finite_difference` replaces the Hessian-vector products by central differences
/// of gradients (`finite_difference_hvp`), for models without an exact one.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/meta/engine.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/tasks/task.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

/// Which meta-gradient an inner-loop algorithm computes.
enum class Order {
  first,                    ///< first order: the inner steps' Jacobians taken as the identity
  second,                   ///< exact second order, with the model's hessian_vector_product
  second_finite_difference  ///< second order with Hessian-vector products by differences of gradients
};

namespace detail {

/// Whether an algorithm post-processes each task's meta-gradient (`void
/// finish_task_gradient(VectorRef<S>) const`: CAVIA zeroes the initial context's and clamps).
template <class D, class S, class = void>
struct has_finish_task_gradient : std::false_type {};
template <class D, class S>
struct has_finish_task_gradient<D, S, std::void_t<decltype(std::declval<const D&>().finish_task_gradient(std::declval<VectorRef<S>>()))>>
    : std::true_type {};

/// Whether an algorithm starts a task's inner loop somewhere other than θ (`bool task_start(const
/// S* meta, const B& support, VectorRef<S> theta0) const`, with `void task_start_gradient(…)`:
/// CAVIA's context computed from the support set).
template <class D, class S, class B, class = void>
struct has_task_start : std::false_type {};
template <class D, class S, class B>
struct has_task_start<D, S, B,
                      std::void_t<decltype(std::declval<const D&>().task_start(
                          std::declval<const S*>(), std::declval<const B&>(), std::declval<VectorRef<S>>()))>>
    : std::true_type {};

template <class D, class = void>
struct has_frozen_prefix_member : std::false_type {};
template <class D>
struct has_frozen_prefix_member<D, std::void_t<decltype(std::declval<const D&>().frozen_prefix())>> : std::true_type {};

/// The rates of one inner step, θ_{k+1} = θ_k − A_k ⊙ c(M g_k).
template <class S>
struct StepRates {
  enum class Kind {
    uniform,       ///< A_k = α everywhere (MAML): the sweep applies α after the product, as MAML's form
    groups,        ///< one rate per group of `groups`; entries outside every group are frozen (M)
    per_parameter  ///< one rate per entry of θ (Meta-SGD)
  };
  Kind kind = Kind::uniform;
  S alpha = 0;                                         ///< uniform: α
  const std::vector<ParameterGroup>* groups = nullptr;  ///< groups: the ranges with a rate, in θ's order
  bool masked = false;                                 ///< groups: some entries of θ are in no group
  const S* values = nullptr;                           ///< groups: one rate per group; per_parameter: one per entry
  Index gradient = -1;  ///< where ∂ℒ/∂values accumulate in the meta-gradient (−1: the rates are not learned)
};

/// The settings of the inner loop for the current meta-step (an algorithm may change them
/// between meta-steps: MAML++'s annealing).
struct InnerLoopSettings {
  Order order = Order::second;       ///< meta-gradient
  int inner_steps = 1;               ///< K
  Clip inner_clip{};                 ///< clipping of each inner gradient
  std::vector<double> step_weights;  ///< w_1…w_K; empty: only w_K = 1
};

/// Checks the settings every inner-loop algorithm shares (throws `invalid_argument` naming the
/// bad one); `M` decides whether exact second order is possible.
template <class M>
void check_inner_loop(const char* where, const InnerLoopSettings& s, int threads, const M& model) {
  if (s.inner_steps < 0) fail(where, "inner_steps must be >= 0, got ", s.inner_steps);
  if (s.order != Order::first && s.inner_steps == 0)
    fail(where, "second order needs inner_steps >= 1 (with 0 steps there is nothing to differentiate "
                "through); use Order::first");
  if constexpr (!model_traits<M>::has_hessian_vector_product) {
    if (s.order == Order::second)
      fail(where, "the model has no hessian_vector_product, so exact second order is impossible; choose "
                  "Order::second_finite_difference (approximate) or Order::first");
  }
  s.inner_clip.validate(where);
  if (!s.step_weights.empty()) {
    if (static_cast<int>(s.step_weights.size()) != s.inner_steps)
      fail(where, "step_weights has ", s.step_weights.size(), " entries, expected inner_steps = ", s.inner_steps);
    for (double w : s.step_weights)
      if (!is_finite(w)) fail(where, "step_weights must be finite, got ", w);
  }
  if (threads < 1) fail(where, "threads must be >= 1, got ", threads);
  const Index p = model.parameter_count();
  if (p <= 0) fail(where, "the model has ", p, " parameters, expected > 0");
}

/// "order 2, inner_steps 1, …, inner_clip value 0 norm 0, step_weights [0.5 1]": the settings
/// for `describe()`.
inline std::string describe_inner_loop(Order order, int steps, const Clip& clip, const std::vector<double>& weights) {
  const char* o = order == Order::first ? "1" : order == Order::second ? "2" : "2 (differences)";
  std::string w;
  for (double x : weights) w += (w.empty() ? "" : " ") + shortest(x);
  return std::string("order ") + o + ", inner_steps " + std::to_string(steps) + ", inner_clip value " +
         shortest(clip.value) + " norm " + shortest(clip.norm) + ", step_weights [" + w + "]";
}

/// The inner loop of gradient descent and its meta-gradient on the meta-batch engine, for an
/// algorithm `Derived` (CRTP) on a model `M`. Derived provides
///   - `static constexpr const char* name`;
///   - `const InnerLoopSettings& settings() const` (the current meta-step's);
///   - `Index extra_count() const`, the meta-parameters after θ (learned rates; 0 for MAML);
///   - `StepRates<Scalar> rates(const Scalar* meta, int k) const` for every k ≥ 0 (also beyond
///     K, for adaptation with more steps), pointing into `meta` for learned rates;
///   - `std::string describe() const` and `void initialize(VectorRef<Scalar>, Rng&) const`;
///   - optionally a task-dependent start θ₀ = θ₀(meta, support) instead of θ:
///     `bool task_start(const Scalar* meta, const Batch& support, VectorRef<Scalar> theta0) const`
///     writes all of θ₀ to theta0 and returns true, or returns false without writing when θ₀ = θ
///     (the loop then runs from θ itself, without a copy); `void task_start_gradient(const Scalar* meta, const Batch&
///     support, VectorRef<Scalar> grad) const` is given ∂ℒ/∂θ₀ in grad's first P entries and
///     turns it into the meta-gradient (θ's entries and the extras after θ). An algorithm with a
///     task start learns no rates: its extras are the start's parameters;
///   - optionally `Index frozen_prefix() const`: an offset f > 0 when the rates adapt exactly
///     θ[f, P) and the model has frozen-prefix passes there (model.hpp; ANIL on nn::Objective),
///     0 otherwise. The inner loop then computes the frozen layers once per task: the support
///     passes after the first start at the adapted layers, and the reverse sweep's products
///     with a direction that is zero on the frozen part do only what that direction needs.
/// Everything else of the algorithm contract is here.
template <class Derived, class M>
class GradientInnerLoop {
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

  /// Scratch memory of one worker: the model's workspaces and the stored inner states. One per
  /// thread that adapts or evaluates concurrently (`adapt(…, ws, …)`); default-constructible,
  /// it grows on first use and is then reused without allocating.
  struct alignas(128) Workspace {  // own cache lines: workers write their workspaces concurrently
    typename Model::Workspace ws{};
    typename Model::Workspace frozen_ws{};           // support passes with a frozen prefix (ANIL)
    std::vector<typename Model::Workspace> step_ws;  // support passes at θ₀…θ_{K−1} (cached HVPs)
    Matrix<Scalar> thetas;   // θ₁…θ_K (second order), or two alternating columns
    Matrix<Scalar> raw;      // raw inner gradients (second order with clipping)
    Matrix<Scalar> query;    // query gradients at θ₁…θ_{K−1}, times their weights
    Matrix<Scalar> applied;  // c_k = c(M g_k), the gradients the steps applied (learned rates), k < K − 1
    Matrix<Scalar> heads;    // frozen prefix: the adapted part of θ₁…θ_K
    Matrix<Scalar> head_raw; // frozen prefix: the adapted part of the raw inner gradients (clipping)
    Vector<Scalar> cur;      // frozen prefix: θ_k as the model reads it (θ's frozen part, a head)
    Vector<Scalar> start;    // θ₀ when the algorithm's task start moves it
    Vector<Scalar> g, w, hv, qg, clip_scratch;
    FiniteDifferenceScratch<Scalar> fd;

    /// Sizes the buffers for `p` parameters and `steps` inner steps (allocates only when they grow).
    void prepare(Index p, int steps, bool second, bool clip, bool weights, bool cached, bool learned) {
      const Index cols = second ? std::max(steps, 2) : 2;  // θ₁…θ_K, or alternating columns
      if (cached && static_cast<int>(step_ws.size()) < steps) step_ws.resize(static_cast<std::size_t>(steps));
      if (thetas.rows() != p || thetas.cols() < cols) thetas.resize(p, cols);
      if (second && clip && (raw.rows() != p || raw.cols() < steps)) raw.resize(p, steps);
      if ((second || learned) && weights && (query.rows() != p || query.cols() < steps)) query.resize(p, steps);
      const Index stored = std::max(steps - 1, 0);  // c_0…c_{K−2} (c_{K−1} is still in g)
      if (learned && (applied.rows() != p || applied.cols() < stored)) applied.resize(p, stored);
      for (Vector<Scalar>* v : {&g, &w, &hv, &qg, &clip_scratch})
        if (v->size() != p) v->resize(p);
    }

    /// Sizes the buffers of the frozen-prefix inner loop: h adapted entries of p.
    void prepare_frozen(Index p, Index h, int steps, bool second, bool clip, bool weights) {
      if (heads.rows() != h || heads.cols() < std::max(steps, 1)) heads.resize(h, std::max(steps, 1));
      if (second && clip && (head_raw.rows() != h || head_raw.cols() < steps)) head_raw.resize(h, steps);
      if (second && weights && (query.rows() != p || query.cols() < steps)) query.resize(p, steps);
      for (Vector<Scalar>* v : {&cur, &g, &w, &hv, &qg, &clip_scratch})
        if (v->size() != p) v->resize(p);
    }

    /// Bytes held by the buffers and, when the model's workspace reports them, its buffers.
    std::size_t bytes() const {
      std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(thetas.size() + raw.size() + query.size() +
                                                                    applied.size() + heads.size() + head_raw.size() +
                                                                    cur.size() + g.size() + w.size() + hv.size() +
                                                                    qg.size() + clip_scratch.size() + start.size() +
                                                                    fd.shifted.size() + fd.gradient.size());
      if constexpr (has_bytes<typename Model::Workspace>::value) {
        total += ws.bytes() + frozen_ws.bytes();
        for (const auto& s : step_ws) total += s.bytes();
      }
      return total;
    }
  };

  /// The model.
  const Model& model() const { return model_; }
  /// Length of the meta-parameters: θ, then the learned rates.
  Index parameter_count() const { return model_.parameter_count() + derived().extra_count(); }

  /// Fast weights (the model's parameters) after `steps` inner steps on `support` (default:
  /// the inner steps of training), written to `fast` (which may alias the start of `meta`),
  /// using `ws` for scratch. Const: several threads may adapt at once, each with its own
  /// workspace. Does not allocate after the first call.
  void adapt(ConstVectorRef<Scalar> meta, const Batch& support, VectorRef<Scalar> fast, Workspace& ws,
             int steps = -1) const {
    const char* where = where_of(Entry::adapt);
    check_size(where, "theta", meta.size(), parameter_count());
    check_size(where, "fast", fast.size(), model_.parameter_count());
    if (support.size() == 0) fail(where, "the support set is empty");
    if (steps < 0) steps = derived().settings().inner_steps;
    fast = ws.thetas.col(inner_loop(ws, meta, support, steps, [](int, const auto&) {}));
  }

  /// The same with the workspace of the calling thread's worker (not for concurrent use: give
  /// each thread a workspace of its own, or use `evaluate`).
  void adapt(ConstVectorRef<Scalar> meta, const Batch& support, VectorRef<Scalar> fast, int steps = -1) {
    adapt(meta, support, fast, engine_.workspace(0), steps);
  }

  /// Convenience: the fast weights as a new vector.
  Vector<Scalar> adapt(ConstVectorRef<Scalar> meta, const Batch& support, int steps = -1) {
    Vector<Scalar> fast(model_.parameter_count());
    adapt(meta, support, fast, steps);
    return fast;
  }

  /// Mean meta-loss over `tasks` (any container with size() and operator[] giving `Task`s),
  /// and its meta-gradient (of the chosen order) assigned to `grad`. On bad input (a wrong
  /// size, an empty support or query set, a batch the model rejects) it throws and `grad` is
  /// unchanged.
  template <class Tasks>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> meta, const Tasks& tasks, VectorRef<Scalar> grad) {
    return engine_.meta_loss_and_gradient(*this, meta, tasks, grad);
  }

  /// The same, with the tasks drawn as they are needed: `fill(t)` writes task t into
  /// `tasks[t]`. The calls happen on the calling thread in task order, before any other use of
  /// the task; with threads > 1 the other workers start on the tasks already drawn, so drawing
  /// overlaps the work. The result is that of filling every task and then calling the
  /// overload above, for any thread count. If `fill` throws, or a drawn task is empty, the
  /// exception comes out after the running tasks finish, and `grad` is unchanged.
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> meta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    return engine_.meta_loss_and_gradient(*this, meta, tasks, grad, std::forward<Fill>(fill));
  }

  /// Query losses after adaptation, for every task and every number of steps in `steps` (0 is
  /// the loss before adaptation): losses(t, j) = L_q(θ_{steps[j]}) of task t. The tasks run in
  /// parallel on the workers; each row depends on its task alone, so the result is the same
  /// for any thread count. `losses` is resized to tasks × steps. Throws `invalid_argument` for
  /// an empty or negative step list, an empty task, or a batch the model rejects (naming the
  /// task), and `numerical_error` for an inner step that makes θ non-finite, with `losses`
  /// unchanged.
  template <class Tasks>
  void evaluate(ConstVectorRef<Scalar> meta, const Tasks& tasks, const std::vector<int>& steps,
                Matrix<Scalar>& losses) {
    const char* where = where_of(Entry::evaluate);
    check_size(where, "theta", meta.size(), parameter_count());
    if (steps.empty()) fail(where, "the list of step counts is empty");
    int most = 0;
    for (int k : steps) {
      if (k < 0) fail(where, "step counts must be >= 0, got ", k);
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
      for_task(where, t, [&] {
        inner_loop(ws, meta, task.support, most, score);  // (scores θ₀ too)
      });
    });
    losses = evaluated_;
  }

  /// Mean meta-loss over `tasks` without the gradient (for validation).
  template <class Tasks>
  Scalar meta_loss(ConstVectorRef<Scalar> meta, const Tasks& tasks) {
    const char* where = where_of(Entry::meta_loss);
    check_size(where, "theta", meta.size(), parameter_count());
    const auto count = static_cast<Index>(tasks.size());
    if (count == 0) fail(where, "the meta-batch has no tasks");
    for (Index t = 0; t < count; ++t) check_task(where, tasks[static_cast<std::size_t>(t)], t);
    Workspace& wk = engine_.workspace(0);
    const int steps = settings().inner_steps;
    Scalar loss = 0;
    for (Index t = 0; t < count; ++t) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      for_task(where, t, [&] {
        const Index last = inner_loop(wk, meta, task.support, steps, [&](int k, const auto& theta_k) {
          if (k >= 1 && k < steps && weight(k) != Scalar(0)) loss += weight(k) * evaluate_loss(model_, theta_k, task.query, wk.ws);
        });
        loss += final_weight() * evaluate_loss(model_, wk.thetas.col(last), task.query, wk.ws);
      });
    }
    return loss / static_cast<Scalar>(count);
  }

  /// Shares every later meta-batch with other processes (distributed/mpi.hpp; null: this
  /// process alone); results stay bit-identical to one process's.
  void set_exchange(BlockExchange<Scalar>* exchange) { engine_.set_exchange(exchange); }

  /// Bytes held by the workspaces, the stored inner states (θ_k, gradients) and the engine.
  std::size_t bytes() const {
    std::size_t total = engine_.bytes();
    engine_.for_each_workspace([&](const Workspace& w) { total += w.bytes(); });
    return total;
  }

  // --- the engine's side (meta/engine.hpp) ------------------------------------------------

  /// Throws `invalid_argument` for a task with an empty support or query set.
  static void check_task(const char* where, const Task& task, Index t) {
    if (task.support.size() == 0) fail(where, "task ", t, ": the support set is empty");
    if (task.query.size() == 0) fail(where, "task ", t, ": the query set is empty");
  }

  /// One task's meta-loss; its meta-gradient (θ, then the learned rates) assigned to `grad`.
  /// θ₀ is θ itself (no copy); θ_k for k ≥ 1 live in ws.thetas (column k − 1 for second order,
  /// alternating columns for first). The meta-parameters must be finite: the engine checks them
  /// once per meta-step, and the model does not again.
  Scalar task_meta_gradient(ConstVectorRef<Scalar> meta, const Task& task, Workspace& wk,
                            VectorRef<Scalar> grad) const {
    const Scalar loss = swept_task_meta_gradient(meta, task, wk, grad);
    if constexpr (starts()) derived().task_start_gradient(meta.data(), task.support, grad);  // from ∂ℒ/∂θ₀
    if constexpr (has_finish_task_gradient<Derived, Scalar>::value) derived().finish_task_gradient(grad);
    return loss;
  }

 private:
  Scalar swept_task_meta_gradient(ConstVectorRef<Scalar> meta, const Task& task, Workspace& wk,
                                  VectorRef<Scalar> grad) const {
    if constexpr (model_traits<Model>::has_frozen_prefix) {
      if (frozen() > 0 && derived().extra_count() == 0 && !starts() &&
          settings().order != Order::second_finite_difference)
        return frozen_task_meta_gradient(meta, task, wk, grad);  // (it learns no rates)
    }
    const InnerLoopSettings& s = settings();
    const Index p = model_.parameter_count();
    const bool learned = learned_rates();
    prepare(wk);
    const int steps = s.inner_steps;
    const bool second = s.order != Order::first;
    const bool clip = s.inner_clip.enabled();
    const bool weighted = !s.step_weights.empty();
    const ConstVectorRef<Scalar> theta = meta.head(p);
    VectorRef<Scalar> u = grad.head(p);
    if (learned && steps == 0) grad.tail(grad.size() - p).setZero();  // (otherwise the sweep assigns them)
    bool moved = false;  // θ₀ ≠ θ (a task start)
    if constexpr (starts()) {
      if (wk.start.size() != p) wk.start.resize(p);
      moved = derived().task_start(meta.data(), task.support, wk.start);
    }
    const ConstVectorRef<Scalar> theta0 = moved ? ConstVectorRef<Scalar>(wk.start) : theta;
    auto theta_k = [&](int k) -> ConstVectorRef<Scalar> {
      if (k == 0) return theta0;
      return wk.thetas.col(second ? Index(k - 1) : Index(k & 1));
    };
    auto slot = [&](int k) { return wk.thetas.col(second ? Index(k - 1) : Index(k & 1)); };  // θ_k, k ≥ 1

    Scalar loss = 0;
    const bool forward_sum = weighted && !second && !learned;  // u accumulates Σ w_k ∇L_q(θ_k) as it goes
    const bool stored_queries = weighted && (second || learned);  // w_k ∇L_q(θ_k) kept for the sweep
    if (forward_sum) u.setZero();
    // θ₀ = θ was checked finite by the engine, each θ_{k+1} is checked as it is made: the model
    // need not check θ again in every pass (FiniteThetaKey).
    auto gradient = [&](ConstVectorRef<Scalar> th, const Batch& batch, VectorRef<Scalar> out,
                        typename Model::Workspace& mw) {
      return loss_and_gradient_at_finite(model_, th, batch, out, mw);
    };
    for (int k = 0; k < steps; ++k) {
      const StepRates<Scalar> r = derived().rates(meta.data(), k);
      gradient(theta_k(k), task.support, wk.g,
               use_cached() ? wk.step_ws[static_cast<std::size_t>(k)] : wk.ws);  // g = ∇L_s(θ_k)
      if (clip) mask(r, wk.g);  // M g (otherwise only the groups' entries of g are read)
      if (clip) {
        if (second) wk.raw.col(k) = wk.g;
        s.inner_clip.apply(wk.g);
      }
      if (learned && k + 1 < steps) wk.applied.col(k) = wk.g;  // c_k (c_{K−1} stays in wk.g)
      step(r, theta_k(k), wk.g, slot(k + 1));  // θ_{k+1} = θ_k − A_k ⊙ c_k
      check_iterate(theta_k(k + 1), k + 1);
      const Scalar wq = weight(k + 1);
      if (k + 1 < steps && wq != Scalar(0)) {  // multi-step loss: w_{k+1} L_q(θ_{k+1})
        if (stored_queries) {
          loss += wq * gradient(theta_k(k + 1), task.query, wk.query.col(k + 1), wk.ws);
          wk.query.col(k + 1) *= wq;
        } else {
          loss += wq * gradient(theta_k(k + 1), task.query, wk.qg, wk.ws);
          u += wq * wk.qg;
        }
      }
    }
    const Scalar w_final = final_weight();
    if (forward_sum) {
      loss += w_final * gradient(theta_k(steps), task.query, wk.qg, wk.ws);
      u += w_final * wk.qg;
    } else {
      loss += w_final * gradient(theta_k(steps), task.query, u, wk.ws);  // u = ∇L_q(θ_K)
      if (w_final != Scalar(1)) u *= w_final;                          //   · w_K
    }
    if (!second && !learned) return loss;
    for (int k = steps - 1; k >= 0; --k) {  // u = ∂ℒ/∂θ_{k+1}
      const StepRates<Scalar> r = derived().rates(meta.data(), k);
      if (r.gradient >= 0)  // ∂ℒ/∂A_k = −c_k ⊙ u
        rate_gradient(r, k + 1 < steps ? ConstVectorRef<Scalar>(wk.applied.col(k)) : ConstVectorRef<Scalar>(wk.g), u,
                      grad, k + 1 == steps);
      if (second) {
        const bool uniform = r.kind == StepRates<Scalar>::Kind::uniform;
        if (uniform) {
          if (clip) wk.w = u;
        } else {
          scale(r, u, wk.w);  // A_k ⊙ u (zero outside the adapted groups)
        }
        if (clip) s.inner_clip.jacobian_transpose_product(wk.raw.col(k), wk.w, wk.clip_scratch);  // J_cᵀ ·
        const ConstVectorRef<Scalar> v = uniform && !clip ? ConstVectorRef<Scalar>(u) : ConstVectorRef<Scalar>(wk.w);
        hessian_vector_product(wk, k, theta_k(k), task.support, v, wk.hv);  // H_s(θ_k) v
        if (uniform)
          u -= r.alpha * wk.hv;  // u ← u − α H_s J_cᵀ u
        else
          u -= wk.hv;            // u ← u − H_s M J_cᵀ (A_k ⊙ u)
      }
      if (k >= 1 && weighted && weight(k) != Scalar(0)) u += wk.query.col(k);  //   + w_k ∇L_q(θ_k)
    }
    return loss;
  }

 protected:
  /// The model, the algorithm's name for messages, the number of workers and the length of the
  /// meta-parameters (θ and the learned rates).
  GradientInnerLoop(Model model, int threads, Index meta_parameters)
      : model_(std::move(model)), engine_(Derived::name, threads, meta_parameters) {}

  /// The model's parameter count.
  Index model_parameters() const { return model_.parameter_count(); }

 private:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }

  // "<name>::adapt" etc. for messages, made once, so that the entry points never build a string.
  enum class Entry { adapt, evaluate, meta_loss };
  static const char* where_of(Entry e) {
    static const std::string adapt = std::string(Derived::name) + "::adapt";
    static const std::string evaluate = std::string(Derived::name) + "::evaluate";
    static const std::string meta_loss = std::string(Derived::name) + "::meta_loss";
    return (e == Entry::adapt ? adapt : e == Entry::evaluate ? evaluate : meta_loss).c_str();
  }
  const InnerLoopSettings& settings() const { return derived().settings(); }

  void prepare(Workspace& wk) const {
    const InnerLoopSettings& s = settings();
    wk.prepare(model_.parameter_count(), s.inner_steps, s.order != Order::first, s.inner_clip.enabled(),
               !s.step_weights.empty(), use_cached(), learned_rates());
  }

  // Whether Derived has a task start (evaluated when Derived is complete).
  static constexpr bool starts() { return has_task_start<Derived, Scalar, Batch>::value; }
  // Whether the extras after θ are learned rates (they are the task start's parameters otherwise).
  bool learned_rates() const { return !starts() && derived().extra_count() > 0; }

  bool use_cached() const { return kCached && settings().order == Order::second; }

  // The frozen prefix f of the derived algorithm's rates (0: none, or the model cannot split).
  Index frozen() const {
    if constexpr (model_traits<Model>::has_frozen_prefix && has_frozen_prefix_member<Derived>::value)
      return derived().frozen_prefix();
    else
      return 0;
  }

  // task_meta_gradient when the rates adapt θ[f, P) only and the model has frozen-prefix passes.
  // θ_k = [θ[0, f); head_k]: the inner loop writes only heads (h = P − f entries); the model
  // reads θ_k through wk.cur, whose frozen part is copied from θ once per task. The support
  // passes run on wk.frozen_ws, whose frozen layers keep θ's activations for the whole task
  // (the first pass computes them, every later one starts above them), the query passes on
  // wk.ws. The reverse sweep re-runs the (cheap) adapted part of the support pass at θ_k before
  // the product at θ_k, updates u's adapted part, and leaves the products' frozen parts, which
  // are linear in the R-gradient at the boundary, to one deferred backward pass at the end.
  Scalar frozen_task_meta_gradient(ConstVectorRef<Scalar> meta, const Task& task, Workspace& wk,
                                   VectorRef<Scalar> u) const {
    const InnerLoopSettings& s = settings();
    const Index p = model_.parameter_count(), f = frozen(), h = p - f;
    const int steps = s.inner_steps;
    const bool second = s.order == Order::second;
    const bool clip = s.inner_clip.enabled();
    const bool weighted = !s.step_weights.empty();
    wk.prepare_frozen(p, h, steps, second, clip, weighted);
    const ConstVectorRef<Scalar> theta = meta.head(p);
    wk.cur.head(f) = theta.head(f);
    auto head = [&](int k) -> ConstVectorRef<Scalar> {  // θ_k[f, P)
      if (k == 0) return theta.tail(h);
      return wk.heads.col(k - 1);
    };
    auto at = [&](int k) -> ConstVectorRef<Scalar> {  // θ_k in full (through wk.cur for k ≥ 1)
      if (k == 0) return theta;
      wk.cur.tail(h) = wk.heads.col(k - 1);
      return wk.cur;
    };
    auto support_pass = [&](ConstVectorRef<Scalar> th, bool reuse, VectorRef<Scalar> out) {  // ∇L_s on θ[f, P)
      return model_.loss_and_gradient(th, task.support, out, wk.frozen_ws, KeyIssuer::frozen_prefix(f, reuse));
    };
    auto query_pass = [&](ConstVectorRef<Scalar> th, VectorRef<Scalar> out) {
      return loss_and_gradient_at_finite(model_, th, task.query, out, wk.ws);
    };
    Scalar loss = 0;
    const bool forward_sum = weighted && !second;
    if (forward_sum) u.setZero();
    for (int k = 0; k < steps; ++k) {
      const StepRates<Scalar> r = derived().rates(meta.data(), k);
      support_pass(at(k), k > 0, wk.g);  // g = ∇L_s(θ_k) on the adapted entries
      auto c = wk.g.tail(h);
      if (clip) {
        if (second) wk.head_raw.col(k) = c;
        s.inner_clip.apply(c);
      }
      for (std::size_t j = 0; j < r.groups->size(); ++j) {  // head_{k+1} = head_k − α_j c on each group
        const ParameterGroup& x = (*r.groups)[j];
        wk.heads.col(k).segment(x.offset - f, x.size) =
            head(k).segment(x.offset - f, x.size) - r.values[j] * c.segment(x.offset - f, x.size);
      }
      check_iterate(wk.heads.col(k), k + 1, f);
      const Scalar wq = weight(k + 1);
      if (k + 1 < steps && wq != Scalar(0)) {  // multi-step loss: w_{k+1} L_q(θ_{k+1})
        if (second) {
          loss += wq * query_pass(at(k + 1), wk.query.col(k + 1));
          wk.query.col(k + 1) *= wq;
        } else {
          loss += wq * query_pass(at(k + 1), wk.qg);
          u += wq * wk.qg;
        }
      }
    }
    const Scalar w_final = final_weight();
    if (forward_sum) {
      loss += w_final * query_pass(at(steps), wk.qg);
      u += w_final * wk.qg;
    } else {
      loss += w_final * query_pass(at(steps), u);  // u = ∇L_q(θ_K)
      if (w_final != Scalar(1)) u *= w_final;
    }
    if (!second) return loss;
    for (int k = steps - 1; k >= 0; --k) {  // u = ∂ℒ/∂θ_{k+1}
      const StepRates<Scalar> r = derived().rates(meta.data(), k);
      auto w = wk.w.tail(h);  // the direction's adapted part; its frozen part is not read
      for (std::size_t j = 0; j < r.groups->size(); ++j) {  // A_k ⊙ u
        const ParameterGroup& x = (*r.groups)[j];
        w.segment(x.offset - f, x.size) = r.values[j] * u.segment(x.offset, x.size);
      }
      if (clip) s.inner_clip.jacobian_transpose_product(wk.head_raw.col(k), w, wk.clip_scratch.head(h));
      const ConstVectorRef<Scalar> th = at(k);
      if (k < steps - 1) support_pass(th, true, wk.hv);  // the adapted layers' state at θ_k again
      model_.cached_hessian_vector_product(th, task.support, wk.w, wk.hv, wk.frozen_ws, KeyIssuer::cached_pass(),
                                           KeyIssuer::frozen_prefix(f, true, true));
      u.tail(h) -= wk.hv.tail(h);  // u ← u − H_s(θ_k) M J_cᵀ (A_k ⊙ u), adapted part
      if (k >= 1 && weighted && weight(k) != Scalar(0)) u += wk.query.col(k);
    }
    model_.deferred_frozen_product(theta, task.support, wk.hv, wk.frozen_ws, KeyIssuer::frozen_prefix(f, true));
    u.head(f) -= wk.hv.head(f);  // the frozen part of Σ_k H_s(θ_k) v_k, in one backward pass
    return loss;
  }

  // `steps` inner steps θ_{k+1} = θ_k − A_k ⊙ c(M ∇L_s(θ_k)) from θ₀ (θ, the head of `meta`, or
  // the task start), alternating between two columns of wk.thetas; calls after_step(0, θ₀), then
  // after_step(k + 1, θ_{k+1}) after each step, and returns the column of θ_steps.
  // With a frozen prefix the support passes run on wk.frozen_ws above the frozen layers (after_step
  // may use wk.ws).
  template <class AfterStep>
  Index inner_loop(Workspace& wk, ConstVectorRef<Scalar> meta, const Batch& support, int steps,
                   AfterStep&& after_step) const {
    const Clip& clip = settings().inner_clip;
    const Index f = frozen();
    wk.prepare(model_.parameter_count(), 0, false, false, false, false, false);
    wk.thetas.col(0) = meta.head(model_.parameter_count());
    if constexpr (starts()) derived().task_start(meta.data(), support, wk.thetas.col(0));
    after_step(0, wk.thetas.col(0));
    // the frozen passes take θ as checked: a non-finite θ goes to the model's own pass, which
    // refuses it as it would without a frozen prefix
    if (f > 0 && steps > 0 && !all_finite(wk.thetas.col(0))) model_.loss_and_gradient(wk.thetas.col(0), support, wk.g, wk.ws);
    for (int k = 0; k < steps; ++k) {
      const StepRates<Scalar> r = derived().rates(meta.data(), k);
      if constexpr (model_traits<Model>::has_frozen_prefix) {
        if (f > 0)
          model_.loss_and_gradient(wk.thetas.col(k & 1), support, wk.g, wk.frozen_ws, KeyIssuer::frozen_prefix(f, k > 0));
        else
          model_.loss_and_gradient(wk.thetas.col(k & 1), support, wk.g, wk.ws);
      } else {
        model_.loss_and_gradient(wk.thetas.col(k & 1), support, wk.g, wk.ws);
      }
      if (clip.enabled()) {  // c(M g) (without a clip only the groups' entries of g are read)
        mask(r, wk.g);
        clip.apply(wk.g);
      }
      step(r, wk.thetas.col(k & 1), wk.g, wk.thetas.col((k + 1) & 1));  // θ_{k+1} = θ_k − A_k ⊙ c(M ∇L_s(θ_k))
      check_iterate(wk.thetas.col((k + 1) & 1), k + 1);
      after_step(k + 1, wk.thetas.col((k + 1) & 1));
    }
    return steps & 1;
  }

  // dst = θ − A ⊙ c, for the kinds of rates (MAML's uniform form: θ − α c).
  void step(const StepRates<Scalar>& r, ConstVectorRef<Scalar> theta, ConstVectorRef<Scalar> c,
            VectorRef<Scalar> dst) const {
    using Kind = typename StepRates<Scalar>::Kind;
    if (r.kind == Kind::uniform) {
      dst = theta - r.alpha * c;
    } else if (r.kind == Kind::per_parameter) {
      dst = theta - Eigen::Map<const Vector<Scalar>>(r.values, theta.size()).cwiseProduct(c);
    } else {
      if (r.masked) dst = theta;
      for (std::size_t j = 0; j < r.groups->size(); ++j) {
        const ParameterGroup& x = (*r.groups)[j];
        dst.segment(x.offset, x.size) = theta.segment(x.offset, x.size) - r.values[j] * c.segment(x.offset, x.size);
      }
    }
  }

  // g ← M g: zero outside the rates' groups (only when they leave entries out).
  static void mask(const StepRates<Scalar>& r, VectorRef<Scalar> g) {
    if (r.kind != StepRates<Scalar>::Kind::groups || !r.masked) return;
    Index next = 0;
    for (const ParameterGroup& x : *r.groups) {
      g.segment(next, x.offset - next).setZero();
      next = x.offset + x.size;
    }
    g.tail(g.size() - next).setZero();
  }

  // w = A ⊙ u, zero outside the groups (non-uniform kinds).
  static void scale(const StepRates<Scalar>& r, ConstVectorRef<Scalar> u, VectorRef<Scalar> w) {
    if (r.kind == StepRates<Scalar>::Kind::per_parameter) {
      w = Eigen::Map<const Vector<Scalar>>(r.values, u.size()).cwiseProduct(u);
      return;
    }
    if (r.masked) w.setZero();
    for (std::size_t j = 0; j < r.groups->size(); ++j) {
      const ParameterGroup& x = (*r.groups)[j];
      w.segment(x.offset, x.size) = r.values[j] * u.segment(x.offset, x.size);
    }
  }

  // ∂ℒ/∂A_k = −c_k ⊙ u, gathered into the rates' entries of the meta-gradient: assigned at the
  // sweep's first step (k = K − 1), then added (rates shared by several steps: Meta-SGD's). Each
  // step's own rates (MAML++'s) are assigned once.
  static void rate_gradient(const StepRates<Scalar>& r, ConstVectorRef<Scalar> c, ConstVectorRef<Scalar> u,
                            VectorRef<Scalar> grad, bool first) {
    if (r.kind == StepRates<Scalar>::Kind::per_parameter) {
      auto d = grad.segment(r.gradient, u.size());
      if (first) d = -c.cwiseProduct(u);
      else d -= c.cwiseProduct(u);
      return;
    }
    for (std::size_t j = 0; j < r.groups->size(); ++j) {
      const ParameterGroup& x = (*r.groups)[j];
      grad[r.gradient + static_cast<Index>(j)] = -c.segment(x.offset, x.size).dot(u.segment(x.offset, x.size));
    }
  }

  // Throws numerical_error unless the inner iterate θ_k is finite: the inner loop diverged (a
  // numerical failure, not bad input, so that MetaTrainer's policy skip skips the meta-step).
  // (`theta` may be the part of θ_k from entry `base` on.)
  static void check_iterate(ConstVectorRef<Scalar> theta, int k, Index base = 0) {
    if (all_finite(theta)) return;
    Index i = 0;
    while (is_finite(theta[i])) ++i;
    throw numerical_error(concat("metalearn: inner loop: inner step ", k, " made theta_", k, " non-finite (entry ",
                                 base + i, " is ", theta[i], "); lower inner_lr or clip the inner gradient"));
  }

  Scalar weight(int k) const {  // w_k, k = 1…K
    const InnerLoopSettings& s = settings();
    return s.step_weights.empty() ? Scalar(k == s.inner_steps ? 1 : 0)
                                  : static_cast<Scalar>(s.step_weights[static_cast<std::size_t>(k - 1)]);
  }
  Scalar final_weight() const { return settings().inner_steps == 0 ? Scalar(1) : weight(settings().inner_steps); }

  void hessian_vector_product(Workspace& wk, int k, ConstVectorRef<Scalar> theta, const Batch& batch,
                              ConstVectorRef<Scalar> v, VectorRef<Scalar> hv) const {
    const Order order = settings().order;
    if constexpr (kCached) {
      if (order == Order::second) {
        model_.cached_hessian_vector_product(theta, batch, v, hv, wk.step_ws[static_cast<std::size_t>(k)],
                                             KeyIssuer::cached_pass());  // θ_k and the support are fixed
        return;
      }
    }
    if constexpr (model_traits<Model>::has_hessian_vector_product) {
      if (order == Order::second) {
        model_.hessian_vector_product(theta, batch, v, hv, wk.ws);
        return;
      }
    }
    finite_difference_hvp(model_, theta, batch, v, hv, wk.ws, wk.fd);
  }

  Model model_;
  MetaBatchEngine<GradientInnerLoop> engine_;
  Matrix<Scalar> evaluated_;  // evaluate's results until every task has succeeded
};

}  // namespace detail
}  // namespace metalearn
