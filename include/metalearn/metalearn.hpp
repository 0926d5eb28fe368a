#pragma once
/// @file
/// @brief Umbrella header: everything public in metalearn.
///
/// Including the individual headers instead keeps compile times down; the meta-learning
/// headers (meta/) never include the networks (nn/), so a program with its own model type
/// needs only metalearn/model.hpp and metalearn/meta/.
///
/// Everything here is portable C++17 and Eigen. Files are the exception and live in io/,
/// which this header does not include: `#include <metalearn/io/checkpoint.hpp>` for
/// checkpoints (it brings the operating system's file headers, POSIX or Windows), and the
/// headers that read datasets from files: data/dataset.hpp, data/minibatch.hpp, train/,
/// tasks/episodes.hpp.

#include <metalearn/version.hpp>

#include <metalearn/core/batch.hpp>
#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/statistics.hpp>
#include <metalearn/core/types.hpp>

#include <metalearn/model.hpp>

#include <metalearn/data/standardizer.hpp>
#include <metalearn/data/transition_window.hpp>

#include <metalearn/nn/activation.hpp>
#include <metalearn/nn/bias_replacement.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/dense.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/layer_norm.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <metalearn/meta/anil.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/few_shot.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/maml_plus_plus.hpp>
#include <metalearn/meta/meta_sgd.hpp>
#include <metalearn/meta/online.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/meta/trainer.hpp>

#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/optim/sgd.hpp>

#include <metalearn/parallel/thread_pool.hpp>

#include <metalearn/tasks/sampler_state.hpp>
#include <metalearn/tasks/sine.hpp>
#include <metalearn/tasks/task.hpp>

#include <metalearn/check/derivatives.hpp>
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/check/result.hpp>
