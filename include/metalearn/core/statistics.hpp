#pragma once
/// @file
/// @brief The mean of repeated measurements with its normal-approximation 95 % confidence
/// interval, as few-shot papers report accuracies: mean ± 1.96 · s / √n.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>
#include <vector>

namespace metalearn {

/// A mean and the half-width of its confidence interval.
struct MeanInterval {
  double mean = 0;        ///< x̄
  double half_width = 0;  ///< z · s / √n, s the sample standard deviation (n − 1 in its denominator)
  double stddev = 0;      ///< s
  Index count = 0;        ///< n
};

/// x̄ ± z · s / √n of `values` (z = 1.96: 95 %), summed in double in the given order. Throws
/// `invalid_argument` for fewer than two values (s is undefined) or a non-finite one.
inline MeanInterval mean_interval(const std::vector<double>& values, double z = 1.96) {
  constexpr const char* where = "mean_interval";
  const auto n = static_cast<Index>(values.size());
  if (n < 2) detail::fail(where, "needs at least 2 values for a standard deviation, got ", n);
  if (!detail::is_finite(z) || z <= 0) detail::fail(where, "z must be finite and > 0, got ", z);
  double sum = 0;
  for (Index i = 0; i < n; ++i) {
    const double v = values[static_cast<std::size_t>(i)];
    if (!detail::is_finite(v)) detail::fail(where, "value ", i, " is ", v);
    sum += v;
  }
  MeanInterval r;
  r.count = n;
  r.mean = sum / static_cast<double>(n);
  double squares = 0;
  for (double v : values) squares += (v - r.mean) * (v - r.mean);
  r.stddev = std::sqrt(squares / static_cast<double>(n - 1));
  r.half_width = z * r.stddev / std::sqrt(static_cast<double>(n));
  return r;
}

}  // namespace metalearn
