#pragma once
/// @file
/// @brief Labelled datasets: examples as the columns of a features × n matrix with integer
/// class labels; built from IDX arrays, subsets by index list or by class, and
/// standardisation with statistics of a training split.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/data/standardizer.hpp>  // standardisation with a training split's statistics
#include <metalearn/io/idx.hpp>

#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace metalearn::data {

/// n examples of `feature_count()` features each, as columns, with labels in [0, classes).
template <class Scalar>
struct LabelledDataset {
  Matrix<Scalar> features;  ///< features × n
  Labels labels;            ///< n class indices
  int classes = 0;          ///< number of classes; labels lie in [0, classes)

  /// Number of examples.
  Index size() const { return features.cols(); }
  /// Features per example (rows of `features`).
  Index feature_count() const { return features.rows(); }
  /// Throws `invalid_argument` (naming `where`) unless there is one label per example, each
  /// in [0, classes), and classes ≥ 1.
  void validate(const char* where) const {
    if (classes < 1) metalearn::detail::fail(where, "the dataset has ", classes, " classes, expected >= 1");
    metalearn::detail::check_size(where, "labels", labels.size(), features.cols(), "entries (one per example)");
    for (Index j = 0; j < labels.size(); ++j)
      if (labels[j] < 0 || labels[j] >= classes)
        metalearn::detail::fail(where, "label ", j, " is ", labels[j], ", expected 0 to ", classes - 1);
  }
  /// Examples of each class (`classes` entries).
  std::vector<Index> class_counts() const {
    validate("data::LabelledDataset::class_counts");
    std::vector<Index> counts(static_cast<std::size_t>(classes), 0);
    for (Index j = 0; j < labels.size(); ++j) ++counts[static_cast<std::size_t>(labels[j])];
    return counts;
  }
  /// The whole dataset as one batch (a copy), e.g. for evaluation.
  ClassificationBatch<Scalar> batch() const { return {features, labels}; }
};

namespace detail {
inline bool is_integer_type(io::IdxType t) {
  return t == io::IdxType::u8 || t == io::IdxType::i8 || t == io::IdxType::i16 || t == io::IdxType::i32;
}
}  // namespace detail

/// A dataset from IDX arrays: `images` (n × d₁ × … items; every element one feature, items
/// flattened row-major) and `labels` (n integers in [0, classes)). u8 elements are scaled to
/// [0, 1] (x / 255); other element types are taken as they are. `images_source` and
/// `labels_source` name the data in messages (file names). Throws `file_error` when the
/// arrays do not fit together (counts, label type or range), `invalid_argument` for
/// classes < 1.
template <class Scalar>
LabelledDataset<Scalar> from_idx(const io::IdxArray& images, const io::IdxArray& labels, int classes,
                                 const std::string& images_source = "images",
                                 const std::string& labels_source = "labels") {
  constexpr const char* where = "data::from_idx";
  if (classes < 1) metalearn::detail::fail(where, "classes must be >= 1, got ", classes);
  if (labels.dims.size() != 1)
    metalearn::detail::fail_file(where, "'", labels_source, "' has ", labels.dims.size(),
                                 " dimensions, expected 1 (one label per item)");
  if (!detail::is_integer_type(labels.type))
    metalearn::detail::fail_file(where, "'", labels_source, "' holds ", io::idx_type_name(labels.type),
                                 " elements, expected integer labels");
  if (images.items() != labels.items())
    metalearn::detail::fail_file(where, "'", images_source, "' holds ", images.items(), " items but '",
                                 labels_source, "' holds ", labels.items(), " labels");
  const std::size_t n = labels.items();
  LabelledDataset<Scalar> ds;
  ds.classes = classes;
  ds.labels.resize(static_cast<Index>(n));
  for (std::size_t j = 0; j < n; ++j) {
    const double v = labels.value(j);
    if (!(v >= 0 && v < classes))
      metalearn::detail::fail_file(where, "'", labels_source, "': label ", j, " is ", v, ", expected 0 to ",
                                   classes - 1, " (", classes, " classes)");
    ds.labels[static_cast<Index>(j)] = static_cast<int>(v);
  }
  const std::size_t d = images.item_size();
  ds.features.resize(static_cast<Index>(d), static_cast<Index>(n));
  if (images.type == io::IdxType::u8) {
    const Scalar inv = Scalar(1) / Scalar(255);
    const unsigned char* p = images.bytes.data();
    Scalar* out = ds.features.data();
    for (std::size_t i = 0, total = n * d; i < total; ++i) out[i] = static_cast<Scalar>(p[i]) * inv;
  } else {
    Scalar* out = ds.features.data();
    for (std::size_t i = 0, total = n * d; i < total; ++i) out[i] = static_cast<Scalar>(images.value(i));
    if (!metalearn::detail::all_finite(ds.features))
      metalearn::detail::fail_file(where, "'", images_source, "' holds non-finite values");
  }
  return ds;
}

/// The examples at `indices` (in that order; repeats allowed), with the same classes.
/// Throws `invalid_argument` for an index outside [0, size()).
template <class Scalar>
LabelledDataset<Scalar> subset(const LabelledDataset<Scalar>& ds, const std::vector<Index>& indices) {
  for (std::size_t k = 0; k < indices.size(); ++k)
    if (indices[k] < 0 || indices[k] >= ds.size())
      metalearn::detail::fail("data::subset", "index ", k, " is ", indices[k], ", expected 0 to ", ds.size() - 1);
  LabelledDataset<Scalar> out;
  out.classes = ds.classes;
  out.features.resize(ds.feature_count(), static_cast<Index>(indices.size()));
  out.labels.resize(static_cast<Index>(indices.size()));
  for (std::size_t k = 0; k < indices.size(); ++k) {
    out.features.col(static_cast<Index>(k)) = ds.features.col(indices[k]);
    out.labels[static_cast<Index>(k)] = ds.labels[indices[k]];
  }
  return out;
}

/// The examples whose label is one of `classes` (in dataset order). With `relabel`, their
/// labels become the positions in `classes` (0 … k − 1) and the result has k classes;
/// otherwise labels and class count are kept. Throws `invalid_argument` for a class outside
/// [0, ds.classes) or listed twice.
template <class Scalar>
LabelledDataset<Scalar> subset_by_class(const LabelledDataset<Scalar>& ds, const std::vector<int>& classes,
                                        bool relabel = false) {
  constexpr const char* where = "data::subset_by_class";
  ds.validate(where);
  std::vector<int> position(static_cast<std::size_t>(ds.classes), -1);
  for (std::size_t k = 0; k < classes.size(); ++k) {
    const int c = classes[k];
    if (c < 0 || c >= ds.classes)
      metalearn::detail::fail(where, "class ", c, " is not one of the dataset's 0 to ", ds.classes - 1);
    if (position[static_cast<std::size_t>(c)] >= 0) metalearn::detail::fail(where, "class ", c, " is listed twice");
    position[static_cast<std::size_t>(c)] = static_cast<int>(k);
  }
  std::vector<Index> indices;
  for (Index j = 0; j < ds.size(); ++j)
    if (position[static_cast<std::size_t>(ds.labels[j])] >= 0) indices.push_back(j);
  LabelledDataset<Scalar> out = subset(ds, indices);
  if (relabel) {
    for (Index j = 0; j < out.size(); ++j) out.labels[j] = position[static_cast<std::size_t>(out.labels[j])];
    out.classes = static_cast<int>(classes.size());
  }
  return out;
}

}  // namespace metalearn::data
