// The program every consumer check builds (tests/consumer/run): it uses metalearn the way a
// downstream project would. It builds a small network objective, checks its gradient and
// Hessian-vector product against finite differences, trains it for a few hundred steps of
// gradient descent, and exits non-zero if anything is off. It prints one line with the losses.
//
// Optional compile definitions: METALEARN_CONSUMER_EXPECTED_VERSION="x.y.z", the version the
// build system found (CMake package or pkg-config), which must match the headers that were
// used; METALEARN_CONSUMER_EXPECTED_EIGEN="x.y.z", the Eigen the consumer meant to build with.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/core/batch.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/model.hpp>
#include <metalearn/nn/activation.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/version.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

// The CMake consumer projects build this file in a target of their own set to C++14:
// metalearn's usage requirement (cxx_std_17) must raise it.
static_assert(__cplusplus >= 201703L, "metalearn's usage requirements did not select C++17");

namespace {

namespace nn = metalearn::nn;
using metalearn::Index;
using Model = nn::Objective<nn::Mlp<double>, nn::MeanSquaredError>;
static_assert(metalearn::is_model_v<Model>, "nn::Objective must satisfy the model contract");

// y = sin(πx₀)·x₁ on [-1, 1]², n examples.
metalearn::RegressionBatch<double> make_batch(Index n, metalearn::Rng& rng) {
  metalearn::RegressionBatch<double> batch{metalearn::Matrix<double>(2, n), metalearn::Matrix<double>(1, n)};
  for (Index j = 0; j < n; ++j) {
    const double x0 = rng.uniform(-1.0, 1.0), x1 = rng.uniform(-1.0, 1.0);
    batch.inputs(0, j) = x0;
    batch.inputs(1, j) = x1;
    batch.targets(0, j) = std::sin(3.141592653589793 * x0) * x1;
  }
  return batch;
}

bool check(const metalearn::check::Result& r) {
  if (!r) std::fprintf(stderr, "consumer: %s\n", r.report().c_str());
  return static_cast<bool>(r);
}

int run() {
#ifdef METALEARN_CONSUMER_EXPECTED_VERSION
  if (std::strcmp(METALEARN_CONSUMER_EXPECTED_VERSION, metalearn::version_string) != 0) {
    std::fprintf(stderr, "consumer: the build system found metalearn %s but the headers are %s\n",
                 METALEARN_CONSUMER_EXPECTED_VERSION, metalearn::version_string);
    return 1;
  }
#endif
  char eigen[32];
#ifdef EIGEN_VERSION_STRING  // Eigen 5 (whose EIGEN_WORLD_VERSION.EIGEN_MAJOR_VERSION say 3.5)
  std::snprintf(eigen, sizeof eigen, "%s", EIGEN_VERSION_STRING);
#else
  std::snprintf(eigen, sizeof eigen, "%d.%d.%d", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
#endif
#ifdef METALEARN_CONSUMER_EXPECTED_EIGEN
  const char* expected = METALEARN_CONSUMER_EXPECTED_EIGEN;
  if (std::strncmp(expected, eigen, std::strlen(expected)) != 0) {  // "5.0.1" matches "5.0.1-dev"
    std::fprintf(stderr, "consumer: built with Eigen %s, expected Eigen %s\n", eigen, expected);
    return 1;
  }
#endif
  const Model model(nn::Mlp<double>({2, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  metalearn::Rng rng(20240601);
  metalearn::Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  const auto batch = make_batch(64, rng);

  Model::Workspace ws;
  metalearn::Vector<double> grad(model.parameter_count());
  const double initial = model.loss_and_gradient(theta, batch, grad, ws);
  bool ok = check(metalearn::check::gradient(model, theta, batch));

  for (int step = 0; step < 500; ++step) {
    model.loss_and_gradient(theta, batch, grad, ws);
    theta -= 0.2 * grad;
  }
  const double trained = model.loss(theta, batch, ws);
  const auto gradient_check = metalearn::check::gradient(model, theta, batch);
  ok = check(gradient_check) && ok;
  metalearn::Vector<double> v(model.parameter_count());
  for (Index i = 0; i < v.size(); ++i) v[i] = rng.normal();
  ok = check(metalearn::check::hessian_vector_product(model, theta, batch, v)) && ok;

  if (!std::isfinite(initial) || !std::isfinite(trained) || !(trained < 0.5 * initial)) {
    std::fprintf(stderr, "consumer: training did not reduce the loss enough (%.6g -> %.6g)\n", initial, trained);
    ok = false;
  }
  std::printf("metalearn %s (Eigen %s): %s, %ld parameters, loss %.6f -> %.6f after 500 steps, gradient check max "
              "error %.2e: %s\n",
              metalearn::version_string, eigen, model.describe().c_str(), static_cast<long>(model.parameter_count()),
              initial, trained, gradient_check.max_error, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main() {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
