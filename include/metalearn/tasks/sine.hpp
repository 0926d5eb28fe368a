#pragma once
/// @file
/// @brief The sinusoid regression task distribution of the MAML paper (Finn et al. 2017, §5.1).
///
/// A task is y = A·sin(x − φ) with A ~ U[0.1, 5.0], φ ~ U[0, π]; its examples have
/// x ~ U[−5, 5]. Optionally a frequency ω ~ U[ω_min, ω_max] too, y = A·sin(ωx − φ) (Meta-SGD's
/// protocol: ω ∈ [0.8, 1.2], and φ ∈ [−π, 0] for its y = A sin(ωx + b), b ∈ [0, π]). The
/// sampler fills caller storage and draws from its own seeded `Rng` in a fixed order (A, φ, ω
/// when its range is not a single value, support x, query x), so a seed reproduces the task
/// stream and the engine state can be saved and restored with checkpoints.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/tasks/task.hpp>

#include <cmath>
#include <cstdint>

namespace metalearn::tasks {

/// One sinusoid: y = amplitude · sin(frequency · x − phase).
struct Sinusoid {
  double amplitude = 1;  ///< A
  double phase = 0;      ///< φ
  double frequency = 1;  ///< ω
  /// y at x.
  double operator()(double x) const { return amplitude * std::sin(frequency * x - phase); }
};

/// Seeded sampler of sinusoid regression tasks.
/// @tparam Scalar float or double
template <class Scalar>
class SineTasks {
 public:
  using Batch = RegressionBatch<Scalar>;  ///< inputs 1 × K, targets 1 × K
  using Task = metalearn::Task<Batch>;    ///< support and query

  /// The distribution (defaults: the MAML paper).
  struct Options {
    double amplitude_min = 0.1;               ///< A ~ U[amplitude_min, amplitude_max]
    double amplitude_max = 5.0;
    double phase_min = 0.0;                   ///< φ ~ U[phase_min, phase_max]
    double phase_max = 3.14159265358979323846;
    double frequency_min = 1.0;               ///< ω ~ U[frequency_min, frequency_max] (not drawn when equal)
    double frequency_max = 1.0;
    double x_min = -5.0;                      ///< x ~ U[x_min, x_max]
    double x_max = 5.0;
    Index support = 10;                       ///< K support examples per task
    Index query = 10;                         ///< query examples per task
  };

  /// A sampler drawing from `Rng(seed, stream)`.
  explicit SineTasks(std::uint64_t seed, Options options = {}, std::uint64_t stream = 0)
      : options_(options), rng_(seed, stream) {
    bool finite = true;
    for (double v : {options.amplitude_min, options.amplitude_max, options.phase_min, options.phase_max,
                     options.frequency_min, options.frequency_max, options.x_min, options.x_max})
      finite = finite && detail::is_finite(v);
    if (!finite || !(options.amplitude_min <= options.amplitude_max) || !(options.phase_min <= options.phase_max) ||
        !(options.frequency_min <= options.frequency_max) || !(options.x_min < options.x_max))
      detail::fail("tasks::SineTasks", "ranges must be finite with min <= max (x_min < x_max)");
    if (options.support <= 0 || options.query <= 0)
      detail::fail("tasks::SineTasks", "support and query sizes must be > 0, got ", options.support, " and ",
                   options.query);
  }

  /// Draws a sinusoid (A, φ, then ω unless its range is one value).
  Sinusoid sample_sinusoid() {
    Sinusoid s;
    s.amplitude = rng_.uniform(options_.amplitude_min, options_.amplitude_max);
    s.phase = rng_.uniform(options_.phase_min, options_.phase_max);
    s.frequency = options_.frequency_min == options_.frequency_max
                      ? options_.frequency_min
                      : rng_.uniform(options_.frequency_min, options_.frequency_max);
    return s;
  }

  /// Fills `batch` with `count` (> 0) examples of `s` at x ~ U[x_min, x_max] (resizes only
  /// when the size changes).
  void sample_points(const Sinusoid& s, Index count, Batch& batch) {
    if (count <= 0) detail::fail("tasks::SineTasks::sample_points", "count must be > 0, got ", count);
    batch.inputs.resize(1, count);
    batch.targets.resize(1, count);
    for (Index j = 0; j < count; ++j) {
      const double x = rng_.uniform(options_.x_min, options_.x_max);
      batch.inputs(0, j) = static_cast<Scalar>(x);
      batch.targets(0, j) = static_cast<Scalar>(s(x));
    }
  }

  /// Fills a task (support then query) and returns its sinusoid.
  Sinusoid sample(Task& task) {
    const Sinusoid s = sample_sinusoid();
    sample_points(s, options_.support, task.support);
    sample_points(s, options_.query, task.query);
    return s;
  }

  /// `count` (> 0) evenly spaced points of `s` on [x_min, x_max] (both ends included).
  Batch grid(const Sinusoid& s, Index count) const {
    if (count <= 0) detail::fail("tasks::SineTasks::grid", "count must be > 0, got ", count);
    Batch b;
    b.inputs.resize(1, count);
    b.targets.resize(1, count);
    for (Index j = 0; j < count; ++j) {
      const double x = count == 1 ? options_.x_min
                                  : options_.x_min + (options_.x_max - options_.x_min) * static_cast<double>(j) /
                                                         static_cast<double>(count - 1);
      b.inputs(0, j) = static_cast<Scalar>(x);
      b.targets(0, j) = static_cast<Scalar>(s(x));
    }
    return b;
  }

  /// The distribution.
  const Options& options() const { return options_; }
  /// The engine (its state goes into checkpoints).
  Rng& rng() { return rng_; }
  /// The engine (read-only).
  const Rng& rng() const { return rng_; }

 private:
  Options options_;
  Rng rng_;
};

}  // namespace metalearn::tasks
