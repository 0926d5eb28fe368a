#pragma once
/// @file
/// @brief A seeded, serialisable random engine and the few distributions metalearn draws from.
///
/// The standard library's distributions (`std::normal_distribution`, ...) are not specified
/// bit for bit and differ between standard libraries, and Eigen's `Random()` uses
/// `std::rand`. metalearn therefore draws everything from `Rng`: xoshiro256** seeded through
/// splitmix64, with uniform and normal variates computed by fixed formulas, so that a seed
/// reproduces a run exactly and the whole state fits in four 64-bit words (checkpoints).

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>

namespace metalearn {

/// xoshiro256** (Blackman & Vigna) with splitmix64 seeding. Satisfies
/// UniformRandomBitGenerator, so it also works with the standard algorithms.
class Rng {
 public:
  using result_type = std::uint64_t;
  /// The four 64-bit words of the generator's state.
  using State = std::array<std::uint64_t, 4>;

  /// Seeds the generator; `stream` selects an independent sequence for the same seed
  /// (for example training tasks and evaluation tasks drawn from one user seed).
  explicit Rng(std::uint64_t seed = 0, std::uint64_t stream = 0) noexcept { reseed(seed, stream); }

  /// Re-seeds in place, exactly as the constructor does.
  void reseed(std::uint64_t seed, std::uint64_t stream = 0) noexcept {
    std::uint64_t x = seed;
    std::uint64_t y = stream ^ 0x6A09E667F3BCC909ULL;
    for (auto& word : s_) word = splitmix64(x) ^ (stream != 0 ? splitmix64(y) : 0);
  }

  static constexpr result_type min() noexcept { return 0; }
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// Next 64 random bits.
  result_type operator()() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1), from the top 53 bits.
  double uniform() noexcept { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }

  /// Uniform integer in [0, n) for n > 0, without modulo bias (rejection of the low range).
  std::uint64_t uniform_index(std::uint64_t n) noexcept {
    if (n == 0) return 0;
    const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const std::uint64_t x = (*this)();
      if (x >= threshold) return x % n;
    }
  }

  /// Standard normal variate (Box–Muller, one value per two uniforms, no cached state).
  double normal() noexcept {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }

  /// Normal variate with the given mean and standard deviation.
  double normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }

  /// Normal variate with mean 0 and standard deviation `stddev`, redrawn until it lies
  /// within `bound` standard deviations (TensorFlow's truncated_normal uses bound 2).
  double truncated_normal(double stddev, double bound = 2.0) noexcept {
    for (;;) {
      const double z = normal();
      if (std::abs(z) <= bound) return stddev * z;
    }
  }

  /// The generator's state, for checkpoints.
  const State& state() const noexcept { return s_; }
  /// Restores a state previously returned by `state()`.
  void set_state(const State& s) noexcept { s_ = s; }

  friend bool operator==(const Rng& a, const Rng& b) noexcept { return a.s_ == b.s_; }
  friend bool operator!=(const Rng& a, const Rng& b) noexcept { return !(a == b); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  State s_{};
};

}  // namespace metalearn
