#pragma once
/// @file
/// @brief CAVIA (Zintgraf, Shiarlis, Kurin, Hofmann, Whiteson 2019): fast context adaptation.
/// The model carries context parameters φ fed to every example (nn::Context appends them to
/// the inputs); each task starts from φ₀ = 0, the inner loop adapts φ alone,
///   φ_{k+1} = φ_k − α c(∇_φ L_s(θ, φ_k)),
/// and the outer loop learns θ (the network and the context's input weights) through the inner
/// loop, first or exact second order, with the same sweep as ANIL's (docs/derivations.md,
/// "CAVIA"). The meta-parameters are the model's parameter vector; its context entries hold φ₀,
/// which CAVIA keeps at zero: `initialize` writes 0, their meta-gradient is 0 (so no optimizer
/// moves them), and a meta-step refuses meta-parameters whose context is not 0. Each task's
/// meta-gradient is clamped to [−task_clip, task_clip] before the tasks are averaged (the
/// authors clamp to ±10).
///
/// With `ContextStart::support` each task's context starts instead from its support set, as
/// the seed document writes task parameters (φ_t = W_φ x_t + b_φ):
///   φ₀ = W_s s + b_s,   s = the mean of the support set's [x; y] columns,
/// with W_s and b_s meta-learned after θ (meta-parameters [θ; W_s; b_s], W_s column-major);
/// their meta-gradient is ∂ℒ/∂φ₀ sᵀ and ∂ℒ/∂φ₀ (docs/derivations.md, "CAVIA").

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/inner_loop.hpp>
#include <metalearn/model.hpp>
#include <metalearn/optim/clip.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

/// Where CAVIA starts each task's context.
enum class ContextStart {
  zero,    ///< φ₀ = 0 (the authors' CAVIA)
  support  ///< φ₀ = W_s s + b_s from the support set's mean [x; y] (regression batches)
};

/// Options of `Cavia` (defaults: the authors' for sine regression).
struct CaviaOptions {
  double inner_lr = 1.0;             ///< α (finite, > 0) of the context's inner steps
  int inner_steps = 1;               ///< K (≥ 0; ≥ 1 for second order)
  Order order = Order::second;       ///< meta-gradient
  Clip inner_clip{};                 ///< clipping of each inner gradient (of the context's entries)
  double task_clip = 10;             ///< clamp of each task's meta-gradient entries (≥ 0; 0: off)
  std::vector<double> step_weights;  ///< w_1…w_K of the query losses after each step; empty: only w_K = 1
  int threads = 1;                   ///< workers for the tasks of a meta-batch (≥ 1)
  ContextStart context_start = ContextStart::zero;  ///< the context's start in each task
  Index summary_size = 0;  ///< support start: d, the rows of x plus the rows of y (≥ 1)
};

/// CAVIA for a model type `M` with a parameter group named "context" (an nn::Context): an
/// algorithm (meta/algorithm.hpp) whose inner loop adapts the context only.
template <class M>
class Cavia : public detail::GradientInnerLoop<Cavia<M>, M> {
  using Base = detail::GradientInnerLoop<Cavia<M>, M>;

 public:
  using typename Base::Batch;
  using typename Base::Model;
  using typename Base::Scalar;
  using typename Base::Task;
  using typename Base::Workspace;
  /// The algorithm's name in messages and checkpoints.
  static constexpr const char* name = "Cavia";

  /// Checks the options and finds the context (throws `invalid_argument` for a bad option or a
  /// model without a "context" group).
  explicit Cavia(M model, CaviaOptions options = {})
      : Base(checked(model, options), options.threads, model.parameter_count() + start_count(model, options)),
        options_(std::move(options)),
        settings_{options_.order, options_.inner_steps, options_.inner_clip, options_.step_weights},
        context_(find_context(this->model())),
        alpha_(static_cast<Scalar>(options_.inner_lr)),
        start_(start_count(this->model(), options_)) {}

  /// The options.
  const CaviaOptions& options() const { return options_; }
  /// The context's group (its offset and size in the meta-parameters).
  const ParameterGroup& context() const { return context_.front(); }
  /// Draws θ with the model's initialisation; the context φ₀ = 0; W_s = 0 and b_s = 0 (the
  /// support start begins as CAVIA's zero start).
  void initialize(VectorRef<Scalar> theta, Rng& rng) const {
    metalearn::detail::check_size("Cavia::initialize", "theta", theta.size(), this->parameter_count());
    const Index p = this->model_parameters();
    this->model().initialize(theta.head(p), rng);
    theta.segment(context().offset, context().size).setZero();
    theta.tail(theta.size() - p).setZero();
  }

  /// "Cavia(order 2, inner_steps 1, inner_lr 1, context 5, task_clip 10, …) on <model>".
  std::string describe() const {
    std::string loop = detail::describe_inner_loop(options_.order, options_.inner_steps, options_.inner_clip,
                                                   options_.step_weights);
    const std::string steps = "inner_steps " + std::to_string(options_.inner_steps);
    loop.insert(loop.find(steps) + steps.size(),
                ", inner_lr " + detail::shortest(options_.inner_lr) + ", context " + std::to_string(context().size) +
                    (options_.context_start == ContextStart::support
                         ? " from the support set (summary " + std::to_string(options_.summary_size) + ")"
                         : std::string()) +
                    ", task_clip " + detail::shortest(options_.task_clip));
    return "Cavia(" + loop + ") on " + describe_model(this->model());
  }

  /// The mean meta-loss and meta-gradient (meta/inner_loop.hpp); throws `invalid_argument` with
  /// `grad` unchanged when the context entries of `meta` are not 0.
  template <class Tasks>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> meta, const Tasks& tasks, VectorRef<Scalar> grad) {
    check_context(meta);
    return Base::meta_loss_and_gradient(meta, tasks, grad);
  }
  /// The same with the tasks drawn as they are needed.
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> meta, Tasks& tasks, VectorRef<Scalar> grad, Fill&& fill) {
    check_context(meta);
    return Base::meta_loss_and_gradient(meta, tasks, grad, std::forward<Fill>(fill));
  }

  // --- the inner loop's side (meta/inner_loop.hpp) -----------------------------------------

  /// The inner loop's settings (the options').
  const detail::InnerLoopSettings& settings() const { return settings_; }
  /// The support start's W_s and b_s (c d + c), or none.
  Index extra_count() const { return start_; }
  /// Every step: α on the context, the rest frozen.
  detail::StepRates<Scalar> rates(const Scalar*, int) const {
    detail::StepRates<Scalar> r;
    r.kind = detail::StepRates<Scalar>::Kind::groups;
    r.groups = &context_;
    r.masked = true;
    r.values = &alpha_;
    return r;
  }
  /// θ₀ with the support start's context φ₀ = W_s s + b_s (false for the zero start: θ₀ = θ).
  /// Throws `invalid_argument` for a support set whose [x; y] does not have summary_size rows
  /// or has a non-finite entry, `numerical_error` for a non-finite φ₀.
  bool task_start(const Scalar* meta, const Batch& support, VectorRef<Scalar> theta0) const {
    if (options_.context_start == ContextStart::zero) return false;
    if constexpr (kSummary) {
      const Index p = this->model_parameters(), c = context().size, d = options_.summary_size;
      const Index dx = support.inputs.rows();
      if (dx + support.targets.rows() != d)
        detail::fail("Cavia's support start", "the support set's [x; y] has ", dx, " + ", support.targets.rows(),
                     " rows, expected summary_size = ", d);
      theta0 = Eigen::Map<const Vector<Scalar>>(meta, p);
      auto phi = theta0.segment(context().offset, c);
      phi = Eigen::Map<const Vector<Scalar>>(meta + p + c * d, c);  // b_s
      for (Index i = 0; i < d; ++i)                                  // + W_s s
        phi += Eigen::Map<const Vector<Scalar>>(meta + p + c * i, c) * summary(support, i);
      if (!detail::all_finite(phi)) {
        if (!detail::all_finite(support.inputs) || !detail::all_finite(support.targets))
          detail::fail("Cavia's support start", "the support set has a non-finite entry");
        throw numerical_error("metalearn: Cavia's support start: the initial context W_s s + b_s is not finite");
      }
      return true;
    } else {
      (void)meta, (void)support, (void)theta0;
      return false;  // refused by the constructor
    }
  }
  /// From ∂ℒ/∂θ₀ in grad's head: ∂ℒ/∂W_s = ∂ℒ/∂φ₀ sᵀ, ∂ℒ/∂b_s = ∂ℒ/∂φ₀ (support start).
  void task_start_gradient(const Scalar*, const Batch& support, VectorRef<Scalar> grad) const {
    if (options_.context_start == ContextStart::zero) return;
    if constexpr (kSummary) {
      const Index p = this->model_parameters(), c = context().size, d = options_.summary_size;
      const auto u = grad.segment(context().offset, c);  // ∂ℒ/∂φ₀
      for (Index i = 0; i < d; ++i) grad.segment(p + c * i, c) = u * summary(support, i);  // ∂ℒ/∂W_s = u sᵀ
      grad.segment(p + c * d, c) = u;                                                     // ∂ℒ/∂b_s = u
    } else {
      (void)support, (void)grad;
    }
  }
  /// A task's meta-gradient: 0 for φ₀ (reset for every task, not learned), then clamped.
  void finish_task_gradient(VectorRef<Scalar> grad) const {
    grad.segment(context().offset, context().size).setZero();
    if (options_.task_clip > 0) {
      const auto c = static_cast<Scalar>(options_.task_clip);
      grad = grad.cwiseMax(-c).cwiseMin(c);
    }
  }

 private:
  static const M& checked(const M& model, const CaviaOptions& options) {
    constexpr const char* where = "Cavia";
    detail::check_positive(where, "inner_lr", options.inner_lr);
    detail::check_non_negative(where, "task_clip", options.task_clip);
    detail::check_inner_loop(where, {options.order, options.inner_steps, options.inner_clip, options.step_weights},
                             options.threads, model);
    if (options.context_start != ContextStart::zero && options.context_start != ContextStart::support)
      detail::fail(where, "context_start must be ContextStart::zero or ContextStart::support, got ",
                   static_cast<int>(options.context_start));
    if (options.context_start == ContextStart::support) {
      if (!kSummary)
        detail::fail(where, "context_start support summarises [x; y] and needs real-valued targets (a regression "
                            "batch); this model's targets are not a matrix");
      if (options.summary_size < 1)
        detail::fail(where, "context_start support needs summary_size >= 1 (the rows of x plus the rows of y), got ",
                     options.summary_size);
    }
    return model;
  }

  // The support start's parameters W_s (c × d) and b_s (c), or 0.
  static Index start_count(const M& model, const CaviaOptions& options) {
    if (options.context_start != ContextStart::support) return 0;
    const Index c = find_context(model).front().size;
    return c * options.summary_size + c;
  }

  // Whether the batch's targets are a matrix, so that [x; y] can be summarised.
  static constexpr bool kSummary = std::is_same_v<std::decay_t<decltype(std::declval<Batch>().targets)>, Matrix<Scalar>>;

  // s_i, entry i of the mean of the support set's [x; y] columns.
  static Scalar summary(const Batch& support, Index i) {
    const Index dx = support.inputs.rows();
    const Scalar n = static_cast<Scalar>(support.size());
    return (i < dx ? support.inputs.row(i).sum() : support.targets.row(i - dx).sum()) / n;
  }

  static std::vector<ParameterGroup> find_context(const M& model) {
    const std::vector<ParameterGroup> groups = parameter_groups(model);
    for (const ParameterGroup& g : groups)
      if (g.name == "context") {
        if (g.offset + g.size == model.parameter_count() && groups.size() == 1)
          detail::fail("Cavia", "the context is all of the model's parameters: there is nothing to meta-learn");
        return {g};
      }
    detail::fail("Cavia", "the model has no parameter group named 'context' (wrap it in nn::Context)");
  }

  void check_context(ConstVectorRef<Scalar> meta) const {
    if (meta.size() != this->parameter_count()) return;  // the engine reports the size
    const auto phi0 = meta.segment(context().offset, context().size);
    if (!(phi0.array() == Scalar(0)).all())
      detail::fail("Cavia", "the context entries of the meta-parameters (", context().offset, " to ",
                   context().offset + context().size - 1, ") must be 0, CAVIA's phi_0; got a nonzero entry");
  }

  CaviaOptions options_;
  detail::InnerLoopSettings settings_;
  std::vector<ParameterGroup> context_;
  Scalar alpha_;
  Index start_;  // the support start's parameters (c d + c), or 0
};

}  // namespace metalearn
