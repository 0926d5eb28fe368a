#pragma once
/// @file
/// @brief Context parameters (CAVIA, Zintgraf et al. 2019): a vector φ ∈ ℝᶜ appended to every
/// input of a batch. Appending φ to the input x of a first layer W [x; φ] + b is the same as
/// adding W_φ φ to its bias, so the adaptor keeps the model's passes on the original inputs
/// and shifts one bias group:
///   θ_ctx = [θ; W_φ; φ],   L(θ_ctx) = ℓ(θ'),   θ' = θ with b ← b + W_φ φ,
/// with W_φ (n × c, column-major) learned beside θ and φ the part CAVIA's inner loop adapts.
/// Its derivatives follow from the inner model's at θ' (g' = ∇ℓ, u = ∇²ℓ v'):
///   ∇_θ = g',  ∇_{W_φ} = g'_b φᵀ,  ∇_φ = W_φᵀ g'_b;
///   H v, with v' = v_θ + (V_φ φ + W_φ v_φ) in the b slot:
///   [u;  u_b φᵀ + g'_b v_φᵀ;  W_φᵀ u_b + V_φᵀ g'_b]      (docs/derivations.md, "CAVIA").
/// When M can take that bias apart from θ (nn::Objective's `BiasReplacement`), θ' is never
/// built: M's passes read θ's own entries and the n shifted biases, and a product whose
/// direction is φ's alone (v' = W_φ v_φ in the b slot: CAVIA's inner loop) skips every
/// product with M's V.

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/nn/bias_replacement.hpp>

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::nn {

namespace detail {
template <class M, class = void>
struct has_bias_replacement : std::false_type {};
template <class M>
struct has_bias_replacement<M, std::void_t<decltype(std::declval<const M&>().bias_layer(Index{}))>> : std::true_type {};
template <class M, class = void>
struct has_describe : std::false_type {};
template <class M>
struct has_describe<M, std::void_t<decltype(std::declval<const M&>().describe())>> : std::true_type {};
}  // namespace detail

/// A model `M` (metalearn/model.hpp) with `c` context parameters fed to every example, as an
/// input appended to each column: a model of the contract itself, whose θ is M's θ, then W_φ
/// (the first layer's weights of the context inputs), then φ. The groups are M's, then
/// "context W" and "context".
template <class M>
class Context {
  static_assert(check_model<M>());
  static constexpr bool kHvp = model_traits<M>::has_hessian_vector_product;
  static constexpr bool kCached = model_traits<M>::has_cached_hessian_vector_product;
  static constexpr bool kReplace = detail::has_bias_replacement<M>::value;

 public:
  using Scalar = typename M::Scalar;  ///< float or double
  using Batch = typename M::Batch;    ///< M's batch (without the context: the adaptor adds it)

  /// M's workspace and the adaptor's vectors (θ', v', the shifted bias b + W_φ φ, the bias part
  /// W_φ v_φ of a direction of φ alone, and g'_b of the last gradient pass), grown on first use.
  struct Workspace {
    typename M::Workspace inner{};
    Vector<Scalar> theta, v, bias, direction, gb;
  };

  /// `model` with `context` (≥ 1) parameters shifting the bias group named `bias` (for
  /// nn::Objective the first layer's, "layer 1 b"). Throws `invalid_argument` for c < 1 or a
  /// model without that group.
  Context(M model, Index context, const std::string& bias = "layer 1 b")
      : model_(std::move(model)), c_(context) {
    constexpr const char* where = "nn::Context";
    if (context < 1) metalearn::detail::fail(where, "the context size must be >= 1, got ", context);
    const std::vector<ParameterGroup> groups = metalearn::parameter_groups(model_);
    std::string known;
    for (const ParameterGroup& g : groups) {
      if (g.name == bias) {
        b_off_ = g.offset;
        n_ = g.size;
      }
      known += (known.empty() ? "'" : ", '") + g.name + "'";
    }
    if (n_ == 0) metalearn::detail::fail(where, "the model has no parameter group '", bias, "'; its groups are ", known);
    p_ = model_.parameter_count();
    if constexpr (kReplace) {
      layer_ = model_.bias_layer(b_off_);
      bias_directions_ = layer_ >= 0 && model_.supports_bias_directions();
    }
  }

  /// The inner model.
  const M& model() const { return model_; }
  /// c, the length of φ.
  Index context_size() const { return c_; }
  /// Where φ begins in θ_ctx (its last c entries).
  Index context_offset() const { return p_ + n_ * c_; }
  /// P + n c + c.
  Index parameter_count() const { return p_ + n_ * c_ + c_; }

  /// M's initialisation for θ; W_φ ~ U(−a, a), a = √(6 / (n + c)) (Glorot over the context's
  /// fan-in and the layer's width); φ = 0.
  void initialize(VectorRef<Scalar> theta, Rng& rng) const {
    metalearn::detail::check_size("nn::Context::initialize", "theta", theta.size(), parameter_count());
    model_.initialize(theta.head(p_), rng);
    const double a = std::sqrt(6.0 / static_cast<double>(n_ + c_));
    for (Index i = 0; i < n_ * c_; ++i) theta[p_ + i] = static_cast<Scalar>(rng.uniform(-a, a));
    theta.tail(c_).setZero();
  }

  /// M's groups, then "context W" (W_φ) and "context" (φ).
  std::vector<ParameterGroup> parameter_groups() const {
    std::vector<ParameterGroup> groups = metalearn::parameter_groups(model_);
    groups.push_back({"context W", p_, n_ * c_});
    groups.push_back({"context", context_offset(), c_});
    return groups;
  }

  /// "<M's description> + context 5 on layer 1 b".
  std::string describe() const {
    std::string inner = "model with " + std::to_string(p_) + " parameters";
    if constexpr (detail::has_describe<M>::value) inner = model_.describe();
    return inner + " + context " + std::to_string(c_);
  }

  /// L(θ_ctx) and its gradient.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad,
                           Workspace& ws) const {
    return gradient(theta, batch, grad, ws, nullptr);
  }

  /// The same for a θ_ctx that one of the library's algorithms has checked (model.hpp,
  /// FiniteThetaKey), passed on to M.
  Scalar loss_and_gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                           FiniteThetaKey key) const {
    return gradient(theta, batch, grad, ws, &key);
  }

  /// ∇²L(θ_ctx) v (when M has an exact Hessian-vector product).
  template <class MM = M, std::enable_if_t<model_traits<MM>::has_hessian_vector_product, int> = 0>
  void hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, ConstVectorRef<Scalar> v,
                              VectorRef<Scalar> hv, Workspace& ws) const {
    constexpr const char* where = "nn::Context::hessian_vector_product";
    metalearn::detail::check_size(where, "v", v.size(), parameter_count());
    metalearn::detail::check_size(where, "hv", hv.size(), parameter_count());
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    shifted(theta, ws);
    model_.loss_and_gradient(ws.theta, batch, hv.head(p_), ws.inner);  // g' in hv's head (the product needs g'_b)
    ws.gb = hv.segment(b_off_, n_);
    direction(theta, v, ws);
    model_.hessian_vector_product(ws.theta, batch, ws.v, hv.head(p_), ws.inner);  // u = ∇²ℓ(θ') v'
    assemble(theta, v, hv, ws);
  }
  // (The uncached product builds θ': M's full product has no bias replacement.)

  /// The same reusing the last gradient pass in `ws` (θ and the batch unchanged since), with
  /// M's cached product; called by the library's algorithms only (CachedPassKey).
  template <class MM = M, std::enable_if_t<model_traits<MM>::has_cached_hessian_vector_product, int> = 0>
  void cached_hessian_vector_product(ConstVectorRef<Scalar> theta, const Batch& batch, ConstVectorRef<Scalar> v,
                                     VectorRef<Scalar> hv, Workspace& ws, CachedPassKey key) const {
    if constexpr (kReplace) {
      if (layer_ >= 0) {  // the gradient pass ran at θ's own entries with the shifted bias
        const Index m = p_ + n_ * c_;
        if (bias_directions_ && v.head(m).cwiseAbs().sum() == Scalar(0)) {  // v = [0; 0; v_φ]: v' = W_φ v_φ in b
          if (ws.direction.size() != n_) ws.direction.resize(n_);
          ws.direction.noalias() = weights_of(theta) * v.tail(c_);
          const BiasReplacement<Scalar> d{layer_, ws.direction.data()};
          model_.cached_hessian_vector_product(theta.head(p_), batch, d, hv.head(p_), ws.inner, key);  // u = ∇²ℓ(θ') v'
        } else {
          direction(theta, v, ws);
          model_.cached_hessian_vector_product(theta.head(p_), batch, ws.v, hv.head(p_), ws.inner, key);
        }
        assemble(theta, v, hv, ws);
        return;
      }
    }
    direction(theta, v, ws);
    model_.cached_hessian_vector_product(ws.theta, batch, ws.v, hv.head(p_), ws.inner, key);  // u = ∇²ℓ(θ') v'
    assemble(theta, v, hv, ws);
  }

  /// M's outputs for `inputs` at θ' (the context appended to every column).
  template <class MM = M, std::enable_if_t<model_traits<MM>::has_predict, int> = 0>
  void predict(ConstVectorRef<Scalar> theta, ConstMatrixRef<Scalar> inputs, MatrixRef<Scalar> outputs,
               Workspace& ws) const {
    metalearn::detail::check_size("nn::Context::predict", "theta", theta.size(), parameter_count());
    shifted(theta, ws);
    model_.predict(ws.theta, inputs, outputs, ws.inner);
  }

 private:
  using WeightsMap = Eigen::Map<Matrix<Scalar>>;
  using ConstWeightsMap = Eigen::Map<const Matrix<Scalar>>;
  WeightsMap weights_of(VectorRef<Scalar> x) const { return WeightsMap(x.data() + p_, n_, c_); }
  ConstWeightsMap weights_of(ConstVectorRef<Scalar> x) const { return ConstWeightsMap(x.data() + p_, n_, c_); }

  // L and ∇L (checking θ_ctx unless a key says it is checked).
  Scalar gradient(ConstVectorRef<Scalar> theta, const Batch& batch, VectorRef<Scalar> grad, Workspace& ws,
                  const FiniteThetaKey* key) const {
    constexpr const char* where = "nn::Context::loss_and_gradient";
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "grad", grad.size(), parameter_count());
    Scalar loss = 0;
    bool replaced = false;
    if constexpr (kReplace) {
      if (layer_ >= 0) {  // ℓ(θ') from θ's entries and b + W_φ φ, no copy of θ
        if (ws.bias.size() != n_) ws.bias.resize(n_);
        ws.bias = theta.segment(b_off_, n_);
        ws.bias.noalias() += weights_of(theta) * theta.tail(c_);  // b + W_φ φ
        const BiasReplacement<Scalar> b{layer_, ws.bias.data()};
        loss = key ? model_.loss_and_gradient(theta.head(p_), batch, grad.head(p_), ws.inner, b, *key)
                   : model_.loss_and_gradient(theta.head(p_), batch, grad.head(p_), ws.inner, b);
        replaced = true;
      }
    }
    if (!replaced) {
      shifted(theta, ws);
      loss = model_.loss_and_gradient(ws.theta, batch, grad.head(p_), ws.inner);  // ℓ(θ'), ∇_θ = g' (θ' checked)
    }
    ws.gb = grad.segment(b_off_, n_);                                  // g'_b, for a cached product
    weights_of(grad).noalias() = ws.gb * theta.tail(c_).transpose();  // ∇_{W_φ} = g'_b φᵀ
    grad.tail(c_).noalias() = weights_of(theta).transpose() * ws.gb;   // ∇_φ = W_φᵀ g'_b
    return loss;
  }

  // ws.theta = θ' (θ with b + W_φ φ)
  void shifted(ConstVectorRef<Scalar> theta, Workspace& ws) const {
    if (ws.theta.size() != p_) ws.theta.resize(p_);
    ws.theta = theta.head(p_);
    ws.theta.segment(b_off_, n_).noalias() += weights_of(theta) * theta.tail(c_);  // b + W_φ φ
  }
  // ws.v = v' = v_θ + (V_φ φ + W_φ v_φ) in the b slot
  void direction(ConstVectorRef<Scalar> theta, ConstVectorRef<Scalar> v, Workspace& ws) const {
    if (ws.v.size() != p_) ws.v.resize(p_);
    ws.v = v.head(p_);
    ws.v.segment(b_off_, n_).noalias() += weights_of(v) * theta.tail(c_);  // + V_φ φ
    ws.v.segment(b_off_, n_).noalias() += weights_of(theta) * v.tail(c_);  // + W_φ v_φ
  }
  // hv from u = ∇²ℓ v' (already in hv's head) and g'_b (ws.gb)
  void assemble(ConstVectorRef<Scalar> theta, ConstVectorRef<Scalar> v, VectorRef<Scalar> hv, Workspace& ws) const {
    const auto ub = hv.segment(b_off_, n_);
    auto hw = weights_of(hv);
    hw.noalias() = ub * theta.tail(c_).transpose();                  // u_b φᵀ
    hw.noalias() += ws.gb * v.tail(c_).transpose();                  // + g'_b v_φᵀ
    hv.tail(c_).noalias() = weights_of(theta).transpose() * ub;      // W_φᵀ u_b
    hv.tail(c_).noalias() += weights_of(v).transpose() * ws.gb;      // + V_φᵀ g'_b
  }

  M model_;
  Index c_ = 0, p_ = 0, b_off_ = 0, n_ = 0;
  Index layer_ = -1;              // M's layer whose bias the context shifts, when M can take it apart
  bool bias_directions_ = false;  // and M's cached product takes a direction of that bias alone
};

}  // namespace metalearn::nn
