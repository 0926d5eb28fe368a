#pragma once
/// @file
/// @brief Exception types thrown by metalearn and the helpers that build their messages.
///
/// Every check happens before any output is written, so when one of these is thrown the
/// caller's parameters, gradients, optimizer state and files are exactly as they were.

#include <metalearn/core/types.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace metalearn {

/// Bad input to a metalearn function: a wrong shape, an empty batch, a label out of range,
/// a non-finite value, an option out of its domain. The message names what was expected
/// and what came.
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A computation produced a non-finite value where the caller asked for it to be an error
/// (for example a non-finite meta-gradient under `NonFinitePolicy::throw_error`).
class numerical_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A checkpoint or weights file that cannot be used: unreadable or unwritable, truncated,
/// corrupt (checksum), of another format version or scalar type, or written for another
/// model or optimizer than the one it is loaded into. The message names the file and what
/// mismatched; the objects it was to be loaded into are unchanged.
class checkpoint_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

/// Concatenates the arguments with `operator<<` into one string.
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  out.precision(9);
  (out << ... << std::forward<Args>(args));
  return out.str();
}

/// Throws `metalearn::invalid_argument` whose message is "metalearn: <where>: <details>".
template <class... Args>
[[noreturn]] void fail(const char* where, Args&&... details) {
  throw metalearn::invalid_argument(concat("metalearn: ", where, ": ", std::forward<Args>(details)...));
}

/// Throws `metalearn::checkpoint_error` whose message is "metalearn: <where>: <details>".
template <class... Args>
[[noreturn]] void fail_checkpoint(const char* where, Args&&... details) {
  throw metalearn::checkpoint_error(concat("metalearn: ", where, ": ", std::forward<Args>(details)...));
}

/// Throws unless `actual == expected`: "<what> has <actual> <unit>, expected <expected>".
inline void check_size(const char* where, const char* what, Index actual, Index expected,
                       const char* unit = "entries") {
  if (actual != expected) fail(where, what, " has ", actual, " ", unit, ", expected ", expected);
}

/// True when every coefficient of `x` is finite. Vectorised: x·0 is 0 for finite x and NaN for
/// ±∞ and NaN, so the sum is 0 exactly when all are finite (Eigen's allFinite() is a scalar
/// loop). Not valid under -ffast-math, which metalearn does not use.
template <class Derived>
bool all_finite(const Eigen::DenseBase<Derived>& x) {
  using S = typename Derived::Scalar;
  return (x.derived().array() * S(0)).sum() == S(0);
}

/// Throws unless every coefficient of `x` is finite, naming the first offending entry.
template <class Derived>
void check_finite(const char* where, const char* what, const Eigen::DenseBase<Derived>& x) {
  if (all_finite(x)) return;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < x.rows(); ++i) {
      using std::isfinite;
      if (!isfinite(x(i, j))) fail(where, what, " must be finite, but entry (", i, ", ", j, ") is ", x(i, j));
    }
  }
}

/// Throws unless `value` is finite and positive.
inline void check_positive(const char* where, const char* what, double value) {
  if (!(value > 0.0) || value == std::numeric_limits<double>::infinity())
    fail(where, what, " must be finite and > 0, got ", value);
}

}  // namespace detail
}  // namespace metalearn
