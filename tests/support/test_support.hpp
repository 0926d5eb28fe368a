#pragma once
// Helpers shared by the tests: random data, network specifications instantiable in float and
// double, and batches for each loss.
#include <metalearn/core/batch.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/nn/activation.hpp>
#include <metalearn/nn/mlp.hpp>

#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace mlt {

using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;

template <class S>
Matrix<S> random_matrix(Index rows, Index cols, Rng& rng, double scale = 1.0) {
  Matrix<S> m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = static_cast<S>(scale * rng.normal());
  return m;
}

template <class S>
Vector<S> random_vector(Index n, Rng& rng, double scale = 1.0) {
  Vector<S> v(n);
  for (Index i = 0; i < n; ++i) v[i] = static_cast<S>(scale * rng.normal());
  return v;
}

/// Casts a vector to another scalar type.
template <class To, class From>
Vector<To> cast(const Vector<From>& v) {
  return v.template cast<To>();
}

/// Widths and activations of a run-time network, instantiable for any scalar.
struct NetSpec {
  std::vector<Index> widths;
  std::vector<metalearn::nn::Activation> activations;
  std::vector<std::optional<metalearn::nn::LayerNorm>> norms{};  ///< empty: no layer normalised

  template <class S>
  metalearn::nn::Mlp<S> make() const {
    return metalearn::nn::Mlp<S>(widths, activations, norms);
  }
  std::string describe() const { return make<double>().describe(); }
};

/// `depth` layers with random widths in [1, max_width]; hidden layers use `hidden`.
inline NetSpec random_spec(Rng& rng, Index inputs, Index outputs, int depth, metalearn::nn::Activation hidden,
                           metalearn::nn::Activation output, Index max_width = 7) {
  NetSpec spec;
  spec.widths.push_back(inputs);
  for (int l = 1; l < depth; ++l) spec.widths.push_back(1 + static_cast<Index>(rng.uniform_index(max_width)));
  spec.widths.push_back(outputs);
  spec.activations.assign(static_cast<std::size_t>(depth), hidden);
  spec.activations.back() = output;
  return spec;
}

/// `depth` layers, hidden widths in [2, max_width], every hidden layer normalised (ε drawn from
/// {0.05, 0.5}: large enough that central differences in double resolve the curvature a tiny
/// variance gives), and the output layer too when `normalize_output` (then outputs ≥ 2).
inline NetSpec random_norm_spec(Rng& rng, Index inputs, Index outputs, int depth, metalearn::nn::Activation hidden,
                                metalearn::nn::Activation output, bool normalize_output, Index max_width = 7) {
  NetSpec spec;
  spec.widths.push_back(inputs);
  for (int l = 1; l < depth; ++l) spec.widths.push_back(2 + static_cast<Index>(rng.uniform_index(max_width - 1)));
  spec.widths.push_back(outputs);
  spec.activations.assign(static_cast<std::size_t>(depth), hidden);
  spec.activations.back() = output;
  for (int l = 0; l < depth; ++l)
    spec.norms.push_back(l + 1 < depth || normalize_output
                             ? std::optional<metalearn::nn::LayerNorm>({rng.uniform() < 0.5 ? 0.05 : 0.5})
                             : std::nullopt);
  return spec;
}

/// All eight activations, for loops over them.
inline std::vector<metalearn::nn::Activation> all_activations() {
  using namespace metalearn::nn;
  return {Identity{}, Relu{}, LeakyRelu{0.1}, Tanh{}, Sigmoid{}, Softplus{}, Elu{0.7}, Gelu{}};
}

/// θ from the objective's initialiser plus N(0, noise²): no zero biases, so no exact kinks.
template <class Obj>
Vector<typename Obj::Scalar> random_theta(const Obj& obj, Rng& rng, double noise = 0.1) {
  Vector<typename Obj::Scalar> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  theta += random_vector<typename Obj::Scalar>(theta.size(), rng, noise);
  return theta;
}

template <class S>
metalearn::RegressionBatch<S> regression_batch(Index in, Index out, Index n, Rng& rng) {
  return {random_matrix<S>(in, n, rng), random_matrix<S>(out, n, rng)};
}

template <class S>
metalearn::ClassificationBatch<S> classification_batch(Index in, Index classes, Index n, Rng& rng) {
  metalearn::Labels labels(n);
  for (Index j = 0; j < n; ++j) labels[j] = static_cast<int>(rng.uniform_index(static_cast<std::uint64_t>(classes)));
  return {random_matrix<S>(in, n, rng), labels};
}

template <class S>
metalearn::RegressionBatch<S> binary_batch(Index in, Index out, Index n, Rng& rng) {
  Matrix<S> t(out, n);
  for (Index i = 0; i < t.size(); ++i) t(i) = static_cast<S>(rng.uniform());  // soft labels in [0, 1)
  return {random_matrix<S>(in, n, rng), t};
}

/// Casts a batch's inputs (and real targets) to another scalar.
template <class To, class From, class Target>
auto cast_batch(const metalearn::Batch<Matrix<From>, Target>& b) {
  if constexpr (std::is_same_v<Target, metalearn::Labels>)
    return metalearn::Batch<Matrix<To>, metalearn::Labels>{b.inputs.template cast<To>(), b.targets};
  else
    return metalearn::Batch<Matrix<To>, Matrix<To>>{b.inputs.template cast<To>(), b.targets.template cast<To>()};
}

/// max_i |a_i − b_i| / max(1, |a_i|, |b_i|)
template <class A, class B>
double max_error(const A& a, const B& b) {
  double worst = 0;
  for (Index i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a(i)), y = static_cast<double>(b(i));
    worst = std::max(worst, std::abs(x - y) / std::max({1.0, std::abs(x), std::abs(y)}));
  }
  return worst;
}

}  // namespace mlt
