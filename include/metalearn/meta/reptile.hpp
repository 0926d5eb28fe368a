#pragma once
/// @file
/// @brief Reptile (Nichol, Achiam, Schulman 2018): no derivative through the inner loop at all.
/// Each task runs k steps of its own optimizer from θ on mini-batches of its support set,
///   φ₀ = θ,   φ_{j+1} = update(φ_j, ∇L(φ_j; batch_j))   (SGD, or Adam with β₁ = 0 as the
///                                                        authors' code; fresh for every task)
/// and the meta-gradient is g = θ − mean_t φ̃_t, so that plain SGD with rate ε on it is exactly
/// Reptile's θ ← θ + ε (mean φ̃ − θ), the authors' linear annealing of ε is an optimizer schedule
/// (`optim::Scheduled<Sgd, optim::LinearSchedule>`), and any other meta-optimizer applies. The
/// meta-loss reported is the mean query loss at φ̃ (one forward pass per task): it is not what
/// the meta-gradient descends, but it is what adaptation is for.
///
/// Memory O(P) per worker (φ, a gradient, Adam's two moments), whatever k is, and no
/// Hessian-vector products. The tasks run on the meta-batch engine (meta/engine.hpp):
/// bit-identical for any thread count, no allocation after the first meta-step.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/meta/engine.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/task.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace metalearn {

/// The optimizer of Reptile's inner loop.
enum class InnerOptimizer {
  sgd,  ///< φ ← φ − lr g
  adam  ///< Adam with β₁ = 0 (the authors' code), its state fresh for every task
};

/// Options of `Reptile`.
struct ReptileOptions {
  int inner_steps = 5;                          ///< k (≥ 1): the authors' 5 for Omniglot
  Index inner_batch = 0;                        ///< support examples per step (≥ 0; 0: all; the authors' 10)
  InnerOptimizer inner_optimizer = InnerOptimizer::sgd;  ///< the per-task optimizer
  double inner_lr = 1e-3;                       ///< its rate (finite, > 0): the authors' Adam 0.001
  double adam_beta2 = 0.999;                    ///< Adam's β₂ (in [0, 1))
  double adam_epsilon = 1e-8;                   ///< Adam's ε (> 0)
  int threads = 1;                              ///< workers for the tasks of a meta-batch (≥ 1)
};

namespace detail {
/// Batches whose examples can be taken out by columns: metalearn::Batch of a matrix of inputs and
/// a matrix or `Labels` of targets (Reptile's mini-batches).
template <class B>
struct is_column_batch : std::false_type {};
template <class S, class T>
struct is_column_batch<Batch<Matrix<S>, T>> : std::bool_constant<std::is_same_v<T, Matrix<S>> || std::is_same_v<T, Labels>> {};

/// to = the `count` examples of `from` starting at `first`, wrapping around its end (resizes
/// `to` only when the count changes).
template <class S, class T>
void cyclic_columns(const Batch<Matrix<S>, T>& from, Index first, Index count, Batch<Matrix<S>, T>& to) {
  const Index n = from.size();
  to.inputs.resize(from.inputs.rows(), count);
  if constexpr (std::is_same_v<T, Labels>) to.targets.resize(count);
  else to.targets.resize(from.targets.rows(), count);
  for (Index done = 0; done < count;) {
    const Index at = (first + done) % n, run = std::min(count - done, n - at);
    to.inputs.middleCols(done, run) = from.inputs.middleCols(at, run);
    if constexpr (std::is_same_v<T, Labels>) to.targets.segment(done, run) = from.targets.segment(at, run);
    else to.targets.middleCols(done, run) = from.targets.middleCols(at, run);
    done += run;
  }
}
}  // namespace detail

/// Reptile for a model type `M` (metalearn/model.hpp): an algorithm (meta/algorithm.hpp) whose
/// meta-parameters are θ and whose meta-gradient is θ − mean φ̃.
template <class M>
class Reptile {
 public:
  using Model = M;  ///< the model

 private:
  static_assert(check_model<Model>());
  static constexpr bool kSlices = detail::is_column_batch<typename Model::Batch>::value;

 public:
  using Scalar = typename Model::Scalar;  ///< float or double
  using Batch = typename Model::Batch;    ///< the model's batch
  using Task = metalearn::Task<Batch>;    ///< support (trained on) and query (scored)
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Reptile";

  /// Scratch memory of one worker: φ, a gradient, the inner Adam and a mini-batch. One per
  /// thread that adapts concurrently; it grows on first use and is then reused.
  struct alignas(128) Workspace {
    typename Model::Workspace ws{};
    Vector<Scalar> phi, g;
    std::optional<optim::Adam<Scalar>> adam;
    Batch mini{};

    /// Bytes held by the buffers (and the model's workspace when it reports them).
    std::size_t bytes() const {
      std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(phi.size() + g.size() + (adam ? 2 * phi.size() : 0));
      if constexpr (detail::has_bytes<typename Model::Workspace>::value) total += ws.bytes();
      return total;
    }
  };

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit Reptile(M model, ReptileOptions options = {})
      : model_(checked(std::move(model), options)), options_(std::move(options)),
        engine_(name, options_.threads, model_.parameter_count()) {}

  /// The model.
  const Model& model() const { return model_; }
  /// The options.
  const ReptileOptions& options() const { return options_; }
  /// Length of θ (Reptile learns θ alone).
  Index parameter_count() const { return model_.parameter_count(); }
  /// Draws θ with the model's initialisation.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { model_.initialize(theta, rng); }

  /// "Reptile(inner_steps 5, inner_batch 10, inner_optimizer adam, inner_lr 0.001, …) on <model>".
  std::string describe() const {
    std::string s = "Reptile(inner_steps " + std::to_string(options_.inner_steps) + ", inner_batch " +
                    std::to_string(options_.inner_batch) + ", inner_optimizer " +
                    (options_.inner_optimizer == InnerOptimizer::adam ? "adam" : "sgd") + ", inner_lr " +
                    detail::shortest(options_.inner_lr);
    if (options_.inner_optimizer == InnerOptimizer::adam)
      s += ", adam_beta2 " + detail::shortest(options_.adam_beta2) + ", adam_epsilon " +
           detail::shortest(options_.adam_epsilon);
    return s + ") on " + describe_model(model_);
  }

  /// φ̃ after `steps` inner steps on `support` (default: the options'), into `fast`; const,
  /// thread-safe with one workspace per thread, no allocation after the first call.
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, Workspace& ws,
             int steps = -1) const {
    constexpr const char* where = "Reptile::adapt";
    detail::check_size(where, "theta", theta.size(), parameter_count());
    detail::check_size(where, "fast", fast.size(), parameter_count());
    if (support.size() == 0) detail::fail(where, "the support set is empty");
    check_batch_size(where, support, 0);
    inner_loop(theta, support, ws, steps < 0 ? options_.inner_steps : steps, false);
    fast = ws.phi;
  }

  /// The same with the calling thread's worker's workspace (not for concurrent use).
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, int steps = -1) {
    adapt(theta, support, fast, engine_.workspace(0), steps);
  }

  /// Mean query loss at the adapted φ̃ over `tasks`; θ − mean φ̃ assigned to `grad`. On bad
  /// input it throws with `grad` unchanged; an inner step that makes φ non-finite throws
  /// `numerical_error`.
  template <class Tasks>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, const Tasks& tasks, VectorRef<Scalar> grad) {
    return engine_.meta_loss_and_gradient(*this, theta, tasks, grad);
  }

  /// The same with the tasks drawn as they are needed (meta/engine.hpp).
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    return engine_.meta_loss_and_gradient(*this, theta, tasks, grad, std::forward<Fill>(fill));
  }

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

  /// Throws `invalid_argument` for an empty support or query set, or a support set smaller than
  /// the inner batch.
  void check_task(const char* where, const Task& task, Index t) const {
    if (task.support.size() == 0) detail::fail(where, "task ", t, ": the support set is empty");
    if (task.query.size() == 0) detail::fail(where, "task ", t, ": the query set is empty");
    check_batch_size(where, task.support, t);
  }

  /// One task: the query loss at φ̃; θ − φ̃ assigned to `grad`.
  Scalar task_meta_gradient(ConstVectorRef<Scalar> theta, const Task& task, Workspace& wk,
                            VectorRef<Scalar> grad) const {
    inner_loop(theta, task.support, wk, options_.inner_steps, true);
    grad = theta - wk.phi;  // θ − φ̃
    return evaluate_loss(model_, wk.phi, task.query, wk.ws);
  }

 private:
  static M checked(M model, const ReptileOptions& o) {
    constexpr const char* where = "Reptile";
    if (o.inner_steps < 1) detail::fail(where, "inner_steps must be >= 1, got ", o.inner_steps);
    if (o.inner_batch < 0) detail::fail(where, "inner_batch must be >= 0 (0: the whole support set), got ", o.inner_batch);
    if (o.inner_batch > 0 && !kSlices)
      detail::fail(where, "inner_batch needs a model whose Batch is metalearn::Batch<Matrix, Matrix or Labels> (to "
                          "take mini-batches of its columns); use inner_batch 0 for this model");
    detail::check_positive(where, "inner_lr", o.inner_lr);
    if (!detail::is_finite(o.adam_beta2) || !(o.adam_beta2 >= 0 && o.adam_beta2 < 1))
      detail::fail(where, "adam_beta2 must be in [0, 1), got ", o.adam_beta2);
    detail::check_positive(where, "adam_epsilon", o.adam_epsilon);
    if (o.threads < 1) detail::fail(where, "threads must be >= 1, got ", o.threads);
    if (model.parameter_count() <= 0) detail::fail(where, "the model has ", model.parameter_count(), " parameters, expected > 0");
    return model;
  }

  void check_batch_size(const char* where, const Batch& support, Index t) const {
    if (options_.inner_batch > support.size())
      detail::fail(where, "task ", t, ": the inner batch (", options_.inner_batch, ") is larger than the support set (",
                   support.size(), " examples)");
  }

  // φ ← θ, then `steps` steps of the inner optimizer on mini-batches of `support` (consecutive
  // columns, wrapping around: the sampler has already shuffled the examples). `checked`: θ was
  // checked finite by the engine (the model need not check it again).
  void inner_loop(ConstVectorRef<Scalar> theta, const Batch& support, Workspace& wk, int steps, bool checked) const {
    const Index p = parameter_count();
    if (wk.phi.size() != p) wk.phi.resize(p);
    if (wk.g.size() != p) wk.g.resize(p);
    const bool adam = options_.inner_optimizer == InnerOptimizer::adam;
    if (adam) {
      if (!wk.adam || wk.adam->parameter_count() != p)
        wk.adam.emplace(p, typename optim::Adam<Scalar>::Options{options_.inner_lr, 0.0, options_.adam_beta2,
                                                                  options_.adam_epsilon});
      wk.adam->reset();  // fresh for every task
    }
    wk.phi = theta;
    const Index b = options_.inner_batch;
    for (int j = 0; j < steps; ++j) {
      const Batch* batch = &support;
      if constexpr (kSlices) {
        if (b > 0 && b < support.size()) {
          detail::cyclic_columns(support, (static_cast<Index>(j) * b) % support.size(), b, wk.mini);
          batch = &wk.mini;
        }
      }
      if (checked || j > 0)
        detail::loss_and_gradient_at_finite(model_, wk.phi, *batch, wk.g, wk.ws);  // φ_j checked below
      else
        model_.loss_and_gradient(wk.phi, *batch, wk.g, wk.ws);
      if (!detail::all_finite(wk.g))
        throw numerical_error(detail::concat("metalearn: inner loop: inner step ", j + 1,
                                             " has a non-finite gradient; lower inner_lr"));
      if (adam) wk.adam->step(wk.phi, wk.g);
      else wk.phi -= static_cast<Scalar>(options_.inner_lr) * wk.g;  // φ ← φ − lr ∇L(φ; batch)
      if (!detail::all_finite(wk.phi))
        throw numerical_error(detail::concat("metalearn: inner loop: inner step ", j + 1,
                                             " made phi non-finite; lower inner_lr"));
    }
  }

  Model model_;
  ReptileOptions options_;
  MetaBatchEngine<Reptile> engine_;
};

}  // namespace metalearn
