#pragma once
/// @file
/// @brief Gradient clipping by value and by norm, and the Jacobian of the clip (for exact
/// second-order meta-gradients through clipped inner steps).

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>
#include <type_traits>

namespace metalearn {

namespace detail {
/// ‖g‖ without overflow or underflow in the squares: float is summed in double (no float
/// square overflows it); double is scaled by its largest entry when that lies outside
/// [1e-145, 1e145] (beyond which Σ g_i² over up to 1e18 entries leaves double's range).
template <class S>
double overflow_free_norm(const ConstVectorRef<S>& g) {
  if constexpr (std::is_same_v<S, float>) {
    return std::sqrt(g.template cast<double>().squaredNorm());
  } else {
    if (g.size() == 0) return 0;
    const double m = g.cwiseAbs().maxCoeff();
    if (m > 1e145 || (m < 1e-145 && m > 0)) return m * (g / m).norm();
    return g.norm();
  }
}
}  // namespace detail

/// Gradient clipping: each limit is off when 0. With both set, values are clipped first,
/// then the norm.
struct Clip {
  double value = 0;  ///< clip every entry to [−value, value]
  double norm = 0;   ///< rescale to Euclidean norm `norm` when larger

  /// True when any limit is set.
  bool enabled() const { return value > 0 || norm > 0; }

  /// Throws `invalid_argument` unless both limits are finite and ≥ 0.
  void validate(const char* where) const {
    detail::check_non_negative(where, "clip value", value);
    detail::check_non_negative(where, "clip norm", norm);
  }

  /// Clips g in place.
  void apply(VectorRef<float> g) const { apply<float>(g); }
  /// Clips g in place.
  void apply(VectorRef<double> g) const { apply<double>(g); }
  /// Clips g in place (the form with an explicit scalar type).
  template <class S>
  void apply(VectorRef<S> g) const {
    if (value > 0) g = g.cwiseMax(S(-value)).cwiseMin(S(value));
    if (norm > 0) {
      const double n = detail::overflow_free_norm<S>(g);
      if (n > norm) g *= static_cast<S>(norm / n);
    }
  }

  /// Given the raw gradient g (before clipping), replaces u by J(g)ᵀ u, where J is the
  /// Jacobian of g ↦ clip(g):
  ///   value: J = diag(|g_i| < value);  norm (at g₁ = value-clipped g, when ‖g₁‖ > norm):
  ///   J = (norm/‖g₁‖)(I − ĝĝᵀ), ĝ = g₁/‖g₁‖;  both: J = J_norm(g₁) J_value(g).
  /// `scratch` holds ĝ (same size as g).
  void jacobian_transpose_product(ConstVectorRef<float> g, VectorRef<float> u, VectorRef<float> scratch) const {
    jacobian_transpose_product<float>(g, u, scratch);
  }
  /// The same in double.
  void jacobian_transpose_product(ConstVectorRef<double> g, VectorRef<double> u, VectorRef<double> scratch) const {
    jacobian_transpose_product<double>(g, u, scratch);
  }
  /// The same, with an explicit scalar type.
  template <class S>
  void jacobian_transpose_product(ConstVectorRef<S> g, VectorRef<S> u, VectorRef<S> scratch) const {
    if (norm > 0) {
      scratch = g;
      if (value > 0) scratch = scratch.cwiseMax(S(-value)).cwiseMin(S(value));  // g₁
      const double n = detail::overflow_free_norm<S>(scratch);
      if (n > norm) {
        scratch = (scratch.template cast<double>() * (1 / n)).template cast<S>();  // ĝ = g₁/‖g₁‖ (in double: ‖g₁‖ may exceed float)
        const S along = scratch.dot(u);                                            // ĝᵀu
        u = static_cast<S>(norm / n) * (u - along * scratch);                      // (norm/‖g₁‖)(u − ĝ ĝᵀu)
      }
    }
    if (value > 0) u = (g.array().abs() < S(value)).select(u, S(0));  // diag mask
  }
};

}  // namespace metalearn
