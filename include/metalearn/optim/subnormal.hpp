#pragma once
/// @file
/// @brief Flushing subnormal optimizer state to zero (internal to the optimizers).
///
/// Optimizer state that decays geometrically while a gradient entry is exactly zero (a dead
/// ReLU unit's weights) passes through the subnormal range on its way to zero: Adam's first
/// moment, decaying by β₁ = 0.9 per step, spends about 150 steps there in float, and units die
/// at different times, so late in meta-training some entries always are. Arithmetic on
/// subnormals takes a slow microcode path on x86 (an Adam step several times slower;
/// bench/README.md has the measurement). The callers bound the effect of the flush on θ.

#include <metalearn/core/types.hpp>

#include <cmath>
#include <limits>

namespace metalearn::detail {

/// Sets the entries of x whose magnitude is below the smallest normal number to zero.
template <class Scalar>
void flush_subnormals(Vector<Scalar>& x) {
  constexpr Scalar kMinNormal = std::numeric_limits<Scalar>::min();
  Scalar* p = x.data();
  // A plain loop: compilers turn it into a compare and a blend per vector register.
  for (Index i = 0, n = x.size(); i < n; ++i) p[i] = std::abs(p[i]) < kMinNormal ? Scalar(0) : p[i];
}

}  // namespace metalearn::detail
