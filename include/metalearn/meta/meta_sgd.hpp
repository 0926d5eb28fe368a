#pragma once
/// @file
/// @brief Meta-SGD (Li, Zhou, Chen, Li 2017): MAML whose inner learning rate is a vector α, one
/// rate per parameter, learned together with θ:  θ_{k+1} = θ_k − α ⊙ c(∇L_s(θ_k)).
///
/// The meta-parameters are [θ; α] (2P entries): optimizers, clipping, the non-finite guard and
/// checkpoints treat them as one vector. The meta-gradient with respect to α is
/// Σ_k −c_k ⊙ ∂ℒ/∂θ_{k+1} (docs/derivations.md, "Learned and restricted inner loops"), exact
/// in second order; in first order the paths through later inner gradients are dropped, as
/// for θ. The paper adapts with one step; K steps share the one α.

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/inner_loop.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>

#include <string>
#include <utility>
#include <vector>

namespace metalearn {

/// Options of `MetaSgd`.
struct MetaSgdOptions {
  double initial_lr = 1e-3;          ///< every α_i starts here (finite, > 0) …
  double initial_lr_max = 0;         ///< … or, when > 0, α_i ~ U[initial_lr, initial_lr_max] (the paper: [0.005, 0.1])
  int inner_steps = 1;               ///< K, inner steps during meta-training (≥ 0; ≥ 1 for second order)
  Order order = Order::second;       ///< meta-gradient
  Clip inner_clip{};                 ///< clipping of each inner gradient, before α multiplies it (off by default)
  std::vector<double> step_weights;  ///< w_1…w_K of the query losses after each step; empty: only w_K = 1
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
};

/// Meta-SGD for a model type `M` (metalearn/model.hpp): an algorithm (meta/algorithm.hpp)
/// whose meta-parameters are θ followed by one inner learning rate per parameter.
template <class M>
class MetaSgd : public detail::GradientInnerLoop<MetaSgd<M>, M> {
  using Base = detail::GradientInnerLoop<MetaSgd<M>, M>;

 public:
  using typename Base::Batch;
  using typename Base::Model;
  using typename Base::Scalar;
  using typename Base::Task;
  using typename Base::Workspace;
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "MetaSgd";

  /// Checks the options (throws `invalid_argument` naming the bad one).
  explicit MetaSgd(M model, MetaSgdOptions options = {})
      : Base(checked(model, options), options.threads, 2 * model.parameter_count()), options_(std::move(options)),
        settings_{options_.order, options_.inner_steps, options_.inner_clip, options_.step_weights} {}

  /// The options.
  const MetaSgdOptions& options() const { return options_; }

  /// Draws θ with the model's initialisation, then α (constant, or uniform in the options' range).
  void initialize(VectorRef<Scalar> meta, Rng& rng) const {
    detail::check_size("MetaSgd::initialize", "meta", meta.size(), this->parameter_count());
    const Index p = this->model_parameters();
    this->model().initialize(meta.head(p), rng);
    auto alpha = meta.tail(p);
    if (options_.initial_lr_max > 0) {
      for (Index i = 0; i < p; ++i)
        alpha[i] = static_cast<Scalar>(rng.uniform(options_.initial_lr, options_.initial_lr_max));
    } else {
      alpha.setConstant(static_cast<Scalar>(options_.initial_lr));
    }
  }

  /// "MetaSgd(order 2, inner_steps 1, initial_lr 0.005 to 0.1, …) on <model>": every option that
  /// changes results, for logs and checkpoints.
  std::string describe() const {
    std::string loop = detail::describe_inner_loop(options_.order, options_.inner_steps, options_.inner_clip,
                                                   options_.step_weights);
    const std::string steps = "inner_steps " + std::to_string(options_.inner_steps);
    std::string init = ", initial_lr " + detail::shortest(options_.initial_lr);
    if (options_.initial_lr_max > 0) init += " to " + detail::shortest(options_.initial_lr_max);
    loop.insert(loop.find(steps) + steps.size(), init);
    return "MetaSgd(" + loop + ") on " + describe_model(this->model());
  }

  /// The learned rates α inside meta-parameters `meta` (the last P entries).
  static auto rates_of(ConstVectorRef<Scalar> meta) { return meta.tail(meta.size() / 2); }

  // --- the inner loop's side (meta/inner_loop.hpp) -----------------------------------------

  /// The inner loop's settings (the options').
  const detail::InnerLoopSettings& settings() const { return settings_; }
  /// α: one rate per parameter.
  Index extra_count() const { return this->model_parameters(); }
  /// Every step's rates: α, from the meta-parameters.
  detail::StepRates<Scalar> rates(const Scalar* meta, int) const {
    detail::StepRates<Scalar> r;
    r.kind = detail::StepRates<Scalar>::Kind::per_parameter;
    r.values = meta + this->model_parameters();
    r.gradient = this->model_parameters();
    return r;
  }

 private:
  static const M& checked(const M& model, const MetaSgdOptions& options) {
    constexpr const char* where = "MetaSgd";
    detail::check_positive(where, "initial_lr", options.initial_lr);
    if (!detail::is_finite(options.initial_lr_max) || options.initial_lr_max < 0)
      detail::fail(where, "initial_lr_max must be finite and >= 0 (0: a constant initial rate), got ",
                   options.initial_lr_max);
    if (options.initial_lr_max > 0 && options.initial_lr_max < options.initial_lr)
      detail::fail(where, "initial_lr_max (", options.initial_lr_max, ") is below initial_lr (", options.initial_lr,
                   "); the range is [initial_lr, initial_lr_max]");
    detail::check_inner_loop(where, {options.order, options.inner_steps, options.inner_clip, options.step_weights},
                             options.threads, model);
    return model;
  }

  MetaSgdOptions options_;
  detail::InnerLoopSettings settings_;
};

}  // namespace metalearn
