#pragma once
/// @file
/// @brief Dense layer y = f(W x + b): the layer description and its forward, backward and
/// R-passes (internal), which read W and b as views into a flat parameter vector.
///
/// Derivation (one layer l, batch of n columns, A₀ = X, A_l = f(Z_l)):
///   forward     Z_l = W_l A_{l−1} + b_l 1ᵀ
///   backward    δ_l = G_l ⊙ f'(Z_l),  ∇W_l = δ_l A_{l−1}ᵀ,  ∇b_l = δ_l 1,  G_{l−1} = W_lᵀ δ_l
///               where G_l = ∂L/∂A_l (from the loss for the last layer).
/// Pearlmutter's R-operator R{·} = d/dr (·)(θ + r v) at r = 0, with v = (V_l, c_l):
///   R-forward   RZ_l = W_l RA_{l−1} + V_l A_{l−1} + c_l 1ᵀ,   RA_l = f'(Z_l) ⊙ RZ_l,  RA₀ = 0
///   R-backward  Rδ_l = RG_l ⊙ f'(Z_l) + G_l ⊙ f''(Z_l) ⊙ RZ_l
///               (Hv)_{W_l} = Rδ_l A_{l−1}ᵀ + δ_l RA_{l−1}ᵀ,   (Hv)_{b_l} = Rδ_l 1
///               RG_{l−1} = W_lᵀ Rδ_l + V_lᵀ δ_l
///               where RG_L = ∇²_Y L · RA_L (the loss's own Hessian-vector product).
/// The products are fused by keeping each quantity beside its R-twin in one buffer:
///   Z = [Z | RZ], A = [A | RA], G = [RG | G], D = [Rδ | δ]   (n columns each)
/// so that [Z | RZ] = W [A | RA] (+ V A), (Hv)_W = [Rδ | δ] [A | RA]ᵀ and
/// [RG | G] = Wᵀ [Rδ | δ] (+ Vᵀ δ) are each one product over 2n columns.
/// A layer with layer normalisation (nn/layer_norm.hpp) keeps Y = γ ⊙ x̂ + β (and RY) where
/// the others keep Z, so the activation's passes are unchanged; the δ they compute is then
/// G_y, which the normalisation's passes turn into δ_z = J(γ ⊙ G_y) (and Rδ_z) in place.
/// The gradient pass uses the same layout (A in the left block, G and δ in the right), so a
/// Hessian-vector product can also reuse a finished gradient pass at the same θ and batch
/// (`forward_r_cached`, `backward_r_cached`): then RZ = W RA + V A + c and
/// RG = Wᵀ Rδ + Vᵀ δ are computed beside the stored Z, A, G, δ, which stay intact, so any
/// number of such products can follow one gradient pass.

#include <metalearn/core/error.hpp>
#include <metalearn/core/gemm.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/nn/activation.hpp>
#include <metalearn/nn/layer_norm.hpp>

#include <type_traits>

namespace metalearn::nn {

/// A dense layer y = f(W x + b) with `In` inputs, `Out` outputs and activation `Act`, or,
/// with a `LayerNorm`, y = f(γ ⊙ LN(W x + b) + β). Sizes are compile-time constants, or
/// `Eigen::Dynamic` and given to the constructor. The layer stores no parameters: W (Out × In,
/// column-major) followed by b (Out), then γ and β (Out each) when normalised, are read from
/// the network's flat parameter vector.
template <int In, int Out, class Act = Identity>
class Dense {
  static_assert(In == Eigen::Dynamic || In > 0, "metalearn::nn::Dense: In must be > 0 or Eigen::Dynamic");
  static_assert(Out == Eigen::Dynamic || Out > 0, "metalearn::nn::Dense: Out must be > 0 or Eigen::Dynamic");

 public:
  static constexpr int static_inputs = In;    ///< In (or Eigen::Dynamic).
  static constexpr int static_outputs = Out;  ///< Out (or Eigen::Dynamic).
  using activation_type = Act;                ///< The activation type.

  /// A layer with compile-time sizes.
  explicit Dense(Act activation = Act{}) : activation_(activation), in_(In), out_(Out) {
    static_assert(In != Eigen::Dynamic && Out != Eigen::Dynamic,
                  "metalearn::nn::Dense: give the sizes to the constructor when they are Eigen::Dynamic");
  }

  /// A layer with compile-time sizes and layer normalisation before the activation.
  Dense(Act activation, LayerNorm norm) : Dense(activation) { normalize(norm); }

  /// A layer with run-time sizes (which must equal In and Out where those are fixed).
  Dense(Index inputs, Index outputs, Act activation = Act{})
      : activation_(activation), in_(inputs), out_(outputs) {
    if (inputs <= 0 || outputs <= 0)
      metalearn::detail::fail("nn::Dense", "sizes must be > 0, got ", inputs, " inputs and ", outputs, " outputs");
    if (In != Eigen::Dynamic && inputs != In) metalearn::detail::fail("nn::Dense", "inputs is ", inputs, ", expected ", In);
    if (Out != Eigen::Dynamic && outputs != Out) metalearn::detail::fail("nn::Dense", "outputs is ", outputs, ", expected ", Out);
  }

  /// A layer with run-time sizes and layer normalisation before the activation.
  Dense(Index inputs, Index outputs, Act activation, LayerNorm norm) : Dense(inputs, outputs, activation) {
    normalize(norm);
  }

  /// Number of inputs.
  Index input_size() const { return in_; }
  /// Number of outputs.
  Index output_size() const { return out_; }
  /// Number of parameters: Out·In weights, Out biases, then Out gains and Out shifts when
  /// normalised.
  Index parameter_count() const { return out_ * (in_ + 1) + (normalized_ ? 2 * out_ : 0); }
  /// The activation.
  const Act& activation() const { return activation_; }
  /// True when the layer normalises its pre-activations (`LayerNorm`).
  bool normalized() const { return normalized_; }
  /// The normalisation's options (meaningful when `normalized()`).
  const LayerNorm& norm() const { return norm_; }

 private:
  void normalize(LayerNorm norm) {
    norm.validate("nn::Dense", out_);
    norm_ = norm;
    normalized_ = true;
  }

  Act activation_;
  Index in_;
  Index out_;
  LayerNorm norm_{};
  bool normalized_ = false;
};

namespace detail {

/// A read-only contiguous column-major matrix (inputs of a layer).
template <class S>
struct InputView {
  const S* data;
  Index rows;
  Index cols;
  /// The columns from `first` on (the R-block of a [A | RA] buffer).
  InputView from(Index first) const { return {data + first * rows, rows, cols - first}; }
};

/// Buffers of one layer for a batch capacity c, each Out × 2c (see the file comment).
template <class S>
struct LayerBuffers {
  Matrix<S> z;  ///< [Z | RZ]
  Matrix<S> a;  ///< [A | RA]
  Matrix<S> g;  ///< [RG | G]
  Matrix<S> d;  ///< [Rδ | δ]
  Matrix<S> wt;  ///< Wᵀ of the last backward pass, when it made one (reused by the cached R-pass)
  Matrix<S> xhat;   ///< [x̂ | Rx̂] of a normalised layer (0 rows otherwise)
  Matrix<S> sigma;  ///< [σ | Rσ] of a normalised layer, 1 × 2c (0 columns otherwise)
  bool wt_valid = false;
  /// Sizes the buffers of a layer with `inputs` inputs and `rows` outputs for batches of up to
  /// `capacity` columns; `wt` only when products with Wᵀ copy it (see `wt_rows`), `xhat` and
  /// `sigma` only when the layer is `normalized`.
  void resize(Index inputs, Index rows, Index capacity, bool normalized) {
    z.resize(rows, 2 * capacity);
    a.resize(rows, 2 * capacity);
    g.resize(rows, 2 * capacity);
    d.resize(rows, 2 * capacity);
    wt.resize(wt_rows(inputs, rows), rows);
    xhat.resize(normalized ? rows : 0, 2 * capacity);
    sigma.resize(1, normalized ? 2 * capacity : 0);
    wt_valid = false;
  }
  /// Rows of `wt` for such a layer: its inputs, or 0 when no batch size sends a copy of Wᵀ to
  /// the small-product kernel (Eigen's blocked product packs Wᵀ itself; from 192 outputs the
  /// products read W in place as dot products of its columns).
  static Index wt_rows(Index inputs, Index rows) {
    using metalearn::detail::use_dot_gemm;
    using metalearn::detail::use_small_gemm;
    return use_small_gemm<S>(inputs, 1, rows) && !use_dot_gemm<S>(rows) ? inputs : 0;
  }
};

/// Forward, backward and R-passes of one dense layer. `w` points at the layer's W (then b)
/// inside θ, `v` at the same offset inside the direction vector, `grad` inside the output.
template <class S, class Layer>
struct DenseOps {
  using Act = typename Layer::activation_type;
  static constexpr int In = Layer::static_inputs;
  static constexpr int Out = Layer::static_outputs;

  template <int R>
  using Cols = Eigen::Matrix<S, R, Eigen::Dynamic>;  // row-major automatically when R == 1
  using WMat = Eigen::Matrix<S, Out, In>;
  using BVec = Eigen::Matrix<S, Out, 1>;
  using InMap = Eigen::Map<const Cols<In>>;

  /// Columns [first, first + n) of an Out-row buffer, with the static row count.
  static Eigen::Map<Cols<Out>> cols(Matrix<S>& buf, Index first, Index n) {
    return Eigen::Map<Cols<Out>>(buf.data() + first * buf.rows(), buf.rows(), n);
  }
  /// Columns [first, first + n) of an In-row buffer of the previous layer.
  static Eigen::Map<Cols<In>> in_cols(Matrix<S>& buf, Index first, Index n) {
    return Eigen::Map<Cols<In>>(buf.data() + first * buf.rows(), buf.rows(), n);
  }
  static InMap input(const InputView<S>& x, Index n) { return InMap(x.data, x.rows, n); }
  static Eigen::Map<const WMat> weights(const Layer& layer, const S* w) {
    return Eigen::Map<const WMat>(w, layer.output_size(), layer.input_size());
  }
  static Eigen::Map<const BVec> bias(const Layer& layer, const S* w) {
    return Eigen::Map<const BVec>(w + layer.output_size() * layer.input_size(), layer.output_size());
  }
  /// γ (k = 0) or β (k = 1) of a normalised layer, after b; also their entries of v, ∇ or Hv.
  static Eigen::Map<const BVec> norm_param(const Layer& layer, const S* w, int k) {
    return Eigen::Map<const BVec>(w + layer.output_size() * (layer.input_size() + 1 + k), layer.output_size());
  }
  static Eigen::Map<BVec> norm_out(const Layer& layer, S* out, int k) {
    return Eigen::Map<BVec>(out + layer.output_size() * (layer.input_size() + 1 + k), layer.output_size());
  }
  /// Columns [first, first + n) of [σ | Rσ].
  static Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>> sigma(LayerBuffers<S>& buf, Index first, Index n) {
    return Eigen::Map<Eigen::Matrix<S, 1, Eigen::Dynamic>>(buf.sigma.data() + first, 1, n);
  }

  /// Z = W X + b, A = f(Z) on columns [0, n); b is read from `b` instead of θ when not null.
  static void forward(const Layer& layer, const S* w, const InputView<S>& x, LayerBuffers<S>& buf, Index n,
                      metalearn::detail::GemmScratch<S>& scratch, const S* b = nullptr) {
    auto z = cols(buf.z, 0, n);
    if (b) fill_columns(z, Eigen::Map<const BVec>(b, layer.output_size()));  // Z = b 1ᵀ
    else fill_columns(z, bias(layer, w));
    metalearn::detail::gemm(z, weights(layer, w), input(x, n), true, scratch);  //   + W X
    if (layer.normalized()) normalize(layer, w, buf, n);                       // Y = γ ⊙ LN(Z) + β
    cols(buf.a, 0, n).array() = layer.activation().value(z.array());           // A = f(Z)
  }

  /// Given G (right block), computes δ = G ⊙ f'(Z), ∇W = δ Xᵀ, ∇b = δ 1, and, when `g_prev`
  /// is not null, G_prev = Wᵀ δ into its right block.
  static void backward(const Layer& layer, const S* w, const InputView<S>& x, LayerBuffers<S>& buf, Index n,
                       S* grad, Matrix<S>* g_prev, metalearn::detail::GemmScratch<S>& scratch) {
    auto delta = cols(buf.d, n, n);
    delta_from(layer, cols(buf.g, n, n), buf, n, delta);                 // δ = G ⊙ f'(Z)
    if (layer.normalized())                                                // ∇γ, ∇β; δ ← J(γ ⊙ δ)
      NormOps<S>::backward(delta, cols(buf.xhat, 0, n), sigma(buf, 0, n), norm_param(layer, w, 0),
                           norm_out(layer, grad, 0), norm_out(layer, grad, 1));
    Eigen::Map<WMat> grad_w(grad, layer.output_size(), layer.input_size());
    metalearn::detail::gemm(grad_w, delta, input(x, n).transpose(), false, scratch);                // ∇W = δ Xᵀ
    Eigen::Map<BVec>(grad + grad_w.size(), layer.output_size()) = delta.rowwise().sum();  // ∇b = δ 1
    if (g_prev) times_transposed_weights(layer, w, buf, in_cols(*g_prev, n, n), delta, scratch);  // G_prev = Wᵀ δ
    else buf.wt_valid = false;  // no Wᵀ of this W: a later cached R-pass must not use an older one
  }

  /// Forward and R-forward together: [Z | RZ], [A | RA]. `x` has 2n columns [A | RA] unless
  /// `first` (then it is the n input columns and RA₀ = 0).
  static void forward_r(const Layer& layer, const S* w, const S* v, const InputView<S>& x, bool first,
                        LayerBuffers<S>& buf, Index n, metalearn::detail::GemmScratch<S>& scratch) {
    auto z = cols(buf.z, 0, n);
    auto rz = cols(buf.z, n, n);
    fill_columns(z, bias(layer, w));                                      // Z = b 1ᵀ
    fill_columns(rz, bias(layer, v));                                     // RZ = c 1ᵀ
    if (first) {
      metalearn::detail::gemm(z, weights(layer, w), input(x, n), true, scratch);   // Z += W X
    } else {
      metalearn::detail::gemm(cols(buf.z, 0, 2 * n), weights(layer, w), input(x, 2 * n), true, scratch);  // [Z | RZ] += W [A | RA]
    }
    metalearn::detail::gemm(rz, weights(layer, v), input(x, n), true, scratch);    // RZ += V A
    if (layer.normalized()) {
      normalize(layer, w, buf, n);                                      // Y = γ ⊙ LN(Z) + β
      normalize_r(layer, w, v, buf, n);                                 // RY
    }
    auto a = cols(buf.a, 0, n);
    a.array() = layer.activation().value(z.array());                    // A = f(Z)
    cols(buf.a, n, n).array() = layer.activation().derivative(z.array(), a.array()) * rz.array();  // RA = f'(Z) ⊙ RZ
  }

  /// Backward and R-backward together, given [RG | G]: [Rδ | δ], (Hv)_W, (Hv)_b and, when
  /// `g_prev` is not null, [RG | G]_prev.
  static void backward_r(const Layer& layer, const S* w, const S* v, const InputView<S>& x, bool first,
                         LayerBuffers<S>& buf, Index n, S* hv, Matrix<S>* g_prev,
                         metalearn::detail::GemmScratch<S>& scratch) {
    auto z = cols(buf.z, 0, n).array();
    auto a = cols(buf.a, 0, n).array();
    auto g = cols(buf.g, n, n).array();
    auto rg = cols(buf.g, 0, n).array();
    auto delta = cols(buf.d, n, n);
    auto rdelta = cols(buf.d, 0, n);
    const auto& act = layer.activation();
    delta.array() = g * act.derivative(z, a);                                  // δ = G ⊙ f'(Z)
    if constexpr (Act::has_curvature) {
      auto rz = cols(buf.z, n, n).array();
      rdelta.array() = rg * act.derivative(z, a) + g * act.second_derivative(z, a) * rz;  // Rδ = RG ⊙ f' + G ⊙ f'' ⊙ RZ
    } else {
      rdelta.array() = rg * act.derivative(z, a);                              // Rδ = RG ⊙ f'
    }
    if (layer.normalized()) denormalize_r(layer, w, v, buf, n, hv);            // (Hv)_γ, (Hv)_β; [Rδ | δ] at Z
    Eigen::Map<WMat> hv_w(hv, layer.output_size(), layer.input_size());
    if (first)
      metalearn::detail::gemm(hv_w, rdelta, input(x, n).transpose(), false, scratch);                      // (Hv)_W = Rδ Xᵀ
    else
      metalearn::detail::gemm(hv_w, cols(buf.d, 0, 2 * n), input(x, 2 * n).transpose(), false, scratch);  // (Hv)_W = Rδ Aᵀ + δ RAᵀ
    Eigen::Map<BVec>(hv + hv_w.size(), layer.output_size()) = rdelta.rowwise().sum();  // (Hv)_b = Rδ 1
    if (g_prev) {
      times_transposed_weights(layer, w, buf, in_cols(*g_prev, 0, 2 * n), cols(buf.d, 0, 2 * n), scratch);  // [RG | G] = Wᵀ [Rδ | δ]
      metalearn::detail::gemm(in_cols(*g_prev, 0, n), weights(layer, v).transpose(), delta, true, scratch);  // RG += Vᵀ δ
    }
  }

  /// R-forward beside a finished gradient pass: RZ = W RA + V A + c, RA = f'(Z) ⊙ RZ.
  /// `x` holds [A | RA] of the previous layer (n input columns when `first`, RA₀ = 0).
  /// A null `v` is a direction that is zero on this layer but for its bias part `c` (null:
  /// zero too), so V A is not computed (not for a normalised layer).
  static void forward_r_cached(const Layer& layer, const S* w, const S* v, const InputView<S>& x, bool first,
                               LayerBuffers<S>& buf, Index n, metalearn::detail::GemmScratch<S>& scratch,
                               const S* c = nullptr) {
    auto rz = cols(buf.z, n, n);
    if (v) {
      fill_columns(rz, bias(layer, v));                                                 // RZ = c 1ᵀ
      metalearn::detail::gemm(rz, weights(layer, v), input(x, n), true, scratch);       //    + V A
    } else if (c) {
      fill_columns(rz, Eigen::Map<const BVec>(c, layer.output_size()));                 // RZ = c 1ᵀ (V = 0)
    } else {
      rz.setZero();
    }
    if (!first) metalearn::detail::gemm(rz, weights(layer, w), input(x.from(n), n), true, scratch);  // + W RA
    if (layer.normalized()) normalize_r(layer, w, v, buf, n);                        // RY
    const auto& act = layer.activation();
    cols(buf.a, n, n).array() = act.derivative(cols(buf.z, 0, n).array(), cols(buf.a, 0, n).array()) * rz.array();  // RA = f'(Z) ⊙ RZ
  }

  /// R-backward beside a finished gradient pass (δ and G in the right blocks), given RG in the
  /// left block: Rδ, (Hv)_W, (Hv)_b and, when `g_prev` is not null, RG_prev = Wᵀ Rδ + Vᵀ δ
  /// into its left block (its right block, G_prev, is kept). A null `v` is V = 0 (as in
  /// `forward_r_cached`).
  static void backward_r_cached(const Layer& layer, const S* w, const S* v, const InputView<S>& x, bool first,
                                LayerBuffers<S>& buf, Index n, S* hv, Matrix<S>* g_prev,
                                metalearn::detail::GemmScratch<S>& scratch) {
    auto z = cols(buf.z, 0, n).array();
    auto a = cols(buf.a, 0, n).array();
    auto rg = cols(buf.g, 0, n).array();
    auto rdelta = cols(buf.d, 0, n);
    const auto& act = layer.activation();
    if (layer.normalized()) {  // δ was turned into J(γ ⊙ G_y) by the gradient pass: from G_y again
      auto gy = cols(buf.d, n, n);
      delta_from(layer, cols(buf.g, n, n), buf, n, gy);                                 // G_y = G ⊙ f'(Y)
      if constexpr (Act::has_curvature) {
        auto g = cols(buf.g, n, n).array();
        auto rz = cols(buf.z, n, n).array();
        rdelta.array() = rg * act.derivative(z, a) + g * act.second_derivative(z, a) * rz;  // RG_y
      } else {
        rdelta.array() = rg * act.derivative(z, a);                                     // RG_y
      }
      denormalize_r(layer, w, v, buf, n, hv);                                           // (Hv)_γ, (Hv)_β; [Rδ | δ] at Z
    } else if constexpr (Act::has_curvature) {
      auto g = cols(buf.g, n, n).array();
      auto rz = cols(buf.z, n, n).array();
      rdelta.array() = rg * act.derivative(z, a) + g * act.second_derivative(z, a) * rz;  // Rδ = RG ⊙ f' + G ⊙ f'' ⊙ RZ
    } else if constexpr (std::is_same_v<Act, Identity>) {
      rdelta = cols(buf.g, 0, n);                                                       // Rδ = RG
    } else {
      rdelta.array() = rg * act.derivative(z, a);                                       // Rδ = RG ⊙ f'
    }
    Eigen::Map<WMat> hv_w(hv, layer.output_size(), layer.input_size());
    if (first)
      metalearn::detail::gemm(hv_w, rdelta, input(x, n).transpose(), false, scratch);                      // (Hv)_W = Rδ Xᵀ
    else
      metalearn::detail::gemm(hv_w, cols(buf.d, 0, 2 * n), input(x, 2 * n).transpose(), false, scratch);  // (Hv)_W = Rδ Aᵀ + δ RAᵀ
    Eigen::Map<BVec>(hv + hv_w.size(), layer.output_size()) = rdelta.rowwise().sum();                   // (Hv)_b = Rδ 1
    if (g_prev) {
      auto rg_prev = in_cols(*g_prev, 0, n);
      if (buf.wt_valid)  // Wᵀ kept by the gradient pass
        metalearn::detail::gemm(rg_prev, Eigen::Map<const WTMat>(buf.wt.data(), layer.input_size(), layer.output_size()),
                                rdelta, false, scratch);                                                // RG_prev = Wᵀ Rδ
      else
        metalearn::detail::gemm(rg_prev, weights(layer, w).transpose(), rdelta, false, scratch);        // RG_prev = Wᵀ Rδ
      if (v) metalearn::detail::gemm(rg_prev, weights(layer, v).transpose(), cols(buf.d, n, n), true, scratch);  // + Vᵀ δ
    }
  }

 private:
  using WTMat = Eigen::Matrix<S, In, Out>;

  // Z → Y = γ ⊙ x̂ + β on columns [0, n), with x̂ and σ kept.
  static void normalize(const Layer& layer, const S* w, LayerBuffers<S>& buf, Index n) {
    NormOps<S>::forward(cols(buf.z, 0, n), cols(buf.xhat, 0, n), sigma(buf, 0, n), norm_param(layer, w, 0),
                        norm_param(layer, w, 1), static_cast<S>(layer.norm().epsilon));
  }
  // RZ → RY on columns [n, 2n), with Rx̂ and Rσ kept.
  static void normalize_r(const Layer& layer, const S* w, const S* v, LayerBuffers<S>& buf, Index n) {
    NormOps<S>::forward_r(cols(buf.z, n, n), cols(buf.xhat, 0, n), cols(buf.xhat, n, n), sigma(buf, 0, n),
                          sigma(buf, n, n), norm_param(layer, w, 0), norm_param(layer, v, 0), norm_param(layer, v, 1));
  }
  // [RG_y | G_y] in buf.d → [Rδ_z | δ_z]; assigns (Hv)_γ and (Hv)_β.
  static void denormalize_r(const Layer& layer, const S* w, const S* v, LayerBuffers<S>& buf, Index n, S* hv) {
    NormOps<S>::backward_r(cols(buf.d, n, n), cols(buf.d, 0, n), cols(buf.xhat, 0, n), cols(buf.xhat, n, n),
                           sigma(buf, 0, n), sigma(buf, n, n), norm_param(layer, w, 0), norm_param(layer, v, 0),
                           norm_out(layer, hv, 0), norm_out(layer, hv, 1));
  }

  // dst (+)= Wᵀ rhs. When the small-product kernel takes the product (narrow layers, small
  // batches) and W has fewer than 192 rows, Wᵀ is first copied column-major into buf.wt: the
  // kernel wants a column-major left operand, and the cached R-pass reuses the copy. Otherwise
  // the transposed view goes to gemm, which reads W in place (dot products of its columns) or
  // hands it to Eigen's blocked product, which packs it itself.
  template <class Dst, class Rhs>
  static void times_transposed_weights(const Layer& layer, const S* w, LayerBuffers<S>& buf, Dst&& dst, const Rhs& rhs,
                                       metalearn::detail::GemmScratch<S>& scratch) {
    buf.wt_valid = metalearn::detail::use_small_gemm<S>(layer.input_size(), dst.cols(), layer.output_size()) &&
                   !metalearn::detail::use_dot_gemm<S>(layer.output_size());
    if (buf.wt_valid) {
      eigen_assert(buf.wt.rows() == layer.input_size() && buf.wt.cols() == layer.output_size());  // sized by prepare
      metalearn::detail::transpose(w, layer.output_size(), layer.input_size(), layer.output_size(), buf.wt.data(),
                                   layer.input_size());
      metalearn::detail::gemm(dst, Eigen::Map<const WTMat>(buf.wt.data(), layer.input_size(), layer.output_size()),
                              rhs, false, scratch);
    } else {
      metalearn::detail::gemm(dst, weights(layer, w).transpose(), rhs, false, scratch);
    }
  }

  // Every column of m = b (a column loop: Eigen's Replicate is slow for run-time sizes).
  template <class M, class B>
  static void fill_columns(M& m, const B& b) {
    for (Index j = 0; j < m.cols(); ++j) m.col(j) = b;
  }

  template <class GBlock, class DBlock>
  static void delta_from(const Layer& layer, const GBlock& g, LayerBuffers<S>& buf, Index n, DBlock& delta) {
    if constexpr (std::is_same_v<Act, Identity>) {
      delta = g;
    } else {
      delta.array() = g.array() * layer.activation().derivative(cols(buf.z, 0, n).array(), cols(buf.a, 0, n).array());
    }
  }
};

}  // namespace detail
}  // namespace metalearn::nn
