// Hessian-vector products by a second, independent route: the full Hessian assembled from
// second differences of the loss alone (never calling the gradient or the HVP), compared with
// the exact Hessian assembled column by column from hessian_vector_product(e_i). Plus the
// symmetry of an exact Hessian, and float against the double reference.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <expect.hpp>
#include <test_support.hpp>

#include <cmath>
#include <limits>
#include <string>

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

TEST_CASE("frozen-prefix passes: the adapted part of the gradient and H v for a direction zero on the frozen "
          "layers equal the full passes'",
          "[nn][hvp][frozen]") {
  using metalearn::detail::KeyIssuer;
  Rng rng(31);
  for (int trial = 0; trial < 24; ++trial) {
    const int depth = 2 + trial % 3;  // 2 to 4 layers
    const auto acts = mlt::all_activations();
    const nn::Activation hidden = acts[static_cast<std::size_t>(trial) % acts.size()];
    const bool norm = trial % 2 == 1;
    const mlt::NetSpec spec = norm ? mlt::random_norm_spec(rng, 3, 2, depth, hidden, nn::Identity{}, false)
                                   : mlt::random_spec(rng, 3, 2, depth, hidden, nn::Identity{});
    const nn::Objective obj(spec.make<double>(), nn::SoftmaxCrossEntropy{});
    const Index p = obj.parameter_count();
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.3);
    const auto batch = mlt::classification_batch<double>(3, 2, 7, rng);
    const auto& net = obj.network();
    for (Index first = 1; first < net.layer_count(); ++first) {
      const Index f = net.layer_offset(first);
      INFO(spec.describe() << ", frozen below layer " << first);
      REQUIRE(obj.supports_frozen_prefix(f));
      typename decltype(obj)::Workspace full_ws, ws;
      Vector<double> g_full(p), g(p), g2(p);
      const double l_full = obj.loss_and_gradient(theta, batch, g_full, full_ws);
      // a full pass at another θ' with the same frozen part, then the reusing pass at θ
      Vector<double> other = theta;
      other.tail(p - f) += mlt::random_vector<double>(p - f, rng, 0.5);
      obj.loss_and_gradient(other, batch, g2, ws, KeyIssuer::frozen_prefix(f, false));
      const double l = obj.loss_and_gradient(theta, batch, g, ws, KeyIssuer::frozen_prefix(f, true));
      CHECK(l == l_full);
      CHECK(g.tail(p - f) == g_full.tail(p - f));  // the same operations: bit for bit
      // H v for v zero on the frozen part: all entries, the frozen ones included
      Vector<double> v = mlt::random_vector<double>(p, rng);
      v.head(f).setZero();
      Vector<double> hv_full(p), hv(p);
      obj.hessian_vector_product(theta, batch, v, hv_full, full_ws);
      obj.cached_hessian_vector_product(theta, batch, v, hv, ws, KeyIssuer::cached_pass(), KeyIssuer::frozen_prefix(f, true));
      CHECK(mlt::max_error(hv, hv_full) < 1e-12);
      CHECK(hv.head(f).norm() > 0);  // the mixed terms reach the frozen layers
      // repeatable: the gradient pass stays usable
      Vector<double> hv2(p);
      obj.cached_hessian_vector_product(theta, batch, v, hv2, ws, KeyIssuer::cached_pass(), KeyIssuer::frozen_prefix(f, true));
      CHECK(hv2 == hv);
      // deferred: the frozen parts of two products come out summed, in one backward pass
      Vector<double> w = mlt::random_vector<double>(p, rng);
      w.head(f).setConstant(std::nan(""));  // not read
      Vector<double> v_nan = v;
      v_nan.head(f).setConstant(std::nan(""));
      Vector<double> hw(p), d1 = Vector<double>::Zero(p), d2 = Vector<double>::Zero(p), out(p);
      Vector<double> w0 = w;
      w0.head(f).setZero();
      obj.cached_hessian_vector_product(theta, batch, w0, hw, ws, KeyIssuer::cached_pass(), KeyIssuer::frozen_prefix(f, true));
      obj.cached_hessian_vector_product(theta, batch, v_nan, d1, ws, KeyIssuer::cached_pass(),
                                        KeyIssuer::frozen_prefix(f, true, true));
      obj.cached_hessian_vector_product(theta, batch, w, d2, ws, KeyIssuer::cached_pass(),
                                        KeyIssuer::frozen_prefix(f, true, true));
      CHECK(d1.head(f).isZero());  // left as it was
      CHECK(mlt::max_error(d1.tail(p - f), hv.tail(p - f)) < 1e-12);
      CHECK(mlt::max_error(d2.tail(p - f), hw.tail(p - f)) < 1e-12);
      obj.deferred_frozen_product(theta, batch, out, ws, KeyIssuer::frozen_prefix(f, true));
      const Vector<double> sum = hv.head(f) + hw.head(f);
      CHECK(mlt::max_error(out.head(f), sum) < 1e-12);
      CHECK_THROWS_WITH(obj.deferred_frozen_product(theta, batch, out, ws, KeyIssuer::frozen_prefix(f, true)),
                        mlt::contains("no deferred products since the last call"));
    }
    // offsets inside a layer, or of the first layer, are refused
    typename decltype(obj)::Workspace ws;
    Vector<double> g(p);
    CHECK_FALSE(obj.supports_frozen_prefix(0));
    CHECK_FALSE(obj.supports_frozen_prefix(1));
    CHECK_THROWS_WITH(obj.loss_and_gradient(theta, batch, g, ws, KeyIssuer::frozen_prefix(1, false)),
                      mlt::contains("the frozen prefix must end where a layer other than the first begins, got offset 1"));
  }
}

TEST_CASE("bias-replacing passes: the gradient at a replaced bias and H v for a direction of that bias alone equal "
          "the full passes' at θ with that bias",
          "[nn][hvp][bias]") {
  using metalearn::detail::KeyIssuer;
  Rng rng(37);
  for (int trial = 0; trial < 16; ++trial) {
    const int depth = 1 + trial % 4;  // 1 to 4 layers
    const auto acts = mlt::all_activations();
    const nn::Activation hidden = acts[static_cast<std::size_t>(trial) % acts.size()];
    const mlt::NetSpec spec = mlt::random_spec(rng, 3, 2, depth, hidden, nn::Identity{});
    const nn::Objective obj(spec.make<double>(), nn::SoftmaxCrossEntropy{});
    const Index p = obj.parameter_count();
    const auto& net = obj.network();
    REQUIRE(obj.supports_bias_directions());
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.3);
    const auto batch = mlt::classification_batch<double>(3, 2, 7, rng);
    for (Index l = 0; l < net.layer_count(); ++l) {
      const Index n = net.layer_output_size(l), b = net.layer_offset(l) + n * net.layer_input_size(l);
      INFO(spec.describe() << ", the bias of layer " << l);
      REQUIRE(obj.bias_layer(b) == l);
      CHECK(obj.bias_layer(b + 1) == -1);  // inside the bias, or the next layer's W
      CHECK(obj.bias_layer(net.layer_offset(l)) == -1);
      const Vector<double> bias = mlt::random_vector<double>(n, rng);
      Vector<double> replaced = theta;  // the same θ with the bias written in
      replaced.segment(b, n) = bias;
      Vector<double> with_nan = theta;  // θ's own bias is not read
      with_nan.segment(b, n).setConstant(std::nan(""));
      typename decltype(obj)::Workspace full_ws, ws;
      Vector<double> g_full(p), g(p), g_key(p);
      const double l_full = obj.loss_and_gradient(replaced, batch, g_full, full_ws);
      const nn::BiasReplacement<double> r{l, bias.data()};
      CHECK(obj.loss_and_gradient(with_nan, batch, g_key, ws, r, KeyIssuer::finite_theta()) == l_full);
      CHECK(g_key == g_full);  // the same operations: bit for bit
      REQUIRE_THROWS_AS(obj.loss_and_gradient(with_nan, batch, g, ws, r), metalearn::invalid_argument);  // checked θ
      const double loss = obj.loss_and_gradient(theta, batch, g, ws, r);
      CHECK(loss == l_full);
      CHECK(g == g_full);
      // H v for v zero but for that bias: by the cached bias-direction product (no V products)
      const Vector<double> c = mlt::random_vector<double>(n, rng);
      Vector<double> v = Vector<double>::Zero(p);
      v.segment(b, n) = c;
      Vector<double> hv_full(p), hv(p), hv_cached(p);
      obj.hessian_vector_product(replaced, batch, v, hv_full, full_ws);
      obj.cached_hessian_vector_product(theta, batch, nn::BiasReplacement<double>{l, c.data()}, hv, ws,
                                        KeyIssuer::cached_pass());
      CHECK(mlt::max_error(hv, hv_full) < 1e-12);
      CHECK(hv.norm() > 0);
      // the ordinary cached product after the replaced pass is the replaced network's too
      obj.cached_hessian_vector_product(theta, batch, v, hv_cached, ws, KeyIssuer::cached_pass());
      CHECK(mlt::max_error(hv_cached, hv_full) < 1e-12);
      // refused, with the output untouched: a non-finite bias, a layer out of range, no values
      Vector<double> bad = bias;
      bad[n - 1] = std::numeric_limits<double>::infinity();
      const Vector<double> before = g;
      const auto refused = [&](nn::BiasReplacement<double> x, const std::string& what) {
        INFO(what);
        mlt::expect_throw<metalearn::invalid_argument>(
            [&] { obj.loss_and_gradient(theta, batch, g, ws, x, KeyIssuer::finite_theta()); }, {what});
        CHECK(g == before);
      };
      refused({l, bad.data()}, "the replaced bias (layer " + std::to_string(l));
      refused({net.layer_count(), bias.data()}, "must be in [0, " + std::to_string(net.layer_count()) + ")");
      refused({-1, bias.data()}, "got -1");
      refused({l, nullptr}, "has no values");
    }
  }
  // a normalised network has no bias-direction product
  const nn::Objective norm(mlt::random_norm_spec(rng, 3, 2, 2, nn::Tanh{}, nn::Identity{}, false).make<double>(),
                           nn::SoftmaxCrossEntropy{});
  CHECK_FALSE(norm.supports_bias_directions());
}
