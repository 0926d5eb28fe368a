#pragma once
/// @file
/// @brief What a derivative check returns: which entries differ from the reference and by
/// how much, with a readable report; and the options shared by the checkers.

#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace metalearn::check {

/// Options of the finite-difference checkers.
struct Options {
  /// Relative step: h = step · max(1, |θ_i|) (per entry) or step · max(1, ‖θ‖∞) / ‖v‖∞ (per
  /// direction). 0 chooses ∛(machine ε) of the model's scalar, which balances the O(h²)
  /// truncation error of central differences against their O(ε/h) rounding error.
  double step = 0;
  /// An entry fails when |analytic − numeric| / max(floor, |analytic|, |numeric|) exceeds it.
  /// 0 chooses 1e-6 for double and 1e-2 for float: central differences in float carry a
  /// rounding error of about ε·|L|/h ≈ 2.4e-5·|L| (ε = 1.2e-7, h = 4.9e-3), so 1e-2 leaves
  /// two orders of margin for losses up to |L| ≈ 4 while still catching a wrong term, whose
  /// error is of the order of the derivative itself.
  double tolerance = 0;
  /// The denominator's floor: below it, errors are absolute.
  double floor = 1;
  /// Check at most this many entries (chosen at random with `seed`); 0 checks them all.
  Index max_entries = 0;
  /// Seed of the entry sample when `max_entries` is set.
  std::uint64_t seed = 0;
  /// How many of the worst mismatches the result keeps.
  std::size_t max_reported = 10;
};

/// One entry where the derivative and its reference disagree.
struct Mismatch {
  Index index;       ///< entry of the parameter vector
  double analytic;   ///< the model's value
  double numeric;    ///< the reference (finite differences)
  double error;      ///< |analytic − numeric| / max(floor, |analytic|, |numeric|)
};

/// Outcome of a check; converts to true when every checked entry is within tolerance.
struct Result {
  bool ok = true;                    ///< all checked entries within tolerance
  std::string what;                  ///< "gradient", "hessian_vector_product", ...
  Index checked = 0;                 ///< number of entries compared
  double tolerance = 0;              ///< the tolerance used
  double step = 0;                   ///< the finite-difference step used
  double max_error = 0;              ///< largest error over the checked entries
  Index worst_index = -1;            ///< entry with the largest error
  std::vector<Mismatch> mismatches;  ///< the worst failing entries, worst first

  explicit operator bool() const { return ok; }

  /// A human-readable summary, one line per reported mismatch.
  std::string report() const {
    std::ostringstream out;
    out.precision(9);
    out << what << ": " << (ok ? "ok" : "FAILED") << ", " << checked << " entries, max error " << max_error
        << " at entry " << worst_index << " (tolerance " << tolerance << ", step " << step << ")";
    for (const auto& m : mismatches)
      out << "\n  entry " << m.index << ": analytic " << m.analytic << ", numeric " << m.numeric << ", error "
          << m.error;
    return out.str();
  }
};

namespace detail {

/// Accumulates entry comparisons into a Result.
class Comparison {
 public:
  Comparison(std::string what, double tolerance, double floor, double step, std::size_t max_reported)
      : floor_(floor), max_reported_(max_reported) {
    result_.what = std::move(what);
    result_.tolerance = tolerance;
    result_.step = step;
  }

  void add(Index index, double analytic, double numeric) {
    const double scale = std::max({floor_, std::abs(analytic), std::abs(numeric)});
    double error = std::abs(analytic - numeric) / scale;
    if (!metalearn::detail::is_finite(error) || !metalearn::detail::is_finite(analytic) ||
        !metalearn::detail::is_finite(numeric))
      error = std::numeric_limits<double>::infinity();  // NaN or unassigned entries always fail
    ++result_.checked;
    if (error > result_.max_error || result_.worst_index < 0) {
      result_.max_error = std::max(result_.max_error, error);
      result_.worst_index = index;
    }
    if (error > result_.tolerance) {
      result_.ok = false;
      result_.mismatches.push_back({index, analytic, numeric, error});
    }
  }

  Result finish() {
    auto& m = result_.mismatches;
    std::sort(m.begin(), m.end(), [](const Mismatch& a, const Mismatch& b) { return a.error > b.error; });
    if (m.size() > max_reported_) m.resize(max_reported_);
    return std::move(result_);
  }

 private:
  Result result_;
  double floor_;
  std::size_t max_reported_;
};

template <class S>
double default_tolerance(double requested) {
  if (requested > 0) return requested;
  return std::is_same_v<S, float> ? 1e-2 : 1e-6;
}

template <class S>
double default_step(double requested) {
  return requested > 0 ? requested : std::cbrt(static_cast<double>(std::numeric_limits<S>::epsilon()));
}

}  // namespace detail
}  // namespace metalearn::check
