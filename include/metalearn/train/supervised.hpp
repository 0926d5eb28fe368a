#pragma once
/// @file
/// @brief Supervised training: optimizer steps on mini-batches for any model of the contract
/// (metalearn/model.hpp), with the same guarded update as meta-training (a non-finite loss
/// or gradient is never applied) and counters that checkpoints save and restore.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/optim/update.hpp>

#include <chrono>
#include <type_traits>
#include <utility>

namespace metalearn {

/// Options of `SupervisedTrainer`.
struct SupervisedOptions {
  NonFinitePolicy on_non_finite = NonFinitePolicy::throw_error;  ///< see NonFinitePolicy
  Clip clip{};                                                   ///< clipping of each gradient (off by default)
};

/// Passed to the callback after every step.
struct StepProgress {
  Index iteration = 0;              ///< steps completed over the trainer's lifetime
  Index epoch = 0;                  ///< the epoch of this step's batch (the batch source's count, from 1)
  Index batch = 0;                  ///< batches of that epoch done, this one included
  Index batches_per_epoch = 0;      ///< the batch source's batches per epoch
  Index examples = 0;               ///< examples in this step's batch
  double loss = 0;                  ///< loss of this batch, before the update
  bool skipped = false;             ///< this update was skipped (non-finite, policy skip)
  Index skipped_total = 0;          ///< updates skipped over the trainer's lifetime
  double elapsed_seconds = 0;       ///< since this `run` began
  double examples_per_second = 0;   ///< examples trained on per second in this `run`
  double eta_seconds = 0;           ///< estimated seconds to the end of this `run`
  /// True when this step finished an epoch (the time to evaluate).
  bool epoch_done() const { return batch == batches_per_epoch; }
};

/// Trains θ of a model by a first-order optimizer on the batches of a batch source: each
/// step draws a batch (`batches.next()`), computes the loss and gradient, and lets the
/// optimizer update θ through the guarded update of optim/update.hpp.
///   Model:     the model contract (metalearn/model.hpp)
///   Optimizer: `step(θ, grad)` (`optim::Adam`, `optim::Sgd`)
///   Batches:   `const Model::Batch& next()`, `Index batches_per_epoch() const`,
///              `Index epoch() const`, `Index position() const` (`data::MiniBatches`)
/// The trainer holds references to the optimizer and the batch source, which must outlive it,
/// and a copy of the model. Its workspace and gradient are allocated on the first step; the
/// steps after it do not allocate (unless a larger batch grows the model's workspace).
template <class Model, class Optimizer, class Batches>
class SupervisedTrainer {
  static_assert(check_model<Model>());
  static_assert(std::is_same_v<std::decay_t<decltype(std::declval<Batches&>().next())>, typename Model::Batch>,
                "metalearn: SupervisedTrainer: the batch source's next() must return the model's Batch type (for "
                "nn::Objective with SoftmaxCrossEntropy and data::MiniBatches: the same Scalar)");

 public:
  using Scalar = typename Model::Scalar;  ///< float or double

  /// Checks the options and that the optimizer (when it has `parameter_count()`) fits the model.
  SupervisedTrainer(Model model, Optimizer& optimizer, Batches& batches, SupervisedOptions options = {})
      : model_(std::move(model)), optimizer_(optimizer), batches_(batches), options_(options) {
    options_.clip.validate("SupervisedTrainer");
    if constexpr (detail::has_parameter_count<Optimizer>::value) {
      if (static_cast<Index>(optimizer_.parameter_count()) != model_.parameter_count())
        detail::fail("SupervisedTrainer", "the optimizer has state for ", optimizer_.parameter_count(),
                     " parameters, the model has ", model_.parameter_count());
    }
  }

  /// Runs up to `steps` steps on θ, calling `callback(progress)` after each; a callback
  /// returning `false` stops (one returning void never does). Returns the steps run. Under
  /// `NonFinitePolicy::throw_error` a non-finite loss or gradient throws `numerical_error`
  /// with θ and the optimizer untouched.
  template <class Callback>
  Index run(VectorRef<Scalar> theta, Index steps, Callback&& callback) {
    detail::check_size("SupervisedTrainer::run", "theta", theta.size(), model_.parameter_count());
    if (steps < 0) detail::fail("SupervisedTrainer::run", "steps must be >= 0, got ", steps);
    if (grad_.size() != model_.parameter_count()) grad_.resize(model_.parameter_count());
    const auto start = std::chrono::steady_clock::now();
    Index examples = 0;
    for (Index i = 0; i < steps; ++i) {
      const auto& batch = batches_.next();
      const Scalar loss = model_.loss_and_gradient(theta, batch, grad_, ws_);
      StepProgress p;
      p.skipped = !detail::guarded_update(options_.on_non_finite, options_.clip, "SupervisedTrainer", "step",
                                          iteration_ + 1, "", loss, grad_, optimizer_, theta);
      if (p.skipped) ++skipped_;
      ++iteration_;
      examples += batch.size();
      p.iteration = iteration_;
      p.epoch = batches_.epoch();
      p.batch = batches_.position();
      p.batches_per_epoch = batches_.batches_per_epoch();
      p.examples = batch.size();
      p.loss = static_cast<double>(loss);
      p.skipped_total = skipped_;
      p.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      p.examples_per_second = p.elapsed_seconds > 0 ? static_cast<double>(examples) / p.elapsed_seconds : 0;
      p.eta_seconds = p.elapsed_seconds / static_cast<double>(i + 1) * static_cast<double>(steps - i - 1);
      if constexpr (std::is_same_v<std::invoke_result_t<Callback&, const StepProgress&>, void>) {
        callback(static_cast<const StepProgress&>(p));
      } else {
        if (!callback(static_cast<const StepProgress&>(p))) return i + 1;
      }
    }
    return steps;
  }

  /// Runs `steps` steps without a callback.
  Index run(VectorRef<Scalar> theta, Index steps) {
    return run(theta, steps, [](const StepProgress&) {});
  }

  /// Steps completed over the trainer's lifetime (saved in checkpoints).
  Index iteration() const { return iteration_; }
  /// Updates skipped over the trainer's lifetime.
  Index skipped() const { return skipped_; }
  /// Restores the counters (checkpoints).
  void restore(Index iteration, Index skipped) {
    if (iteration < 0 || skipped < 0 || skipped > iteration)
      detail::fail("SupervisedTrainer::restore", "counters must satisfy 0 <= skipped <= iteration, got ", skipped,
                   " and ", iteration);
    iteration_ = iteration;
    skipped_ = skipped;
  }
  /// The model.
  const Model& model() const { return model_; }

 private:
  Model model_;
  Optimizer& optimizer_;
  Batches& batches_;
  SupervisedOptions options_;
  typename Model::Workspace ws_{};
  Vector<Scalar> grad_;
  Index iteration_ = 0;
  Index skipped_ = 0;
};

}  // namespace metalearn
