#pragma once
/// @file
/// @brief Finiteness checks that hold under any floating-point flags, -ffast-math included.
///
/// metalearn is header-only, so it is compiled with its user's flags. Under -ffast-math (or
/// -ffinite-math-only, which defines `__FINITE_MATH_ONLY__`) the compiler assumes that no
/// value is NaN or infinite and folds `std::isfinite(x)`, `x != x`, `!(x > 0)` for NaN and
/// Eigen's `allFinite()` to constants, which would let NaN inputs, diverged meta-gradients and
/// non-finite checkpoints through. These checks read the exponent bits instead, which no
/// floating-point flag changes; without such flags the array check keeps a vectorised
/// floating-point form.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace metalearn::detail {

/// True when the exponent bits of x are not all ones (x is neither ±∞ nor NaN).
template <class S>
inline bool is_finite(S x) noexcept {
  static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>, "metalearn: is_finite takes float or double");
  if constexpr (std::is_same_v<S, float>) {
    std::uint32_t b;
    std::memcpy(&b, &x, sizeof b);
    return (b & 0x7f800000U) != 0x7f800000U;
  } else {
    std::uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    return (b & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL;
  }
}

#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
/// True: this translation unit is compiled with finite-math-only semantics (-ffast-math).
inline constexpr bool finite_math_only = true;
#else
/// False: IEEE semantics for NaN and infinity.
inline constexpr bool finite_math_only = false;
#endif

/// True when every coefficient of `x` is finite. With IEEE semantics vectorised: x·0 is 0 for
/// finite x and NaN for ±∞ and NaN, so the sum is 0 exactly when all are finite (Eigen's
/// allFinite() is a scalar loop). Under finite-math-only, by the exponent bits.
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& x) {
  using S = typename Derived::Scalar;
  if constexpr (!finite_math_only) {
    return (x.derived().array() * S(0)).sum() == S(0);
  } else {
    for (Index j = 0; j < x.cols(); ++j)
      for (Index i = 0; i < x.rows(); ++i)
        if (!is_finite<S>(x.derived().coeff(i, j))) return false;
    return true;
  }
}

/// Throws unless every coefficient of `x` is finite, naming the first offending entry.
template <class Derived>
void check_finite(const char* where, const char* what, const Eigen::DenseBase<Derived>& x) {
  using S = typename Derived::Scalar;
  if (all_finite(x)) return;
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i)
      if (!is_finite<S>(x.derived().coeff(i, j)))
        fail(where, what, " must be finite, but entry (", i, ", ", j, ") is ", x.derived().coeff(i, j));
}

/// Throws unless `value` is finite and > 0.
inline void check_positive(const char* where, const char* what, double value) {
  if (!is_finite(value) || !(value > 0.0)) fail(where, what, " must be finite and > 0, got ", value);
}

/// Throws unless `value` is finite and >= 0.
inline void check_non_negative(const char* where, const char* what, double value) {
  if (!is_finite(value) || !(value >= 0.0)) fail(where, what, " must be finite and >= 0, got ", value);
}

}  // namespace metalearn::detail
