#pragma once
/// @file
/// @brief The meta-training loop: sample a meta-batch, compute the meta-gradient, update θ
/// with a meta-optimizer, report progress; never applying a non-finite update.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/optim/update.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

namespace detail {
template <class T, class = void>
inline constexpr bool has_parameter_count_v = false;
template <class T>
inline constexpr bool has_parameter_count_v<T, std::void_t<decltype(std::declval<const T&>().parameter_count())>> = true;

// Whether the algorithm can draw the tasks itself while it works on them:
// meta_loss_and_gradient(θ, tasks, grad, fill) with fill(t) filling tasks[t].
struct FillProbe {
  void operator()(Index) const {}
};
template <class A, class Tasks, class = void>
inline constexpr bool has_fed_meta_gradient_v = false;
template <class A, class Tasks>
inline constexpr bool has_fed_meta_gradient_v<
    A, Tasks,
    std::void_t<decltype(std::declval<A&>().meta_loss_and_gradient(
        std::declval<ConstVectorRef<typename A::Scalar>>(), std::declval<Tasks&>(),
        std::declval<VectorRef<typename A::Scalar>>(), std::declval<FillProbe&>()))>> = true;
template <class A, class = void>
inline constexpr bool trainer_algorithm_types_v = false;
template <class A>
inline constexpr bool trainer_algorithm_types_v<A, std::void_t<typename A::Scalar, typename A::Task>> = true;
template <class O, class S, class = void>
inline constexpr bool trainer_optimizer_v = false;
template <class O, class S>
inline constexpr bool trainer_optimizer_v<
    O, S, std::void_t<decltype(std::declval<O&>().step(std::declval<VectorRef<S>>(), std::declval<ConstVectorRef<S>>()))>> =
    true;
template <class Sm, class T, class = void>
inline constexpr bool trainer_sampler_v = false;
template <class Sm, class T>
inline constexpr bool trainer_sampler_v<Sm, T, std::void_t<decltype(std::declval<Sm&>().sample(std::declval<T&>()))>> =
    true;

// The scalar and task types, or placeholders that keep the other checks quiet when missing.
template <class A, bool = trainer_algorithm_types_v<A>>
struct trainer_types {
  using Scalar = double;
  struct Task {};
};
template <class A>
struct trainer_types<A, true> {
  using Scalar = typename A::Scalar;
  using Task = typename A::Task;
};
}  // namespace detail

/// Compile-time checks of MetaTrainer's three arguments: each failure names what is missing
/// or what does not fit (the common one: a sampler of another scalar type than the model's).
template <class Algorithm, class Optimizer, class Sampler>
constexpr bool check_trainer() {
  using T = detail::trainer_types<Algorithm>;
  static_assert(detail::trainer_algorithm_types_v<Algorithm>,
                "metalearn: MetaTrainer: the algorithm needs member types `Scalar` and `Task` (Maml has them). See "
                "README section 'The algorithm contract'.");
  static_assert(!detail::trainer_algorithm_types_v<Algorithm> || detail::has_algorithm_meta_gradient<Algorithm>::value,
                "metalearn: MetaTrainer: the algorithm has no `Scalar meta_loss_and_gradient(ConstVectorRef<Scalar>, "
                "const std::vector<Task>&, VectorRef<Scalar>)`. See README section 'The algorithm contract'.");
  static_assert(detail::trainer_optimizer_v<Optimizer, typename T::Scalar>,
                "metalearn: MetaTrainer: the optimizer has no `step(VectorRef<Scalar> theta, ConstVectorRef<Scalar> "
                "grad)` for the algorithm's Scalar (is it optim::Adam<float> for a float model?)");
  static_assert(detail::trainer_sampler_v<Sampler, typename T::Task>,
                "metalearn: MetaTrainer: the sampler has no `sample(Task&)` for the algorithm's Task: it draws tasks "
                "of another type (e.g. tasks::SineTasks<float> for a double model: use the model's Scalar)");
  return true;
}

/// Options of `MetaTrainer`.
struct TrainerOptions {
  Index meta_batch = 25;                                  ///< tasks per meta-iteration (> 0)
  NonFinitePolicy on_non_finite = NonFinitePolicy::throw_error;  ///< see NonFinitePolicy
  Clip meta_clip{};                                       ///< clipping of the meta-gradient (off by default)
};

/// Passed to the callback after every meta-iteration.
struct Progress {
  Index iteration = 0;          ///< meta-iterations completed, over the trainer's lifetime
  double meta_loss = 0;         ///< meta-loss of this iteration's meta-batch (before the update)
  double elapsed_seconds = 0;   ///< since this `run` began
  bool skipped = false;         ///< this iteration's update was skipped (non-finite, policy skip)
  Index skipped_total = 0;      ///< updates skipped over the trainer's lifetime
};

/// Meta-trains θ: each iteration draws `meta_batch` tasks from the sampler, asks the
/// algorithm for the meta-gradient and lets the optimizer update θ.
///   Algorithm: `Scalar`, `Task`, `parameter_count()`, `meta_loss_and_gradient(θ, tasks, grad)`
///              (e.g. `Maml<Model>`); when it also has `meta_loss_and_gradient(θ, tasks,
///              grad, fill)`, the trainer hands it the drawing of the tasks (`fill(t)` draws
///              task t, in order, on the calling thread), so that drawing overlaps the work
///              of the other threads; the tasks and the result are the same.
///              An algorithm with `set_iteration(n)` (MAML++) is told the meta-iteration n
///              (iterations completed over the trainer's lifetime) before each meta-step.
///   Optimizer: `step(θ, grad)` (e.g. `optim::Adam<Scalar>`)
///   Sampler:   `sample(Task&)` filling one task (e.g. `tasks::SineTasks<Scalar>`)
/// The trainer holds references to all three: they must outlive it. Storage for the
/// meta-batch and the gradient is allocated once.
template <class Algorithm, class Optimizer, class Sampler>
class MetaTrainer {
  static_assert(check_trainer<Algorithm, Optimizer, Sampler>());

 public:
  using Scalar = typename Algorithm::Scalar;  ///< float or double
  using Task = typename Algorithm::Task;      ///< one task

  /// Checks the options (and, when the optimizer has `parameter_count()`, that it matches the
  /// algorithm's) and sizes the meta-batch storage.
  MetaTrainer(Algorithm& algorithm, Optimizer& optimizer, Sampler& sampler, TrainerOptions options = {})
      : algorithm_(algorithm), optimizer_(optimizer), sampler_(sampler), options_(options) {
    if (options_.meta_batch <= 0) detail::fail("MetaTrainer", "meta_batch must be > 0, got ", options_.meta_batch);
    options_.meta_clip.validate("MetaTrainer");
    if constexpr (detail::has_parameter_count_v<Optimizer>) {
      if (static_cast<Index>(optimizer_.parameter_count()) != algorithm_.parameter_count())
        detail::fail("MetaTrainer", "the optimizer has state for ", optimizer_.parameter_count(),
                     " parameters, the algorithm's model has ", algorithm_.parameter_count());
    }
    tasks_.resize(static_cast<std::size_t>(options_.meta_batch));
    grad_.resize(algorithm_.parameter_count());
  }

  /// Runs up to `iterations` meta-iterations on θ. After each one calls `callback(progress)`;
  /// a callback returning `false` stops training (one returning void never does). Returns the
  /// number of iterations run. A non-finite meta-loss or meta-gradient, or a `numerical_error`
  /// from the algorithm (an inner loop that diverged), is never applied: under policy
  /// `throw_error` it throws `numerical_error`, under `skip` the iteration is skipped (its
  /// `Progress::meta_loss` then NaN if the algorithm threw); θ and the optimizer are untouched.
  template <class Callback>
  Index run(VectorRef<Scalar> theta, Index iterations, Callback&& callback) {
    detail::check_size("MetaTrainer::run", "theta", theta.size(), algorithm_.parameter_count());
    if (iterations < 0) detail::fail("MetaTrainer::run", "iterations must be >= 0, got ", iterations);
    const auto start = std::chrono::steady_clock::now();
    for (Index i = 0; i < iterations; ++i) {
      Scalar loss;
      bool diverged = false;
      if constexpr (detail::has_set_iteration<Algorithm>::value) algorithm_.set_iteration(iteration_);
      try {
        if constexpr (detail::has_fed_meta_gradient_v<Algorithm, std::vector<Task>>) {
          // the tasks are drawn in order on this thread while workers start on those drawn
          auto fill = [this](Index t) { sampler_.sample(tasks_[static_cast<std::size_t>(t)]); };
          loss = algorithm_.meta_loss_and_gradient(theta, tasks_, grad_, fill);
        } else {
          for (auto& task : tasks_) sampler_.sample(task);
          loss = algorithm_.meta_loss_and_gradient(theta, tasks_, grad_);
        }
      } catch (const numerical_error& e) {
        if (options_.on_non_finite == NonFinitePolicy::throw_error)
          throw numerical_error(detail::concat("metalearn: MetaTrainer: meta-iteration ", iteration_ + 1, ": ",
                                               detail::without_prefix(e),
                                               "; parameters and optimizer state left unchanged"));
        diverged = true;
        loss = std::numeric_limits<Scalar>::quiet_NaN();
      }
      Progress progress;
      progress.skipped = diverged || !detail::guarded_update(options_.on_non_finite, options_.meta_clip, "MetaTrainer",
                                                             "meta-iteration", iteration_ + 1, "meta-", loss, grad_,
                                                             optimizer_, theta);
      if (progress.skipped) ++skipped_;
      ++iteration_;
      progress.iteration = iteration_;
      progress.meta_loss = static_cast<double>(loss);
      progress.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      progress.skipped_total = skipped_;
      if constexpr (std::is_same_v<std::invoke_result_t<Callback&, const Progress&>, void>) {
        callback(static_cast<const Progress&>(progress));
      } else {
        if (!callback(static_cast<const Progress&>(progress))) return i + 1;
      }
    }
    return iterations;
  }

  /// Runs `iterations` meta-iterations without a callback.
  Index run(VectorRef<Scalar> theta, Index iterations) {
    return run(theta, iterations, [](const Progress&) {});
  }

  /// Meta-iterations completed over the trainer's lifetime (saved in checkpoints).
  Index iteration() const { return iteration_; }
  /// Updates skipped over the trainer's lifetime.
  Index skipped() const { return skipped_; }
  /// Restores the counters (checkpoints).
  void restore(Index iteration, Index skipped) {
    if (iteration < 0 || skipped < 0 || skipped > iteration)
      detail::fail("MetaTrainer::restore", "counters must satisfy 0 <= skipped <= iteration, got ", skipped, " and ",
                   iteration);
    iteration_ = iteration;
    skipped_ = skipped;
  }
  /// The last meta-batch drawn.
  const std::vector<Task>& tasks() const { return tasks_; }
  /// The options.
  const TrainerOptions& options() const { return options_; }

 private:
  Algorithm& algorithm_;
  Optimizer& optimizer_;
  Sampler& sampler_;
  TrainerOptions options_;
  std::vector<Task> tasks_;
  Vector<Scalar> grad_;
  Index iteration_ = 0;
  Index skipped_ = 0;
};

}  // namespace metalearn
