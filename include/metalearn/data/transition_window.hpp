#pragma once
/// @file
/// @brief The last M examples a running system produced — (input, target) pairs such as a
/// dynamics model's (state, action) → state change — in a ring buffer, written out as a task
/// batch in the order they came, without allocating.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <algorithm>

namespace metalearn::data {

/// A sliding window of the most recent `capacity` examples of a stream: `push` adds one and,
/// when the window is full, forgets the oldest; `write` copies the last n into a regression
/// batch, oldest first, which is the support set of online adaptation (GrBAL adapts on the
/// last M transitions at every control step). The storage is allocated once, by the
/// constructor; `push` and `write` (into a batch of the right size) never allocate.
template <class Scalar>
class TransitionWindow {
 public:
  /// A window of `capacity` examples with `input_size` inputs and `target_size` targets each
  /// (all ≥ 1; throws `invalid_argument` naming the one that is not).
  TransitionWindow(Index input_size, Index target_size, Index capacity) {
    constexpr const char* where = "data::TransitionWindow";
    if (input_size < 1) detail::fail(where, "input_size must be >= 1, got ", input_size);
    if (target_size < 1) detail::fail(where, "target_size must be >= 1, got ", target_size);
    if (capacity < 1) detail::fail(where, "capacity must be >= 1, got ", capacity);
    inputs_.resize(input_size, capacity);
    targets_.resize(target_size, capacity);
  }

  /// Inputs per example.
  Index input_size() const { return inputs_.rows(); }
  /// Targets per example.
  Index target_size() const { return targets_.rows(); }
  /// The most examples it holds.
  Index capacity() const { return inputs_.cols(); }
  /// The examples it holds (≤ capacity).
  Index size() const { return size_; }
  /// Whether it holds `capacity` examples.
  bool full() const { return size_ == capacity(); }
  /// Examples pushed since construction or `clear` (including the forgotten ones).
  Index pushed() const { return pushed_; }
  /// Forgets every example (a new episode); keeps the storage.
  void clear() {
    size_ = 0;
    next_ = 0;
    pushed_ = 0;
  }

  /// Adds one example, forgetting the oldest when full. Throws `invalid_argument` for a wrong
  /// size and `numerical_error` for a non-finite entry (a diverging simulation or a broken
  /// sensor: a controller must stop, not adapt on it), naming the entry; the window is then
  /// unchanged.
  void push(ConstVectorRef<Scalar> input, ConstVectorRef<Scalar> target) {
    constexpr const char* where = "data::TransitionWindow::push";
    detail::check_size(where, "the input", input.size(), input_size());
    detail::check_size(where, "the target", target.size(), target_size());
    check_entries(where, "input", input);
    check_entries(where, "target", target);
    inputs_.col(next_) = input;
    targets_.col(next_) = target;
    next_ = next_ + 1 == capacity() ? 0 : next_ + 1;
    if (size_ < capacity()) ++size_;
    ++pushed_;
  }

  /// The i-th example held, oldest first (0 ≤ i < size()).
  auto input(Index i) const { return inputs_.col(slot(i)); }
  /// The target of the i-th example held, oldest first.
  auto target(Index i) const { return targets_.col(slot(i)); }

  /// Copies the last `n` examples, oldest first, into `batch` (resized to n columns when its
  /// shape differs — once, for a batch kept across calls). Throws `invalid_argument` when the
  /// window holds fewer than n examples (naming both) or n < 1.
  void write(Index n, RegressionBatch<Scalar>& batch) const {
    constexpr const char* where = "data::TransitionWindow::write";
    if (n < 1) detail::fail(where, "the number of examples must be >= 1, got ", n);
    if (n > size_) detail::fail(where, "asked for the last ", n, " examples, the window holds ", size_,
                                " (capacity ", capacity(), ")");
    if (batch.inputs.rows() != input_size() || batch.inputs.cols() != n) batch.inputs.resize(input_size(), n);
    if (batch.targets.rows() != target_size() || batch.targets.cols() != n) batch.targets.resize(target_size(), n);
    // the last n are slots [next − n, next) modulo the capacity: at most two contiguous runs
    const Index first = (next_ - n + capacity()) % capacity();
    const Index run = std::min(n, capacity() - first);
    batch.inputs.leftCols(run) = inputs_.middleCols(first, run);
    batch.targets.leftCols(run) = targets_.middleCols(first, run);
    if (run < n) {
      batch.inputs.rightCols(n - run) = inputs_.leftCols(n - run);
      batch.targets.rightCols(n - run) = targets_.leftCols(n - run);
    }
  }

 private:
  Index slot(Index i) const {
    if (i < 0 || i >= size_) detail::fail("data::TransitionWindow", "example ", i, " of ", size_, " held");
    return (next_ - size_ + i + 2 * capacity()) % capacity();
  }

  static void check_entries(const char* where, const char* what, const ConstVectorRef<Scalar>& v) {
    if (detail::all_finite(v)) return;
    for (Index i = 0; i < v.size(); ++i)
      if (!detail::is_finite(v[i]))
        throw numerical_error(detail::concat("metalearn: ", where, ": ", what, " entry ", i, " is ", v[i],
                                             " (a diverging system or a broken sensor?); the window is unchanged"));
  }

  Matrix<Scalar> inputs_, targets_;  // one example per column, a ring of `capacity` slots
  Index size_ = 0, next_ = 0, pushed_ = 0;
};

}  // namespace metalearn::data
