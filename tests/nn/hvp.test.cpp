// Hessian-vector products by a second, independent route: the full Hessian assembled from
// second differences of the loss alone (never calling the gradient or the HVP), compared with
// the exact Hessian assembled column by column from hessian_vector_product(e_i). Plus the
// symmetry of an exact Hessian, and float against the double reference.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
namespace check = metalearn::check;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;

namespace {

template <class Obj>
Matrix<double> exact_hessian(const Obj& obj, const Vector<typename Obj::Scalar>& theta,
                             const typename Obj::Batch& batch) {
  using S = typename Obj::Scalar;
  const Index p = theta.size();
  Matrix<double> h(p, p);
  Vector<S> e = Vector<S>::Zero(p), col(p);
  typename Obj::Workspace ws;
  for (Index i = 0; i < p; ++i) {
    e[i] = 1;
    obj.hessian_vector_product(theta, batch, e, col, ws);  // H e_i
    h.col(i) = col.template cast<double>();
    e[i] = 0;
  }
  return h;
}

template <class Loss, class MakeBatch>
void compare_with_loss_hessian(Loss loss, MakeBatch make_batch, std::uint64_t seed) {
  Rng rng(seed);
  for (const auto& hidden : mlt::all_activations()) {
    for (int depth = 1; depth <= 3; ++depth) {
      const Index in = 1 + static_cast<Index>(rng.uniform_index(3));
      const Index out = 2;
      const Index n = 1 + static_cast<Index>(rng.uniform_index(4));
      const mlt::NetSpec spec = mlt::random_spec(rng, in, out, depth, hidden, nn::Identity{}, 4);
      INFO(spec.describe() << " " << Loss::name << ", batch " << n);
      const nn::Objective dbl(spec.make<double>(), loss);
      const auto batch = make_batch(in, out, n, rng);
      const Vector<double> theta = mlt::random_theta(dbl, rng);

      const Matrix<double> h_exact = exact_hessian(dbl, theta, batch);
      const Matrix<double> h_loss = check::hessian_from_loss(dbl, theta, batch);
      // second differences of the loss are accurate to about √ε ≈ 1e-8 relative
      CHECK(mlt::max_error(h_exact.reshaped(), h_loss.reshaped()) < 1e-5);
      // an exact Hessian is symmetric to rounding
      CHECK((h_exact - h_exact.transpose()).cwiseAbs().maxCoeff() <= 1e-10 * std::max(1.0, h_exact.cwiseAbs().maxCoeff()));

      // float HVP against the loss-only Hessian of the double network at the same θ
      const nn::Objective flt(spec.make<float>(), loss);
      const Vector<float> theta_f = theta.cast<float>();
      const auto batch_f = mlt::cast_batch<float>(batch);
      const Vector<float> v_f = mlt::random_vector<float>(theta.size(), rng);
      Vector<float> hv_f(theta.size());
      typename decltype(flt)::Workspace ws_f;
      flt.hessian_vector_product(theta_f, batch_f, v_f, hv_f, ws_f);
      const Matrix<double> h_ref = check::hessian_from_loss(dbl, theta_f.cast<double>(), batch);
      const Vector<double> hv_ref = h_ref * v_f.cast<double>();
      CHECK(mlt::max_error(hv_f, hv_ref) < 1e-4);
    }
  }
}

}  // namespace

TEST_CASE("HVP: equals the Hessian assembled from the loss alone, MSE", "[nn][hvp]") {
  compare_with_loss_hessian(nn::MeanSquaredError{},
                            [](Index in, Index out, Index n, Rng& rng) { return mlt::regression_batch<double>(in, out, n, rng); },
                            7);
}

TEST_CASE("HVP: equals the Hessian assembled from the loss alone, softmax cross-entropy", "[nn][hvp]") {
  compare_with_loss_hessian(nn::SoftmaxCrossEntropy{},
                            [](Index in, Index out, Index n, Rng& rng) { return mlt::classification_batch<double>(in, out, n, rng); },
                            8);
}

TEST_CASE("HVP: equals the Hessian assembled from the loss alone, binary cross-entropy", "[nn][hvp]") {
  compare_with_loss_hessian(nn::BinaryCrossEntropyWithLogits{},
                            [](Index in, Index out, Index n, Rng& rng) { return mlt::binary_batch<double>(in, out, n, rng); },
                            9);
}

TEMPLATE_TEST_CASE("HVP: vᵀ(Hw) = wᵀ(Hv) and linear in v", "[nn][hvp]", float, double) {
  using S = TestType;
  Rng rng(10);
  const nn::Objective obj(nn::Mlp<S>({3, 16, 16, 2}, nn::Tanh{}), nn::MeanSquaredError{});
  const auto batch = mlt::cast_batch<S>(mlt::regression_batch<double>(3, 2, 8, rng));
  const Vector<S> theta = mlt::random_theta(obj, rng);
  const Vector<S> v = mlt::random_vector<S>(theta.size(), rng), w = mlt::random_vector<S>(theta.size(), rng);
  Vector<S> hv(theta.size()), hw(theta.size()), hsum(theta.size());
  typename decltype(obj)::Workspace ws;
  obj.hessian_vector_product(theta, batch, v, hv, ws);
  obj.hessian_vector_product(theta, batch, w, hw, ws);
  const Vector<S> sum = S(2) * v - S(3) * w;
  obj.hessian_vector_product(theta, batch, sum, hsum, ws);
  const double tol = std::is_same_v<S, float> ? 1e-4 : 1e-12;
  const double a = static_cast<double>(v.dot(hw)), b = static_cast<double>(w.dot(hv));
  CHECK(std::abs(a - b) <= tol * std::max({1.0, std::abs(a), std::abs(b)}));
  CHECK(mlt::max_error(hsum, Vector<S>(S(2) * hv - S(3) * hw)) < tol * 10);
}
