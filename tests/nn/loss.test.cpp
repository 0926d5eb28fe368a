#include <metalearn/nn/loss.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <cmath>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Labels;
using metalearn::Matrix;
using metalearn::Rng;

namespace {

// Gradient and Hessian-vector product of a loss with respect to the outputs Y, checked by
// central differences in double, and float checked against double.
template <class Loss, class Target>
void check_loss(const Loss& loss, const Matrix<double>& y, const Target& t, Rng& rng) {
  INFO(Loss::name << " on " << y.rows() << " x " << y.cols());
  Matrix<double> g(y.rows(), y.cols()), hr(y.rows(), y.cols());
  const Matrix<double> r = mlt::random_matrix<double>(y.rows(), y.cols(), rng);
  const double value = loss.template value_and_gradient<double>(y, t, g);
  CHECK(value == Catch::Approx(loss.template value<double>(y, t)).epsilon(1e-14));
  loss.template hessian_vector_product<double>(y, t, r, hr);

  const double h = 1e-6;
  Matrix<double> yp = y, fd(y.rows(), y.cols());
  for (Index i = 0; i < y.size(); ++i) {
    yp(i) = y(i) + h;
    const double up = loss.template value<double>(yp, t);
    yp(i) = y(i) - h;
    const double down = loss.template value<double>(yp, t);
    yp(i) = y(i);
    fd(i) = (up - down) / (2 * h);  // ∂L/∂y_i
  }
  CHECK(mlt::max_error(g, fd) < 1e-8);

  Matrix<double> gp(y.rows(), y.cols()), gm(y.rows(), y.cols());
  const Matrix<double> ya = y + h * r, yb = y - h * r;
  loss.template value_and_gradient<double>(ya, t, gp);
  loss.template value_and_gradient<double>(yb, t, gm);
  const Matrix<double> fd_h = (gp - gm) / (2 * h);  // ∇²L r by differences of ∇L
  CHECK(mlt::max_error(hr, fd_h) < 1e-8);

  // float through the same code
  const Matrix<float> yf = y.cast<float>(), rf = r.cast<float>();
  Matrix<float> gf(y.rows(), y.cols()), hf(y.rows(), y.cols());
  float vf;
  if constexpr (std::is_same_v<Target, Labels>) {
    vf = loss.template value_and_gradient<float>(yf, t, gf);
    loss.template hessian_vector_product<float>(yf, t, rf, hf);
  } else {
    const Matrix<float> tf2 = t.template cast<float>();
    vf = loss.template value_and_gradient<float>(yf, tf2, gf);
    loss.template hessian_vector_product<float>(yf, tf2, rf, hf);
  }
  CHECK(std::abs(vf - value) < 1e-5 * std::max(1.0, std::abs(value)));
  CHECK(mlt::max_error(gf, g) < 1e-5);
  CHECK(mlt::max_error(hf, hr) < 1e-5);
}

}  // namespace

TEST_CASE("losses: gradient and HVP match central differences on random shapes", "[nn][loss][gradient][hvp]") {
  Rng rng(11);
  for (int trial = 0; trial < 12; ++trial) {
    const Index d = 1 + static_cast<Index>(rng.uniform_index(5));
    const Index n = 1 + static_cast<Index>(rng.uniform_index(7));
    const Matrix<double> y = mlt::random_matrix<double>(d + 1, n, rng, 2.0);
    check_loss(nn::MeanSquaredError{}, y, mlt::random_matrix<double>(d + 1, n, rng), rng);
    check_loss(nn::SoftmaxCrossEntropy{}, y, mlt::classification_batch<double>(1, d + 1, n, rng).targets, rng);
    check_loss(nn::BinaryCrossEntropyWithLogits{}, y, mlt::binary_batch<double>(1, d + 1, n, rng).targets, rng);
  }
}

TEST_CASE("losses: reference values", "[nn][loss]") {
  Matrix<double> y(2, 2), t(2, 2);
  y << 1, 2, 3, 4;
  t << 0, 2, 1, 1;
  CHECK(nn::MeanSquaredError{}.value<double>(y, t) == Catch::Approx((1.0 + 0 + 4 + 9) / 4));

  Matrix<double> logits = Matrix<double>::Zero(4, 3);
  Labels labels(3);
  labels << 0, 3, 2;
  CHECK(nn::SoftmaxCrossEntropy{}.value<double>(logits, labels) == Catch::Approx(std::log(4.0)));

  Matrix<double> z = Matrix<double>::Zero(1, 2), half = Matrix<double>::Constant(1, 2, 0.5);
  CHECK(nn::BinaryCrossEntropyWithLogits{}.value<double>(z, half) == Catch::Approx(std::log(2.0)));
}

TEST_CASE("losses: stable for extreme logits", "[nn][loss]") {
  Matrix<double> y(3, 1);
  y << 1000, -1000, 0;
  Labels l(1);
  l << 1;
  Matrix<double> g(3, 1);
  const double ce = nn::SoftmaxCrossEntropy{}.value_and_gradient<double>(y, l, g);
  CHECK(ce == Catch::Approx(2000.0));
  CHECK(g.allFinite());
  CHECK(g(0, 0) == Catch::Approx(1.0));
  CHECK(g(1, 0) == Catch::Approx(-1.0));

  Matrix<float> yb(1, 2), tb(1, 2), gb(1, 2);
  yb << 100.f, -100.f;
  tb << 0.f, 1.f;
  const float bce = nn::BinaryCrossEntropyWithLogits{}.value_and_gradient<float>(yb, tb, gb);
  CHECK(bce == Catch::Approx(100.0f));  // both confidently wrong: 100 each
  CHECK(gb.allFinite());
}
