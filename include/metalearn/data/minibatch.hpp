#pragma once
/// @file
/// @brief Mini-batches of a labelled dataset: a seeded shuffled order per epoch, batches
/// copied into buffers allocated once.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/data/dataset.hpp>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

namespace metalearn::data {

/// Options of `MiniBatches`.
struct MiniBatchOptions {
  Index batch_size = 128;  ///< examples per batch (≥ 1, at most the dataset's size)
  bool drop_last = false;  ///< drop the last, partial batch of an epoch instead of yielding it
  bool shuffle = true;     ///< a new random order each epoch (else the dataset's order)
};

/// Draws the batches of one epoch after another: at the start of each epoch the examples are
/// put in a random order (Fisher–Yates from the sampler's `Rng`), and `next()` copies the
/// next `batch_size` of them into a buffer. Every example appears once per epoch (with
/// `drop_last`, the size mod batch_size examples at the end of each order are left out of
/// it). The buffers and the order are allocated at construction: `next()` never allocates.
/// The dataset must outlive the sampler.
template <class Scalar>
class MiniBatches {
 public:
  using Batch = ClassificationBatch<Scalar>;  ///< inputs (features × b) and labels

  /// Batches of `data` drawn from `Rng(seed, stream)`. Throws `invalid_argument` for an empty
  /// dataset or a batch size outside [1, data.size()].
  MiniBatches(const LabelledDataset<Scalar>& data, MiniBatchOptions options, std::uint64_t seed,
              std::uint64_t stream = 0)
      : data_(data), options_(options), rng_(seed, stream) {
    constexpr const char* where = "data::MiniBatches";
    data.validate(where);
    if (data.size() == 0) metalearn::detail::fail(where, "the dataset is empty");
    if (options.batch_size < 1 || options.batch_size > data.size())
      metalearn::detail::fail(where, "batch_size must be in [1, ", data.size(), "] (the dataset's size), got ",
                              options.batch_size);
    const Index rest = data.size() % options.batch_size;
    full_ = Batch{Matrix<Scalar>(data.feature_count(), options.batch_size), Labels(options.batch_size)};
    if (rest > 0 && !options.drop_last) partial_ = Batch{Matrix<Scalar>(data.feature_count(), rest), Labels(rest)};
    order_.resize(static_cast<std::size_t>(data.size()));
    begin_epoch();
  }

  /// Batches per epoch.
  Index batches_per_epoch() const {
    const Index b = options_.batch_size, n = data_.size();
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }
  /// Epochs begun (1 after construction).
  Index epoch() const { return epoch_; }
  /// Batches taken in the current epoch.
  Index position() const { return position_; }

  /// The next batch (a reference to a buffer of the sampler, valid until the next call),
  /// beginning a new epoch with a new order when the current one is done.
  const Batch& next() {
    if (position_ == batches_per_epoch()) begin_epoch();
    const Index first = position_ * options_.batch_size;
    const Index count = std::min(options_.batch_size, data_.size() - first);
    Batch& b = count == options_.batch_size ? full_ : partial_;
    for (Index k = 0; k < count; ++k) {
      const Index j = order_[static_cast<std::size_t>(first + k)];
      b.inputs.col(k) = data_.features.col(j);
      b.targets[k] = data_.labels[j];
    }
    ++position_;
    return b;
  }

  /// The engine state at the start of the current epoch: with `position()` it is all a
  /// checkpoint needs to continue the same order (`restore`).
  const Rng& epoch_rng() const { return epoch_rng_; }
  /// Continues at batch `position` of the epoch whose order `epoch_rng` (an `epoch_rng()` of
  /// this sampler's configuration) draws, as epoch number `epoch`. Throws `invalid_argument`,
  /// with the sampler unchanged, for a position outside [0, batches_per_epoch()] or epoch < 1.
  void restore(const Rng& epoch_rng, Index position, Index epoch = 1) {
    if (position < 0 || position > batches_per_epoch())
      metalearn::detail::fail("data::MiniBatches::restore", "position must be in [0, ", batches_per_epoch(), "], got ",
                              position);
    if (epoch < 1) metalearn::detail::fail("data::MiniBatches::restore", "epoch must be >= 1, got ", epoch);
    rng_ = epoch_rng;
    begin_epoch();
    position_ = position;
    epoch_ = epoch;
  }

  /// Continues after `taken` batches in all (a trainer's iteration count) of which the last
  /// epoch's order was drawn from `epoch_rng`: the state of a sampler that gave those batches.
  void restore_after(const Rng& epoch_rng, Index taken) {
    if (taken < 0) metalearn::detail::fail("data::MiniBatches::restore_after", "taken must be >= 0, got ", taken);
    const Index per_epoch = batches_per_epoch();
    const Index epoch = taken == 0 ? 1 : (taken - 1) / per_epoch + 1;
    restore(epoch_rng, taken - (epoch - 1) * per_epoch, epoch);
  }

  /// The options.
  const MiniBatchOptions& options() const { return options_; }

 private:
  void begin_epoch() {
    epoch_rng_ = rng_;
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<Index>(i);
    if (options_.shuffle)
      for (std::size_t i = order_.size() - 1; i > 0; --i)  // Fisher–Yates
        std::swap(order_[i], order_[static_cast<std::size_t>(rng_.uniform_index(i + 1))]);
    position_ = 0;
    ++epoch_;
  }

  const LabelledDataset<Scalar>& data_;
  MiniBatchOptions options_;
  Rng rng_;
  Rng epoch_rng_;
  std::vector<Index> order_;
  Batch full_, partial_;
  Index position_ = 0;
  Index epoch_ = 0;
};

}  // namespace metalearn::data
