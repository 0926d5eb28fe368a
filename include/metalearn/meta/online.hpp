#pragma once
/// @file
/// @brief Online adaptation, as a controller does it at every step (GrBAL, Nagabandi, Clavera
/// et al. 2019): reset to the meta-learned θ*, take k inner steps on the latest window of the
/// system's data, write the fast weights into the caller's storage — without allocating.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/data/transition_window.hpp>
#include <metalearn/meta/algorithm.hpp>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace metalearn {

/// Adapts θ* to the last `window` examples of a `data::TransitionWindow` with any algorithm of
/// meta/algorithm.hpp whose model takes regression batches (an `nn::Objective` with mean
/// squared error, for example). It holds θ*, the support batch and one workspace of the
/// algorithm, so that after the first call `adapt` does not touch the heap: every control step
/// starts again from θ* (adaptation never accumulates, as in GrBAL) and costs the k inner steps
/// alone. Not for concurrent use (one adapter per thread).
template <class Algorithm>
class OnlineAdapter {
  static_assert(check_algorithm<Algorithm>());

 public:
  using Scalar = typename Algorithm::Scalar;            ///< float or double
  using Model = typename Algorithm::Model;              ///< the model adapted
  using Batch = typename Model::Batch;                  ///< the support batch type
  static_assert(std::is_same_v<Batch, RegressionBatch<Scalar>>,
                "metalearn: OnlineAdapter needs a model whose Batch is RegressionBatch<Scalar>");

  /// @param algorithm the algorithm (kept by reference: it must outlive the adapter)
  /// @param meta      its meta-parameters θ* (copied; `algorithm.parameter_count()` entries)
  /// @param window    examples of the support set, the last ones the window holds (≥ 1)
  /// @param steps     inner steps per adaptation (≥ 0; 0 gives θ* itself)
  /// Throws `invalid_argument` naming a wrong size, a non-finite θ* or a bad count.
  OnlineAdapter(const Algorithm& algorithm, ConstVectorRef<Scalar> meta, Index window, int steps)
      : algorithm_(&algorithm), meta_(meta), window_(window), steps_(steps) {
    constexpr const char* where = "OnlineAdapter";
    detail::check_size(where, "theta*", meta.size(), algorithm.parameter_count());
    detail::check_finite(where, "theta*", meta_);
    if (window < 1) detail::fail(where, "the window must hold >= 1 examples, got ", window);
    if (steps < 0) detail::fail(where, "steps must be >= 0, got ", steps);
  }

  /// θ*, the meta-parameters every adaptation starts from.
  const Vector<Scalar>& meta() const { return meta_; }
  /// Examples adapted on.
  Index window() const { return window_; }
  /// Inner steps per adaptation.
  int steps() const { return steps_; }

  /// Fast weights after `steps()` inner steps from θ* on the last `window()` examples of
  /// `data`, written to `fast` (the model's parameter count). Throws `invalid_argument` when
  /// `data` holds fewer examples or has other sizes than the model reads, and
  /// `numerical_error` when an inner step diverges; `fast` is then unchanged.
  void adapt(const data::TransitionWindow<Scalar>& data, VectorRef<Scalar> fast) {
    constexpr const char* where = "OnlineAdapter::adapt";
    detail::check_size(where, "fast", fast.size(), algorithm_->model().parameter_count());
    data.write(window_, support_);
    adapt(support_, fast);
  }

  /// The same on the last min(data.size(), window()) examples: at the start of an episode,
  /// before the window has filled, it adapts on what there is (GrBAL's controller does not wait
  /// M steps). One batch per count is kept, so that after each count has been seen once it does
  /// not allocate either. Throws `invalid_argument` when `data` holds no example.
  void adapt_available(const data::TransitionWindow<Scalar>& data, VectorRef<Scalar> fast) {
    constexpr const char* where = "OnlineAdapter::adapt_available";
    detail::check_size(where, "fast", fast.size(), algorithm_->model().parameter_count());
    if (data.size() == 0) detail::fail(where, "the window holds no example yet");
    const Index n = std::min(data.size(), window_);
    if (n == window_) {
      data.write(n, support_);
      adapt(support_, fast);
      return;
    }
    if (partial_.empty()) partial_.resize(static_cast<std::size_t>(window_));
    Batch& b = partial_[static_cast<std::size_t>(n)];
    data.write(n, b);
    adapt(b, fast);
  }

  /// The same on a support batch the caller assembled.
  void adapt(const Batch& support, VectorRef<Scalar> fast) {
    constexpr const char* where = "OnlineAdapter::adapt";
    detail::check_size(where, "fast", fast.size(), algorithm_->model().parameter_count());
    if (steps_ == 0) {
      fast = meta_.head(fast.size());
      return;
    }
    algorithm_->adapt(meta_, support, fast, ws_, steps_);
  }

 private:
  const Algorithm* algorithm_;
  Vector<Scalar> meta_;
  Index window_;
  int steps_;
  Batch support_;
  std::vector<Batch> partial_;  // partial_[n]: the support set of n < window() examples
  typename Algorithm::Workspace ws_;
};

}  // namespace metalearn
