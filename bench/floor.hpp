#pragma once
// The floor of a network pass: the matrix products the pass performs (see the counts in
// support.hpp and the derivation in include/metalearn/nn/dense.hpp), with the same shapes,
// the same compile-time sizes and the same buffer layout as metalearn's networks, and
// nothing else: no bias, activation, loss, argument checks or bookkeeping.
#include "support.hpp"

#include <metalearn/core/random.hpp>

#include <array>
#include <cstddef>
#include <tuple>
#include <utility>
#include <vector>

namespace mlb {

/// Sizes of a layer known at compile time (or Eigen::Dynamic), as in nn::Dense<In, Out>.
template <int In, int Out>
struct Shape {
  static constexpr int in = In;
  static constexpr int out = Out;
};
using DynamicShape = Shape<Eigen::Dynamic, Eigen::Dynamic>;

namespace detail {

template <class S>
void fill_random(Matrix<S>& m, metalearn::Rng& rng) {
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<S>(rng.uniform(-1, 1));
}

/// One layer's weights W, direction V, gradient/Hv output and the four Out × 2c buffers
/// [Z | RZ], [A | RA], [RG | G], [Rδ | δ] of nn::detail::LayerBuffers.
template <class S, int In, int Out>
struct FloorLayer {
  template <int R>
  using Cols = Eigen::Matrix<S, R, Eigen::Dynamic>;  // row-major automatically when R == 1
  using WMat = Eigen::Matrix<S, Out, In>;

  Index in = 0, out = 0;
  Matrix<S> w, v, gw, z, a, g, d;

  void resize(Index inputs, Index outputs, Index capacity, metalearn::Rng& rng) {
    in = inputs;
    out = outputs;
    for (Matrix<S>* m : {&w, &v, &gw}) m->resize(out, in);
    for (Matrix<S>* m : {&z, &a, &g, &d}) m->resize(out, 2 * capacity);
    for (Matrix<S>* m : {&w, &v, &gw, &z, &a, &g, &d}) fill_random(*m, rng);
  }
  Eigen::Map<const WMat> W() const { return Eigen::Map<const WMat>(w.data(), out, in); }
  Eigen::Map<const WMat> V() const { return Eigen::Map<const WMat>(v.data(), out, in); }
  Eigen::Map<WMat> GW() { return Eigen::Map<WMat>(gw.data(), out, in); }
  /// Columns [first, first + n) of one of this layer's buffers.
  static Eigen::Map<Cols<Out>> cols(Matrix<S>& buf, Index first, Index n) {
    return Eigen::Map<Cols<Out>>(buf.data() + first * buf.rows(), buf.rows(), n);
  }
  /// Columns [first, first + n) of a buffer of the previous layer (In rows).
  static Eigen::Map<Cols<In>> in_cols(Matrix<S>& buf, Index first, Index n) {
    return Eigen::Map<Cols<In>>(buf.data() + first * buf.rows(), buf.rows(), n);
  }
};

}  // namespace detail

/// The products of a network's passes, layer by layer; `Shapes` are the layers' Shape<In, Out>.
template <class S, class... Shapes>
class FloorNet {
  static constexpr std::size_t L = sizeof...(Shapes);

 public:
  /// widths = {inputs, hidden…, outputs}; buffers for batches of up to `capacity` columns.
  FloorNet(const std::vector<Index>& widths, Index capacity, metalearn::Rng& rng) {
    x_.resize(widths.front(), capacity);
    detail::fill_random(x_, rng);
    init(widths, capacity, rng, std::make_index_sequence<L>{});
  }

  /// Runs the products of `pass` on n columns.
  void run(Pass pass, Index n) {
    FloorScratch<S>& s = scratch_[static_cast<std::size_t>(pass)];
    s.begin();
    switch (pass) {
      case Pass::forward:
        forward(n, s, std::make_index_sequence<L>{});
        break;
      case Pass::loss_and_gradient:
        forward(n, s, std::make_index_sequence<L>{});
        backward(n, s, std::make_index_sequence<L>{});
        break;
      case Pass::hessian_vector_product:
        forward_r(n, s, std::make_index_sequence<L>{});
        backward_r(n, s, std::make_index_sequence<L>{});
        break;
      case Pass::cached_hessian_vector_product:
        forward_r_cached(n, s, std::make_index_sequence<L>{});
        backward_r_cached(n, s, std::make_index_sequence<L>{});
        break;
    }
  }

  /// MACs of the last run of `pass`.
  std::int64_t macs(Pass pass) const { return scratch_[static_cast<std::size_t>(pass)].macs(); }

  /// A value depending on the outputs (to keep the products observable).
  S sink() const { return std::get<L - 1>(layers_).gw(0, 0) + std::get<0>(layers_).gw(0, 0); }

 private:
  template <std::size_t I>
  using Layer = std::tuple_element_t<I, std::tuple<detail::FloorLayer<S, Shapes::in, Shapes::out>...>>;

  template <std::size_t... I>
  void init(const std::vector<Index>& widths, Index capacity, metalearn::Rng& rng, std::index_sequence<I...>) {
    (std::get<I>(layers_).resize(widths[I], widths[I + 1], capacity, rng), ...);
  }

  /// Columns [first, first + n) of layer I's input: X for the first layer, [A | RA] of the
  /// previous layer otherwise.
  template <std::size_t I>
  auto input(Index first, Index n) {
    using Cols = typename Layer<I>::template Cols<Layer<I>::WMat::ColsAtCompileTime>;
    if constexpr (I == 0) {
      return Eigen::Map<const Cols>(x_.data() + first * x_.rows(), x_.rows(), n);
    } else {
      Matrix<S>& a = std::get<I - 1>(layers_).a;
      return Eigen::Map<const Cols>(a.data() + first * a.rows(), a.rows(), n);
    }
  }

  // forward: Z = W A
  template <std::size_t... I>
  void forward(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (forward_layer<I>(n, s), ...);
  }
  template <std::size_t I>
  void forward_layer(Index n, FloorScratch<S>& s) {
    auto& l = std::get<I>(layers_);
    floor_product(l.cols(l.z, 0, n), l.W(), input<I>(0, n), false, s);
  }

  // backward (last layer first): ∇W = δ Aᵀ, G_prev = Wᵀ δ
  template <std::size_t... I>
  void backward(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (backward_layer<L - 1 - I>(n, s), ...);
  }
  template <std::size_t I>
  void backward_layer(Index n, FloorScratch<S>& s) {
    auto& l = std::get<I>(layers_);
    auto delta = l.cols(l.d, n, n);
    floor_product(l.GW(), delta, input<I>(0, n).transpose(), false, s);
    if constexpr (I > 0) floor_product(l.in_cols(std::get<I - 1>(layers_).g, n, n), l.W().transpose(), delta, false, s);
  }

  // fused forward + R-forward: [Z | RZ] = W [A | RA], RZ += V A (first layer: Z = W X, RZ = V X)
  template <std::size_t... I>
  void forward_r(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (forward_r_layer<I>(n, s), ...);
  }
  template <std::size_t I>
  void forward_r_layer(Index n, FloorScratch<S>& s) {
    auto& l = std::get<I>(layers_);
    if constexpr (I == 0) {
      floor_product(l.cols(l.z, 0, n), l.W(), input<I>(0, n), false, s);
      floor_product(l.cols(l.z, n, n), l.V(), input<I>(0, n), false, s);
    } else {
      floor_product(l.cols(l.z, 0, 2 * n), l.W(), input<I>(0, 2 * n), false, s);
      floor_product(l.cols(l.z, n, n), l.V(), input<I>(0, n), true, s);
    }
  }

  // fused backward + R-backward: (Hv)_W = [Rδ | δ] [A | RA]ᵀ (first layer: Rδ Xᵀ),
  // [RG | G]_prev = Wᵀ [Rδ | δ], RG_prev += Vᵀ δ
  template <std::size_t... I>
  void backward_r(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (backward_r_layer<L - 1 - I, false>(n, s), ...);
  }
  // Cached: beside a gradient pass, only RG_prev = Wᵀ Rδ (n columns) is new; otherwise
  // [RG | G]_prev = Wᵀ [Rδ | δ] (2n columns).
  template <std::size_t I, bool Cached>
  void backward_r_layer(Index n, FloorScratch<S>& s) {
    auto& l = std::get<I>(layers_);
    if constexpr (I == 0) {
      floor_product(l.GW(), l.cols(l.d, 0, n), input<I>(0, n).transpose(), false, s);
    } else {
      floor_product(l.GW(), l.cols(l.d, 0, 2 * n), input<I>(0, 2 * n).transpose(), false, s);
      Matrix<S>& g_prev = std::get<I - 1>(layers_).g;
      const Index cols = Cached ? n : 2 * n;
      floor_product(l.in_cols(g_prev, 0, cols), l.W().transpose(), l.cols(l.d, 0, cols), false, s);
      floor_product(l.in_cols(g_prev, 0, n), l.V().transpose(), l.cols(l.d, n, n), true, s);
    }
  }

  // R-forward beside a gradient pass: RZ = V A (+ W RA)
  template <std::size_t... I>
  void forward_r_cached(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (forward_r_cached_layer<I>(n, s), ...);
  }
  template <std::size_t I>
  void forward_r_cached_layer(Index n, FloorScratch<S>& s) {
    auto& l = std::get<I>(layers_);
    floor_product(l.cols(l.z, n, n), l.V(), input<I>(0, n), false, s);
    if constexpr (I > 0) floor_product(l.cols(l.z, n, n), l.W(), input<I>(n, n), true, s);
  }

  // R-backward beside a gradient pass: (Hv)_W as in backward_r, RG_prev = Wᵀ Rδ + Vᵀ δ
  template <std::size_t... I>
  void backward_r_cached(Index n, FloorScratch<S>& s, std::index_sequence<I...>) {
    (backward_r_layer<L - 1 - I, true>(n, s), ...);
  }

  std::tuple<detail::FloorLayer<S, Shapes::in, Shapes::out>...> layers_;
  Matrix<S> x_;
  std::array<FloorScratch<S>, 4> scratch_;
};

}  // namespace mlb
