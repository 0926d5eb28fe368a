#pragma once
/// @file
/// @brief Few-shot evaluation of any algorithm of the contract (meta/algorithm.hpp) on
/// classification episodes: query accuracy after 0, 1, … inner steps on each support set.

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/model.hpp>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace metalearn {

/// Columns of `outputs` whose largest entry is at the row `labels` names (ties: the first).
template <class Outputs>
Index count_correct(const Outputs& outputs, const Labels& labels) {
  detail::check_size("count_correct", "labels", labels.size(), outputs.cols(), "entries (one per column)");
  Index correct = 0;
  for (Index j = 0; j < outputs.cols(); ++j) {
    Index predicted = 0;
    outputs.col(j).maxCoeff(&predicted);
    correct += predicted == labels[j];
  }
  return correct;
}

/// Query accuracy of an algorithm's adapted models on classification episodes. Each entry is
/// computed from θ afresh (`adapt(θ, support, fast, ws, k)`), so step counts need not be
/// consecutive and algorithms with per-step rates are scored as they adapt. Buffers are held
/// by the evaluator: after the first call with the largest episode, nothing is allocated.
template <class Algorithm>
class FewShotEvaluator {
  static_assert(check_algorithm<Algorithm>());
  using Model = typename Algorithm::Model;
  static_assert(model_traits<Model>::has_predict,
                "metalearn: FewShotEvaluator needs the model's `predict(theta, inputs, outputs, ws)`");

 public:
  using Scalar = typename Algorithm::Scalar;  ///< float or double
  using Task = typename Algorithm::Task;      ///< support and query
  static_assert(std::is_same_v<typename Model::Batch, ClassificationBatch<Scalar>>,
                "metalearn: FewShotEvaluator needs a model whose Batch is ClassificationBatch<Scalar>");

  /// Evaluates with `algorithm` (which must outlive the evaluator) and a model of `outputs`
  /// classes (rows of predict's result, ≥ the episodes' ways).
  FewShotEvaluator(const Algorithm& algorithm, Index outputs) : algorithm_(algorithm), outputs_(outputs) {
    if (outputs < 2) detail::fail("FewShotEvaluator", "outputs must be >= 2, got ", outputs);
    fast_.resize(algorithm.model().parameter_count());
  }

  /// accuracy(t, j): the fraction of task t's query examples whose largest output is their
  /// label, after steps[j] inner steps on its support set (0: θ itself). Throws
  /// `invalid_argument` for an empty or negative step list, a wrong θ size, an empty task, or a
  /// label the model cannot output (naming the task), before anything is computed; the
  /// result's reference is valid until the next call.
  template <class Tasks>
  const Matrix<double>& evaluate(ConstVectorRef<Scalar> meta, const Tasks& tasks, const std::vector<int>& steps) {
    constexpr const char* where = "FewShotEvaluator::evaluate";
    detail::check_size(where, "the meta-parameters", meta.size(), algorithm_.parameter_count());
    if (steps.empty()) detail::fail(where, "the list of step counts is empty");
    for (int k : steps)
      if (k < 0) detail::fail(where, "step counts must be >= 0, got ", k);
    const auto count = static_cast<Index>(tasks.size());
    for (Index t = 0; t < count; ++t) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      if (task.support.size() == 0 || task.query.size() == 0)
        detail::fail(where, "task ", t, " has an empty support or query set");
      for (Index j = 0; j < task.query.targets.size(); ++j)
        if (task.query.targets[j] < 0 || task.query.targets[j] >= outputs_)
          detail::fail(where, "task ", t, ": query label ", j, " is ", task.query.targets[j], ", the model has ",
                       outputs_, " outputs");
    }
    accuracy_.resize(count, static_cast<Index>(steps.size()));
    const Index p = algorithm_.model().parameter_count();
    for (Index t = 0; t < count; ++t) {
      const Task& task = tasks[static_cast<std::size_t>(t)];
      predictions_.resize(outputs_, task.query.size());
      for (std::size_t j = 0; j < steps.size(); ++j) {
        if (steps[j] == 0)
          fast_ = meta.head(p);
        else
          algorithm_.adapt(meta, task.support, fast_, ws_, steps[j]);
        algorithm_.model().predict(fast_, task.query.inputs, predictions_, model_ws_);
        accuracy_(t, static_cast<Index>(j)) = static_cast<double>(count_correct(predictions_, task.query.targets)) /
                                              static_cast<double>(task.query.size());
      }
    }
    return accuracy_;
  }

 private:
  const Algorithm& algorithm_;
  Index outputs_;
  typename Algorithm::Workspace ws_{};
  typename Model::Workspace model_ws_{};
  Vector<Scalar> fast_;
  Matrix<Scalar> predictions_;
  Matrix<double> accuracy_;
};

}  // namespace metalearn
