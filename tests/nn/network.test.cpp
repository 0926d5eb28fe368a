// Parameter layout, initialisation, the two network kinds, predict and the workspace.
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;

TEST_CASE("Mlp: the parameter layout is W_l column-major then b_l, layer by layer", "[nn][layout]") {
  const nn::Mlp<double> net({2, 3, 1}, nn::Identity{});
  REQUIRE(net.parameter_count() == 3 * 2 + 3 + 1 * 3 + 1);
  CHECK(net.layer_offset(0) == 0);
  CHECK(net.layer_offset(1) == 9);
  Vector<double> theta(13);
  // W1 = [1 3; 2 4; 5 6]ᵀ stored column-major: W1(i, j) at i + 3j
  theta << 1, 2, 5, 3, 4, 6,  // W1 (3 x 2): columns (1,2,5) and (3,4,6)
      10, 20, 30,             // b1
      1, -1, 2,               // W2 (1 x 3)
      0.5;                    // b2
  Matrix<double> x(2, 1);
  x << 1, 2;
  nn::MlpWorkspace<double> ws;
  const Matrix<double> y = net.forward(theta, x, ws);
  // h = W1 x + b1 = (1+6+10, 2+8+20, 5+12+30) = (17, 30, 47); y = 17 − 30 + 94 + 0.5
  CHECK(y(0, 0) == Catch::Approx(81.5));
}

TEMPLATE_TEST_CASE("Mlp: compile-time and run-time networks compute the same function", "[nn][layout]", float, double) {
  using S = TestType;
  using nn::Dense;
  Rng rng(1);
  const nn::Objective fixed(nn::Mlp<S, Dense<1, 40, nn::Relu>, Dense<40, 40, nn::Relu>, Dense<40, 1>>(),
                            nn::MeanSquaredError{});
  const nn::Objective runtime(nn::Mlp<S>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  REQUIRE(fixed.parameter_count() == 1761);
  REQUIRE(runtime.parameter_count() == 1761);
  CHECK(fixed.describe() == runtime.describe());
  CHECK(fixed.describe() == "1-40(relu)-40(relu)-1(identity) mse");
  const Vector<S> theta = mlt::random_theta(fixed, rng);
  const auto batch = mlt::cast_batch<S>(mlt::regression_batch<double>(1, 1, 10, rng));
  Vector<S> g1(1761), g2(1761), v = mlt::random_vector<S>(1761, rng), h1(1761), h2(1761);
  typename decltype(fixed)::Workspace ws1, ws2;
  const S l1 = fixed.loss_and_gradient(theta, batch, g1, ws1);
  const S l2 = runtime.loss_and_gradient(theta, batch, g2, ws2);
  fixed.hessian_vector_product(theta, batch, v, h1, ws1);
  runtime.hessian_vector_product(theta, batch, v, h2, ws2);
  const double tol = std::is_same_v<S, float> ? 1e-5 : 1e-13;
  CHECK(std::abs(l1 - l2) <= tol * std::max(S(1), std::abs(l1)));
  CHECK(mlt::max_error(g1, g2) < tol);
  CHECK(mlt::max_error(h1, h2) < tol);
}

TEST_CASE("init: a seed reproduces θ bit for bit, and each scheme has its scale", "[nn][init]") {
  const nn::Mlp<float> net({64, 256, 10}, nn::Relu{});
  Vector<float> a(net.parameter_count()), b(net.parameter_count());
  for (const nn::Initializer& init : std::vector<nn::Initializer>{nn::GlorotUniform{}, nn::GlorotNormal{}, nn::HeUniform{},
                                                                 nn::HeNormal{}, nn::Normal{0.05}, nn::TruncatedNormal{0.01}}) {
    INFO(nn::initializer_name(init));
    Rng r1(5), r2(5), r3(6);
    net.initialize(a, r1, init);
    net.initialize(b, r2, init);
    CHECK(a == b);
    net.initialize(b, r3, init);
    CHECK(a != b);
    // layer 0: W is 256 x 64, then 256 zero biases
    const auto w = a.head(256 * 64);
    CHECK(a.segment(256 * 64, 256).isZero());
    const double mean = static_cast<double>(w.mean());
    const double sd = std::sqrt(static_cast<double>((w.array() - w.mean()).square().mean()));
    double expected = 0;
    std::visit([&](const auto& s) {
      using T = std::decay_t<decltype(s)>;
      if constexpr (std::is_same_v<T, nn::GlorotUniform> || std::is_same_v<T, nn::GlorotNormal>) expected = std::sqrt(2.0 / (64 + 256));
      else if constexpr (std::is_same_v<T, nn::HeUniform> || std::is_same_v<T, nn::HeNormal>) expected = std::sqrt(2.0 / 64);
      else if constexpr (std::is_same_v<T, nn::Normal>) expected = s.stddev;
      else expected = 0.88 * s.stddev;  // N(0, σ²) truncated at 2σ has sd 0.880σ
    }, init);
    CHECK(std::abs(mean) < 0.05 * expected);
    CHECK(sd == Catch::Approx(expected).epsilon(0.03));
    if (std::holds_alternative<nn::TruncatedNormal>(init)) CHECK(w.cwiseAbs().maxCoeff() <= 0.02f);
  }
}

TEST_CASE("Objective: predict matches the forward pass and the workspace grows once", "[nn]") {
  Rng rng(3);
  const nn::Objective obj(nn::Mlp<double>({2, 8, 3}, nn::Tanh{}), nn::MeanSquaredError{});
  const Vector<double> theta = mlt::random_theta(obj, rng);
  nn::MlpWorkspace<double> ws;
  CHECK(ws.capacity() == 0);
  const Matrix<double> x = mlt::random_matrix<double>(2, 12, rng);
  Matrix<double> out(3, 12);
  obj.predict(theta, x, out, ws);
  CHECK(ws.capacity() == 12);
  const auto bytes = ws.bytes();
  // smaller batches reuse the buffers; each column is computed independently
  Matrix<double> out5(3, 5);
  obj.predict(theta, x.leftCols(5), out5, ws);
  CHECK(ws.capacity() == 12);
  CHECK(ws.bytes() == bytes);
  CHECK(mlt::max_error(out5.reshaped(), out.leftCols(5).reshaped()) < 1e-15);
  // a non-contiguous block of inputs (every other column) is read through its stride
  Matrix<double> wide = mlt::random_matrix<double>(4, 12, rng);
  wide.topRows(2) = x;
  Matrix<double> out_strided(3, 12);
  obj.predict(theta, wide.topRows(2), out_strided, ws);
  CHECK(mlt::max_error(out_strided.reshaped(), out.reshaped()) < 1e-15);
}

TEST_CASE("LayerNorm: layout, groups, names and initialisation", "[nn][layout][layer-norm]") {
  const nn::Mlp<double> plain({3, 4, 5, 2}, nn::Relu{});
  const nn::Mlp<double> net({3, 4, 5, 2}, nn::Relu{}, nn::Identity{}, nn::LayerNorm{});
  // W1 b1 γ1 β1 | W2 b2 γ2 β2 | W3 b3: 4·3 + 4 + 8, 5·4 + 5 + 10, 2·5 + 2
  REQUIRE(net.parameter_count() == 24 + 35 + 12);
  CHECK(net.layer_offset(1) == 24);
  CHECK(net.layer_offset(2) == 59);
  CHECK(net.layer_normalized(0));
  CHECK(net.layer_normalized(1));
  CHECK_FALSE(net.layer_normalized(2));
  CHECK(net.describe() == "3-4(ln 1e-05, relu)-5(ln 1e-05, relu)-2(identity)");
  const nn::Objective obj(net, nn::MeanSquaredError{});
  const auto groups = obj.parameter_groups();
  REQUIRE(groups.size() == 10);
  CHECK(groups[2].name == "layer 1 gain");
  CHECK(groups[2].offset == 16);
  CHECK(groups[3].name == "layer 1 shift");
  CHECK(groups[3].offset == 20);
  CHECK(groups[7].name == "layer 2 shift");
  CHECK(groups[7].offset == 24 + 30);
  CHECK(groups[9].offset + groups[9].size == net.parameter_count());
  // γ = 1, β = 0, and the weights are the unnormalised network's, drawn from the same stream
  Rng r1(9), r2(9);
  Vector<double> t(net.parameter_count()), p(plain.parameter_count());
  net.initialize(t, r1);
  plain.initialize(p, r2);
  CHECK(t.segment(16, 4).isOnes(0));
  CHECK(t.segment(20, 4).isZero(0));
  CHECK(t.segment(0, 16) == p.segment(0, 16));
  CHECK(t.segment(24, 25) == p.segment(16, 25));
  CHECK(t.segment(59, 12) == p.segment(41, 12));
}

TEST_CASE("LayerNorm: each example normalised on its own, the scale of W and b removed", "[nn][layer-norm]") {
  // y = γ ⊙ (z − mean z)/σ + β: a normalised layer's output is that of its reference formula,
  // it does not depend on the other examples of the batch, and (with ε → 0) scaling the
  // layer's W and b by c > 0 does not change it.
  const nn::Mlp<double> net({3, 4, 2}, {nn::Tanh{}, nn::Identity{}}, {nn::LayerNorm{1e-12}, std::nullopt});
  Rng rng(4);
  Vector<double> theta(net.parameter_count());
  net.initialize(theta, rng);
  theta += mlt::random_vector<double>(theta.size(), rng, 0.3);
  const Matrix<double> x = mlt::random_matrix<double>(3, 5, rng);
  nn::MlpWorkspace<double> ws;
  REQUIRE(net.parameter_count() == 34);
  const Matrix<double> y = net.forward(theta, x, ws);
  const Eigen::Map<const Matrix<double>> w1(theta.data(), 4, 3), w2(theta.data() + 24, 2, 4);
  const Eigen::Map<const Vector<double>> b1(theta.data() + 12, 4), g1(theta.data() + 16, 4), s1(theta.data() + 20, 4),
      b2(theta.data() + 32, 2);
  for (Index j = 0; j < 5; ++j) {
    const Vector<double> z = w1 * x.col(j) + b1;
    const Vector<double> c = z.array() - z.mean();
    const Vector<double> xh = c / std::sqrt(c.squaredNorm() / 4 + 1e-12);
    const Vector<double> a = (g1.cwiseProduct(xh) + s1).array().tanh();
    CHECK(mlt::max_error(Vector<double>(y.col(j)), Vector<double>(w2 * a + b2)) < 1e-12);
    nn::MlpWorkspace<double> alone;
    CHECK(mlt::max_error(Vector<double>(net.forward(theta, x.col(j), alone)), Vector<double>(y.col(j))) < 1e-14);
  }
  Vector<double> scaled = theta;
  scaled.head(16) *= 7.0;  // W1 and b1
  nn::MlpWorkspace<double> ws2;
  CHECK(mlt::max_error(Vector<double>(net.forward(scaled, x, ws2).reshaped()), Vector<double>(y.reshaped())) < 1e-9);
}

TEST_CASE("LayerNorm: compile-time and run-time normalised networks compute the same function", "[nn][layer-norm]") {
  using nn::Dense;
  Rng rng(2);
  const nn::Objective fixed(nn::Mlp<double, Dense<2, 6, nn::Relu>, Dense<6, 3>>(
                                Dense<2, 6, nn::Relu>(nn::Relu{}, nn::LayerNorm{0.01}), Dense<6, 3>()),
                            nn::SoftmaxCrossEntropy{});
  const nn::Objective runtime(nn::Mlp<double>({2, 6, 3}, nn::Relu{}, nn::Identity{}, nn::LayerNorm{0.01}),
                              nn::SoftmaxCrossEntropy{});
  REQUIRE(fixed.parameter_count() == runtime.parameter_count());
  CHECK(fixed.describe() == runtime.describe());
  const Vector<double> theta = mlt::random_theta(fixed, rng);
  const auto batch = mlt::classification_batch<double>(2, 3, 7, rng);
  const Index p = theta.size();
  Vector<double> g1(p), g2(p), v = mlt::random_vector<double>(p, rng), h1(p), h2(p);
  typename decltype(fixed)::Workspace ws1, ws2;
  CHECK(fixed.loss_and_gradient(theta, batch, g1, ws1) == Catch::Approx(runtime.loss_and_gradient(theta, batch, g2, ws2)));
  fixed.hessian_vector_product(theta, batch, v, h1, ws1);
  runtime.hessian_vector_product(theta, batch, v, h2, ws2);
  CHECK(mlt::max_error(g1, g2) < 1e-13);
  CHECK(mlt::max_error(h1, h2) < 1e-13);
}
