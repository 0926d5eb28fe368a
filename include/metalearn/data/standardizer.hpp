#pragma once
/// @file
/// @brief Standardisation x ↦ (x − μ) / σ of features, inputs or targets, with statistics fitted
/// on a training split; applied and inverted without allocating, and written as text so that
/// it is saved with the weights of a model that reads standardised data.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace metalearn::data {

/// How `Standardizer::fit` computes its statistics.
enum class Standardization {
  per_feature,  ///< a mean and a standard deviation for each feature
  global        ///< one mean and one standard deviation over every feature of every example
};

/// x ↦ (x − μ) / σ with statistics fitted on one split (the training set) and applied to any:
/// a test set must never contribute to its own normalisation. A feature whose σ is below
/// `min_std` (a pixel that is always 0) is only centred (σ taken as 1).
///
/// A model that learns from standardised data (a dynamics model predicting a standardised state
/// change from standardised states and actions) needs its standardisers as much as its
/// weights: `encode` writes μ and 1/σ as one line of text (the shortest decimals that read back
/// exactly) for the metadata of `io::save_weights`, and `decode` reads them back bit for bit.
template <class Scalar>
struct Standardizer {
  Vector<Scalar> mean;   ///< μ per feature (all equal for `global`)
  Vector<Scalar> scale;  ///< 1 / σ per feature (finite, > 0)

  /// Statistics of `train` (features × n, n ≥ 1), accumulated in double.
  static Standardizer fit(const Matrix<Scalar>& train, Standardization kind = Standardization::per_feature,
                          double min_std = 1e-6) {
    if (train.cols() == 0) metalearn::detail::fail("data::Standardizer::fit", "the training set is empty");
    metalearn::detail::check_finite("data::Standardizer::fit", "the training features", train);
    const Eigen::MatrixXd x = train.template cast<double>();
    Standardizer s;
    const auto n = static_cast<double>(x.cols());
    Eigen::VectorXd mu, sd;
    if (kind == Standardization::per_feature) {
      mu = x.rowwise().sum() / n;
      sd = ((x.colwise() - mu).array().square().rowwise().sum() / n).sqrt();
    } else {
      const double m = x.mean();
      mu = Eigen::VectorXd::Constant(x.rows(), m);
      sd = Eigen::VectorXd::Constant(x.rows(), std::sqrt((x.array() - m).square().mean()));
    }
    s.mean = mu.cast<Scalar>();
    // σ = 0 (min_std <= 0) or a 1/σ beyond the largest Scalar is only centred too: the scale
    // must stay finite
    const Eigen::ArrayXd inverse = sd.array().inverse();
    const double largest = static_cast<double>(std::numeric_limits<Scalar>::max());
    s.scale = (sd.array() < min_std || inverse > largest).select(1.0, inverse).matrix().template cast<Scalar>();
    return s;
  }

  /// Number of features.
  Index size() const { return mean.size(); }

  /// Standardises the columns of `features` in place. Throws `invalid_argument` when the
  /// feature count differs from the fitted one.
  void apply(Matrix<Scalar>& features) const {
    check("data::Standardizer::apply", features.rows(), features.rows(), features.cols(), features.cols());
    features = ((features.colwise() - mean).array().colwise() * scale.array()).matrix();
  }

  /// Standardises a dataset's features in place (`LabelledDataset`, or any type with a
  /// `features` matrix).
  template <class Dataset, class = decltype(std::declval<Dataset&>().features)>
  void apply(Dataset& ds) const {
    apply(ds.features);
  }

  /// z = (x − μ) ⊙ scale for every column of `x`, into `out` (the same shape; it may be `x`
  /// itself). Does not allocate. Throws `invalid_argument` for other shapes.
  void normalize(ConstMatrixRef<Scalar> x, MatrixRef<Scalar> out) const {
    check("data::Standardizer::normalize", x.rows(), out.rows(), x.cols(), out.cols());
    out.array() = (x.colwise() - mean).array().colwise() * scale.array();  // z = (x − μ) / σ
  }

  /// x = μ + z ⊘ scale for every column of `z` (the inverse of `normalize`), into `out` (it may
  /// be `z` itself). Does not allocate.
  void denormalize(ConstMatrixRef<Scalar> z, MatrixRef<Scalar> out) const {
    check("data::Standardizer::denormalize", z.rows(), out.rows(), z.cols(), out.cols());
    out = (z.array().colwise() / scale.array()).matrix().colwise() + mean;  // x = μ + σ z
  }

  /// "mean a,b,…; scale c,d,…" (scale = 1/σ): the shortest decimals that read back exactly.
  std::string encode() const {
    if (mean.size() == 0) metalearn::detail::fail("data::Standardizer::encode", "it has no features (fit it first)");
    check_statistics("data::Standardizer::encode");
    return "mean " + join(mean) + "; scale " + join(scale);
  }

  /// Reads `encode`'s text back; throws `invalid_argument` naming what it expected and what it
  /// found (a missing part, an entry that is not a number, sizes that differ, a scale that is
  /// not finite and > 0).
  static Standardizer decode(const std::string& text) {
    constexpr const char* where = "data::Standardizer::decode";
    const std::string head = "mean ", middle = "; scale ";
    const std::size_t split = text.find(middle);
    if (text.compare(0, head.size(), head) != 0 || split == std::string::npos)
      metalearn::detail::fail(where, "expected \"mean …; scale …\", got \"", text.substr(0, 60), "\"");
    Standardizer s;
    s.mean = parse(where, "mean", text.substr(head.size(), split - head.size()));
    s.scale = parse(where, "scale", text.substr(split + middle.size()));
    s.check_statistics(where);
    return s;
  }

 private:
  void check_statistics(const char* where) const {
    if (mean.size() != scale.size())
      metalearn::detail::fail(where, "mean has ", mean.size(), " entries and scale ", scale.size());
    metalearn::detail::check_finite(where, "mean", mean);
    for (Index i = 0; i < scale.size(); ++i)
      if (!metalearn::detail::is_finite(scale[i]) || !(scale[i] > Scalar(0)))
        metalearn::detail::fail(where, "scale entry ", i, " must be finite and > 0, got ", scale[i]);
  }

  void check(const char* where, Index rows, Index out_rows, Index cols, Index out_cols) const {
    if (mean.size() != scale.size())
      metalearn::detail::fail(where, "mean has ", mean.size(), " entries and scale ", scale.size());
    metalearn::detail::check_size(where, "the input", rows, mean.size(), "rows");
    if (out_rows != rows || out_cols != cols)
      metalearn::detail::fail(where, "the output is ", out_rows, " x ", out_cols, ", expected ", rows, " x ", cols);
  }

  static std::string join(const Vector<Scalar>& v) {
    std::string out;
    char buf[40];
    for (Index i = 0; i < v.size(); ++i) {
      const auto r = std::to_chars(buf, buf + sizeof buf, v[i]);
      out += (i ? "," : "") + std::string(buf, r.ptr);
    }
    return out;
  }

  static Vector<Scalar> parse(const char* where, const char* what, const std::string& text) {
    std::vector<Scalar> values;
    const char* p = text.data();
    const char* end = p + text.size();
    while (p < end) {
      Scalar v{};
      const auto r = std::from_chars(p, end, v);
      if (r.ec != std::errc() || (r.ptr != end && *r.ptr != ','))
        metalearn::detail::fail(where, what, " entry ", values.size(), " is not a number: \"",
                                std::string(p, static_cast<std::size_t>(std::min<std::ptrdiff_t>(end - p, 20))), "\"");
      values.push_back(v);
      p = r.ptr == end ? end : r.ptr + 1;
      if (p == end && r.ptr != end) metalearn::detail::fail(where, what, " ends with a comma");
    }
    if (values.empty()) metalearn::detail::fail(where, what, " has no entries");
    return Eigen::Map<const Vector<Scalar>>(values.data(), static_cast<Index>(values.size()));
  }
};

}  // namespace metalearn::data
