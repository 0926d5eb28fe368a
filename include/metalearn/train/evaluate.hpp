#pragma once
/// @file
/// @brief Evaluating a classifier on a labelled dataset in batches: mean loss, accuracy and
/// the confusion matrix, through buffers allocated once.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/data/dataset.hpp>
#include <metalearn/model.hpp>

#include <algorithm>
#include <type_traits>

namespace metalearn {

/// The result of `ClassifierEvaluator::evaluate`.
struct ClassificationReport {
  double loss = 0;      ///< mean loss per example (the model's loss, averaged over the batches by size)
  double accuracy = 0;  ///< fraction of examples whose largest output is their label
  Index examples = 0;   ///< examples evaluated
  /// confusion(true class, predicted class): counts, `classes` × `classes`.
  Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic> confusion;
};

/// Evaluates a classifier — a model whose Batch is `ClassificationBatch<Scalar>` and which
/// has `predict` (one output per class; the prediction is the largest) — on every example of
/// a dataset, in batches of at most `batch_size`. The batch and output buffers are allocated
/// at construction and the model's workspace on the first call; later calls do not allocate.
/// The loss is the model's own `loss` (a second forward pass beside `predict`'s). The dataset
/// must outlive the evaluator.
template <class Model>
class ClassifierEvaluator {
  static_assert(check_model<Model>());
  static_assert(model_traits<Model>::has_predict,
                "metalearn: ClassifierEvaluator needs the model's `predict(theta, inputs, outputs, ws)`");

 public:
  using Scalar = typename Model::Scalar;  ///< float or double
  static_assert(std::is_same_v<typename Model::Batch, ClassificationBatch<Scalar>>,
                "metalearn: ClassifierEvaluator needs a model whose Batch is ClassificationBatch<Scalar>");

  /// Throws `invalid_argument` for an invalid dataset, batch_size < 1, or a model whose output
  /// count (`outputs`, the rows of predict's result) differs from the dataset's classes.
  ClassifierEvaluator(Model model, const data::LabelledDataset<Scalar>& data, Index outputs, Index batch_size = 1000)
      : model_(std::move(model)), data_(data) {
    constexpr const char* where = "ClassifierEvaluator";
    data.validate(where);
    if (data.size() == 0) detail::fail(where, "the dataset is empty");
    if (batch_size < 1) detail::fail(where, "batch_size must be >= 1, got ", batch_size);
    if (outputs != data.classes)
      detail::fail(where, "the model has ", outputs, " outputs, the dataset ", data.classes, " classes");
    const Index b = std::min(batch_size, data.size());
    full_ = {Matrix<Scalar>(data.feature_count(), b), Labels(b)};
    const Index rest = data.size() % b;
    if (rest > 0) partial_ = {Matrix<Scalar>(data.feature_count(), rest), Labels(rest)};
    outputs_.resize(outputs, b);
    report_.confusion.resize(data.classes, data.classes);
  }

  /// Loss, accuracy and confusion matrix of θ on the whole dataset (a reference to the
  /// evaluator's report, valid until the next call).
  const ClassificationReport& evaluate(ConstVectorRef<Scalar> theta) {
    ClassificationReport& r = report_;
    r.confusion.setZero();
    double loss = 0;
    Index correct = 0;
    const Index b = full_.size(), n = data_.size();
    for (Index first = 0; first < n; first += b) {
      const Index count = std::min(b, n - first);
      ClassificationBatch<Scalar>& batch = count == b ? full_ : partial_;
      batch.inputs = data_.features.middleCols(first, count);
      batch.targets = data_.labels.segment(first, count);
      loss += static_cast<double>(evaluate_loss(model_, theta, batch, ws_)) * static_cast<double>(count);
      auto out = outputs_.leftCols(count);
      model_.predict(theta, batch.inputs, out, ws_);
      for (Index j = 0; j < count; ++j) {
        Index predicted = 0;
        out.col(j).maxCoeff(&predicted);
        const int truth = batch.targets[j];
        ++r.confusion(truth, predicted);
        correct += predicted == truth;
      }
    }
    r.examples = n;
    r.loss = loss / static_cast<double>(n);
    r.accuracy = static_cast<double>(correct) / static_cast<double>(n);
    return r;
  }

 private:
  Model model_;
  const data::LabelledDataset<Scalar>& data_;
  typename Model::Workspace ws_{};
  ClassificationBatch<Scalar> full_, partial_;
  Matrix<Scalar> outputs_;
  ClassificationReport report_;
};

}  // namespace metalearn
