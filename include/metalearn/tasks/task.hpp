#pragma once
/// @file
/// @brief A task: a support batch to adapt on and a query batch to evaluate the adaptation.

namespace metalearn {

/// One task of a meta-batch.
/// @tparam Batch the model's batch type
template <class Batch>
struct Task {
  Batch support;  ///< examples the inner loop adapts on
  Batch query;    ///< examples the adapted parameters are evaluated on
};

}  // namespace metalearn
