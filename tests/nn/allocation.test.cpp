// Once a workspace exists, loss_and_gradient, hessian_vector_product and predict never touch
// the heap: not through Eigen (EIGEN_RUNTIME_NO_MALLOC aborts) and not through operator new.
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <allocation_counter.hpp>
#include <catch.hpp>
#include <test_support.hpp>

#include <new>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// Warm up at the largest batch, then run every pass on smaller and equal batches.
template <class Obj, class MakeBatch>
void expect_no_allocation(const Obj& obj, MakeBatch make_batch, Index largest) {
  using S = typename Obj::Scalar;
  INFO(obj.describe());
  Rng rng(1);
  const Vector<S> theta = mlt::random_theta(obj, rng);
  const Vector<S> v = mlt::random_vector<S>(theta.size(), rng);
  Vector<S> grad(theta.size()), hv(theta.size());
  std::vector<decltype(make_batch(Index(1), rng))> batches;
  for (Index n : {largest, Index(1), largest / 2 + 1, largest}) batches.push_back(make_batch(n, rng));
  Matrix<S> out(obj.output_size(), largest);
  typename Obj::Workspace ws;
  obj.loss_and_gradient(theta, batches[0], grad, ws);  // warm-up: the workspace grows here
  obj.hessian_vector_product(theta, batches[0], v, hv, ws);

  S sink = 0;
  mlt::NoAllocationRegion region;
  for (int rep = 0; rep < 20; ++rep) {
    for (const auto& b : batches) {
      sink += obj.loss_and_gradient(theta, b, grad, ws);
      obj.hessian_vector_product(theta, b, v, hv, ws);
      sink += obj.loss(theta, b, ws);
      obj.predict(theta, b.inputs, out.leftCols(b.size()), ws);
    }
  }
  CHECK(region.allocations() == 0);
  CHECK(std::isfinite(static_cast<double>(sink)));
}

template <class S>
auto regression(Index in, Index out) {
  return [=](Index n, Rng& rng) { return mlt::cast_batch<S>(mlt::regression_batch<double>(in, out, n, rng)); };
}
template <class S>
auto classification(Index in, Index classes) {
  return [=](Index n, Rng& rng) { return mlt::cast_batch<S>(mlt::classification_batch<double>(in, classes, n, rng)); };
}

}  // namespace

TEMPLATE_TEST_CASE("allocation: none on the paper's 1-40-40-1 network after warm-up", "[nn][allocation]", float, double) {
  using S = TestType;
  using nn::Dense;
  expect_no_allocation(nn::Objective(nn::Mlp<S, Dense<1, 40, nn::Relu>, Dense<40, 40, nn::Relu>, Dense<40, 1>>(),
                                     nn::MeanSquaredError{}),
                       regression<S>(1, 1), 10);
  expect_no_allocation(nn::Objective(nn::Mlp<S>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{}), regression<S>(1, 1), 10);
}

TEMPLATE_TEST_CASE("allocation: none on a 784-256-256-10 network at batch 64 (blocked products)", "[nn][allocation]",
                   float, double) {
  using S = TestType;
  expect_no_allocation(nn::Objective(nn::Mlp<S>({784, 256, 256, 10}, nn::Relu{}), nn::SoftmaxCrossEntropy{}),
                       classification<S>(784, 10), 64);
}

TEST_CASE("allocation: none for every activation and loss", "[nn][allocation]") {
  for (const auto& act : mlt::all_activations()) {
    expect_no_allocation(nn::Objective(nn::Mlp<float>({3, 24, 24, 4}, act), nn::MeanSquaredError{}), regression<float>(3, 4), 30);
    expect_no_allocation(nn::Objective(nn::Mlp<float>({3, 24, 4}, act), nn::SoftmaxCrossEntropy{}), classification<float>(3, 4), 30);
    expect_no_allocation(nn::Objective(nn::Mlp<double>({3, 24, 4}, act), nn::BinaryCrossEntropyWithLogits{}),
                         [](Index n, Rng& rng) { return mlt::binary_batch<double>(3, 4, n, rng); }, 30);
  }
}

TEMPLATE_TEST_CASE("allocation: none on networks with layer normalisation", "[nn][allocation][layer-norm]", float,
                   double) {
  using S = TestType;
  using nn::Dense;
  for (const auto& act : {nn::Activation(nn::Relu{}), nn::Activation(nn::Tanh{})})
    expect_no_allocation(nn::Objective(nn::Mlp<S>({64, 32, 32, 5}, act, nn::Identity{}, nn::LayerNorm{}),
                                       nn::SoftmaxCrossEntropy{}),
                         classification<S>(64, 5), 25);
  expect_no_allocation(nn::Objective(nn::Mlp<S, Dense<1, 40, nn::Tanh>, Dense<40, 1>>(
                                         Dense<1, 40, nn::Tanh>(nn::Tanh{}, nn::LayerNorm{}), Dense<40, 1>()),
                                     nn::MeanSquaredError{}),
                       regression<S>(1, 1), 10);
}

// The counter the tests above rely on: every form of operator new is counted, so a test that
// reports zero allocations could have reported one. (No Catch macro inside the region: Catch
// allocates while it records an assertion. The pointers escape through a volatile, so the
// compiler cannot elide a new/delete pair.)
namespace {
void* volatile escape = nullptr;
}  // namespace

TEST_CASE("allocation counter: counts every form of operator new, and only inside the region", "[nn][allocation]") {
  struct alignas(64) Wide {
    char bytes[64];
  };
  const std::int64_t before = mlt::operator_new_calls().load();
  std::int64_t counts[6] = {};
  {
    mlt::NoAllocationRegion region;
    counts[0] = region.allocations();
    int* i = new int(1);
    escape = i;
    delete i;
    counts[1] = region.allocations();
    double* d = new double[3];
    escape = d;
    delete[] d;
    counts[2] = region.allocations();
    Wide* w = new Wide;  // the aligned form
    escape = w;
    delete w;
    counts[3] = region.allocations();
    int* n = new (std::nothrow) int(2);
    escape = n;
    delete n;
    counts[4] = region.allocations();
    std::vector<int> v(5);  // through std::allocator
    escape = v.data();
    counts[5] = region.allocations();
  }
  for (int k = 0; k < 6; ++k) CHECK(counts[k] == k);
  CHECK(mlt::operator_new_calls().load() - before >= 5);
  std::int64_t fresh = 0;
  {
    mlt::NoAllocationRegion later;
    fresh = later.allocations();
  }
  CHECK(fresh == 0);  // a new region starts from zero
}
