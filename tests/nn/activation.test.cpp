#include <metalearn/nn/activation.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <cmath>

namespace nn = metalearn::nn;
using metalearn::Index;

namespace {

template <class S>
using Arr = Eigen::Array<S, Eigen::Dynamic, 1>;

// Points in [−4, 4] that stay at least 0.05 away from the kink at 0.
Arr<double> sample_points() {
  Arr<double> z(161);
  for (Index i = 0; i < z.size(); ++i) z[i] = -4.0 + 0.05 * static_cast<double>(i) + 0.013;
  return z;
}

template <class Act>
void check_derivatives(const Act& act) {
  const Arr<double> z = sample_points();
  const double h = 1e-5;
  const Arr<double> a = act.value(z);
  const Arr<double> zp = z + h, zm = z - h;
  const Arr<double> ap = act.value(zp), am = act.value(zm);
  const Arr<double> d = act.derivative(z, a);
  const Arr<double> fd1 = (ap - am) / (2 * h);                                   // f' by differences of f
  const Arr<double> fd2 = (act.derivative(zp, ap) - act.derivative(zm, am)) / (2 * h);  // f'' by differences of f'
  const Arr<double> d2 = act.second_derivative(z, a);
  INFO(Act::name);
  CHECK(mlt::max_error(d, fd1) < 1e-8);
  CHECK(mlt::max_error(d2, fd2) < 1e-8);
  CHECK(Act::has_curvature == (d2.abs().maxCoeff() > 0));

  // float through the same code agrees with double to float rounding
  const Arr<float> zf = z.cast<float>();
  const Arr<float> af = act.value(zf);
  CHECK(mlt::max_error(af, a) < 1e-6);
  CHECK(mlt::max_error(Arr<float>(act.derivative(zf, af)), d) < 1e-5);
  CHECK(mlt::max_error(Arr<float>(act.second_derivative(zf, af)), d2) < 1e-5);
}

template <class Act>
double at(const Act& act, double z) {
  Arr<double> x(1);
  x[0] = z;
  return Arr<double>(act.value(x))[0];
}

}  // namespace

TEMPLATE_TEST_CASE("activations: f' and f'' match central differences, in float and double", "[nn][activation][gradient][hvp]",
                   nn::Identity, nn::Relu, nn::LeakyRelu, nn::Tanh, nn::Sigmoid, nn::Softplus, nn::Elu, nn::Gelu) {
  check_derivatives(TestType{});
}

TEST_CASE("activations: parameters are used", "[nn][activation][gradient]") {
  check_derivatives(nn::LeakyRelu{0.2});
  check_derivatives(nn::Elu{0.5});
  CHECK(at(nn::LeakyRelu{0.2}, -2.0) == Catch::Approx(-0.4));
  CHECK(at(nn::Elu{0.5}, -1.0) == Catch::Approx(0.5 * (std::exp(-1.0) - 1.0)));
}

TEST_CASE("activations: reference values and numerically extreme inputs", "[nn][activation]") {
  CHECK(at(nn::Identity{}, -3.5) == -3.5);
  CHECK(at(nn::Relu{}, -1.0) == 0.0);
  CHECK(at(nn::Relu{}, 2.0) == 2.0);
  CHECK(at(nn::LeakyRelu{}, -1.0) == Catch::Approx(-0.01));
  CHECK(at(nn::Tanh{}, 0.5) == Catch::Approx(std::tanh(0.5)));
  CHECK(at(nn::Sigmoid{}, 0.0) == 0.5);
  CHECK(at(nn::Softplus{}, 0.0) == Catch::Approx(std::log(2.0)));
  CHECK(at(nn::Softplus{}, 100.0) == Catch::Approx(100.0));        // no overflow of e^z
  CHECK(at(nn::Softplus{}, -100.0) == Catch::Approx(std::exp(-100.0)));
  CHECK(at(nn::Elu{}, -1.0) == Catch::Approx(std::exp(-1.0) - 1.0));
  CHECK(at(nn::Elu{}, 800.0) == 800.0);                           // the unused branch does not overflow
  // GELU (tanh form) at 1: ½ (1 + tanh(√(2/π) · 1.044715))
  CHECK(at(nn::Gelu{}, 1.0) == Catch::Approx(0.5 * (1 + std::tanh(0.7978845608028654 * 1.044715))));
  CHECK(at(nn::Sigmoid{}, -800.0) == 0.0);
  CHECK(at(nn::Sigmoid{}, 800.0) == 1.0);
}

TEST_CASE("activations: names through the run-time variant", "[nn][activation]") {
  CHECK(nn::activation_name(nn::Relu{}) == "relu");
  CHECK(nn::activation_name(nn::Gelu{}) == "gelu");
  CHECK(nn::activation_name(nn::LeakyRelu{}) == "leaky_relu");
}
