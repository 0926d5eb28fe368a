// Network gradients and Hessian-vector products against central differences, for every
// activation and loss, depths 1-4, random widths (including 1) and batch sizes (including 1).
//
// double: the checker's central differences in double, tolerance 1e-6.
// float:  (a) the float gradient against central differences of the same network in double
//             at the same θ: this isolates the float code's own error (rounding, about
//             1e-6 relative through a few layers) from the large error of differencing in
//             float, so the tolerance can be 1e-4, tight enough to catch any wrong term;
//         (b) the checker run in float on smooth activations, with its float tolerance.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
namespace check = metalearn::check;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// The cached product is the library's (model.hpp, CachedPassKey); this file tests it.
constexpr metalearn::CachedPassKey kPassKey = metalearn::detail::KeyIssuer::cached_pass();

template <class Loss>
auto make_batch(Index in, Index out, Index n, Rng& rng) {
  if constexpr (std::is_same_v<Loss, nn::SoftmaxCrossEntropy>)
    return mlt::classification_batch<double>(in, out, n, rng);
  else if constexpr (std::is_same_v<Loss, nn::BinaryCrossEntropyWithLogits>)
    return mlt::binary_batch<double>(in, out, n, rng);
  else
    return mlt::regression_batch<double>(in, out, n, rng);
}

bool smooth(const nn::Activation& a) {
  return !std::holds_alternative<nn::Relu>(a) && !std::holds_alternative<nn::LeakyRelu>(a) &&
         !std::holds_alternative<nn::Elu>(a);
}

// The cached HVP (reusing a gradient pass) equals the full one, repeatedly, and refuses to
// run without a gradient pass at the same θ and batch.
template <class Obj>
void check_cached_hvp(const Obj& obj, const Vector<double>& theta, const typename Obj::Batch& batch,
                      const Vector<double>& v, Rng& rng) {
  const Vector<double> w = mlt::random_vector<double>(theta.size(), rng);
  Vector<double> g(theta.size()), hv(theta.size()), hw(theta.size()), cv(theta.size()), cw(theta.size());
  typename Obj::Workspace ws, fresh;
  obj.hessian_vector_product(theta, batch, v, hv, ws);
  obj.hessian_vector_product(theta, batch, w, hw, ws);
  CHECK_THROWS_AS(obj.cached_hessian_vector_product(theta, batch, v, cv, ws, kPassKey), metalearn::invalid_argument);
  CHECK_THROWS_AS(obj.cached_hessian_vector_product(theta, batch, v, cv, fresh, kPassKey), metalearn::invalid_argument);
  obj.loss_and_gradient(theta, batch, g, ws);
  obj.cached_hessian_vector_product(theta, batch, v, cv, ws, kPassKey);
  obj.cached_hessian_vector_product(theta, batch, w, cw, ws, kPassKey);
  obj.cached_hessian_vector_product(theta, batch, v, g, ws, kPassKey);  // a third product: the pass is kept
  CHECK(mlt::max_error(cv, hv) < 1e-12);
  CHECK(mlt::max_error(cw, hw) < 1e-12);
  CHECK(mlt::max_error(g, hv) < 1e-12);
  const Vector<double> other = theta;  // same values, another object: not the recorded pass
  CHECK_THROWS_AS(obj.cached_hessian_vector_product(other, batch, v, cv, ws, kPassKey), metalearn::invalid_argument);
  obj.loss(theta, batch, ws);  // a forward pass overwrites the gradient pass
  CHECK_THROWS_AS(obj.cached_hessian_vector_product(theta, batch, v, cv, ws, kPassKey), metalearn::invalid_argument);
}

// normalized: every hidden layer (and the output layer at random) with LayerNorm.
template <class Loss>
void check_network_derivatives(std::uint64_t seed, bool normalized = false) {
  Rng rng(seed);
  const Index min_out = std::is_same_v<Loss, nn::SoftmaxCrossEntropy> ? 2 : 1;
  for (const auto& hidden : mlt::all_activations()) {
    for (int depth = 1; depth <= 4; ++depth) {
      const Index in = 1 + static_cast<Index>(rng.uniform_index(4));
      const Index out = min_out + static_cast<Index>(rng.uniform_index(3));
      const Index n = 1 + static_cast<Index>(rng.uniform_index(6));
      // the output layer: linear for the losses on logits, otherwise another activation
      const nn::Activation output = std::is_same_v<Loss, nn::MeanSquaredError> ? nn::Activation(nn::Tanh{})
                                                                                : nn::Activation(nn::Identity{});
      const mlt::NetSpec spec =
          normalized ? mlt::random_norm_spec(rng, in, out, depth, hidden, output, out >= 2 && rng.uniform() < 0.5)
                     : mlt::random_spec(rng, in, out, depth, hidden, output);
      INFO(spec.describe() << " " << Loss::name << ", batch " << n);
      const nn::Objective dbl(spec.make<double>(), Loss{});
      const nn::Objective flt(spec.make<float>(), Loss{});
      const auto batch = make_batch<Loss>(in, out, n, rng);
      const auto batch_f = mlt::cast_batch<float>(batch);
      const Vector<double> theta = mlt::random_theta(dbl, rng);
      const Vector<double> v = mlt::random_vector<double>(theta.size(), rng);

      const auto g = check::gradient(dbl, theta, batch);
      INFO(g.report());
      CHECK(g.ok);
      const auto h = check::hessian_vector_product(dbl, theta, batch, v);
      INFO(h.report());
      CHECK(h.ok);
      check_cached_hvp(dbl, theta, batch, v, rng);

      // float: analytic float derivatives against the double reference at the same θ
      typename decltype(dbl)::Workspace ws_d;
      typename decltype(flt)::Workspace ws_f;
      const Vector<float> theta_f = theta.cast<float>(), v_f = v.cast<float>();
      const Vector<double> theta_r = theta_f.cast<double>(), v_r = v_f.cast<double>();  // θ as float sees it
      Vector<double> g_ref(theta.size()), hv_ref(theta.size());
      Vector<float> g_f(theta.size()), hv_f(theta.size());
      const auto g_check = check::gradient(dbl, theta_r, batch);  // the reference is itself checked
      CHECK(g_check.ok);
      dbl.loss_and_gradient(theta_r, batch, g_ref, ws_d);
      dbl.hessian_vector_product(theta_r, batch, v_r, hv_ref, ws_d);
      flt.loss_and_gradient(theta_f, batch_f, g_f, ws_f);
      flt.hessian_vector_product(theta_f, batch_f, v_f, hv_f, ws_f);
      CHECK(mlt::max_error(g_f, g_ref) < 1e-4);
      CHECK(mlt::max_error(hv_f, hv_ref) < 1e-4);

      if (smooth(hidden)) {
        const auto gf = check::gradient(flt, theta_f, batch_f);
        INFO(gf.report());
        CHECK(gf.ok);
        const auto hf = check::hessian_vector_product(flt, theta_f, batch_f, v_f);
        INFO(hf.report());
        CHECK(hf.ok);
      }
    }
  }
}

}  // namespace

TEST_CASE("networks: gradient and HVP match central differences, MSE", "[nn][gradient][hvp]") {
  check_network_derivatives<nn::MeanSquaredError>(101);
}

TEST_CASE("networks: gradient and HVP match central differences, softmax cross-entropy", "[nn][gradient][hvp]") {
  check_network_derivatives<nn::SoftmaxCrossEntropy>(202);
}

TEST_CASE("networks: gradient and HVP match central differences, binary cross-entropy", "[nn][gradient][hvp]") {
  check_network_derivatives<nn::BinaryCrossEntropyWithLogits>(303);
}

TEST_CASE("networks with layer normalisation: gradient and HVP match central differences, MSE",
          "[nn][gradient][hvp][layer-norm]") {
  check_network_derivatives<nn::MeanSquaredError>(111, true);
}

TEST_CASE("networks with layer normalisation: gradient and HVP match central differences, softmax cross-entropy",
          "[nn][gradient][hvp][layer-norm]") {
  check_network_derivatives<nn::SoftmaxCrossEntropy>(212, true);
}

TEMPLATE_TEST_CASE("networks: compile-time stacks match central differences", "[nn][gradient][hvp]", float, double) {
  using S = TestType;
  using nn::Dense;
  Rng rng(404);
  auto run = [&](const auto& obj, Index in, Index out, Index n) {
    INFO(obj.describe() << ", batch " << n);
    const auto batch = mlt::cast_batch<S>(mlt::regression_batch<double>(in, out, n, rng));
    const Vector<S> theta = mlt::random_theta(obj, rng);
    const Vector<S> v = mlt::random_vector<S>(theta.size(), rng);
    check::Options options;
    options.max_entries = 300;  // a seeded sample on the 1761-parameter net
    const auto g = check::gradient(obj, theta, batch, options);
    INFO(g.report());
    CHECK(g.ok);
    const auto h = check::hessian_vector_product(obj, theta, batch, v, options);
    INFO(h.report());
    CHECK(h.ok);
  };
  if constexpr (std::is_same_v<S, double>)  // ReLU kinks: differences in double only
    run(nn::Objective(nn::Mlp<S, Dense<1, 40, nn::Relu>, Dense<40, 40, nn::Relu>, Dense<40, 1>>(),
                      nn::MeanSquaredError{}),
        1, 1, 10);
  run(nn::Objective(nn::Mlp<S, Dense<3, 5, nn::Tanh>, Dense<5, 1, nn::Sigmoid>>(), nn::MeanSquaredError{}), 3, 1, 4);
  run(nn::Objective(nn::Mlp<S, Dense<Eigen::Dynamic, Eigen::Dynamic, nn::Gelu>, Dense<Eigen::Dynamic, 2>>(
                        Dense<Eigen::Dynamic, Eigen::Dynamic, nn::Gelu>(2, 6), Dense<Eigen::Dynamic, 2>(6, 2)),
                    nn::MeanSquaredError{}),
      2, 2, 1);
  run(nn::Objective(nn::Mlp<S, Dense<3, 5, nn::Tanh>, Dense<5, 2>>(Dense<3, 5, nn::Tanh>(nn::Tanh{}, nn::LayerNorm{0.1}),
                                                                   Dense<5, 2>()),
                    nn::MeanSquaredError{}),
      3, 2, 4);
}
