#pragma once
/// @file
/// @brief THE ALGORITHM CONTRACT: what MetaTrainer, checkpoints, the checkers, the examples and
/// the benchmarks require of a meta-learning algorithm, the traits that detect it and the
/// compile-time checks that explain what is missing.
///
/// An algorithm learns a flat vector of meta-parameters: θ (the model's parameters, first),
/// then whatever it learns besides (per-parameter or per-group inner learning rates, a context
/// encoder). Optimizers, clipping, the non-finite guard and checkpoints therefore work on it
/// unchanged. metalearn's algorithms are written on the meta-batch engine (meta/engine.hpp),
/// which gives them threads and bit-identical results; any type with these members is an
/// algorithm (`Scalar` is float or double):
///
/// @code
/// struct ExampleAlgorithm {
///   using Scalar = float;                 // required
///   using Model = MyModel;                // required: the model it adapts (metalearn/model.hpp)
///   using Task = metalearn::Task<Model::Batch>;  // required: support and query batches
///   using Workspace = MyWorkspace;        // required: scratch memory of one thread that adapts
///   static constexpr const char* name = "Example";  // required: for messages and checkpoints
///
///   // required: the model, and the length of the meta-parameters (≥ the model's)
///   const Model& model() const;
///   metalearn::Index parameter_count() const;
///   // required: draw the meta-parameters (θ through the model, the rest by the options)
///   void initialize(metalearn::VectorRef<Scalar> meta, metalearn::Rng& rng) const;
///   // required: the algorithm and every option that changes results, one line; checkpoints
///   // store it and refuse to load into an algorithm that describes itself otherwise
///   std::string describe() const;
///   // required: the mean meta-loss over a meta-batch, its gradient assigned to grad (all
///   // meta-parameters); throw metalearn::invalid_argument on bad input, grad unchanged
///   template <class Tasks>
///   Scalar meta_loss_and_gradient(metalearn::ConstVectorRef<Scalar> meta, const Tasks& tasks,
///                                 metalearn::VectorRef<Scalar> grad);
///   // optional: the same with the tasks drawn as they are needed (fill(t) fills tasks[t])
///   template <class Tasks, class Fill>
///   Scalar meta_loss_and_gradient(metalearn::ConstVectorRef<Scalar> meta, Tasks& tasks,
///                                 metalearn::VectorRef<Scalar> grad, Fill&& fill);
///   // required: adapt to a new task: the model's fast weights (model().parameter_count()
///   // entries) into fast; const and thread-safe with one workspace per thread
///   void adapt(metalearn::ConstVectorRef<Scalar> meta, const Model::Batch& support,
///              metalearn::VectorRef<Scalar> fast, Workspace& ws, int steps = -1) const;
///   // optional: the meta-iteration whose meta-step comes next, for algorithms that anneal
///   // (MAML++); MetaTrainer calls it before every meta-step with its own count, which
///   // checkpoints restore
///   void set_iteration(metalearn::Index n);
/// };
/// @endcode
///
/// README section "The algorithm contract" walks through it; `Maml` is the reference.
/// metalearn's inner-loop algorithms (Maml, MetaSgd, MamlPlusPlus, Anil) share one
/// implementation, meta/inner_loop.hpp, on the meta-batch engine.

#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

namespace detail {
template <class A, class = void>
struct algorithm_scalar {
  using type = double;
};
template <class A>
struct algorithm_scalar<A, std::void_t<typename A::Scalar>> {
  using type = typename A::Scalar;
};
template <class A>
using algorithm_scalar_t = typename algorithm_scalar<A>::type;

template <class A, class = void>
struct has_algorithm_types : std::false_type {};
template <class A>
struct has_algorithm_types<
    A, std::void_t<typename A::Scalar, typename A::Model, typename A::Task, typename A::Workspace>> : std::true_type {};

template <class A, class = void>
struct has_algorithm_name : std::false_type {};
template <class A>
struct has_algorithm_name<A, std::enable_if_t<std::is_convertible_v<decltype(A::name), const char*>>>
    : std::true_type {};

// `std::string describe() const`: required of an algorithm, optional for a model
template <class T, class = void>
struct has_describe : std::false_type {};
template <class T>
struct has_describe<T, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const T&>().describe()), std::string>>>
    : std::true_type {};

template <class A, class = void>
struct has_algorithm_initialize : std::false_type {};
template <class A>
struct has_algorithm_initialize<A, std::void_t<decltype(std::declval<const A&>().initialize(
                                       std::declval<VectorRef<algorithm_scalar_t<A>>>(), std::declval<Rng&>()))>> : std::true_type {};

template <class A, class = void>
struct has_algorithm_meta_gradient : std::false_type {};
template <class A>
struct has_algorithm_meta_gradient<
    A, std::enable_if_t<std::is_convertible_v<
           decltype(std::declval<A&>().meta_loss_and_gradient(std::declval<ConstVectorRef<algorithm_scalar_t<A>>>(),
                                                               std::declval<const std::vector<typename A::Task>&>(),
                                                               std::declval<VectorRef<algorithm_scalar_t<A>>>())),
           algorithm_scalar_t<A>>>> : std::true_type {};

template <class A, class = void>
struct has_algorithm_adapt : std::false_type {};
template <class A>
struct has_algorithm_adapt<
    A, std::void_t<decltype(std::declval<const A&>().adapt(
           std::declval<ConstVectorRef<algorithm_scalar_t<A>>>(), std::declval<const typename A::Model::Batch&>(),
           std::declval<VectorRef<algorithm_scalar_t<A>>>(), std::declval<typename A::Workspace&>(), 1))>> : std::true_type {};

template <class A, class = void>
struct has_set_iteration : std::false_type {};
template <class A>
struct has_set_iteration<A, std::void_t<decltype(std::declval<A&>().set_iteration(Index{}))>> : std::true_type {};

template <class A, class = void>
struct has_algorithm_sizes : std::false_type {};
template <class A>
struct has_algorithm_sizes<
    A, std::enable_if_t<std::is_convertible_v<decltype(std::declval<const A&>().parameter_count()), Index> &&
                        std::is_convertible_v<decltype(std::declval<const A&>().model().parameter_count()), Index>>>
    : std::true_type {};
}  // namespace detail

/// True when A satisfies the algorithm contract (see the file comment).
template <class A>
inline constexpr bool is_algorithm_v =
    detail::has_algorithm_types<A>::value && detail::has_algorithm_name<A>::value &&
    detail::has_describe<A>::value && detail::has_algorithm_initialize<A>::value &&
    detail::has_algorithm_sizes<A>::value && detail::has_algorithm_meta_gradient<A>::value &&
    detail::has_algorithm_adapt<A>::value;

/// Compile-time check of the algorithm contract, called by MetaTrainer and the checkers: each
/// missing member produces a static_assert naming it. Returns true (for use in static_assert).
template <class A>
constexpr bool check_algorithm() {
  static_assert(detail::has_algorithm_types<A>::value,
                "metalearn: the algorithm needs member types `Scalar`, `Model`, `Task` and `Workspace`. See "
                "README section 'The algorithm contract'.");
  static_assert(detail::has_algorithm_name<A>::value,
                "metalearn: the algorithm has no `static constexpr const char* name`. See README section 'The "
                "algorithm contract'.");
  static_assert(detail::has_algorithm_sizes<A>::value,
                "metalearn: the algorithm needs `Index parameter_count() const` (its meta-parameters) and `const "
                "Model& model() const`. See README section 'The algorithm contract'.");
  static_assert(detail::has_describe<A>::value,
                "metalearn: the algorithm has no `std::string describe() const` (its name and options, stored in "
                "checkpoints). See README section 'The algorithm contract'.");
  static_assert(detail::has_algorithm_initialize<A>::value,
                "metalearn: the algorithm has no `void initialize(VectorRef<Scalar> meta, Rng& rng) const`. See "
                "README section 'The algorithm contract'.");
  static_assert(detail::has_algorithm_meta_gradient<A>::value,
                "metalearn: the algorithm has no `Scalar meta_loss_and_gradient(ConstVectorRef<Scalar> meta, const "
                "std::vector<Task>& tasks, VectorRef<Scalar> grad)`. See README section 'The algorithm contract'.");
  static_assert(detail::has_algorithm_adapt<A>::value,
                "metalearn: the algorithm has no `void adapt(ConstVectorRef<Scalar> meta, const Model::Batch& "
                "support, VectorRef<Scalar> fast, Workspace& ws, int steps) const`. See README section 'The "
                "algorithm contract'.");
  return true;
}

/// A model's description for checkpoints: its `describe()` when it has one, else its
/// parameter count ("model with 33 parameters").
template <class M>
std::string describe_model(const M& model) {
  if constexpr (detail::has_describe<M>::value) {
    return model.describe();
  } else {
    return "model with " + std::to_string(model.parameter_count()) + " parameters";
  }
}

}  // namespace metalearn
