#pragma once
/// @file
/// @brief THE CONTRACT: what a differentiable model must provide to be meta-trained, the
/// traits that detect it, the compile-time checks that explain what is missing, and the
/// forms the library derives from it.
///
/// A model is a stateless description of a function L(θ; batch) of a flat parameter vector
/// θ; it never owns θ. metalearn's networks (`nn::Objective`) are models, and so is any type
/// of yours with these members (`Scalar` is float or double):
///
/// @code
/// struct ExampleModel {
///   using Scalar = double;              // required
///   using Batch = MyBatch;              // required; must have `Index size() const` (examples)
///   using Workspace = MyWorkspace;      // required; default-constructible scratch memory,
///                                       // one per thread, that may grow on first use
///
///   // required: the length of θ
///   metalearn::Index parameter_count() const;
///   // required: draw θ (all entries) from the seeded engine
///   void initialize(metalearn::VectorRef<Scalar> theta, metalearn::Rng& rng) const;
///   // required: return L(θ; batch) and assign ∇_θ L to grad (all entries); throw
///   // metalearn::invalid_argument on bad input before writing anything
///   Scalar loss_and_gradient(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                            metalearn::VectorRef<Scalar> grad, Workspace& ws) const;
///
///   // optional: L(θ; batch) alone (derived from loss_and_gradient when absent)
///   Scalar loss(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch, Workspace& ws) const;
///   // optional: assign the exact ∇²_θ L(θ; batch) · v to hv (needed by exact second-order
///   // MAML; without it, choose Order::second_finite_difference explicitly)
///   void hessian_vector_product(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                               metalearn::ConstVectorRef<Scalar> v,
///                               metalearn::VectorRef<Scalar> hv, Workspace& ws) const;
///   // optional: the same product, reusing the state that the last loss_and_gradient(θ, batch,
///   // ·, ws) left in ws; repeatable. Correct only while θ and the batch are unchanged since
///   // that pass, which the library's algorithms guarantee and a caller could not check: only
///   // they can construct the CachedPassKey, so nothing else can call it. Maml's exact second
///   // order uses it to skip recomputing the inner steps' forward passes.
///   void cached_hessian_vector_product(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                                      metalearn::ConstVectorRef<Scalar> v,
///                                      metalearn::VectorRef<Scalar> hv, Workspace& ws,
///                                      metalearn::CachedPassKey) const;
///   // optional: loss_and_gradient for a θ that the caller has proved finite, so that the
///   // model may skip its own O(P) finiteness check of θ (inputs are still checked). Only the
///   // library's algorithms can construct the FiniteThetaKey: they check θ once per meta-step
///   // and each inner iterate as they compute it, instead of once per task and step.
///   Scalar loss_and_gradient(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                            metalearn::VectorRef<Scalar> grad, Workspace& ws,
///                            metalearn::FiniteThetaKey) const;
///   // optional, all four together: passes with a frozen prefix θ[0, offset) — the layers an
///   // algorithm does not adapt (ANIL) — so that its inner loop need not recompute or
///   // differentiate them. `supports_frozen_prefix(offset)` says whether the model can split θ
///   // there. The keyed gradient pass assigns grad[offset, P) (the rest is left as it is) and,
///   // when prefix.reuse(), starts from the frozen layers' activations of the workspace's last
///   // pass on this batch, whose θ[0, offset) was the same. The keyed cached product is that of
///   // cached_hessian_vector_product for a v that is zero on [0, offset) (those entries are not
///   // read): all of H v, or with prefix.defer() only hv[offset, P), the frozen part being
///   // added up in the workspace until deferred_frozen_product assigns their sum's frozen part
///   // to out[0, offset) (the products' frozen parts are linear in one vector at the boundary,
///   // so K products cost one backward pass of the frozen layers there).
///   // Only the library's algorithms can construct a FrozenPrefix (it carries their promises).
///   bool supports_frozen_prefix(metalearn::Index offset) const;
///   Scalar loss_and_gradient(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                            metalearn::VectorRef<Scalar> grad, Workspace& ws,
///                            metalearn::FrozenPrefix prefix) const;
///   void cached_hessian_vector_product(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                                      metalearn::ConstVectorRef<Scalar> v,
///                                      metalearn::VectorRef<Scalar> hv, Workspace& ws,
///                                      metalearn::CachedPassKey, metalearn::FrozenPrefix prefix) const;
///   void deferred_frozen_product(metalearn::ConstVectorRef<Scalar> theta, const Batch& batch,
///                                metalearn::VectorRef<Scalar> out, Workspace& ws,
///                                metalearn::FrozenPrefix prefix) const;
///   // optional: outputs for inputs (used by evaluation helpers and examples)
///   void predict(metalearn::ConstVectorRef<Scalar> theta, metalearn::ConstMatrixRef<Scalar> inputs,
///                metalearn::MatrixRef<Scalar> outputs, Workspace& ws) const;
///   // optional: named ranges of θ that tile it (nn::Objective: each layer's W and b), for
///   // algorithms that learn per-group rates or adapt only some groups; without it, θ is one
///   // group ("theta")
///   std::vector<metalearn::ParameterGroup> parameter_groups() const;
/// };
/// @endcode
///
/// **Copies and threads.** Algorithms keep a copy of the model (it must be copy-constructible:
/// a cheap description, never the owner of θ), and with threads > 1 they call its const
/// members concurrently, each thread with its own Workspace. All mutable state therefore
/// belongs in the Workspace: a `mutable` cache inside the model would be written by several
/// threads at once (a data race), and the results would depend on the thread count.
///
/// The parameter types are exactly these `Eigen::Ref` aliases (metalearn/core/types.hpp):
/// the library passes vectors, columns of matrices and maps through them without copies.
/// `examples/custom_model.cpp` is a complete model written from scratch; README section
/// "The model contract" walks through it.

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

/// A named range [offset, offset + size) of θ (a layer's weights, its biases).
struct ParameterGroup {
  std::string name;  ///< e.g. "layer 2 W"
  Index offset = 0;  ///< first entry in θ
  Index size = 0;    ///< number of entries (> 0)
};

namespace detail {
struct KeyIssuer;
}  // namespace detail

/// Permission to call a model's `cached_hessian_vector_product`, which reuses the state of the
/// last gradient pass and is therefore right only while θ and the batch are unchanged since
/// that pass — a condition no check can make cheap (θ modified in place keeps its address). The
/// library's algorithms, which hold θ_k and the batches fixed through the reverse sweep, issue
/// it; other code cannot construct one and calls `hessian_vector_product` instead.
class CachedPassKey {
  constexpr CachedPassKey() {}  // user-provided: not an aggregate, so `CachedPassKey{}` is refused too
  friend struct detail::KeyIssuer;
};

/// The caller's proof that θ is finite, passed to a model's keyed `loss_and_gradient`, which may
/// then skip its own check of θ. The library's algorithms issue it after checking θ once per
/// meta-step (and each inner iterate as they compute it); other code cannot construct one, so
/// every θ a program passes is checked by the model.
class FiniteThetaKey {
  constexpr FiniteThetaKey() {}  // as CachedPassKey: `FiniteThetaKey{}` is refused outside the issuer
  friend struct detail::KeyIssuer;
};

/// The frozen prefix θ[0, offset) of a model's frozen-prefix passes (see the contract above),
/// with the caller's promises: θ is finite, and, when `reuse()`, the workspace's last pass on
/// this batch had the same θ[0, offset), so the frozen layers' activations may be reused;
/// `defer()` asks a cached product to leave its frozen part to `deferred_frozen_product`. The
/// library's algorithms issue it (ANIL's inner loop); other code cannot construct one.
class FrozenPrefix {
 public:
  /// The first entry of θ that is not frozen.
  constexpr Index offset() const { return offset_; }
  /// The workspace holds the frozen layers' activations for this batch.
  constexpr bool reuse() const { return reuse_; }
  /// A cached product adds its frozen part up in the workspace instead of assigning it.
  constexpr bool defer() const { return defer_; }

 private:
  constexpr FrozenPrefix(Index offset, bool reuse, bool defer) : offset_(offset), reuse_(reuse), defer_(defer) {}
  Index offset_;
  bool reuse_;
  bool defer_;
  friend struct detail::KeyIssuer;
};

namespace detail {
/// Issues the keys: for the library's algorithms (and its own tests and benchmarks), not for
/// programs that use it.
struct KeyIssuer {
  static constexpr CachedPassKey cached_pass() { return CachedPassKey{}; }
  static constexpr FiniteThetaKey finite_theta() { return FiniteThetaKey{}; }
  static constexpr FrozenPrefix frozen_prefix(Index offset, bool reuse, bool defer = false) {
    return FrozenPrefix(offset, reuse, defer);
  }
};

template <class M, class = void>
struct model_scalar {
  using type = double;  // placeholder so that the other traits can be evaluated
};
template <class M>
struct model_scalar<M, std::void_t<typename M::Scalar>> {
  using type = typename M::Scalar;
};
template <class M, class = void>
struct model_batch {
  struct type {};
};
template <class M>
struct model_batch<M, std::void_t<typename M::Batch>> {
  using type = typename M::Batch;
};
template <class M, class = void>
struct model_workspace {
  struct type {};
};
template <class M>
struct model_workspace<M, std::void_t<typename M::Workspace>> {
  using type = typename M::Workspace;
};

template <class M>
using S_ = typename model_scalar<M>::type;
template <class M>
using B_ = typename model_batch<M>::type;
template <class M>
using W_ = typename model_workspace<M>::type;

template <class M, class = void>
struct has_parameter_count : std::false_type {};
template <class M>
struct has_parameter_count<M, std::enable_if_t<std::is_convertible_v<
                                  decltype(std::declval<const M&>().parameter_count()), Index>>> : std::true_type {};

template <class M, class = void>
struct has_initialize : std::false_type {};
template <class M>
struct has_initialize<M, std::void_t<decltype(std::declval<const M&>().initialize(
                             std::declval<VectorRef<S_<M>>>(), std::declval<Rng&>()))>> : std::true_type {};

// The result of M's loss_and_gradient(θ, batch, grad, ws, extra...): the plain and the keyed pass.
template <class M, class... Extra>
using loss_and_gradient_t = decltype(std::declval<const M&>().loss_and_gradient(
    std::declval<ConstVectorRef<S_<M>>>(), std::declval<const B_<M>&>(), std::declval<VectorRef<S_<M>>>(),
    std::declval<W_<M>&>(), std::declval<Extra>()...));

template <class M, class = void>
struct has_loss_and_gradient : std::false_type {};
template <class M>
struct has_loss_and_gradient<M, std::enable_if_t<std::is_convertible_v<loss_and_gradient_t<M>, S_<M>>>>
    : std::true_type {};

template <class M, class = void>
struct has_loss : std::false_type {};
template <class M>
struct has_loss<M, std::enable_if_t<std::is_convertible_v<
                       decltype(std::declval<const M&>().loss(std::declval<ConstVectorRef<S_<M>>>(),
                                                              std::declval<const B_<M>&>(), std::declval<W_<M>&>())),
                       S_<M>>>> : std::true_type {};

template <class M, class = void>
struct has_hessian_vector_product : std::false_type {};
template <class M>
struct has_hessian_vector_product<
    M, std::void_t<decltype(std::declval<const M&>().hessian_vector_product(
           std::declval<ConstVectorRef<S_<M>>>(), std::declval<const B_<M>&>(),
           std::declval<ConstVectorRef<S_<M>>>(), std::declval<VectorRef<S_<M>>>(), std::declval<W_<M>&>()))>>
    : std::true_type {};

template <class M, class = void>
struct has_cached_hessian_vector_product : std::false_type {};
template <class M>
struct has_cached_hessian_vector_product<
    M, std::void_t<decltype(std::declval<const M&>().cached_hessian_vector_product(
           std::declval<ConstVectorRef<S_<M>>>(), std::declval<const B_<M>&>(),
           std::declval<ConstVectorRef<S_<M>>>(), std::declval<VectorRef<S_<M>>>(), std::declval<W_<M>&>(),
           KeyIssuer::cached_pass()))>> : std::true_type {};

template <class M, class = void>
struct has_finite_theta_loss_and_gradient : std::false_type {};
template <class M>
struct has_finite_theta_loss_and_gradient<
    M, std::enable_if_t<std::is_convertible_v<loss_and_gradient_t<M, FiniteThetaKey>, S_<M>>>> : std::true_type {};

template <class M, class = void>
struct has_frozen_prefix : std::false_type {};
template <class M>
struct has_frozen_prefix<
    M, std::enable_if_t<
           std::is_convertible_v<decltype(std::declval<const M&>().supports_frozen_prefix(Index{})), bool> &&
           std::is_convertible_v<loss_and_gradient_t<M, FrozenPrefix>, S_<M>> &&
           std::is_void_v<decltype(std::declval<const M&>().cached_hessian_vector_product(
               std::declval<ConstVectorRef<S_<M>>>(), std::declval<const B_<M>&>(),
               std::declval<ConstVectorRef<S_<M>>>(), std::declval<VectorRef<S_<M>>>(), std::declval<W_<M>&>(),
               KeyIssuer::cached_pass(), KeyIssuer::frozen_prefix(0, false)))> &&
           std::is_void_v<decltype(std::declval<const M&>().deferred_frozen_product(
               std::declval<ConstVectorRef<S_<M>>>(), std::declval<const B_<M>&>(), std::declval<VectorRef<S_<M>>>(),
               std::declval<W_<M>&>(), KeyIssuer::frozen_prefix(0, false)))>>> : std::true_type {};

template <class M, class = void>
struct has_predict : std::false_type {};
template <class M>
struct has_predict<M, std::void_t<decltype(std::declval<const M&>().predict(
                          std::declval<ConstVectorRef<S_<M>>>(), std::declval<ConstMatrixRef<S_<M>>>(),
                          std::declval<MatrixRef<S_<M>>>(), std::declval<W_<M>&>()))>> : std::true_type {};

template <class M, class = void>
struct has_parameter_groups : std::false_type {};
template <class M>
struct has_parameter_groups<M, std::enable_if_t<std::is_convertible_v<
                                   decltype(std::declval<const M&>().parameter_groups()), std::vector<ParameterGroup>>>>
    : std::true_type {};

template <class B, class = void>
struct batch_has_size : std::false_type {};
template <class B>
struct batch_has_size<B, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const B&>().size()), Index>>>
    : std::true_type {};

template <class M, class = void>
struct has_scalar : std::false_type {};
template <class M>
struct has_scalar<M, std::void_t<typename M::Scalar>> : std::true_type {};
template <class M, class = void>
struct has_batch : std::false_type {};
template <class M>
struct has_batch<M, std::void_t<typename M::Batch>> : std::true_type {};
template <class M, class = void>
struct has_workspace : std::false_type {};
template <class M>
struct has_workspace<M, std::void_t<typename M::Workspace>> : std::true_type {};
}  // namespace detail

/// Compile-time facts about a model type M (see the file comment for the contract).
template <class M>
struct model_traits {
  static constexpr bool has_scalar = detail::has_scalar<M>::value;                     ///< M::Scalar
  static constexpr bool has_batch = detail::has_batch<M>::value;                       ///< M::Batch
  static constexpr bool has_workspace = detail::has_workspace<M>::value;               ///< M::Workspace
  static constexpr bool has_parameter_count = detail::has_parameter_count<M>::value;   ///< parameter_count()
  static constexpr bool has_initialize = detail::has_initialize<M>::value;             ///< initialize(θ, rng)
  static constexpr bool has_loss_and_gradient = detail::has_loss_and_gradient<M>::value;  ///< required
  static constexpr bool has_loss = detail::has_loss<M>::value;                          ///< optional
  static constexpr bool has_hessian_vector_product = detail::has_hessian_vector_product<M>::value;  ///< optional
  static constexpr bool has_cached_hessian_vector_product =
      detail::has_cached_hessian_vector_product<M>::value;                               ///< optional
  static constexpr bool has_finite_theta_loss_and_gradient =
      detail::has_finite_theta_loss_and_gradient<M>::value;                              ///< optional
  static constexpr bool has_frozen_prefix = detail::has_frozen_prefix<M>::value;        ///< optional
  static constexpr bool has_predict = detail::has_predict<M>::value;                    ///< optional
  static constexpr bool has_parameter_groups = detail::has_parameter_groups<M>::value;  ///< optional
  /// Every required member is present.
  static constexpr bool is_model = has_scalar && has_batch && has_workspace && has_parameter_count &&
                                   has_initialize && has_loss_and_gradient &&
                                   detail::batch_has_size<detail::B_<M>>::value &&
                                   std::is_default_constructible_v<detail::W_<M>>;
};

/// True when M satisfies the model contract.
template <class M>
inline constexpr bool is_model_v = model_traits<M>::is_model;

/// Compile-time check of the contract, called by every entry point that takes a model: each
/// missing member produces a static_assert naming it. Returns true (for use in static_assert).
template <class M>
constexpr bool check_model() {
  static_assert(detail::has_scalar<M>::value,
                "metalearn: the model type has no member type `Scalar` (float or double). "
                "See README section 'The model contract'.");
  static_assert(!detail::has_scalar<M>::value || is_supported_scalar_v<detail::S_<M>>,
                "metalearn: the model's `Scalar` must be float or double. See README section 'The model contract'.");
  static_assert(detail::has_batch<M>::value,
                "metalearn: the model type has no member type `Batch`. See README section 'The model contract'.");
  static_assert(!detail::has_batch<M>::value || detail::batch_has_size<detail::B_<M>>::value,
                "metalearn: the model's `Batch` has no `Index size() const` (number of examples). "
                "See README section 'The model contract'.");
  static_assert(detail::has_workspace<M>::value,
                "metalearn: the model type has no member type `Workspace` (use `struct Workspace {};` if it needs "
                "none). See README section 'The model contract'.");
  static_assert(!detail::has_workspace<M>::value || std::is_default_constructible_v<detail::W_<M>>,
                "metalearn: the model's `Workspace` must be default-constructible. "
                "See README section 'The model contract'.");
  static_assert(detail::has_parameter_count<M>::value,
                "metalearn: the model has no `Index parameter_count() const`. See README section 'The model contract'.");
  static_assert(detail::has_initialize<M>::value,
                "metalearn: the model has no `void initialize(VectorRef<Scalar> theta, Rng& rng) const`. "
                "See README section 'The model contract'.");
  static_assert(detail::has_loss_and_gradient<M>::value,
                "metalearn: the model has no `Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& "
                "batch, VectorRef<Scalar> grad, Workspace& ws) const`. See README section 'The model contract'.");
  static_assert(std::is_copy_constructible_v<M>,
                "metalearn: the model must be copy-constructible: algorithms keep a copy (a model is a description "
                "and never owns θ; keep buffers in its Workspace). See README section 'The model contract'.");
  return true;
}

/// The model's parameter groups (`parameter_groups()`), or θ as one group "theta" when it has
/// none. Throws `invalid_argument` unless the groups tile [0, parameter_count()) in order,
/// without gaps or overlaps, each non-empty.
template <class M>
std::vector<ParameterGroup> parameter_groups(const M& model) {
  static_assert(check_model<M>());
  const Index p = model.parameter_count();
  std::vector<ParameterGroup> groups;
  if constexpr (model_traits<M>::has_parameter_groups) groups = model.parameter_groups();
  else groups.push_back({"theta", 0, p});
  Index next = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const ParameterGroup& x = groups[g];
    if (x.size <= 0) detail::fail("parameter_groups", "group ", g, " ('", x.name, "') is empty");
    if (x.offset != next)
      detail::fail("parameter_groups", "group ", g, " ('", x.name, "') starts at ", x.offset, ", expected ", next,
                   x.offset < next ? " (it overlaps the previous group)" : " (a gap before it)");
    next = x.offset + x.size;
  }
  if (next != p) detail::fail("parameter_groups", "the groups end at ", next, ", θ has ", p, " entries");
  return groups;
}

/// L(θ; batch): the model's `loss` when it has one, otherwise `loss_and_gradient` into a
/// temporary gradient (which allocates; models used in hot loops should provide `loss`).
template <class M>
typename M::Scalar evaluate_loss(const M& model, ConstVectorRef<typename M::Scalar> theta,
                                 const typename M::Batch& batch, typename M::Workspace& ws) {
  static_assert(check_model<M>());
  if constexpr (model_traits<M>::has_loss) {
    return model.loss(theta, batch, ws);
  } else {
    Vector<typename M::Scalar> scratch(model.parameter_count());
    return model.loss_and_gradient(theta, batch, scratch, ws);
  }
}

/// Assigns ∇_θ L(θ; batch) to grad (the loss value is discarded).
template <class M>
void evaluate_gradient(const M& model, ConstVectorRef<typename M::Scalar> theta, const typename M::Batch& batch,
                       VectorRef<typename M::Scalar> grad, typename M::Workspace& ws) {
  static_assert(check_model<M>());
  model.loss_and_gradient(theta, batch, grad, ws);
}

namespace detail {
/// L(θ; batch), ∇_θ L assigned to grad, for a θ the caller has proved finite: through the
/// model's keyed overload when it has one (which skips its own check of θ), else the plain one.
template <class M>
typename M::Scalar loss_and_gradient_at_finite(const M& model, ConstVectorRef<typename M::Scalar> theta,
                                               const typename M::Batch& batch, VectorRef<typename M::Scalar> grad,
                                               typename M::Workspace& ws) {
  if constexpr (model_traits<M>::has_finite_theta_loss_and_gradient)
    return model.loss_and_gradient(theta, batch, grad, ws, KeyIssuer::finite_theta());
  else
    return model.loss_and_gradient(theta, batch, grad, ws);
}
}  // namespace detail

/// Scratch vectors of `finite_difference_hvp`, sized once for a parameter count.
template <class Scalar>
struct FiniteDifferenceScratch {
  Vector<Scalar> shifted;   ///< θ ± εv
  Vector<Scalar> gradient;  ///< ∇L(θ − εv)

  /// Sizes the vectors for `parameters` entries (allocates only when the size changes).
  void resize(Index parameters) {
    shifted.resize(parameters);
    gradient.resize(parameters);
  }
};

/// Approximate Hessian-vector product by central differences of gradients:
/// H v ≈ (∇L(θ + εv) − ∇L(θ − εv)) / (2ε), with ε = ∛(machine ε) · max(1, ‖θ‖∞) / ‖v‖∞,
/// the step that balances the O(ε²) truncation error against the O(machine ε / ε) rounding
/// error. Costs two gradients; accurate to roughly (machine ε)^(2/3) relative (about 1e-5
/// in float, 1e-11 in double) where L is smooth, and wrong near kinks of ReLU networks.
/// Assigns 0 to hv when v = 0.
template <class M>
void finite_difference_hvp(const M& model, ConstVectorRef<typename M::Scalar> theta, const typename M::Batch& batch,
                           ConstVectorRef<typename M::Scalar> v, VectorRef<typename M::Scalar> hv,
                           typename M::Workspace& ws, FiniteDifferenceScratch<typename M::Scalar>& scratch) {
  static_assert(check_model<M>());
  using S = typename M::Scalar;
  const Index p = model.parameter_count();
  detail::check_size("finite_difference_hvp", "theta", theta.size(), p);
  detail::check_size("finite_difference_hvp", "v", v.size(), p);
  detail::check_size("finite_difference_hvp", "hv", hv.size(), p);
  scratch.resize(p);
  const S vmax = v.cwiseAbs().maxCoeff();
  if (vmax == S(0)) {
    hv.setZero();
    return;
  }
  const S eps = std::cbrt(std::numeric_limits<S>::epsilon()) * std::max(S(1), theta.cwiseAbs().maxCoeff()) / vmax;
  scratch.shifted = theta - eps * v;
  model.loss_and_gradient(scratch.shifted, batch, scratch.gradient, ws);  // ∇L(θ − εv)
  scratch.shifted = theta + eps * v;
  model.loss_and_gradient(scratch.shifted, batch, hv, ws);                // ∇L(θ + εv)
  hv -= scratch.gradient;
  hv /= S(2) * eps;
}

}  // namespace metalearn
