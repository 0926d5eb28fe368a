#pragma once
/// @file
/// @brief MAML++ (Antoniou, Edwards, Storkey 2019), the parts that concern the inner loop and
/// the meta-gradient:
///   - LSLR: learned per-step, per-group inner learning rates, θ_{k+1} = θ_k − α_{k,j} c(g_k) on
///     the entries of group j (the model's `parameter_groups`; nn::Objective: each layer's W
///     and b), each starting at 0.1 as in the authors' code;
///   - MSL: the multi-step loss Σ_k w_k L_q(θ_k) over the first `multi_step_iterations`
///     meta-iterations, its weights annealed from 1/K towards the final step (non-final ones to
///     a floor of 0.03/K), then the final step's loss alone;
///   - DA: derivative-order annealing, first order for the first `first_order_iterations`
///     meta-iterations, then the options' order.
/// The meta-learning rate's cosine annealing (CA) is an optimizer schedule usable with any
/// algorithm: `optim::Scheduled<Adam, optim::CosineSchedule>` (optim/schedule.hpp).
/// MSL and DA follow the meta-iteration: `MetaTrainer` calls `set_iteration(n)` before each
/// meta-step with its own count (which checkpoints restore), so a resumed run anneals exactly
/// as an uninterrupted one. Formulas: docs/derivations.md, "Learned and restricted inner loops".

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/inner_loop.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace metalearn {

/// Options of `MamlPlusPlus`.
struct MamlPlusPlusOptions {
  double initial_lr = 0.1;            ///< every per-step, per-group rate starts here (finite, > 0; the authors' 0.1)
  int inner_steps = 5;                ///< K (≥ 1), the authors' 5
  Order order = Order::second;        ///< meta-gradient once derivative-order annealing is over
  Index first_order_iterations = 0;   ///< DA: first order for meta-iterations [0, this) (≥ 0; 0: off)
  Index multi_step_iterations = 0;    ///< MSL: annealed per-step losses for meta-iterations [0, this) (≥ 0; 0: off)
  Clip inner_clip{};                  ///< clipping of each inner gradient, before the rates multiply it
  int threads = 1;                    ///< workers for the tasks of a meta-batch (≥ 1)
};

/// The multi-step loss weights w_1…w_K of meta-iteration n for K steps annealed over `length`
/// iterations (the authors' `get_per_step_loss_importance_vector`, in iterations): w_k =
/// max(1/K − n d, 0.03/K) for k < K and w_K = min(1/K + n (K − 1) d, 1 − (K − 1) 0.03/K), with
/// d = 1/(K · length). Written into `weights` (resized to K).
inline void multi_step_loss_weights(int steps, Index n, Index length, std::vector<double>& weights) {
  const double k = steps, decay = 1.0 / k / static_cast<double>(length), floor = 0.03 / k;
  weights.assign(static_cast<std::size_t>(steps), 1.0 / k);
  for (int i = 0; i + 1 < steps; ++i)
    weights[static_cast<std::size_t>(i)] = std::max(1.0 / k - static_cast<double>(n) * decay, floor);
  weights.back() = std::min(1.0 / k + static_cast<double>(n) * (k - 1) * decay, 1.0 - (k - 1) * floor);
}

/// MAML++ for a model type `M` (metalearn/model.hpp): an algorithm (meta/algorithm.hpp) whose
/// meta-parameters are θ followed by the rates α_{k,j}, step-major (K rows of G group rates).
template <class M>
class MamlPlusPlus : public detail::GradientInnerLoop<MamlPlusPlus<M>, M> {
  using Base = detail::GradientInnerLoop<MamlPlusPlus<M>, M>;

 public:
  using typename Base::Batch;
  using typename Base::Model;
  using typename Base::Scalar;
  using typename Base::Task;
  using typename Base::Workspace;
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "MamlPlusPlus";

  /// Checks the options (throws `invalid_argument` naming the bad one) and the model's groups.
  explicit MamlPlusPlus(M model, MamlPlusPlusOptions options = {})
      : Base(checked(model, options), options.threads,
             model.parameter_count() + options.inner_steps * static_cast<Index>(parameter_groups(model).size())),
        options_(std::move(options)), groups_(parameter_groups(this->model())) {
    settings_.inner_steps = options_.inner_steps;
    settings_.inner_clip = options_.inner_clip;
    set_iteration(0);
  }

  /// The options.
  const MamlPlusPlusOptions& options() const { return options_; }
  /// The groups that share a rate (the model's `parameter_groups`).
  const std::vector<ParameterGroup>& groups() const { return groups_; }

  /// Sets the meta-iteration whose meta-step comes next (n ≥ 0; MetaTrainer calls it with its
  /// count): it decides the order (DA) and the step weights (MSL). Not concurrently with the
  /// other members; does not allocate after the first call.
  void set_iteration(Index n) {
    if (n < 0) detail::fail("MamlPlusPlus::set_iteration", "the iteration must be >= 0, got ", n);
    iteration_ = n;
    settings_.order = n < options_.first_order_iterations ? Order::first : options_.order;
    if (n < options_.multi_step_iterations)
      multi_step_loss_weights(options_.inner_steps, n, options_.multi_step_iterations, settings_.step_weights);
    else
      settings_.step_weights.clear();  // keeps its capacity
  }
  /// The meta-iteration set last.
  Index iteration() const { return iteration_; }

  /// Draws θ with the model's initialisation; every rate = initial_lr.
  void initialize(VectorRef<Scalar> meta, Rng& rng) const {
    detail::check_size("MamlPlusPlus::initialize", "meta", meta.size(), this->parameter_count());
    const Index p = this->model_parameters();
    this->model().initialize(meta.head(p), rng);
    meta.tail(meta.size() - p).setConstant(static_cast<Scalar>(options_.initial_lr));
  }

  /// "MamlPlusPlus(order 2, inner_steps 5, initial_lr 0.1, first_order_iterations 0,
  /// multi_step_iterations 0, inner_clip value 0 norm 0) on <model>".
  std::string describe() const {
    const char* order = options_.order == Order::first ? "1" : options_.order == Order::second ? "2" : "2 (differences)";
    return std::string("MamlPlusPlus(order ") + order + ", inner_steps " + std::to_string(options_.inner_steps) +
           ", initial_lr " + detail::shortest(options_.initial_lr) + ", first_order_iterations " +
           std::to_string(options_.first_order_iterations) + ", multi_step_iterations " +
           std::to_string(options_.multi_step_iterations) + ", inner_clip value " +
           detail::shortest(options_.inner_clip.value) + " norm " + detail::shortest(options_.inner_clip.norm) +
           ") on " + describe_model(this->model());
  }

  /// The rate of group j at step k (k < K) inside meta-parameters `meta`.
  Scalar rate(ConstVectorRef<Scalar> meta, int k, Index j) const {
    return meta[this->model_parameters() + static_cast<Index>(k) * static_cast<Index>(groups_.size()) + j];
  }

  // --- the inner loop's side (meta/inner_loop.hpp) -----------------------------------------

  /// The inner loop's settings of the current meta-iteration.
  const detail::InnerLoopSettings& settings() const { return settings_; }
  /// K × G rates.
  Index extra_count() const { return options_.inner_steps * static_cast<Index>(groups_.size()); }
  /// Step k's per-group rates (beyond K, adaptation uses the last step's).
  detail::StepRates<Scalar> rates(const Scalar* meta, int k) const {
    const Index g = static_cast<Index>(groups_.size());
    detail::StepRates<Scalar> r;
    r.kind = detail::StepRates<Scalar>::Kind::groups;
    r.groups = &groups_;
    r.values = meta + this->model_parameters() + static_cast<Index>(std::min(k, options_.inner_steps - 1)) * g;
    r.gradient = this->model_parameters() + static_cast<Index>(k) * g;
    return r;
  }

 private:
  static const M& checked(const M& model, const MamlPlusPlusOptions& options) {
    constexpr const char* where = "MamlPlusPlus";
    detail::check_positive(where, "initial_lr", options.initial_lr);
    if (options.inner_steps < 1) detail::fail(where, "inner_steps must be >= 1 (the rates are per step), got ",
                                               options.inner_steps);
    if (options.first_order_iterations < 0)
      detail::fail(where, "first_order_iterations must be >= 0, got ", options.first_order_iterations);
    if (options.multi_step_iterations < 0)
      detail::fail(where, "multi_step_iterations must be >= 0, got ", options.multi_step_iterations);
    detail::check_inner_loop(where, {options.order, options.inner_steps, options.inner_clip, {}}, options.threads,
                             model);
    return model;
  }

  MamlPlusPlusOptions options_;
  std::vector<ParameterGroup> groups_;
  detail::InnerLoopSettings settings_;
  Index iteration_ = 0;
};

}  // namespace metalearn
