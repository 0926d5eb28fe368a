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
/// The tasks of a meta-batch run on `threads` workers (each with its own workspace). The
/// per-task results are added in an order fixed by the number of tasks alone — blocks of four
/// consecutive tasks while more than five remain, then single tasks; within a block in task
/// order, then the blocks in order — so the result is bit-identical for any thread count. A
/// worker sums a block's tasks where it computed them, so only one gradient per block crosses
/// to another core, and the single tasks at the end keep the workers' finishing times within
/// one task of each other. The blocks are added in order while the others still run: the
/// worker that finishes a block adds every finished block the sum has reached, so when the
/// last one finishes, little is left to add. After the first call with a given shape,
/// `meta_loss_and_gradient` and `adapt` do not allocate (with threads, a task goes to whichever
/// worker is free, so "shape" means every task's: a worker's workspace grows to the largest
/// support or query set it meets, and meta-batches of equal-sized tasks never grow it again).

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/parallel/thread_pool.hpp>
#include <metalearn/tasks/task.hpp>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

namespace detail {
/// The fixed summation blocks of a meta-batch of `count` tasks: four consecutive tasks per
/// block while more than five remain, then one task per block (25 tasks: 5 blocks of 4, then
/// 5 single tasks).
struct TaskBlocks {
  explicit TaskBlocks(Index count) : count_(count), full_(count > 5 ? (count - 5 + 3) / 4 : 0) {}
  Index size() const { return full_ + (count_ - 4 * full_); }
  Index begin(Index b) const { return b < full_ ? 4 * b : 4 * full_ + (b - full_); }
  Index end(Index b) const { return b < full_ ? 4 * b + 4 : begin(b) + 1; }

 private:
  Index count_, full_;
};
}  // namespace detail

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

/// MAML for a model type `Model` (see metalearn/model.hpp).
template <class Model>
class Maml {
  static_assert(check_model<Model>());

 public:
  using Scalar = typename Model::Scalar;  ///< float or double
  using Batch = typename Model::Batch;    ///< the model's batch
  using Task = metalearn::Task<Batch>;    ///< support and query batches

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit Maml(Model model, MamlOptions options = {}) : model_(std::move(model)), options_(std::move(options)) {
    constexpr const char* where = "Maml";
    detail::check_positive(where, "inner_lr", options_.inner_lr);
    if (options_.inner_steps < 0) detail::fail(where, "inner_steps must be >= 0, got ", options_.inner_steps);
    if (options_.order != Order::first && options_.inner_steps == 0)
      detail::fail(where, "second order needs inner_steps >= 1 (with 0 steps there is nothing to differentiate "
                          "through); use Order::first");
    if constexpr (!model_traits<Model>::has_hessian_vector_product) {
      if (options_.order == Order::second)
        detail::fail(where, "the model has no hessian_vector_product, so exact second order is impossible; choose "
                            "Order::second_finite_difference (approximate) or Order::first");
    }
    options_.inner_clip.validate(where);
    if (!options_.step_weights.empty()) {
      if (static_cast<int>(options_.step_weights.size()) != options_.inner_steps)
        detail::fail(where, "step_weights has ", options_.step_weights.size(), " entries, expected inner_steps = ",
                     options_.inner_steps);
      for (double w : options_.step_weights)
        if (!detail::is_finite(w)) detail::fail(where, "step_weights must be finite, got ", w);
    }
    if (options_.threads < 1) detail::fail(where, "threads must be >= 1, got ", options_.threads);
    const Index p = model_.parameter_count();
    if (p <= 0) detail::fail(where, "the model has ", p, " parameters, expected > 0");
    workers_.resize(static_cast<std::size_t>(options_.threads));
    if (options_.threads > 1) {
      pool_ = std::make_unique<parallel::ThreadPool>(options_.threads);
      adding_ = std::make_unique<Adding>();
    }
    sum_.resize(p);
    block_.resize(p);
  }

  /// The model.
  const Model& model() const { return model_; }
  /// The options.
  const MamlOptions& options() const { return options_; }
  /// Length of θ.
  Index parameter_count() const { return model_.parameter_count(); }

  /// Fast weights after `steps` inner steps on `support` (default: options().inner_steps),
  /// written to `fast` (which may be θ itself). Does not allocate after the first call.
  void adapt(ConstVectorRef<Scalar> theta, const Batch& support, VectorRef<Scalar> fast, int steps = -1) {
    constexpr const char* where = "Maml::adapt";
    const Index p = parameter_count();
    detail::check_size(where, "theta", theta.size(), p);
    detail::check_size(where, "fast", fast.size(), p);
    if (support.size() == 0) detail::fail(where, "the support set is empty");
    if (steps < 0) steps = options_.inner_steps;
    Worker& wk = workers_[0];
    fast = wk.thetas.col(inner_loop(wk, theta, support, steps, [](int, const auto&) {}));
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
    constexpr const char* where = "Maml::meta_loss_and_gradient";
    const Index p = parameter_count();
    detail::check_size(where, "grad", grad.size(), p);
    if (grad.data() == theta.data()) detail::fail(where, "grad must not be the same vector as theta");
    const Index count = check_tasks(where, theta, tasks);
    for (auto& wk : workers_) prepare(wk);
    const detail::TaskBlocks blocks(count);
    if (!pool_ || count == 1) {
      Scalar loss = 0;
      sum_.setZero();
      for (Index b = 0; b < blocks.size(); ++b) {
        loss += block_sum(workers_[0], theta, tasks, blocks, b, block_);
        sum_ += block_;
      }
      return mean(count, loss, grad);
    }
    start_slots(blocks.size());
    auto item = [&](Index b, int worker) { threaded_block(theta, tasks, blocks, b, worker); };
    pool_->run(blocks.size(), item);
    return average(count, grad);
  }

  /// The same, with the tasks drawn as they are needed: `fill(t)` writes task t into
  /// `tasks[t]`. The calls happen on the calling thread in task order, before any other use of
  /// the task; with threads > 1 the other workers start on the tasks already drawn, so drawing
  /// overlaps the work. The result is that of filling every task and then calling the
  /// overload above, for any thread count. If `fill` throws, or a drawn task is empty, the
  /// exception comes out after the running tasks finish, and `grad` is unchanged.
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> theta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    constexpr const char* where = "Maml::meta_loss_and_gradient";
    const auto count = static_cast<Index>(tasks.size());
    if (!pool_ || count <= 1) {
      for (Index t = 0; t < count; ++t) fill(t);
      return meta_loss_and_gradient(theta, static_cast<const Tasks&>(tasks), grad);
    }
    const Index p = parameter_count();
    detail::check_size(where, "theta", theta.size(), p);
    detail::check_size(where, "grad", grad.size(), p);
    if (grad.data() == theta.data()) detail::fail(where, "grad must not be the same vector as theta");
    for (auto& wk : workers_) prepare(wk);
    const detail::TaskBlocks blocks(count);
    start_slots(blocks.size());
    auto produce = [&](Index b) {  // the tasks of block b
      for (Index t = blocks.begin(b); t < blocks.end(b); ++t) {
        fill(t);
        check_task(where, tasks[static_cast<std::size_t>(t)], t);
      }
    };
    auto item = [&](Index b, int worker) { threaded_block(theta, tasks, blocks, b, worker); };
    pool_->run_fed(blocks.size(), produce, item);
    return average(count, grad);
  }

  /// Mean meta-loss over `tasks` without the gradient (for validation).
  template <class Tasks>
  Scalar meta_loss(ConstVectorRef<Scalar> theta, const Tasks& tasks) {
    const Index count = check_tasks("Maml::meta_loss", theta, tasks);
    Worker& wk = workers_[0];
    const int steps = options_.inner_steps;
    Scalar loss = 0;
    for (Index t = 0; t < count; ++t) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      const Index last = inner_loop(wk, theta, task.support, steps, [&](int k, const auto& theta_k) {
        if (k < steps && weight(k) != Scalar(0)) loss += weight(k) * evaluate_loss(model_, theta_k, task.query, wk.ws);
      });
      loss += final_weight() * evaluate_loss(model_, wk.thetas.col(last), task.query, wk.ws);
    }
    return loss / static_cast<Scalar>(count);
  }

  /// Bytes held by the workspaces and the stored inner states (θ_k, gradients).
  std::size_t bytes() const {
    std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(sum_.size() + block_.size() + task_grads_.size() +
                                                                  task_losses_.size());
    for (const auto& w : workers_) total += w.bytes();
    return total;
  }

 private:
  // Exact second order with a model that can reuse a gradient pass: one workspace per inner
  // step keeps that step's pass for the reverse sweep.
  static constexpr bool kCached = model_traits<Model>::has_cached_hessian_vector_product;

  struct alignas(128) Worker {  // own cache lines: workers write their workspaces concurrently
    typename Model::Workspace ws{};
    std::vector<typename Model::Workspace> step_ws;  // support passes at θ₀…θ_{K−1} (cached HVPs)
    Matrix<Scalar> thetas;  // θ₀…θ_K (second order), or two alternating columns
    Matrix<Scalar> raw;     // raw inner gradients (second order with clipping)
    Matrix<Scalar> query;   // query gradients at θ₁…θ_{K−1} (second order with step weights)
    Vector<Scalar> g, u, w, hv, qg, clip_scratch;
    FiniteDifferenceScratch<Scalar> fd;

    void prepare(Index p, int steps, bool second, bool clip, bool weights, bool cached) {
      const Index cols = second ? std::max(steps, 2) : 2;  // θ₁…θ_K, or alternating columns
      if (cached && static_cast<int>(step_ws.size()) < steps) step_ws.resize(static_cast<std::size_t>(steps));
      if (thetas.rows() != p || thetas.cols() < cols) thetas.resize(p, cols);
      if (second && clip && (raw.rows() != p || raw.cols() < steps)) raw.resize(p, steps);
      if (second && weights && (query.rows() != p || query.cols() < steps)) query.resize(p, steps);
      for (Vector<Scalar>* v : {&g, &u, &w, &hv, &qg, &clip_scratch})
        if (v->size() != p) v->resize(p);
    }

    std::size_t bytes() const {
      std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(thetas.size() + raw.size() + query.size() + g.size() +
                                                                    u.size() + w.size() + hv.size() + qg.size() +
                                                                    clip_scratch.size() +
                                                                    fd.shifted.size() + fd.gradient.size());
      if constexpr (detail::has_bytes<typename Model::Workspace>::value) {
        total += ws.bytes();
        for (const auto& s : step_ws) total += s.bytes();
      }
      return total;
    }
  };

  void prepare(Worker& wk) const {
    wk.prepare(parameter_count(), options_.inner_steps, options_.order != Order::first, options_.inner_clip.enabled(),
               !options_.step_weights.empty(), use_cached());
  }

  bool use_cached() const { return kCached && options_.order == Order::second; }

  // `steps` inner steps θ_{k+1} = θ_k − α c(∇L_s(θ_k)) from θ₀ = θ, alternating between two
  // columns of wk.thetas; calls after_step(k + 1, θ_{k+1}) and returns the column of θ_steps.
  template <class AfterStep>
  Index inner_loop(Worker& wk, ConstVectorRef<Scalar> theta, const Batch& support, int steps, AfterStep&& after_step) {
    wk.prepare(parameter_count(), 0, false, false, false, false);
    wk.thetas.col(0) = theta;
    for (int k = 0; k < steps; ++k) {
      model_.loss_and_gradient(wk.thetas.col(k & 1), support, wk.g, wk.ws);
      if (options_.inner_clip.enabled()) options_.inner_clip.apply(wk.g);
      wk.thetas.col((k + 1) & 1) = wk.thetas.col(k & 1) - alpha() * wk.g;  // θ_{k+1} = θ_k − α c(∇L_s(θ_k))
      after_step(k + 1, wk.thetas.col((k + 1) & 1));
    }
    return steps & 1;
  }

  Scalar alpha() const { return static_cast<Scalar>(options_.inner_lr); }
  Scalar weight(int k) const {  // w_k, k = 1…K
    return options_.step_weights.empty() ? Scalar(k == options_.inner_steps ? 1 : 0)
                                         : static_cast<Scalar>(options_.step_weights[static_cast<std::size_t>(k - 1)]);
  }
  Scalar final_weight() const { return options_.inner_steps == 0 ? Scalar(1) : weight(options_.inner_steps); }

  template <class Tasks>
  Index check_tasks(const char* where, const ConstVectorRef<Scalar>& theta, const Tasks& tasks) const {
    detail::check_size(where, "theta", theta.size(), parameter_count());
    const auto count = static_cast<Index>(tasks.size());
    if (count == 0) detail::fail(where, "the meta-batch has no tasks");
    for (Index t = 0; t < count; ++t) check_task(where, tasks[static_cast<std::size_t>(t)], t);
    return count;
  }

  static void check_task(const char* where, const Task& task, Index t) {
    if (task.support.size() == 0) detail::fail(where, "task ", t, ": the support set is empty");
    if (task.query.size() == 0) detail::fail(where, "task ", t, ": the query set is empty");
  }

  // The threaded paths' slots for `blocks` blocks, none finished, none added.
  void start_slots(Index blocks) {
    const Index p = parameter_count();
    if (task_grads_.rows() != p || task_grads_.cols() < blocks) task_grads_.resize(p, blocks);
    if (task_losses_.size() < blocks) task_losses_.resize(blocks);
    Adding& a = *adding_;
    if (static_cast<Index>(a.finished.size()) < blocks)
      a.finished = std::vector<std::atomic<bool>>(static_cast<std::size_t>(blocks));
    for (Index b = 0; b < blocks; ++b) a.finished[static_cast<std::size_t>(b)].store(false, std::memory_order_relaxed);
    a.blocks = blocks;
    a.added = 0;
    a.loss = 0;
    sum_.setZero();
  }

  // Block b on worker wk: the sum of its tasks' meta-gradients, in task order, into `dst`;
  // returns the sum of their losses. The one-thread and the threaded paths both sum blocks
  // here, which makes their results bit-identical.
  template <class Tasks, class Dst>
  Scalar block_sum(Worker& wk, ConstVectorRef<Scalar> theta, const Tasks& tasks, const detail::TaskBlocks& blocks,
                   Index b, Dst&& dst) {
    Scalar loss = 0;
    for (Index t = blocks.begin(b); t < blocks.end(b); ++t) {
      loss += task_gradient(wk, theta, tasks[static_cast<std::size_t>(t)], t);
      if (t == blocks.begin(b)) dst = wk.u;
      else dst += wk.u;
    }
    return loss;
  }

  // Block b on a worker of the pool, into the block's own slots; then the finished blocks
  // the sum has reached are added.
  template <class Tasks>
  void threaded_block(ConstVectorRef<Scalar> theta, const Tasks& tasks, const detail::TaskBlocks& blocks, Index b,
                      int worker) {
    Worker& wk = workers_[static_cast<std::size_t>(worker)];
    task_losses_[b] = block_sum(wk, theta, tasks, blocks, b, task_grads_.col(b));
    adding_->finished[static_cast<std::size_t>(b)].store(true);
    add_finished_blocks();
  }

  // Adds the finished blocks from `added` on to sum_ and the loss, in block order (so the
  // result is bit-identical for any thread count), on whichever worker raises the `busy` flag;
  // a worker that finds it raised leaves its block to the holder. No block is left behind:
  // the holder re-checks the next block after it lowers the flag, and in the single order of
  // the seq_cst operations either that check comes after the block's `finished` store (and
  // sees it), or the block's worker tries the flag after the lowering — then it gets the flag,
  // or a session that starts after the lowering sees the block. (Both pairs, the `finished`
  // store before the flag exchange and the lowering before the re-check, need seq_cst: a
  // store followed by a load of another variable.) Nothing in a session throws.
  void add_finished_blocks() noexcept {
    Adding& a = *adding_;
    for (;;) {
      if (a.busy.exchange(true)) return;
      Index b = a.added;
      for (; b < a.blocks && a.finished[static_cast<std::size_t>(b)].load(); ++b) {
        a.loss += task_losses_[b];
        sum_ += task_grads_.col(b);
      }
      a.added = b;
      a.busy.store(false);
      if (b == a.blocks || !a.finished[static_cast<std::size_t>(b)].load()) return;
    }
  }

  // The sum of the threaded paths (every block is added once the pool returns) divided by the
  // number of tasks into `grad`; returns the mean loss.
  Scalar average(Index count, VectorRef<Scalar> grad) {
    if (adding_->added != adding_->blocks)  // cannot happen (see add_finished_blocks); one comparison
      throw metalearn::logic_error(detail::concat("metalearn: Maml: internal error: ", adding_->added, " of ",
                                            adding_->blocks, " blocks were added to the meta-gradient"));
    return mean(count, adding_->loss, grad);
  }

  // grad = sum_ / count; returns loss / count.
  Scalar mean(Index count, Scalar loss, VectorRef<Scalar> grad) {
    const Scalar inv = Scalar(1) / static_cast<Scalar>(count);
    grad = sum_ * inv;
    return loss * inv;
  }

  void hessian_vector_product(Worker& wk, int k, ConstVectorRef<Scalar> theta, const Batch& batch,
                              ConstVectorRef<Scalar> v, VectorRef<Scalar> hv) const {
    if constexpr (kCached) {
      if (options_.order == Order::second) {
        model_.cached_hessian_vector_product(theta, batch, v, hv, wk.step_ws[static_cast<std::size_t>(k)]);
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

  // Meta-loss of one task; its meta-gradient into `out`. Labels model errors with the task.
  Scalar task_gradient(Worker& wk, ConstVectorRef<Scalar> theta, const Task& task, Index t) {
    try {
      return task_gradient_impl(wk, theta, task);
    } catch (const metalearn::invalid_argument& e) {
      throw metalearn::invalid_argument(detail::concat("metalearn: Maml: task ", t, ": ", detail::without_prefix(e)));
    }
  }

  // Meta-loss of one task; its meta-gradient is left in wk.u. θ₀ is θ itself (no copy); θ_k for
  // k ≥ 1 live in wk.thetas (column k − 1 for second order, alternating columns for first).
  Scalar task_gradient_impl(Worker& wk, ConstVectorRef<Scalar> theta, const Task& task) {
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
    if (first_order_terms) wk.u.setZero();
    for (int k = 0; k < steps; ++k) {
      model_.loss_and_gradient(theta_k(k), task.support, wk.g,
                               use_cached() ? wk.step_ws[static_cast<std::size_t>(k)] : wk.ws);  // g = ∇L_s(θ_k)
      if (clip) {
        if (second) wk.raw.col(k) = wk.g;
        options_.inner_clip.apply(wk.g);
      }
      slot(k + 1) = theta_k(k) - alpha() * wk.g;  // θ_{k+1} = θ_k − α c(g)
      const Scalar wq = weight(k + 1);
      if (k + 1 < steps && wq != Scalar(0)) {  // multi-step loss: w_{k+1} L_q(θ_{k+1})
        if (second) {
          loss += wq * model_.loss_and_gradient(theta_k(k + 1), task.query, wk.query.col(k + 1), wk.ws);
          wk.query.col(k + 1) *= wq;
        } else {
          loss += wq * model_.loss_and_gradient(theta_k(k + 1), task.query, wk.qg, wk.ws);
          wk.u += wq * wk.qg;
        }
      }
    }
    const Scalar w_final = final_weight();
    if (first_order_terms) {
      loss += w_final * model_.loss_and_gradient(theta_k(steps), task.query, wk.qg, wk.ws);
      wk.u += w_final * wk.qg;
    } else {
      loss += w_final * model_.loss_and_gradient(theta_k(steps), task.query, wk.u, wk.ws);  // u = ∇L_q(θ_K)
      if (w_final != Scalar(1)) wk.u *= w_final;                                          //   · w_K
    }
    if (second) {
      for (int k = steps - 1; k >= 0; --k) {
        if (clip) {
          wk.w = wk.u;
          options_.inner_clip.jacobian_transpose_product(wk.raw.col(k), wk.w, wk.clip_scratch);  // J_cᵀ u
        }
        hessian_vector_product(wk, k, theta_k(k), task.support, clip ? wk.w : wk.u, wk.hv);  // H_s(θ_k) J_cᵀ u
        wk.u -= alpha() * wk.hv;                                                             // u ← u − α H_s J_cᵀ u
        if (k >= 1 && weighted && weight(k) != Scalar(0)) wk.u += wk.query.col(k);           //   + w_k ∇L_q(θ_k)
      }
    }
    return loss;
  }

  Model model_;
  MamlOptions options_;
  std::vector<Worker> workers_;
  std::unique_ptr<parallel::ThreadPool> pool_;
  Vector<Scalar> sum_;
  Vector<Scalar> block_;        // one thread: the sum over the current block's tasks
  Matrix<Scalar> task_grads_;   // threads: one column per block, its gradient sum
  Vector<Scalar> task_losses_;  // threads: one entry per block, its loss sum
  struct Adding {  // threads: the blocks' progress into sum_ (behind a pointer: Maml stays movable)
    std::vector<std::atomic<bool>> finished;        // block b is in its slots
    Index blocks = 0;                               // blocks of the current call
    Index added = 0;                                // blocks added to sum_ (changed under `busy`)
    Scalar loss = 0;                                // their losses' sum (changed under `busy`)
    alignas(64) std::atomic<bool> busy{false};      // a worker is adding blocks (own cache line)
  };
  std::unique_ptr<Adding> adding_;
};

}  // namespace metalearn
