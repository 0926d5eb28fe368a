// The checkers must fail on wrong derivatives: a checker that cannot fail proves nothing.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
namespace check = metalearn::check;
using metalearn::ConstVectorRef;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;
using metalearn::VectorRef;

namespace {

// tanh whose f'' is "forgotten": the gradient stays right, the HVP loses the G ⊙ f'' ⊙ RZ term.
struct TanhWithoutCurvature : nn::Tanh {
  static constexpr bool has_curvature = false;
};
// sigmoid with a wrong derivative a(1 + a) instead of a(1 − a).
struct WrongSigmoid : nn::Sigmoid {
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<A>& a) const {
    using S = typename A::Scalar;
    return a * (S(1) + a);
  }
};

// A model that forwards to an objective and then damages one gradient entry.
template <class Obj>
struct Damaged {
  using Scalar = typename Obj::Scalar;
  using Batch = typename Obj::Batch;
  using Workspace = typename Obj::Workspace;
  Obj obj;
  Index entry;
  Scalar factor;       // grad[entry] *= factor
  bool forget = false;  // leave grad[entry] unassigned instead
  Index parameter_count() const { return obj.parameter_count(); }
  void initialize(VectorRef<Scalar> t, Rng& r) const { obj.initialize(t, r); }
  Scalar loss(ConstVectorRef<Scalar> t, const Batch& b, Workspace& ws) const { return obj.loss(t, b, ws); }
  Scalar loss_and_gradient(ConstVectorRef<Scalar> t, const Batch& b, VectorRef<Scalar> g, Workspace& ws) const {
    const Scalar keep = g[entry];
    const Scalar l = obj.loss_and_gradient(t, b, g, ws);
    if (forget) g[entry] = keep;
    else g[entry] *= factor;
    return l;
  }
};

}  // namespace

TEMPLATE_TEST_CASE("check::gradient passes a right gradient and catches wrong ones", "[check][gradient]", float, double) {
  using S = TestType;
  Rng rng(1);
  const nn::Objective good(nn::Mlp<S>({2, 5, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  const auto batch = mlt::cast_batch<S>(mlt::regression_batch<double>(2, 1, 6, rng));
  const Vector<S> theta = mlt::random_theta(good, rng);
  const auto ok = check::gradient(good, theta, batch);
  INFO(ok.report());
  CHECK(ok.ok);
  CHECK(static_cast<bool>(ok));
  CHECK(ok.checked == theta.size());
  CHECK(ok.max_error < ok.tolerance);

  // one entry 10% off: the report names it
  Vector<S> g(theta.size());
  typename decltype(good)::Workspace ws;
  good.loss_and_gradient(theta, batch, g, ws);
  Index big = 0;
  g.cwiseAbs().maxCoeff(&big);
  const Damaged<decltype(good)> scaled{good, big, S(1.1)};
  const auto bad = check::gradient(scaled, theta, batch);
  CHECK_FALSE(bad.ok);
  REQUIRE(bad.mismatches.size() == 1);
  CHECK(bad.mismatches[0].index == big);
  CHECK(bad.worst_index == big);
  CHECK(bad.report().find("FAILED") != std::string::npos);

  // an entry the model never assigns is caught by the NaN poison
  const Damaged<decltype(good)> forgetful{good, 3, S(1), true};
  const auto unassigned = check::gradient(forgetful, theta, batch);
  CHECK_FALSE(unassigned.ok);
  CHECK(unassigned.worst_index == 3);

  // a wrong activation derivative inside the network
  const nn::Objective wrong(nn::Mlp<S, nn::Dense<2, 5, WrongSigmoid>, nn::Dense<5, 1>>(), nn::MeanSquaredError{});
  CHECK_FALSE(check::gradient(wrong, theta, batch).ok);
}

TEMPLATE_TEST_CASE("check::hessian_vector_product catches a forgotten curvature term", "[check][hvp]", float, double) {
  using S = TestType;
  Rng rng(2);
  const nn::Objective good(nn::Mlp<S, nn::Dense<2, 5, nn::Tanh>, nn::Dense<5, 1>>(), nn::MeanSquaredError{});
  const nn::Objective broken(nn::Mlp<S, nn::Dense<2, 5, TanhWithoutCurvature>, nn::Dense<5, 1>>(), nn::MeanSquaredError{});
  const auto batch = mlt::cast_batch<S>(mlt::regression_batch<double>(2, 1, 6, rng));
  const Vector<S> theta = mlt::random_theta(good, rng, 0.5);
  const Vector<S> v = mlt::random_vector<S>(theta.size(), rng);
  const auto ok = check::hessian_vector_product(good, theta, batch, v);
  INFO(ok.report());
  CHECK(ok.ok);
  CHECK(check::gradient(broken, theta, batch).ok);  // its gradient is right...
  const auto bad = check::hessian_vector_product(broken, theta, batch, v);
  INFO(bad.report());
  CHECK_FALSE(bad.ok);                              // ...its HVP is not
  CHECK(bad.max_error > 10 * bad.tolerance);
}

TEST_CASE("check: max_entries checks a seeded sample", "[check]") {
  Rng rng(3);
  const nn::Objective obj(nn::Mlp<double>({3, 20, 2}, nn::Tanh{}), nn::MeanSquaredError{});
  const auto batch = mlt::regression_batch<double>(3, 2, 4, rng);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  check::Options o;
  o.max_entries = 17;
  const auto r = check::gradient(obj, theta, batch, o);
  CHECK(r.checked == 17);
  CHECK(r.ok);
}
