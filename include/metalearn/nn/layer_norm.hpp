#pragma once
/// @file
/// @brief Layer normalisation of a dense layer's pre-activations, y = γ ⊙ (z − mean z)/σ + β
/// per example: the option (`LayerNorm`) and its forward, backward and R-passes (internal).
///
/// Derivation (docs/derivations.md, "Layer normalisation"), per column z ∈ ℝᵐ of Z, with
/// means over the m features:
///   forward     c = z − mean(z) 1,  σ = √(mean(c ⊙ c) + ε),  x̂ = c/σ,  y = γ ⊙ x̂ + β
///   Jacobian    J h = ∂x̂/∂z · h = (h − mean(h) 1 − x̂ mean(h ⊙ x̂))/σ   (J symmetric)
///   backward    ∇γ = Σ_cols G_y ⊙ x̂,  ∇β = Σ_cols G_y,  δ_z = J (γ ⊙ G_y)
///   R-forward   Rσ = mean(x̂ ⊙ RZ),  Rx̂ = J RZ,  Ry = Rγ ⊙ x̂ + γ ⊙ Rx̂ + Rβ
///   R-backward  (Hv)_γ = Σ_cols (RG_y ⊙ x̂ + G_y ⊙ Rx̂),  (Hv)_β = Σ_cols RG_y,
///               Rδ_z = R{J} h + J k,  h = γ ⊙ G_y,  k = Rγ ⊙ G_y + γ ⊙ RG_y,
///               R{J} h = −(Rσ J h + Rx̂ mean(h ⊙ x̂) + x̂ mean(h ⊙ Rx̂))/σ
/// where G_y = ∂L/∂y and RG_y its R-twin, which the dense layer computes from ∂L/∂A exactly
/// as it computes δ for an unnormalised layer. Each pass works column by column in place,
/// with a few scalars per column and no temporaries.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>

namespace metalearn::nn {

/// Layer normalisation of a dense layer (`Dense<In, Out, Act>(act, LayerNorm{})`): each
/// example's pre-activations z = Wx + b are normalised over the layer's features to mean 0 and
/// variance 1, then scaled and shifted by a learned gain γ and shift β (one per feature, in θ
/// after b; initialised to 1 and 0), before the activation: a = f(γ ⊙ (z − mean z)/σ + β),
/// σ = √(var z + ε). The statistics are the example's own, so training and test compute the
/// same function and no example depends on the others in its batch.
struct LayerNorm {
  double epsilon = 1e-5;  ///< ε > 0, added to the variance (PyTorch's default)

  /// Throws unless ε is finite and > 0 and the layer has at least 2 outputs (with one, z −
  /// mean z is 0 whatever the input).
  void validate(const char* where, Index outputs) const {
    metalearn::detail::check_positive(where, "LayerNorm epsilon", epsilon);
    if (outputs < 2)
      metalearn::detail::fail(where, "a layer with LayerNorm needs at least 2 outputs, got ", outputs);
  }
};

namespace detail {

/// The passes of the normalisation on m × n column blocks (Eigen maps of the layer buffers).
/// `gamma`, `beta` and their directions are m-vectors (maps into θ and v).
template <class S>
struct NormOps {
  /// Z → Y in place; writes x̂ and σ (1 × n).
  template <class ZMat, class XMat, class SRow, class Vec>
  static void forward(ZMat&& z, XMat&& xhat, SRow&& sigma, const Vec& gamma, const Vec& beta, S epsilon) {
    const S m = static_cast<S>(z.rows());
    for (Index j = 0; j < z.cols(); ++j) {
      auto x = xhat.col(j);
      x.array() = z.col(j).array() - z.col(j).mean();              // c = z − mean(z)
      const S s = std::sqrt(x.squaredNorm() / m + epsilon);        // σ = √(mean(c²) + ε)
      x /= s;                                                      // x̂ = c/σ
      sigma(0, j) = s;
      z.col(j) = gamma.cwiseProduct(x) + beta;                     // y = γ ⊙ x̂ + β
    }
  }

  /// G_y → δ_z = J(γ ⊙ G_y) in place; assigns ∇γ and ∇β.
  template <class DMat, class XMat, class SRow, class Vec, class Out>
  static void backward(DMat&& d, const XMat& xhat, const SRow& sigma, const Vec& gamma, Out&& grad_gamma,
                       Out&& grad_beta) {
    grad_gamma = (d.array() * xhat.array()).matrix().rowwise().sum();  // ∇γ = Σ G_y ⊙ x̂
    grad_beta = d.rowwise().sum();                                // ∇β = Σ G_y
    for (Index j = 0; j < d.cols(); ++j) apply_j(d.col(j), xhat.col(j), sigma(0, j), gamma);
  }

  /// RZ → RY in place, given x̂ and σ of the forward pass; writes Rx̂ and Rσ.
  template <class ZMat, class XMat, class RXMat, class SRow, class RSRow, class Vec>
  static void forward_r(ZMat&& rz, const XMat& xhat, RXMat&& rxhat, const SRow& sigma, RSRow&& rsigma,
                        const Vec& gamma, const Vec& rgamma, const Vec& rbeta) {
    for (Index j = 0; j < rz.cols(); ++j) {
      const auto x = xhat.col(j);
      const S rs = x.dot(rz.col(j)) / static_cast<S>(rz.rows());                         // Rσ = mean(x̂ ⊙ RZ)
      rxhat.col(j).array() = (rz.col(j).array() - rz.col(j).mean() - x.array() * rs) / sigma(0, j);  // Rx̂ = J RZ
      rsigma(0, j) = rs;
      rz.col(j) = rgamma.cwiseProduct(x) + gamma.cwiseProduct(rxhat.col(j)) + rbeta;      // Ry = Rγ ⊙ x̂ + γ ⊙ Rx̂ + Rβ
    }
  }

  /// (G_y, RG_y) → (δ_z, Rδ_z) in place (`d` holds G_y, `rd` RG_y); assigns (Hv)_γ, (Hv)_β.
  template <class DMat, class XMat, class SRow, class Vec, class Out>
  static void backward_r(DMat&& d, DMat&& rd, const XMat& xhat, const XMat& rxhat, const SRow& sigma,
                         const SRow& rsigma, const Vec& gamma, const Vec& rgamma, Out&& hv_gamma, Out&& hv_beta) {
    hv_gamma = (rd.array() * xhat.array() + d.array() * rxhat.array()).matrix().rowwise().sum();  // Σ RG_y ⊙ x̂ + G_y ⊙ Rx̂
    hv_beta = rd.rowwise().sum();                                                        // Σ RG_y
    const S m = static_cast<S>(d.rows());
    for (Index j = 0; j < d.cols(); ++j) {
      auto g = d.col(j).array();
      auto rg = rd.col(j).array();
      const auto x = xhat.col(j).array();
      const auto rx = rxhat.col(j).array();
      const auto ga = gamma.array();
      const S s = sigma(0, j), rs = rsigma(0, j);
      const S hm = (ga * g).sum() / m, hx = (ga * g * x).sum() / m, hrx = (ga * g * rx).sum() / m;
      const S km = (rgamma.array() * g + ga * rg).sum() / m;                    // k = Rγ ⊙ G_y + γ ⊙ RG_y
      const S kx = ((rgamma.array() * g + ga * rg) * x).sum() / m;
      // Rδ_z = (k − mean k − x̂ (mean(k ⊙ x̂) + mean(h ⊙ Rx̂)) − Rx̂ mean(h ⊙ x̂) − Rσ J h)/σ
      rg = (rgamma.array() * g + ga * rg - km - x * (kx + hrx) - rx * hx - (rs / s) * (ga * g - hm - x * hx)) / s;
      apply_j(d.col(j), xhat.col(j), s, gamma);  // δ_z = J h, as the gradient pass computes it
    }
  }

 private:
  // h ← J(γ ⊙ h) for one column.
  template <class Col, class XCol, class Vec>
  static void apply_j(Col&& h, const XCol& x, S s, const Vec& gamma) {
    const S m = static_cast<S>(h.rows());
    const S hm = gamma.cwiseProduct(h).sum() / m;
    const S hx = (gamma.array() * h.array() * x.array()).sum() / m;
    h = (gamma.array() * h.array() - hm - x.array() * hx).matrix() / s;  // J h = (h − mean h − x̂ mean(h ⊙ x̂))/σ
  }
};

}  // namespace detail
}  // namespace metalearn::nn
