#pragma once
/// @file
/// @brief Weight initialisation schemes, drawn from metalearn's seeded `Rng`.
///
/// Every scheme draws the weights of each layer in parameter order (W column by column)
/// and sets the biases to zero, so a seed reproduces the parameters bit for bit.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>
#include <string>
#include <variant>

namespace metalearn::nn {

/// Glorot/Xavier uniform: W ~ U(−r, r), r = √(6 / (fan_in + fan_out)).
struct GlorotUniform {};
/// Glorot/Xavier normal: W ~ N(0, 2 / (fan_in + fan_out)).
struct GlorotNormal {};
/// He/Kaiming uniform: W ~ U(−r, r), r = √(6 / fan_in).
struct HeUniform {};
/// He/Kaiming normal: W ~ N(0, 2 / fan_in).
struct HeNormal {};
/// W ~ N(0, σ²).
struct Normal {
  double stddev = 0.01;  ///< σ
};
/// W ~ N(0, σ²) truncated to ±2σ (TensorFlow's truncated_normal; the MAML paper's σ = 0.01).
struct TruncatedNormal {
  double stddev = 0.01;  ///< σ
};

/// One of the schemes above.
using Initializer = std::variant<GlorotUniform, GlorotNormal, HeUniform, HeNormal, Normal, TruncatedNormal>;

namespace detail {

/// Throws `invalid_argument` unless the scheme's parameters are valid (σ finite and > 0).
inline void check_initializer(const char* where, const Initializer& init) {
  if (const auto* n = std::get_if<Normal>(&init)) metalearn::detail::check_positive(where, "Normal's stddev", n->stddev);
  if (const auto* t = std::get_if<TruncatedNormal>(&init))
    metalearn::detail::check_positive(where, "TruncatedNormal's stddev", t->stddev);
}

/// Fills W (fan_out × fan_in) from `init` and zeroes b. Throws (writing nothing) if the
/// scheme's parameters are invalid.
template <class WMap, class BMap>
void initialize_layer(const Initializer& init, Index fan_in, Index fan_out, Rng& rng, WMap&& w, BMap&& b) {
  check_initializer("nn::initialize", init);
  using S = typename std::decay_t<WMap>::Scalar;
  const double in = static_cast<double>(fan_in), out = static_cast<double>(fan_out);
  auto fill = [&](auto draw) {
    for (Index j = 0; j < w.cols(); ++j)
      for (Index i = 0; i < w.rows(); ++i) w(i, j) = static_cast<S>(draw());
  };
  std::visit(
      [&](const auto& scheme) {
        using T = std::decay_t<decltype(scheme)>;
        if constexpr (std::is_same_v<T, GlorotUniform>) {
          const double r = std::sqrt(6.0 / (in + out));
          fill([&] { return rng.uniform(-r, r); });
        } else if constexpr (std::is_same_v<T, GlorotNormal>) {
          const double s = std::sqrt(2.0 / (in + out));
          fill([&] { return s * rng.normal(); });
        } else if constexpr (std::is_same_v<T, HeUniform>) {
          const double r = std::sqrt(6.0 / in);
          fill([&] { return rng.uniform(-r, r); });
        } else if constexpr (std::is_same_v<T, HeNormal>) {
          const double s = std::sqrt(2.0 / in);
          fill([&] { return s * rng.normal(); });
        } else if constexpr (std::is_same_v<T, Normal>) {
          fill([&] { return scheme.stddev * rng.normal(); });
        } else {
          fill([&] { return rng.truncated_normal(scheme.stddev); });
        }
      },
      init);
  b.setZero();
}

}  // namespace detail

/// Name of the scheme ("glorot_uniform", "truncated_normal(0.01)", ...).
inline std::string initializer_name(const Initializer& init) {
  struct Namer {
    std::string operator()(GlorotUniform) const { return "glorot_uniform"; }
    std::string operator()(GlorotNormal) const { return "glorot_normal"; }
    std::string operator()(HeUniform) const { return "he_uniform"; }
    std::string operator()(HeNormal) const { return "he_normal"; }
    std::string operator()(Normal n) const { return "normal(" + std::to_string(n.stddev) + ")"; }
    std::string operator()(TruncatedNormal n) const { return "truncated_normal(" + std::to_string(n.stddev) + ")"; }
  };
  return std::visit(Namer{}, init);
}

}  // namespace metalearn::nn
