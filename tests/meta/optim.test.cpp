#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/optim/sgd.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using metalearn::Clip;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;
namespace optim = metalearn::optim;

TEMPLATE_TEST_CASE("Adam: matches the update written out by hand", "[optim]", float, double) {
  using S = TestType;
  optim::Adam<S> adam(3, {0.1, 0.9, 0.999, 1e-8});
  Vector<S> theta(3), g(3);
  theta << 1, -2, 0.5;
  g << 0.3, -0.1, 0.0;
  // reference in double, step by step
  Eigen::Vector3d th(1, -2, 0.5), m = Eigen::Vector3d::Zero(), v = Eigen::Vector3d::Zero();
  for (int t = 1; t <= 3; ++t) {
    const Eigen::Vector3d gd = g.template cast<double>() * t;  // a different gradient each step
    m = 0.9 * m + 0.1 * gd;
    v = 0.999 * v + 0.001 * gd.cwiseAbs2();
    const double bc1 = 1 - std::pow(0.9, t), bc2 = 1 - std::pow(0.999, t);
    th.array() -= (0.1 / bc1) * m.array() / (v.array().sqrt() / std::sqrt(bc2) + 1e-8);
    adam.step(theta, Vector<S>(g * S(t)));
  }
  CHECK(adam.steps() == 3);
  CHECK(mlt::max_error(theta, th) < (std::is_same_v<S, float> ? 1e-5 : 1e-14));
  CHECK(theta[2] == S(0.5));  // a zero gradient does not move the parameter
}

TEST_CASE("Adam: the first step moves each parameter by about lr against its gradient's sign", "[optim]") {
  optim::Adam<double> adam(2, {0.01});
  Vector<double> theta = Vector<double>::Zero(2), g(2);
  g << 5, -1e-3;
  adam.step(theta, g);
  CHECK(theta[0] == Catch::Approx(-0.01).epsilon(1e-6));
  CHECK(theta[1] == Catch::Approx(0.01).epsilon(1e-4));
}

TEMPLATE_TEST_CASE("Adam and SGD: optimizer state never turns subnormal, and the flush moves no parameter",
                   "[optim]", float, double) {
  // A gradient that is exactly zero from some step on (a dead ReLU unit) lets the first moment
  // (and SGD's velocity) decay geometrically through the subnormal range; those entries are
  // set to zero instead (optim/subnormal.hpp). Reference: the same updates in long double,
  // where these values are normal numbers.
  using S = TestType;
  using L = long double;
  constexpr S kMin = std::numeric_limits<S>::min();
  const int n = 4;
  optim::Adam<S> adam(n);
  optim::Sgd<S> sgd(n, {0.01, 0.9});
  Vector<S> theta_a(n), theta_s(n), g(n);
  theta_a << 0.5, -0.25, 1.0, 0.0;
  theta_s = theta_a;
  std::vector<L> ta(theta_a.data(), theta_a.data() + n), ts = ta, m(n, 0), v(n, 0), b(n, 0);
  int subnormal_seen = 0, entries_flushed = 0;
  const int steps = std::is_same_v<S, float> ? 1500 : 8000;  // m reaches 2^-126 / 2^-1022
  for (int t = 1; t <= steps; ++t) {
    // entry 0 always has a gradient; entries 1–3 stop at steps 10, 200, 0
    g << S(0.1), t < 10 ? S(-0.2) : S(0), t < 200 ? S(0.05) : S(0), S(0);
    adam.step(theta_a, g);
    sgd.step(theta_s, g);
    const L bc1 = 1 - std::pow(L(0.9), t), bc2 = 1 - std::pow(L(0.999), t);
    for (int i = 0; i < n; ++i) {
      const L gi = g[i];
      m[i] = L(0.9) * m[i] + L(0.1) * gi;
      v[i] = L(0.999) * v[i] + L(0.001) * gi * gi;
      ta[i] -= (L(1e-3) / bc1) * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + L(1e-8));
      b[i] = t == 1 ? gi : L(0.9) * b[i] + gi;
      ts[i] -= L(0.01) * b[i];
      for (S x : {adam.first_moment()[i], adam.second_moment()[i], sgd.velocity()[i]})
        subnormal_seen += std::fpclassify(x) == FP_SUBNORMAL;
      if (m[i] != 0 && std::abs(m[i]) < kMin && adam.first_moment()[i] == 0) ++entries_flushed;
    }
  }
  CHECK(subnormal_seen == 0);
  CHECK(entries_flushed > 0);  // the reference did pass through the subnormal range
  const double tol = std::is_same_v<S, float> ? 1e-4 : 1e-11;  // relative: rounding of every step
  for (int i = 0; i < n; ++i) {
    INFO("entry " << i);
    CHECK(std::abs(double(theta_a[i]) - double(ta[i])) < tol * std::max(1.0, std::abs(double(ta[i]))));
    CHECK(std::abs(double(theta_s[i]) - double(ts[i])) < tol * std::max(1.0, std::abs(double(ts[i]))));
  }
  CHECK(theta_a[3] == S(0));  // a parameter that never had a gradient has not moved
  CHECK(theta_s[3] == S(0));
}

TEST_CASE("SGD: plain, momentum and Nesterov updates", "[optim]") {
  Vector<double> g(2);
  g << 1, -2;
  {
    optim::Sgd<double> sgd(2, {0.1});
    Vector<double> theta = Vector<double>::Zero(2);
    sgd.step(theta, g);
    CHECK(theta[0] == Catch::Approx(-0.1));
    CHECK(theta[1] == Catch::Approx(0.2));
  }
  {
    optim::Sgd<double> sgd(2, {0.1, 0.9});
    Vector<double> theta = Vector<double>::Zero(2);
    sgd.step(theta, g);  // b = g
    sgd.step(theta, g);  // b = 0.9 g + g
    CHECK(theta[0] == Catch::Approx(-0.1 - 0.19));
    CHECK(sgd.velocity()[0] == Catch::Approx(1.9));
  }
  {
    optim::Sgd<double> sgd(2, {0.1, 0.9, true});
    Vector<double> theta = Vector<double>::Zero(2);
    sgd.step(theta, g);  // θ −= lr (g + μ g)
    CHECK(theta[0] == Catch::Approx(-0.19));
  }
}

TEST_CASE("Clip: values, norm, both", "[optim][clip]") {
  Vector<double> g(3);
  g << 3, -4, 0.5;
  Vector<double> a = g;
  Clip{1.0, 0}.apply<double>(a);
  CHECK(a == Vector<double>((Vector<double>(3) << 1, -1, 0.5).finished()));
  Vector<double> b = g;
  Clip{0, 1.0}.apply<double>(b);
  CHECK(b.norm() == Catch::Approx(1.0));
  CHECK(b[0] / b[1] == Catch::Approx(-0.75));
  Vector<double> c = g;
  Clip{}.apply<double>(c);
  CHECK(c == g);
  CHECK_FALSE(Clip{}.enabled());
}

TEST_CASE("Clip: the scalar type is deduced from the vector", "[optim][clip]") {
  Clip clip{0, 1.0};
  Vector<float> f = Vector<float>::Constant(4, 2.0f);
  clip.apply(f);  // no explicit <float>
  CHECK(f.norm() == Catch::Approx(1.0f));
  Vector<double> d = Vector<double>::Constant(4, 2.0), u = Vector<double>::Ones(4), scratch(4);
  const Vector<double> raw = d;
  clip.apply(d);
  clip.jacobian_transpose_product(raw, u, scratch);
  CHECK(u.norm() < 1e-12);  // u = 1 is parallel to g, which the norm clip's Jacobian removes
}

// Norms beyond float's square root (~1.8e19) and beyond double's (~1.3e154): the clipped
// gradient must have the clip norm and point the same way, never turn into zeros or NaNs.
TEST_CASE("Clip: norm clipping of huge gradients does not overflow", "[optim][clip]") {
  for (float scale : {1e20f, 1e30f, 1e38f}) {
    Vector<float> g(5);
    g << 1, -2, 3, 0.5f, -0.25f;
    const Vector<double> direction = g.cast<double>().normalized();
    g *= scale;
    Clip{0, 2.0}.apply(g);
    REQUIRE(metalearn::detail::all_finite(g));
    CHECK(g.cast<double>().norm() == Catch::Approx(2.0).epsilon(1e-6));
    CHECK(mlt::max_error(Vector<double>(g.cast<double>() / 2.0), direction) < 1e-6);
    // the Jacobian at that gradient: J u = (norm/‖g‖)(u − ĝĝᵀu), against a double reference
    Vector<float> raw(5);
    raw << 1, -2, 3, 0.5f, -0.25f;
    raw *= scale;
    Vector<float> u(5), scratch(5);
    u << 0.3f, 0.1f, -0.2f, 1, 0;
    const Vector<double> ud = u.cast<double>();
    Clip{0, 2.0}.jacobian_transpose_product(raw, u, scratch);
    const double n = raw.cast<double>().norm();
    const Vector<double> ghat = raw.cast<double>() / n;
    const Vector<double> expected = (2.0 / n) * (ud - ghat * ghat.dot(ud));
    REQUIRE(metalearn::detail::all_finite(u));
    CHECK(mlt::max_error(u.cast<double>(), expected) < 1e-6 * expected.cwiseAbs().maxCoeff() + 1e-45);
  }
  for (double scale : {1e160, 1e300}) {
    Vector<double> g = Vector<double>::Constant(1000, scale);
    Clip{0, 1.0}.apply(g);
    REQUIRE(metalearn::detail::all_finite(g));
    CHECK(g.norm() == Catch::Approx(1.0));
  }
  Vector<double> tiny = Vector<double>::Constant(10, 1e-200);  // squares underflow to zero
  const double norm = 1e-199;                                 // ‖tiny‖ ≈ 3.2e-200: not clipped
  Clip{0, norm}.apply(tiny);
  CHECK(tiny[0] == 1e-200);
  Clip{0, 1e-201}.apply(tiny);  // clipped to 1e-201 exactly in norm
  CHECK(metalearn::detail::overflow_free_norm<double>(tiny) == Catch::Approx(1e-201));
}

TEST_CASE("Clip: the Jacobian-transpose product matches central differences of the clip", "[optim][clip][gradient]") {
  Rng rng(3);
  for (const Clip clip : {Clip{0.7, 0}, Clip{0, 1.5}, Clip{0.8, 1.2}, Clip{0, 100}}) {
    for (int trial = 0; trial < 5; ++trial) {
      Vector<double> g = mlt::random_vector<double>(6, rng);
      for (Index i = 0; i < 6; ++i)  // keep away from the kinks at |g_i| = value
        if (clip.value > 0 && std::abs(std::abs(g[i]) - clip.value) < 1e-3) g[i] += 0.01;
      const Vector<double> u = mlt::random_vector<double>(6, rng);
      Vector<double> jtu = u, scratch(6);
      clip.jacobian_transpose_product<double>(g, jtu, scratch);
      Matrix<double> jac(6, 6);
      const double h = 1e-6;
      for (Index i = 0; i < 6; ++i) {
        Vector<double> gp = g, gm = g;
        gp[i] += h;
        gm[i] -= h;
        clip.apply<double>(gp);
        clip.apply<double>(gm);
        jac.col(i) = (gp - gm) / (2 * h);  // ∂clip/∂g_i
      }
      CHECK(mlt::max_error(jtu, Vector<double>(jac.transpose() * u)) < 1e-8);
    }
  }
}
