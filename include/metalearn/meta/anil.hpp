#pragma once
/// @file
/// @brief ANIL (Raghu, Raghu, Bengio, Vinyals 2020): MAML whose inner loop adapts only some
/// groups of θ — by default the model's last layer (the "head") — while the outer loop learns
/// all of θ, with the exact second-order terms through the frozen part:
///   θ_{k+1} = θ_k − α M c(M ∇L_s(θ_k)),   M = the adapted entries.
/// The frozen groups keep θ's values in every inner step; their meta-gradient comes from the
/// query loss and, in second order, from the mixed terms ∂²L_s/∂θ_frozen∂θ_adapted, which the
/// same Hessian-vector products give (docs/derivations.md, "Learned and restricted inner loops").
/// Norm clipping of the inner gradient measures the adapted entries only. When the adapted
/// groups are the end of θ and the model can split there (nn::Objective: the last layers), the
/// frozen layers' activations are computed once per task and the inner loop runs the adapted
/// layers only; the reverse sweep's products need no more of the frozen part than a backward
/// pass (see the bench rows anil/step and README's cost model).

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

/// Options of `Anil`.
struct AnilOptions {
  double inner_lr = 1e-3;            ///< α (finite, > 0)
  /// Names of the groups the inner loop adapts (the model's `parameter_groups`, e.g. "layer 3 W",
  /// "layer 3 b"). Empty: the last layer — every group whose name has the last group's unit,
  /// the name up to its last space ("layer 3" of "layer 3 b"); for a model without groups, θ.
  std::vector<std::string> adapted;
  int inner_steps = 1;               ///< K, inner steps during meta-training (≥ 0; ≥ 1 for second order)
  Order order = Order::second;       ///< meta-gradient
  Clip inner_clip{};                 ///< clipping of each inner gradient (of its adapted entries)
  std::vector<double> step_weights;  ///< w_1…w_K of the query losses after each step; empty: only w_K = 1
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
};

/// ANIL for a model type `M` (metalearn/model.hpp): an algorithm (meta/algorithm.hpp) whose
/// meta-parameters are θ alone and whose inner loop adapts the chosen groups.
template <class M>
class Anil : public detail::GradientInnerLoop<Anil<M>, M> {
  using Base = detail::GradientInnerLoop<Anil<M>, M>;

 public:
  using typename Base::Batch;
  using typename Base::Model;
  using typename Base::Scalar;
  using typename Base::Task;
  using typename Base::Workspace;
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Anil";

  /// Checks the options and finds the adapted groups (throws `invalid_argument` naming an
  /// unknown group, a repeated one, or an empty selection).
  explicit Anil(M model, AnilOptions options = {})
      : Base(checked(model, options), options.threads, model.parameter_count()), options_(std::move(options)),
        settings_{options_.order, options_.inner_steps, options_.inner_clip, options_.step_weights},
        adapted_(select(parameter_groups(this->model()), options_.adapted)),
        alphas_(adapted_.size(), static_cast<Scalar>(options_.inner_lr)) {
    Index covered = 0;
    for (const ParameterGroup& g : adapted_) covered += g.size;
    masked_ = covered != this->model_parameters();
    // adapted groups that tile the end of θ: the frozen layers below them are computed once
    const Index f = adapted_.front().offset;
    if constexpr (model_traits<M>::has_frozen_prefix)
      if (masked_ && covered == this->model_parameters() - f && this->model().supports_frozen_prefix(f)) frozen_ = f;
  }

  /// The options.
  const AnilOptions& options() const { return options_; }
  /// The adapted groups, in θ's order.
  const std::vector<ParameterGroup>& adapted() const { return adapted_; }
  /// Draws θ with the model's initialisation.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const { this->model().initialize(theta, rng); }

  /// "Anil(order 2, inner_steps 1, inner_lr 0.001, adapted [layer 3 W, layer 3 b], …) on <model>".
  std::string describe() const {
    std::string loop = detail::describe_inner_loop(options_.order, options_.inner_steps, options_.inner_clip,
                                                   options_.step_weights);
    std::string names;
    for (const ParameterGroup& g : adapted_) names += (names.empty() ? "" : ", ") + g.name;
    const std::string steps = "inner_steps " + std::to_string(options_.inner_steps);
    loop.insert(loop.find(steps) + steps.size(),
                ", inner_lr " + detail::shortest(options_.inner_lr) + ", adapted [" + names + "]");
    return "Anil(" + loop + ") on " + describe_model(this->model());
  }

  // --- the inner loop's side (meta/inner_loop.hpp) -----------------------------------------

  /// The inner loop's settings (the options').
  const detail::InnerLoopSettings& settings() const { return settings_; }
  /// ANIL learns nothing besides θ.
  Index extra_count() const { return 0; }
  /// Where the adapted part begins when it is the end of θ and the model can run its passes
  /// above a frozen prefix there (nn::Objective at a layer boundary): the frozen layers are then
  /// computed once per task (meta/inner_loop.hpp); 0 otherwise (the ordinary passes, masked).
  Index frozen_prefix() const { return frozen_; }
  /// Every step: α on the adapted groups, the rest frozen.
  detail::StepRates<Scalar> rates(const Scalar*, int) const {
    detail::StepRates<Scalar> r;
    r.kind = detail::StepRates<Scalar>::Kind::groups;
    r.groups = &adapted_;
    r.masked = masked_;
    r.values = alphas_.data();
    return r;
  }

 private:
  static const M& checked(const M& model, const AnilOptions& options) {
    constexpr const char* where = "Anil";
    detail::check_positive(where, "inner_lr", options.inner_lr);
    detail::check_inner_loop(where, {options.order, options.inner_steps, options.inner_clip, options.step_weights},
                             options.threads, model);
    return model;
  }

  // The groups named in `names` (in θ's order), or the last unit's.
  static std::vector<ParameterGroup> select(const std::vector<ParameterGroup>& groups,
                                            const std::vector<std::string>& names) {
    constexpr const char* where = "Anil";
    const auto unit = [](const std::string& name) {
      const auto space = name.rfind(' ');
      return space == std::string::npos ? name : name.substr(0, space);
    };
    std::vector<ParameterGroup> chosen;
    if (names.empty()) {
      const std::string head = unit(groups.back().name);
      for (const ParameterGroup& g : groups)
        if (unit(g.name) == head) chosen.push_back(g);
      return chosen;
    }
    std::vector<bool> taken(groups.size(), false);
    for (const std::string& name : names) {
      std::size_t j = 0;
      while (j < groups.size() && groups[j].name != name) ++j;
      if (j == groups.size()) {
        std::string known;
        for (const ParameterGroup& g : groups) known += (known.empty() ? "'" : ", '") + g.name + "'";
        detail::fail(where, "no parameter group is named '", name, "'; the model's groups are ", known);
      }
      if (taken[j]) detail::fail(where, "the group '", name, "' is named twice in adapted");
      taken[j] = true;
    }
    for (std::size_t j = 0; j < groups.size(); ++j)
      if (taken[j]) chosen.push_back(groups[j]);
    return chosen;
  }

  AnilOptions options_;
  detail::InnerLoopSettings settings_;
  std::vector<ParameterGroup> adapted_;
  std::vector<Scalar> alphas_;  // α once per adapted group (the inner loop's per-group form)
  bool masked_ = false;
  Index frozen_ = 0;
};

}  // namespace metalearn
