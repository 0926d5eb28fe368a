#pragma once
/// @file
/// @brief Multi-layer perceptrons: a stack of dense layers fixed at compile time
/// (`Mlp<float, Dense<1, 40, Relu>, Dense<40, 40, Relu>, Dense<40, 1>>`) or built at run time
/// (`Mlp<float>({1, 40, 40, 1}, Relu{})`), with one interface. Any layer may normalise its
/// pre-activations (`LayerNorm`, nn/layer_norm.hpp): `Dense<40, 40, Relu>(Relu{}, LayerNorm{})`,
/// or `Mlp<float>({784, 256, 5}, Relu{}, Identity{}, LayerNorm{})` for every hidden layer.
///
/// **Parameter layout.** θ is one flat vector holding, for layer 1, 2, …, L in order,
/// W_l (out_l × in_l, column-major: W_l(i, j) at offset_l + i + j·out_l) followed by b_l
/// (out_l entries), then for a normalised layer its gain γ_l and shift β_l (out_l each).
/// `parameter_count() = Σ_l out_l (in_l + 1) (+ 2 out_l when normalised)`; `layer_offset(l)`
/// gives the offset of W_l. A network stores no parameters; it is a cheap, copyable description.
///
/// **Passes.** The network exposes its passes as building blocks for objectives
/// (`nn::Objective` uses them; a user may too, to plug in another loss):
///   1. `forward(θ, X, ws)` → outputs Y = ws.outputs(n)
///   2. write ∂L/∂Y into ws.output_gradient(n), then `backward(θ, X, ws, grad)`
/// and, for Hessian-vector products in direction v,
///   1. `forward_r(θ, v, X, ws)` → Y = ws.outputs(n), RY = ws.output_directions(n)
///   2. write ∂L/∂Y into ws.output_gradient(n) and ∇²_Y L·RY into
///      ws.output_gradient_directions(n), then `backward_r(θ, v, X, ws, hv)`.
/// The derivation of each pass is in nn/dense.hpp.

#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/nn/activation.hpp>
#include <metalearn/nn/dense.hpp>
#include <metalearn/nn/init.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace metalearn::nn {

template <class Scalar, class... Layers>
class Mlp;
template <class Net, class Loss>
class Objective;

namespace detail {
template <class Net, class S>
struct MlpEngine;
template <class Derived, class S>
class MlpBase;
}  // namespace detail

/// Scratch memory of a network's passes for batches of up to `capacity()` examples. It
/// grows on first use with a larger batch and is reused, without allocating, afterwards.
/// Not shared between threads.
template <class Scalar>
class MlpWorkspace {
 public:
  /// The largest batch the workspace holds without growing.
  Index capacity() const { return capacity_; }

  /// Network outputs Y (outputs × n) of the last forward pass.
  Eigen::Map<Matrix<Scalar>> outputs(Index n) { return block(last().a, 0, n); }
  /// Directional derivatives RY of the outputs, after `forward_r`.
  Eigen::Map<Matrix<Scalar>> output_directions(Index n) { return block(last().a, n, n); }
  /// Where the caller writes ∂L/∂Y before `backward` or `backward_r`.
  Eigen::Map<Matrix<Scalar>> output_gradient(Index n) { return block(last().g, n, n); }
  /// Where the caller writes ∇²_Y L · RY before `backward_r`.
  Eigen::Map<Matrix<Scalar>> output_gradient_directions(Index n) { return block(last().g, 0, n); }

  /// Bytes held by the buffers.
  std::size_t bytes() const {
    std::size_t total = 0;
    for (const auto& l : layers_)
      total += sizeof(Scalar) * static_cast<std::size_t>(4 * l.z.size() + l.wt.size() + l.xhat.size() + l.sigma.size());
    return total + gemm_.bytes() + sizeof(Scalar) * static_cast<std::size_t>(staging_.size() + deferred_.size());
  }

 private:
  template <class Net, class S>
  friend struct detail::MlpEngine;
  template <class Derived, class S>
  friend class detail::MlpBase;
  template <class Net, class Loss>
  friend class Objective;

  static Eigen::Map<Matrix<Scalar>> block(Matrix<Scalar>& m, Index first, Index n) {
    return Eigen::Map<Matrix<Scalar>>(m.data() + first * m.rows(), m.rows(), n);
  }
  detail::LayerBuffers<Scalar>& last() { return layers_.back(); }

  std::vector<detail::LayerBuffers<Scalar>> layers_;
  Matrix<Scalar> deferred_;     // the deferred R-gradients' sum at a frozen boundary (frozen-prefix passes)
  bool deferred_set_ = false;   // deferred_ holds a sum since the last deferred backward pass
  metalearn::detail::GemmScratch<Scalar> gemm_;
  Vector<Scalar> staging_;  // contiguous copy of strided inputs
  // the finished gradient pass the buffers hold (for the cached R-passes), if any
  const Scalar* pass_theta_ = nullptr;
  const Scalar* pass_inputs_ = nullptr;
  Index pass_n_ = 0;
  Index capacity_ = 0;
  // one layer's bias given apart from θ during an nn::Objective pass (nn::Context's context):
  // forward passes read that layer's b from bias_ (when not null); with direction_only_ the
  // cached R-passes take v as zero but for that layer's bias part, direction_
  Index bias_layer_ = -1;
  const Scalar* bias_ = nullptr;
  const Scalar* direction_ = nullptr;
  bool direction_only_ = false;
};

namespace detail {

/// The four passes, written once for any network that provides `layer_count()`,
/// `layer_offset(l)`, `layer_output_size(l)`, `layer_normalized(l)` and `dispatch(l, f)`
/// (calls f with the l-th layer as a `Dense<In, Out, Act>`).
template <class Net, class S>
struct MlpEngine {
  static void prepare(const Net& net, MlpWorkspace<S>& ws, Index n) {
    const Index layers = net.layer_count();
    bool fits = static_cast<Index>(ws.layers_.size()) == layers && n <= ws.capacity_;
    for (Index l = 0; fits && l < layers; ++l) {
      const auto& buf = ws.layers_[l];
      const Index out = net.layer_output_size(l);
      fits = buf.z.rows() == out && buf.wt.rows() == buf.wt_rows(net.layer_input_size(l), out) &&
             buf.xhat.rows() == (net.layer_normalized(l) ? out : 0);
    }
    if (fits) return;
    const Index capacity = std::max(n, static_cast<Index>(ws.layers_.size()) == layers ? ws.capacity_ : Index(0));
    ws.layers_.resize(static_cast<std::size_t>(layers));
    // The products' scratch, reserved for every batch size up to the capacity: a smaller batch
    // may take another path than the largest one did, and Eigen's blocking sizes are not
    // monotone in the batch, so each product (m × k times k × n, up to 2c columns) reserves
    // bounds: m·k and k·n when the blocked path can take it (it packs blocks of at most that),
    // m·k for a column-major copy of a row-major left operand (Vᵀ) when the small kernel can
    // and the depth is below the dot-product path's.
    Index lhs = 0, rhs = 0, transposed = 0;
    const auto product = [&](Index m, Index n_max, Index k, bool transposed_lhs) {
      using metalearn::detail::use_dot_gemm;
      using metalearn::detail::use_small_gemm;
      if (!use_small_gemm<S>(m, n_max, k)) lhs = std::max(lhs, m * k), rhs = std::max(rhs, k * n_max);
      if (transposed_lhs && use_small_gemm<S>(m, 1, k) && !use_dot_gemm<S>(k)) transposed = std::max(transposed, m * k);
    };
    for (Index l = 0; l < layers; ++l) {
      const Index in = net.layer_input_size(l), out = net.layer_output_size(l), c2 = 2 * capacity;
      ws.layers_[l].resize(in, out, capacity, net.layer_normalized(l));
      product(out, c2, in, false);  // Z = W X, [Z | RZ] = W [A | RA], RZ += V A
      product(out, in, c2, false);  // ∇W = δ Xᵀ, (Hv)_W = [Rδ | δ] [A | RA]ᵀ
      product(in, c2, out, true);   // G = Wᵀ δ, RG += Vᵀ δ
    }
    ws.gemm_.reserve(lhs, rhs, transposed);
    ws.capacity_ = capacity;
  }

  static InputView<S> view(const Matrix<S>& m) { return {m.data(), m.rows(), m.cols()}; }

  // Layers [first, L): the layers below `first` keep the activations of an earlier pass.
  static void forward(const Net& net, const S* theta, const InputView<S>& x, MlpWorkspace<S>& ws, Index n,
                      Index first = 0) {
    for (Index l = first; l < net.layer_count(); ++l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        Ops::forward(layer, theta + net.layer_offset(l), l == 0 ? x : view(ws.layers_[l - 1].a), ws.layers_[l], n, ws.gemm_,
                     l == ws.bias_layer_ ? ws.bias_ : nullptr);
      });
  }

  // Layers [first, end) from the top down, given ∂L/∂A of layer end − 1 in its G block (∂L/∂A of
  // layer first − 1 is not computed).
  static void backward(const Net& net, const S* theta, const InputView<S>& x, MlpWorkspace<S>& ws, Index n,
                       S* grad, Index first = 0, Index end = -1) {
    if (end < 0) end = net.layer_count();
    for (Index l = end - 1; l >= first; --l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        const Index off = net.layer_offset(l);
        Ops::backward(layer, theta + off, l == 0 ? x : view(ws.layers_[l - 1].a), ws.layers_[l], n, grad + off,
                      l == first ? nullptr : &ws.layers_[l - 1].g, ws.gemm_);
      });
  }

  static void forward_r(const Net& net, const S* theta, const S* v, const InputView<S>& x, MlpWorkspace<S>& ws,
                        Index n) {
    for (Index l = 0; l < net.layer_count(); ++l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        const Index off = net.layer_offset(l);
        Ops::forward_r(layer, theta + off, v + off, l == 0 ? x : view(ws.layers_[l - 1].a), l == 0, ws.layers_[l], n, ws.gemm_);
      });
  }

  // From layer `first` on, where the direction's R-activations start (RA_{first−1} = 0: v is
  // zero on the layers below).
  static void forward_r_cached(const Net& net, const S* theta, const S* v, const InputView<S>& x,
                               MlpWorkspace<S>& ws, Index n, Index first = 0) {
    for (Index l = first; l < net.layer_count(); ++l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        const Index off = net.layer_offset(l);
        if (ws.direction_only_)  // v = 0 but for one bias: no V products
          Ops::forward_r_cached(layer, theta + off, nullptr, l == 0 ? x : view(ws.layers_[l - 1].a), l == first,
                                ws.layers_[l], n, ws.gemm_, l == ws.bias_layer_ ? ws.direction_ : nullptr);
        else
          Ops::forward_r_cached(layer, theta + off, v + off, l == 0 ? x : view(ws.layers_[l - 1].a), l == first,
                                ws.layers_[l], n, ws.gemm_);
      });
  }

  // With v zero on the layers below `first` (R-activations from `first` on): layers [first, L)
  // by the R-pass, then, since RZ = 0 and V = 0 there, the layers below see only RG, and their
  // part of H v is a plain backward pass of RG (docs/derivations.md): RG of layer first − 1 is
  // moved into its G block and `backward` runs on [0, first).
  // With `defer`, RG of layer first − 1 is added to ws.deferred_ instead (the layers below are
  // linear in it, so `deferred_backward` runs them once for a sum of such products).
  static void backward_r_cached(const Net& net, const S* theta, const S* v, const InputView<S>& x,
                                MlpWorkspace<S>& ws, Index n, S* hv, Index first = 0, bool defer = false) {
    for (Index l = net.layer_count() - 1; l >= first; --l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        const Index off = net.layer_offset(l);
        Ops::backward_r_cached(layer, theta + off, ws.direction_only_ ? nullptr : v + off,
                               l == 0 ? x : view(ws.layers_[l - 1].a), l == first, ws.layers_[l], n, hv + off,
                               l == 0 ? nullptr : &ws.layers_[l - 1].g, ws.gemm_);
      });
    if (first == 0) return;
    auto& g = ws.layers_[first - 1].g;
    if (defer) {
      if (ws.deferred_.rows() != g.rows() || ws.deferred_.cols() < n) ws.deferred_.resize(g.rows(), n);
      auto sum = MlpWorkspace<S>::block(ws.deferred_, 0, n);
      if (ws.deferred_set_) sum += MlpWorkspace<S>::block(g, 0, n);  // Σ RG
      else sum = MlpWorkspace<S>::block(g, 0, n);
      ws.deferred_set_ = true;
      return;
    }
    MlpWorkspace<S>::block(g, n, n) = MlpWorkspace<S>::block(g, 0, n);  // G ← RG below the direction
    backward(net, theta, x, ws, n, hv, 0, first);
  }

  // The layers below `first` for the deferred sum: a backward pass of Σ RG into out[0, offset).
  static void deferred_backward(const Net& net, const S* theta, const InputView<S>& x, MlpWorkspace<S>& ws, Index n,
                                S* out, Index first) {
    auto& g = ws.layers_[first - 1].g;
    MlpWorkspace<S>::block(g, n, n) = MlpWorkspace<S>::block(ws.deferred_, 0, n);  // G ← Σ RG
    ws.deferred_set_ = false;
    backward(net, theta, x, ws, n, out, 0, first);
  }

  static void backward_r(const Net& net, const S* theta, const S* v, const InputView<S>& x, MlpWorkspace<S>& ws,
                         Index n, S* hv) {
    for (Index l = net.layer_count() - 1; l >= 0; --l)
      net.dispatch(l, [&](const auto& layer) {
        using Ops = DenseOps<S, std::decay_t<decltype(layer)>>;
        const Index off = net.layer_offset(l);
        Ops::backward_r(layer, theta + off, v + off, l == 0 ? x : view(ws.layers_[l - 1].a), l == 0, ws.layers_[l],
                        n, hv + off, l == 0 ? nullptr : &ws.layers_[l - 1].g, ws.gemm_);
      });
  }
};

/// Members shared by both network kinds: sizes, layout, validation, initialisation and the
/// public passes. `Derived` provides `layer_count()`, `layer_input_size(l)`,
/// `layer_output_size(l)`, `layer_activation_name(l)` and `dispatch(l, f)`.
template <class Derived, class S>
class MlpBase {
 public:
  using Scalar = S;                         ///< float or double
  using Workspace = MlpWorkspace<S>;        ///< scratch memory of the passes

  /// Number of inputs (rows of X).
  Index input_size() const { return self().layer_input_size(0); }
  /// Number of outputs (rows of Y).
  Index output_size() const { return self().layer_output_size(self().layer_count() - 1); }
  /// Length of θ.
  Index parameter_count() const { return offsets_.back(); }
  /// Offset of W_l in θ (b_l follows at offset + out_l · in_l, then γ_l and β_l when the
  /// layer is normalised).
  Index layer_offset(Index l) const { return offsets_[static_cast<std::size_t>(l)]; }
  /// True when layer l normalises its pre-activations (`LayerNorm`).
  bool layer_normalized(Index l) const {
    bool r = false;
    self().dispatch(l, [&](const auto& layer) { r = layer.normalized(); });
    return r;
  }

  /// "1-40(relu)-40(relu)-1(identity)": widths and activations, for logs and checkpoints; a
  /// normalised layer reads "40(ln 1e-05, relu)" (its ε, then its activation).
  std::string describe() const {
    std::string s = std::to_string(input_size());
    for (Index l = 0; l < self().layer_count(); ++l) {
      std::string norm;
      self().dispatch(l, [&](const auto& layer) {
        if (layer.normalized()) norm = "ln " + metalearn::detail::shortest(layer.norm().epsilon) + ", ";
      });
      s += "-" + std::to_string(self().layer_output_size(l)) + "(" + norm + self().layer_activation_name(l) + ")";
    }
    return s;
  }

  /// Draws θ from `init` (weights in parameter order, biases zero; gains 1 and shifts 0 in a
  /// normalised layer, drawing nothing, so the weights are those of the same network without
  /// normalisation).
  void initialize(VectorRef<S> theta, Rng& rng, const Initializer& init = GlorotUniform{}) const {
    metalearn::detail::check_size("nn::Mlp::initialize", "theta", theta.size(), parameter_count());
    for (Index l = 0; l < self().layer_count(); ++l) {
      const Index in = self().layer_input_size(l), out = self().layer_output_size(l);
      S* w = theta.data() + layer_offset(l);
      detail::initialize_layer(init, in, out, rng, Eigen::Map<Matrix<S>>(w, out, in),
                               Eigen::Map<Vector<S>>(w + out * in, out));
      if (layer_normalized(l)) {
        Eigen::Map<Vector<S>>(w + out * (in + 1), out).setOnes();   // γ = 1
        Eigen::Map<Vector<S>>(w + out * (in + 2), out).setZero();   // β = 0
      }
    }
  }

  /// Forward pass on the n = x.cols() examples of x; returns Y (outputs × n), a view into ws.
  Eigen::Map<Matrix<S>> forward(ConstVectorRef<S> theta, ConstMatrixRef<S> x, Workspace& ws) const {
    check("nn::Mlp::forward", theta, x);
    Engine::prepare(self(), ws, x.cols());
    ws.pass_theta_ = nullptr;
    Engine::forward(self(), theta.data(), input(x, ws), ws, x.cols());
    return ws.outputs(x.cols());
  }

  /// Backward pass after `forward` on the same θ and x, with ∂L/∂Y in ws.output_gradient(n):
  /// assigns ∇_θ L to grad.
  void backward(ConstVectorRef<S> theta, ConstMatrixRef<S> x, Workspace& ws, VectorRef<S> grad) const {
    check("nn::Mlp::backward", theta, x);
    metalearn::detail::check_size("nn::Mlp::backward", "grad", grad.size(), parameter_count());
    check_prepared("nn::Mlp::backward", ws, x.cols());
    Engine::backward(self(), theta.data(), input(x, ws), ws, x.cols(), grad.data());
    ws.pass_theta_ = theta.data();
    ws.pass_inputs_ = x.data();
    ws.pass_n_ = x.cols();
  }

  /// Forward and R-forward pass in direction v: Y = ws.outputs(n), RY = ws.output_directions(n).
  void forward_r(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws) const {
    check("nn::Mlp::forward_r", theta, x);
    metalearn::detail::check_size("nn::Mlp::forward_r", "v", v.size(), parameter_count());
    Engine::prepare(self(), ws, x.cols());
    ws.pass_theta_ = nullptr;
    Engine::forward_r(self(), theta.data(), v.data(), input(x, ws), ws, x.cols());
  }

  /// R-forward pass in direction v beside the gradient pass that `backward` finished on the
  /// same θ and x (which it keeps): RY = ws.output_directions(n). Throws if ws holds no such pass.
  void forward_r_cached(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws) const {
    check("nn::Mlp::forward_r_cached", theta, x);
    metalearn::detail::check_size("nn::Mlp::forward_r_cached", "v", v.size(), parameter_count());
    check_gradient_pass("nn::Mlp::forward_r_cached", theta, x, ws);
    Engine::forward_r_cached(self(), theta.data(), v.data(), input(x, ws), ws, x.cols());
  }

  /// R-backward pass after `forward_r_cached`, with ∇²_Y L·RY written into
  /// ws.output_gradient_directions(n): assigns H v to hv; the gradient pass stays usable.
  void backward_r_cached(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws,
                         VectorRef<S> hv) const {
    check("nn::Mlp::backward_r_cached", theta, x);
    metalearn::detail::check_size("nn::Mlp::backward_r_cached", "v", v.size(), parameter_count());
    metalearn::detail::check_size("nn::Mlp::backward_r_cached", "hv", hv.size(), parameter_count());
    check_gradient_pass("nn::Mlp::backward_r_cached", theta, x, ws);
    Engine::backward_r_cached(self(), theta.data(), v.data(), input(x, ws), ws, x.cols(), hv.data());
  }

  /// Frozen-prefix passes (internal: nn::Objective's, for algorithms that adapt only the layers
  /// from `first` on, model.hpp `FrozenPrefix`). The forward pass of layers [first, L): the
  /// layers below keep the activations of the workspace's last pass on x, which must have had
  /// the same weights there (the caller's promise; the workspace is checked to hold a pass of
  /// this batch size). `first` 0 is the ordinary forward pass.
  Eigen::Map<Matrix<S>> forward_from(ConstVectorRef<S> theta, ConstMatrixRef<S> x, Workspace& ws, Index first) const {
    check("nn::Mlp::forward_from", theta, x);
    check_layer("nn::Mlp::forward_from", first);
    if (first == 0) {
      Engine::prepare(self(), ws, x.cols());
      ws.deferred_set_ = false;  // a new pass: no products of the last one are pending
    } else {
      check_prepared("nn::Mlp::forward_from", ws, x.cols());
    }
    ws.pass_theta_ = nullptr;
    Engine::forward(self(), theta.data(), input(x, ws), ws, x.cols(), first);
    return ws.outputs(x.cols());
  }
  /// The backward pass of layers [first, L) after a forward pass: assigns the entries of grad
  /// from layer `first`'s offset on (the others are left as they are).
  void backward_to(ConstVectorRef<S> theta, ConstMatrixRef<S> x, Workspace& ws, VectorRef<S> grad, Index first) const {
    check("nn::Mlp::backward_to", theta, x);
    check_layer("nn::Mlp::backward_to", first);
    metalearn::detail::check_size("nn::Mlp::backward_to", "grad", grad.size(), parameter_count());
    check_prepared("nn::Mlp::backward_to", ws, x.cols());
    Engine::backward(self(), theta.data(), input(x, ws), ws, x.cols(), grad.data(), first);
    ws.pass_theta_ = theta.data();
    ws.pass_inputs_ = x.data();
    ws.pass_n_ = x.cols();
  }
  /// `forward_r_cached` and `backward_r_cached` for a direction v that is zero on the layers
  /// below `first`, after a gradient pass (`backward_to`) with the same `first` or a lower one:
  /// H v in full (the layers below see only RG: a plain backward pass of it).
  void forward_r_cached(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws,
                        Index first) const {
    check("nn::Mlp::forward_r_cached", theta, x);
    check_layer("nn::Mlp::forward_r_cached", first);
    metalearn::detail::check_size("nn::Mlp::forward_r_cached", "v", v.size(), parameter_count());
    check_gradient_pass("nn::Mlp::forward_r_cached", theta, x, ws);
    Engine::forward_r_cached(self(), theta.data(), v.data(), input(x, ws), ws, x.cols(), first);
  }
  /// The R-backward pass after `forward_r_cached(θ, v, x, ws, first)`: assigns all of H v, or
  /// with `defer` the entries from layer `first` on, adding the layers below's share (their
  /// RG at the boundary) to a sum in ws for `deferred_backward`.
  void backward_r_cached(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws,
                         VectorRef<S> hv, Index first, bool defer = false) const {
    check("nn::Mlp::backward_r_cached", theta, x);
    check_layer("nn::Mlp::backward_r_cached", first);
    metalearn::detail::check_size("nn::Mlp::backward_r_cached", "v", v.size(), parameter_count());
    metalearn::detail::check_size("nn::Mlp::backward_r_cached", "hv", hv.size(), parameter_count());
    check_gradient_pass("nn::Mlp::backward_r_cached", theta, x, ws);
    Engine::backward_r_cached(self(), theta.data(), v.data(), input(x, ws), ws, x.cols(), hv.data(), first, defer);
  }
  /// The layers below `first` for the products deferred since the last call (`defer`): assigns
  /// their share of the products' sum to out's entries before layer `first`'s offset. The
  /// workspace must hold those layers' activations for x, at θ's weights there.
  void deferred_backward(ConstVectorRef<S> theta, ConstMatrixRef<S> x, Workspace& ws, VectorRef<S> out,
                         Index first) const {
    check("nn::Mlp::deferred_backward", theta, x);
    check_layer("nn::Mlp::deferred_backward", first);
    metalearn::detail::check_size("nn::Mlp::deferred_backward", "out", out.size(), parameter_count());
    check_prepared("nn::Mlp::deferred_backward", ws, x.cols());
    if (first == 0 || !ws.deferred_set_)
      metalearn::detail::fail("nn::Mlp::deferred_backward", "no deferred products since the last call");
    Engine::deferred_backward(self(), theta.data(), input(x, ws), ws, x.cols(), out.data(), first);
  }
  /// The layer whose W starts at θ's entry `offset`, or −1 when no layer does.
  Index layer_at(Index offset) const {
    for (Index l = 0; l < self().layer_count(); ++l)
      if (layer_offset(l) == offset) return l;
    return -1;
  }

  /// True when ws holds a finished gradient pass (`backward`) at this θ and x — identified by
  /// their addresses and the batch size, so θ and x must not have been modified since.
  bool has_gradient_pass(const ConstVectorRef<S>& theta, const ConstMatrixRef<S>& x, const Workspace& ws) const {
    return ws.pass_theta_ == theta.data() && ws.pass_inputs_ == x.data() && ws.pass_n_ == x.cols() &&
           ws.pass_theta_ != nullptr;
  }

  /// Backward and R-backward pass after `forward_r`, with ∂L/∂Y and ∇²_Y L·RY written into
  /// the workspace: assigns the Hessian-vector product H v to hv.
  void backward_r(ConstVectorRef<S> theta, ConstVectorRef<S> v, ConstMatrixRef<S> x, Workspace& ws,
                  VectorRef<S> hv) const {
    check("nn::Mlp::backward_r", theta, x);
    metalearn::detail::check_size("nn::Mlp::backward_r", "v", v.size(), parameter_count());
    metalearn::detail::check_size("nn::Mlp::backward_r", "hv", hv.size(), parameter_count());
    check_prepared("nn::Mlp::backward_r", ws, x.cols());
    Engine::backward_r(self(), theta.data(), v.data(), input(x, ws), ws, x.cols(), hv.data());
  }

 protected:
  using Engine = MlpEngine<Derived, S>;

  void compute_offsets() {
    offsets_.assign(1, 0);
    for (Index l = 0; l < self().layer_count(); ++l)
      self().dispatch(l, [&](const auto& layer) { offsets_.push_back(offsets_.back() + layer.parameter_count()); });
  }

  /// The inputs as a contiguous view; strided inputs (a block of rows) are copied into the
  /// workspace first (growing it on first use).
  static InputView<S> input(const ConstMatrixRef<S>& x, Workspace& ws) {
    if (x.outerStride() == x.rows() || x.cols() == 1) return {x.data(), x.rows(), x.cols()};
    if (ws.staging_.size() < x.size()) ws.staging_.resize(x.size());
    Eigen::Map<Matrix<S>>(ws.staging_.data(), x.rows(), x.cols()) = x;
    return {ws.staging_.data(), x.rows(), x.cols()};
  }

  void check(const char* where, const ConstVectorRef<S>& theta, const ConstMatrixRef<S>& x) const {
    metalearn::detail::check_size(where, "theta", theta.size(), parameter_count());
    metalearn::detail::check_size(where, "inputs", x.rows(), input_size(), "rows (features)");
    if (x.cols() == 0) metalearn::detail::fail(where, "the batch is empty (inputs have 0 columns)");
  }

  void check_gradient_pass(const char* where, const ConstVectorRef<S>& theta, const ConstMatrixRef<S>& x,
                           const Workspace& ws) const {
    if (!has_gradient_pass(theta, x, ws))
      metalearn::detail::fail(where, "the workspace holds no gradient pass at this theta and batch; call "
                                     "loss_and_gradient (or backward) on them with this workspace first");
  }

  void check_layer(const char* where, Index first) const {
    if (first < 0 || first >= self().layer_count())
      metalearn::detail::fail(where, "the first layer must be in [0, ", self().layer_count(), "), got ", first);
  }

  void check_prepared(const char* where, const Workspace& ws, Index n) const {
    if (static_cast<Index>(ws.layers_.size()) != self().layer_count() || ws.capacity_ < n)
      metalearn::detail::fail(where, "the workspace does not hold a forward pass of ", n, " examples; run forward first");
  }

  const Derived& self() const { return static_cast<const Derived&>(*this); }

  std::vector<Index> offsets_;
};

template <class Layer>
inline constexpr bool is_dense_v = false;
template <int In, int Out, class Act>
inline constexpr bool is_dense_v<Dense<In, Out, Act>> = true;

template <class... Layers>
constexpr bool sizes_chain() {
  constexpr std::array<int, sizeof...(Layers)> in{Layers::static_inputs...};
  constexpr std::array<int, sizeof...(Layers)> out{Layers::static_outputs...};
  for (std::size_t l = 1; l < sizeof...(Layers); ++l)
    if (out[l - 1] != Eigen::Dynamic && in[l] != Eigen::Dynamic && out[l - 1] != in[l]) return false;
  return true;
}

}  // namespace detail

/// A network whose layers are fixed at compile time, e.g.
/// `Mlp<float, Dense<1, 40, Relu>, Dense<40, 40, Relu>, Dense<40, 1>>`.
/// Layer sizes may be `Eigen::Dynamic`, given to the layer's constructor.
template <class Scalar, class... Layers>
class Mlp : public detail::MlpBase<Mlp<Scalar, Layers...>, Scalar> {
  static_assert(is_supported_scalar_v<Scalar>, "metalearn::nn::Mlp: Scalar must be float or double");
  static_assert((detail::is_dense_v<Layers> && ...), "metalearn::nn::Mlp: every layer must be an nn::Dense<In, Out, Act>");
  static_assert(detail::sizes_chain<Layers...>(),
                "metalearn::nn::Mlp: each layer's In must equal the previous layer's Out");

 public:
  /// Layers default-constructed (requires compile-time sizes).
  Mlp() : Mlp(Layers{}...) {}

  /// The given layers (for run-time sizes or activation parameters).
  explicit Mlp(Layers... layers) : layers_(std::move(layers)...) {
    for (Index l = 1; l < layer_count(); ++l)
      if (layer_input_size(l) != layer_output_size(l - 1))
        metalearn::detail::fail("nn::Mlp", "layer ", l, " has ", layer_input_size(l), " inputs, expected ", layer_output_size(l - 1),
                     " (the outputs of layer ", l - 1, ")");
    this->compute_offsets();
  }

  /// Number of layers.
  static constexpr Index layer_count() { return static_cast<Index>(sizeof...(Layers)); }
  /// Inputs of layer l.
  Index layer_input_size(Index l) const {
    Index r = 0;
    dispatch(l, [&](const auto& layer) { r = layer.input_size(); });
    return r;
  }
  /// Outputs of layer l.
  Index layer_output_size(Index l) const {
    Index r = 0;
    dispatch(l, [&](const auto& layer) { r = layer.output_size(); });
    return r;
  }
  /// Activation name of layer l.
  std::string layer_activation_name(Index l) const {
    std::string r;
    dispatch(l, [&](const auto& layer) { r = layer.activation().name; });
    return r;
  }

  /// Calls f(layer) with the l-th layer (internal; used by the passes).
  template <class F>
  void dispatch(Index l, F&& f) const {
    dispatch_impl(l, f, std::index_sequence_for<Layers...>{});
  }

 private:
  template <class F, std::size_t... I>
  void dispatch_impl(Index l, F& f, std::index_sequence<I...>) const {
    ((static_cast<Index>(I) == l ? (f(std::get<I>(layers_)), 0) : 0), ...);
  }

  std::tuple<Layers...> layers_;
};

/// A network built at run time from layer widths and activations, e.g.
/// `Mlp<float>({1, 40, 40, 1}, Relu{})` (hidden layers ReLU, output layer linear), optionally
/// with layer normalisation.
template <class Scalar>
class Mlp<Scalar> : public detail::MlpBase<Mlp<Scalar>, Scalar> {
  static_assert(is_supported_scalar_v<Scalar>, "metalearn::nn::Mlp: Scalar must be float or double");

 public:
  /// widths = {inputs, hidden..., outputs}; `hidden` for every layer but the last, `output`
  /// for the last.
  explicit Mlp(std::vector<Index> widths, Activation hidden = Relu{}, Activation output = Identity{})
      : widths_(std::move(widths)) {
    check_widths();
    activations_.assign(widths_.size() - 1, hidden);
    activations_.back() = output;
    norms_.assign(activations_.size(), std::nullopt);
    this->compute_offsets();
  }

  /// The same with every hidden layer (all but the last) normalised by `hidden_norm`.
  Mlp(std::vector<Index> widths, Activation hidden, Activation output, LayerNorm hidden_norm)
      : widths_(std::move(widths)) {
    check_widths();
    activations_.assign(widths_.size() - 1, hidden);
    activations_.back() = output;
    norms_.assign(widths_.size() - 1, hidden_norm);
    norms_.back() = std::nullopt;
    check_norms();
    this->compute_offsets();
  }

  /// widths = {inputs, ..., outputs} and one activation per layer (widths.size() − 1).
  Mlp(std::vector<Index> widths, std::vector<Activation> activations)
      : Mlp(std::move(widths), std::move(activations), {}) {}

  /// widths, one activation per layer, and per layer its `LayerNorm` or `std::nullopt`
  /// (`norms` empty: none normalised; otherwise one entry per layer).
  Mlp(std::vector<Index> widths, std::vector<Activation> activations, std::vector<std::optional<LayerNorm>> norms)
      : widths_(std::move(widths)), activations_(std::move(activations)), norms_(std::move(norms)) {
    check_widths();
    if (activations_.size() + 1 != widths_.size())
      metalearn::detail::fail("nn::Mlp", "got ", activations_.size(), " activations, expected ", widths_.size() - 1,
                   " (one per layer)");
    if (norms_.empty()) norms_.assign(activations_.size(), std::nullopt);
    if (norms_.size() != activations_.size())
      metalearn::detail::fail("nn::Mlp", "got ", norms_.size(), " normalisation entries, expected ", activations_.size(),
                              " (one per layer, or none)");
    check_norms();
    this->compute_offsets();
  }

  /// Number of layers.
  Index layer_count() const { return static_cast<Index>(activations_.size()); }
  /// Inputs of layer l.
  Index layer_input_size(Index l) const { return widths_[static_cast<std::size_t>(l)]; }
  /// Outputs of layer l.
  Index layer_output_size(Index l) const { return widths_[static_cast<std::size_t>(l) + 1]; }
  /// Activation name of layer l.
  std::string layer_activation_name(Index l) const { return activation_name(activations_[static_cast<std::size_t>(l)]); }

  /// Calls f(layer) with the l-th layer as a `Dense<Dynamic, Dynamic, Act>` (internal).
  template <class F>
  void dispatch(Index l, F&& f) const {
    const auto& norm = norms_[static_cast<std::size_t>(l)];
    std::visit(
        [&](const auto& act) {
          using Layer = Dense<Eigen::Dynamic, Eigen::Dynamic, std::decay_t<decltype(act)>>;
          if (norm)
            f(Layer(layer_input_size(l), layer_output_size(l), act, *norm));
          else
            f(Layer(layer_input_size(l), layer_output_size(l), act));
        },
        activations_[static_cast<std::size_t>(l)]);
  }

 private:
  void check_widths() const {
    if (widths_.size() < 2) metalearn::detail::fail("nn::Mlp", "needs at least 2 widths (inputs and outputs), got ", widths_.size());
    for (std::size_t i = 0; i < widths_.size(); ++i)
      if (widths_[i] <= 0) metalearn::detail::fail("nn::Mlp", "width ", i, " is ", widths_[i], ", expected > 0");
  }
  void check_norms() const {
    for (std::size_t l = 0; l < norms_.size(); ++l)
      if (norms_[l]) {
        const std::string where = "nn::Mlp: layer " + std::to_string(l);
        norms_[l]->validate(where.c_str(), widths_[l + 1]);
      }
  }

  std::vector<Index> widths_;
  std::vector<Activation> activations_;
  std::vector<std::optional<LayerNorm>> norms_;
};

}  // namespace metalearn::nn
