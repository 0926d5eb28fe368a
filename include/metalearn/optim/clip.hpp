#pragma once
/// @file
/// @brief Gradient clipping by value and by norm, and the Jacobian of the clip (for exact
/// second-order meta-gradients through clipped inner steps).

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>

namespace metalearn {

/// Gradient clipping: each limit is off when 0. With both set, values are clipped first,
/// then the norm.
struct Clip {
  double value = 0;  ///< clip every entry to [−value, value]
  double norm = 0;   ///< rescale to Euclidean norm `norm` when larger

  /// True when any limit is set.
  bool enabled() const { return value > 0 || norm > 0; }

  /// Throws `invalid_argument` unless both limits are finite and ≥ 0.
  void validate(const char* where) const {
    if (!(value >= 0) || !std::isfinite(value)) detail::fail(where, "clip value must be finite and >= 0, got ", value);
    if (!(norm >= 0) || !std::isfinite(norm)) detail::fail(where, "clip norm must be finite and >= 0, got ", norm);
  }

  /// Clips g in place.
  template <class S>
  void apply(VectorRef<S> g) const {
    if (value > 0) g = g.cwiseMax(S(-value)).cwiseMin(S(value));
    if (norm > 0) {
      const S n = g.norm();
      if (n > S(norm)) g *= S(norm) / n;
    }
  }

  /// Given the raw gradient g (before clipping), replaces u by J(g)ᵀ u, where J is the
  /// Jacobian of g ↦ clip(g):
  ///   value: J = diag(|g_i| < value);  norm (at g₁ = value-clipped g, when ‖g₁‖ > norm):
  ///   J = (norm/‖g₁‖)(I − ĝĝᵀ), ĝ = g₁/‖g₁‖;  both: J = J_norm(g₁) J_value(g).
  /// `scratch` holds g₁ (same size as g).
  template <class S>
  void jacobian_transpose_product(ConstVectorRef<S> g, VectorRef<S> u, VectorRef<S> scratch) const {
    if (norm > 0) {
      scratch = g;
      if (value > 0) scratch = scratch.cwiseMax(S(-value)).cwiseMin(S(value));  // g₁
      const S n = scratch.norm();
      if (n > S(norm)) {
        const S along = scratch.dot(u) / (n * n);
        u = (S(norm) / n) * (u - along * scratch);  // (norm/‖g₁‖)(u − ĝ ĝᵀu)
      }
    }
    if (value > 0) u = (g.array().abs() < S(value)).select(u, S(0));  // diag mask
  }
};

}  // namespace metalearn
