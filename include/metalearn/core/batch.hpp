#pragma once
/// @file
/// @brief A batch of examples: inputs (features × examples) and their targets.

#include <metalearn/core/types.hpp>

namespace metalearn {

/// A batch of examples, one example per column of `inputs`.
/// @tparam Input  input matrix type (features × examples)
/// @tparam Target targets: a matrix (outputs × examples) for regression and binary
///                labels, or `Labels` (one class index per example) for classification
template <class Input, class Target>
struct Batch {
  Input inputs;    ///< features × examples
  Target targets;  ///< targets, one per example (column or entry)

  /// Number of examples (columns of `inputs`).
  Index size() const { return inputs.cols(); }
};

/// Inputs and real-valued targets (outputs × examples).
template <class Scalar>
using RegressionBatch = Batch<Matrix<Scalar>, Matrix<Scalar>>;

/// Inputs and integer class labels.
template <class Scalar>
using ClassificationBatch = Batch<Matrix<Scalar>, Labels>;

}  // namespace metalearn
