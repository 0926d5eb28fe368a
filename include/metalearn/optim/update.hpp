#pragma once
/// @file
/// @brief One guarded optimizer update, shared by the training loops (MetaTrainer,
/// SupervisedTrainer): a non-finite loss or gradient is never applied.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/optim/clip.hpp>

namespace metalearn {

/// What a trainer does when a loss or gradient is not finite. In both cases θ and the
/// optimizer state are left untouched.
enum class NonFinitePolicy {
  throw_error,  ///< throw `metalearn::numerical_error`
  skip          ///< skip the update and report it through the trainer's progress
};

namespace detail {

/// Clips `grad` and lets the optimizer update θ with it — unless the loss or the gradient is
/// not finite: then, by `policy`, throws `numerical_error` ("metalearn: <where>: <step>
/// <number>: non-finite <what>loss/gradient …") or returns false, with θ, `grad` and the
/// optimizer untouched. Returns true when the update was applied.
template <class Optimizer, class S>
bool guarded_update(NonFinitePolicy policy, const Clip& clip, const char* where, const char* step, Index number,
                    const char* what, S loss, Vector<S>& grad, Optimizer& optimizer, VectorRef<S> theta) {
  const bool finite_loss = is_finite(loss);
  if (!finite_loss || !all_finite(grad)) {
    if (policy == NonFinitePolicy::throw_error)
      throw numerical_error(concat("metalearn: ", where, ": ", step, " ", number, ": non-finite ", what,
                                   finite_loss ? "gradient" : "loss", " (", what, "loss ", loss,
                                   "); parameters and optimizer state left unchanged"));
    return false;
  }
  clip.apply(grad);
  optimizer.step(theta, grad);
  return true;
}

}  // namespace detail
}  // namespace metalearn
