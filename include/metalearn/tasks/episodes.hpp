#pragma once
/// @file
/// @brief Few-shot classification episodes (Vinyals et al. 2016; the MAML paper, §5.2): the
/// classes of a labelled dataset split into disjoint sets, each class optionally rotated by
/// 0/90/180/270° as four classes, and a seeded N-way K-shot episode sampler.
///
/// An episode of N ways, K shots and Q queries draws N distinct classes of a `ClassPool`, and
/// K + Q distinct examples of each (so support and query never share an example); the N classes
/// get the labels 0 … N − 1 in random order. Support columns are class-major (label 0's K
/// examples, then label 1's, …), the query's likewise. Everything is drawn from the sampler's
/// own `Rng` in a fixed order, so a seed reproduces the episode stream and a checkpoint resumes
/// it (tasks/sampler_state.hpp).

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/data/dataset.hpp>
#include <metalearn/tasks/sampler_state.hpp>
#include <metalearn/tasks/task.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace metalearn::tasks {

/// Classes 0 … classes − 1 in a random order fixed by `seed`, cut into consecutive parts of
/// the given sizes plus a last part with the rest (empty when the sizes add up to `classes`);
/// each part sorted. The standard Omniglot split is `split_classes(1623, {1200}, seed)`: 1200
/// characters for meta-training, the other 423 for testing. Throws `invalid_argument` for
/// classes < 1, a negative size, or sizes adding up to more than `classes`.
inline std::vector<std::vector<int>> split_classes(int classes, const std::vector<Index>& sizes, std::uint64_t seed) {
  constexpr const char* where = "tasks::split_classes";
  if (classes < 1) detail::fail(where, "classes must be >= 1, got ", classes);
  Index total = 0;
  for (Index s : sizes) {
    if (s < 0) detail::fail(where, "part sizes must be >= 0, got ", s);
    total += s;
  }
  if (total > classes) detail::fail(where, "the parts hold ", total, " classes, the dataset has ", classes);
  std::vector<int> order(static_cast<std::size_t>(classes));
  for (int c = 0; c < classes; ++c) order[static_cast<std::size_t>(c)] = c;
  Rng rng(seed);
  for (std::size_t i = order.size() - 1; i > 0; --i)  // Fisher–Yates
    std::swap(order[i], order[static_cast<std::size_t>(rng.uniform_index(i + 1))]);
  std::vector<std::vector<int>> parts;
  auto first = order.begin();
  for (Index s : sizes) {
    parts.emplace_back(first, first + s);
    first += s;
  }
  parts.emplace_back(first, order.end());
  for (auto& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

/// The classes whose examples all belong to one of `groups` (e.g. the characters of some
/// alphabets), given each example's class (`labels`, in [0, classes)) and group (`example_groups`).
/// Sorted. Throws `invalid_argument` when the two lists differ in length, a label is out of
/// range, or a class has examples in two groups (the grouping is not one of classes).
inline std::vector<int> classes_in_groups(const Labels& labels, int classes, const Labels& example_groups,
                                          const std::vector<int>& groups) {
  constexpr const char* where = "tasks::classes_in_groups";
  if (classes < 1) detail::fail(where, "classes must be >= 1, got ", classes);
  detail::check_size(where, "example_groups", example_groups.size(), labels.size(), "entries (one per example)");
  std::vector<int> group_of(static_cast<std::size_t>(classes), -1);
  for (Index j = 0; j < labels.size(); ++j) {
    const int c = labels[j];
    if (c < 0 || c >= classes) detail::fail(where, "label ", j, " is ", c, ", expected 0 to ", classes - 1);
    int& g = group_of[static_cast<std::size_t>(c)];
    if (g >= 0 && g != example_groups[j])
      detail::fail(where, "class ", c, " has examples in groups ", g, " and ", example_groups[j]);
    g = example_groups[j];
  }
  std::vector<int> out;
  for (int c = 0; c < classes; ++c) {
    const int g = group_of[static_cast<std::size_t>(c)];
    if (g >= 0 && std::find(groups.begin(), groups.end(), g) != groups.end()) out.push_back(c);
  }
  return out;
}

/// How a `ClassPool` turns the dataset's classes into episode classes.
struct PoolOptions {
  /// 1: each class as it is; 4: each class also rotated by 90°, 180° and 270° as three more
  /// classes (Santoro et al. 2016, used by the MAML paper on Omniglot). Needs square images.
  int rotations = 1;
  /// Side of the square images (features = side²) when rotations = 4; 0: √features.
  Index image_side = 0;
};

/// The classes an episode sampler draws from: a copy of the examples of chosen classes of a
/// dataset, grouped by class, and (option) their rotations as extra classes. Pool class
/// `c` is the dataset class `dataset_class(c)` turned by `quarter_turns(c)` × 90°
/// (counter-clockwise); the rotations of one class are consecutive: c = k · rotations + r.
template <class Scalar>
class ClassPool {
 public:
  /// The examples of `classes` (dataset labels, distinct, each with at least one example).
  /// Throws `invalid_argument` for an invalid dataset, an empty or repeated class list, a class
  /// outside the dataset or without examples, rotations other than 1 or 4, or images that are
  /// not square (side² ≠ features) when rotating.
  ClassPool(const data::LabelledDataset<Scalar>& ds, const std::vector<int>& classes, PoolOptions options = {})
      : rotations_(options.rotations), labels_(classes) {
    constexpr const char* where = "tasks::ClassPool";
    ds.validate(where);
    if (classes.empty()) detail::fail(where, "the class list is empty");
    if (rotations_ != 1 && rotations_ != 4) detail::fail(where, "rotations must be 1 or 4, got ", rotations_);
    if (rotations_ == 4) {
      side_ = options.image_side;
      if (side_ == 0)
        while ((side_ + 1) * (side_ + 1) <= ds.feature_count()) ++side_;
      if (side_ <= 0 || side_ * side_ != ds.feature_count())
        detail::fail(where, "rotating needs square images: ", ds.feature_count(), " features are not ",
                     options.image_side == 0 ? "a square number" : "image_side²");
    }
    std::vector<Index> position(static_cast<std::size_t>(ds.classes), -1);
    for (std::size_t k = 0; k < classes.size(); ++k) {
      const int c = classes[k];
      if (c < 0 || c >= ds.classes) detail::fail(where, "class ", c, " is not one of the dataset's 0 to ", ds.classes - 1);
      if (position[static_cast<std::size_t>(c)] >= 0) detail::fail(where, "class ", c, " is listed twice");
      position[static_cast<std::size_t>(c)] = static_cast<Index>(k);
    }
    std::vector<Index> count(classes.size(), 0);
    for (Index j = 0; j < ds.size(); ++j) {
      const Index k = position[static_cast<std::size_t>(ds.labels[j])];
      if (k >= 0) ++count[static_cast<std::size_t>(k)];
    }
    offset_.assign(classes.size() + 1, 0);
    for (std::size_t k = 0; k < classes.size(); ++k) {
      if (count[k] == 0) detail::fail(where, "class ", classes[k], " has no examples");
      offset_[k + 1] = offset_[k] + count[k];
    }
    features_.resize(ds.feature_count(), offset_.back());
    std::vector<Index> next(offset_.begin(), offset_.end() - 1);
    for (Index j = 0; j < ds.size(); ++j) {
      const Index k = position[static_cast<std::size_t>(ds.labels[j])];
      if (k >= 0) features_.col(next[static_cast<std::size_t>(k)]++) = ds.features.col(j);
    }
  }

  /// Episode classes: dataset classes × rotations.
  Index classes() const { return static_cast<Index>(labels_.size()) * rotations_; }
  /// Features per example.
  Index feature_count() const { return features_.rows(); }
  /// Examples of episode class `c` (those of its dataset class).
  Index examples(Index c) const {
    const auto k = static_cast<std::size_t>(c / rotations_);
    return offset_[k + 1] - offset_[k];
  }
  /// Fewest examples of any class.
  Index min_examples() const {
    Index m = offset_[1] - offset_[0];
    for (std::size_t k = 1; k + 1 < offset_.size(); ++k) m = std::min(m, offset_[k + 1] - offset_[k]);
    return m;
  }
  /// All examples (each class counted once per rotation).
  Index total_examples() const { return offset_.back() * rotations_; }
  /// The dataset label of episode class `c`.
  int dataset_class(Index c) const { return labels_[static_cast<std::size_t>(c / rotations_)]; }
  /// Quarter turns (0 … 3) of episode class `c`.
  int quarter_turns(Index c) const { return static_cast<int>(c % rotations_); }
  /// 1 or 4.
  int rotations() const { return rotations_; }

  /// Writes example `i` (0 ≤ i < examples(c)) of episode class `c`, rotated, to `out`.
  template <class Out>
  void copy_example(Index c, Index i, Out&& out) const {
    const auto src = features_.col(offset_[static_cast<std::size_t>(c / rotations_)] + i);
    const int turns = quarter_turns(c);
    if (turns == 0) {
      out = src;
      return;
    }
    // a row-major side × side image; a quarter turn counter-clockwise maps (r, q) ← (q, s−1−r)
    const Index s = side_;
    for (Index r = 0; r < s; ++r)
      for (Index q = 0; q < s; ++q) {
        const Index from = turns == 1 ? q * s + (s - 1 - r) : turns == 2 ? (s - 1 - r) * s + (s - 1 - q)
                                                                         : (s - 1 - q) * s + r;
        out[r * s + q] = src[from];
      }
  }

  /// "classes 4800 (1200 × 4 rotations), examples 96000, features 784": the pool's shape, for
  /// the episode sampler's checkpoint state.
  std::string describe() const {
    return detail::concat("classes ", classes(), " (", labels_.size(), " x ", rotations_, " rotations), examples ",
                          total_examples(), ", features ", feature_count());
  }

 private:
  int rotations_ = 1;
  Index side_ = 0;
  std::vector<int> labels_;      // dataset label of each base class
  std::vector<Index> offset_;    // base class k's columns: [offset_[k], offset_[k + 1])
  Matrix<Scalar> features_;
};

/// The shape of an episode.
struct EpisodeOptions {
  Index ways = 5;     ///< N classes (≥ 2)
  Index shots = 1;    ///< K support examples per class (≥ 1)
  Index queries = 1;  ///< Q query examples per class (≥ 1); the MAML paper uses Q = K
};

/// Seeded N-way K-shot episodes from a `ClassPool` (which must outlive the sampler). Fills
/// caller storage: after a task's first episode of this shape nothing is allocated. Works with
/// `MetaTrainer` (`sample(Task&)`) and with the threaded fill path (draws happen on the
/// calling thread in task order).
template <class Scalar>
class EpisodeSampler {
 public:
  using Batch = ClassificationBatch<Scalar>;  ///< inputs features × N·K (or N·Q), labels 0 … N − 1
  using Task = metalearn::Task<Batch>;        ///< support and query

  /// A sampler drawing from `Rng(seed, stream)`. Throws `invalid_argument` naming what was
  /// asked and what the pool has, for ways < 2, shots < 1, queries < 1, ways above the pool's
  /// classes, or shots + queries above the examples of the pool's smallest class.
  EpisodeSampler(const ClassPool<Scalar>& pool, EpisodeOptions options, std::uint64_t seed, std::uint64_t stream = 0)
      : pool_(pool), options_(options), rng_(seed, stream) {
    constexpr const char* where = "tasks::EpisodeSampler";
    if (options.ways < 2) detail::fail(where, "ways must be >= 2, got ", options.ways);
    if (options.shots < 1) detail::fail(where, "shots must be >= 1, got ", options.shots);
    if (options.queries < 1) detail::fail(where, "queries must be >= 1, got ", options.queries);
    if (options.ways > pool.classes())
      detail::fail(where, options.ways, "-way episodes asked for, the pool has ", pool.classes(), " classes");
    if (options.shots + options.queries > pool.min_examples())
      detail::fail(where, options.shots, " shots + ", options.queries, " queries per class asked for, the pool's "
                   "smallest class has ", pool.min_examples(), " examples");
    Index most = 0;
    for (Index c = 0; c < pool.classes(); c += pool.rotations()) most = std::max(most, pool.examples(c));
    chosen_.resize(static_cast<std::size_t>(options.ways));
    order_.resize(static_cast<std::size_t>(most));
  }

  /// Draws one episode into `task` (resizing its batches only when their shape changes):
  /// the classes, then for each label in turn its K + Q examples.
  void sample(Task& task) {
    const Index n = options_.ways, k = options_.shots, q = options_.queries, d = pool_.feature_count();
    task.support.inputs.resize(d, n * k);
    task.support.targets.resize(n * k);
    task.query.inputs.resize(d, n * q);
    task.query.targets.resize(n * q);
    draw_classes();
    for (Index j = 0; j < n; ++j) {
      const Index c = chosen_[static_cast<std::size_t>(j)];
      draw_examples(pool_.examples(c), k + q);
      for (Index s = 0; s < k; ++s) {
        pool_.copy_example(c, order_[static_cast<std::size_t>(s)], task.support.inputs.col(j * k + s));
        task.support.targets[j * k + s] = static_cast<int>(j);
      }
      for (Index s = 0; s < q; ++s) {
        pool_.copy_example(c, order_[static_cast<std::size_t>(k + s)], task.query.inputs.col(j * q + s));
        task.query.targets[j * q + s] = static_cast<int>(j);
      }
    }
    ++episodes_;
  }

  /// The pool classes of the last episode: entry j is the class labelled j.
  const std::vector<Index>& classes() const { return chosen_; }
  /// Episodes drawn (restored from checkpoints).
  std::uint64_t episodes() const { return episodes_; }
  /// The episode shape.
  const EpisodeOptions& options() const { return options_; }
  /// The pool.
  const ClassPool<Scalar>& pool() const { return pool_; }
  /// The engine.
  Rng& rng() { return rng_; }
  /// The engine (read-only).
  const Rng& rng() const { return rng_; }

  /// "tasks::EpisodeSampler(5-way 1-shot, 1 queries; classes 4800 (…))": the sampler's kind in
  /// checkpoints; a checkpoint resumes only a sampler of the same shape on a pool of the same shape.
  std::string describe() const {
    return detail::concat("tasks::EpisodeSampler(", options_.ways, "-way ", options_.shots, "-shot, ",
                          options_.queries, " queries; ", pool_.describe(), ")");
  }
  /// Restores the episode count (`restore_sampler_state`).
  void restore(const Rng::State& rng, std::uint64_t episodes) {
    rng_.set_state(rng);
    episodes_ = episodes;
  }

 private:
  // N distinct classes (Floyd's algorithm), then shuffled so that the labels are in random order.
  void draw_classes() {
    const auto c = static_cast<std::uint64_t>(pool_.classes());
    const auto n = static_cast<std::uint64_t>(options_.ways);
    std::size_t filled = 0;
    for (std::uint64_t j = c - n; j < c; ++j) {
      const auto t = static_cast<Index>(rng_.uniform_index(j + 1));
      const bool taken = std::find(chosen_.begin(), chosen_.begin() + static_cast<std::ptrdiff_t>(filled), t) !=
                         chosen_.begin() + static_cast<std::ptrdiff_t>(filled);
      chosen_[filled++] = taken ? static_cast<Index>(j) : t;
    }
    for (std::size_t i = chosen_.size() - 1; i > 0; --i)
      std::swap(chosen_[i], chosen_[static_cast<std::size_t>(rng_.uniform_index(i + 1))]);
  }
  // The first `count` entries of order_ become a uniformly random ordered sample of 0 … n − 1.
  void draw_examples(Index n, Index count) {
    for (Index i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = i;
    for (Index i = 0; i < count; ++i)  // partial Fisher–Yates
      std::swap(order_[static_cast<std::size_t>(i)],
                order_[static_cast<std::size_t>(i + static_cast<Index>(rng_.uniform_index(
                                                        static_cast<std::uint64_t>(n - i))))]);
  }

  const ClassPool<Scalar>& pool_;
  EpisodeOptions options_;
  Rng rng_;
  std::vector<Index> chosen_;
  std::vector<Index> order_;
  std::uint64_t episodes_ = 0;
};

/// The sampler's state: kind `describe()`, words: the engine's four, then the episode count.
template <class Scalar>
SamplerState sampler_state(const EpisodeSampler<Scalar>& s) {
  const Rng::State& r = s.rng().state();
  return {s.describe(), {r[0], r[1], r[2], r[3], s.episodes()}};
}
/// Throws `checkpoint_error` unless `state` is of a sampler of this shape on a pool of this shape.
template <class Scalar>
void check_sampler_state(const EpisodeSampler<Scalar>& s, const SamplerState& state, const char* where) {
  detail::check_sampler_words(state, s.describe(), 5, where);
}
/// Restores the engine and the episode count (after `check_sampler_state`).
template <class Scalar>
void restore_sampler_state(EpisodeSampler<Scalar>& s, const SamplerState& state) {
  s.restore(detail::rng_words(state.words), state.words[4]);
}

}  // namespace metalearn::tasks
