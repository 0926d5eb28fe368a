#pragma once
/// @file
/// @brief One layer's bias given apart from θ: how nn::Context feeds its context through a
/// bias of nn::Objective without building a shifted copy of θ.

#include <metalearn/core/types.hpp>

namespace metalearn::nn {

/// One layer's bias given apart from θ (for nn::Context, whose context inputs shift a bias):
/// `values` holds the layer's output-size entries that a pass reads instead of θ's.
template <class S>
struct BiasReplacement {
  Index layer = -1;            ///< the layer (0-based)
  const S* values = nullptr;  ///< its b, or a direction's bias part
};

}  // namespace metalearn::nn
