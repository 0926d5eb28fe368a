// CAVIA (meta/cavia.hpp) and the context adaptor (nn/context.hpp): the adaptor's gradient and
// Hessian-vector product against central differences and against the network with the context
// appended to its inputs; CAVIA's meta-gradient against central differences of the meta-loss
// recomputed naively; threads, the per-task clamp and bad input.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <sine_tasks.hpp>
#include <test_support.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Cavia;
using metalearn::CaviaOptions;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {

using Regression = nn::Objective<nn::Mlp<double>, nn::MeanSquaredError>;


// θ_ctx with a nonzero context, so every term of the derivatives is exercised.
template <class Ctx>
Vector<double> random_context_theta(const Ctx& model, Rng& rng) {
  Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  theta += mlt::random_vector<double>(theta.size(), rng, 0.1);
  theta.tail(model.context_size()) = mlt::random_vector<double>(model.context_size(), rng, 0.7);
  return theta;
}

}  // namespace

TEST_CASE("nn::Context: gradient and Hessian-vector product match central differences", "[cavia][gradient]") {
  Rng rng(31);
  for (const nn::Activation& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Softplus{})})
    for (Index c : {1, 3}) {
      const Index in = 1 + static_cast<Index>(rng.uniform_index(3)), h1 = 3 + static_cast<Index>(rng.uniform_index(5)),
                  h2 = 2 + static_cast<Index>(rng.uniform_index(4)), out = 1 + static_cast<Index>(rng.uniform_index(2));
      const nn::Context model(Regression(nn::Mlp<double>({in, h1, h2, out}, {act, act, nn::Identity{}}), {}), c);
      INFO(model.describe());
      const Vector<double> theta = random_context_theta(model, rng);
      const auto batch = mlt::regression_batch<double>(in, out, 7, rng);
      const auto g = metalearn::check::gradient(model, theta, batch);
      INFO(g.report());
      CHECK(g.ok);
      const Vector<double> v = mlt::random_vector<double>(theta.size(), rng, 1.0);
      const auto hv = metalearn::check::hessian_vector_product(model, theta, batch, v);
      INFO(hv.report());
      CHECK(hv.ok);
    }
}

TEST_CASE("nn::Context equals the network with the context appended to every input", "[cavia]") {
  Rng rng(32);
  const Index in = 2, h = 5, c = 3, n = 6;
  const Regression base(nn::Mlp<double>({in, h, 4, 1}, nn::Tanh{}), {});
  const nn::Context model(base, c);
  const Regression wide(nn::Mlp<double>({in + c, h, 4, 1}, nn::Tanh{}), {});
  const Vector<double> theta = random_context_theta(model, rng);
  // the wide network's θ: its first layer's W = [W_x | W_φ] (column-major, so W_φ follows W_x), then the rest
  const Index p = base.parameter_count(), wx = h * in;
  Vector<double> wide_theta(wide.parameter_count());
  wide_theta << theta.head(wx), theta.segment(p, h * c), theta.segment(wx, p - wx);
  const auto batch = mlt::regression_batch<double>(in, 1, n, rng);
  metalearn::RegressionBatch<double> appended{Matrix<double>(in + c, n), batch.targets};
  appended.inputs.topRows(in) = batch.inputs;
  appended.inputs.bottomRows(c) = theta.tail(c).replicate(1, n);
  typename decltype(model)::Workspace ws;
  typename Regression::Workspace wide_ws;
  Vector<double> g(theta.size()), wide_g(wide_theta.size());
  const double loss = model.loss_and_gradient(theta, batch, g, ws);
  const double wide_loss = wide.loss_and_gradient(wide_theta, appended, wide_g, wide_ws);
  CHECK(loss == Catch::Approx(wide_loss).epsilon(1e-13));
  // the gradients of the shared entries agree (W_x, W_φ, and the rest)
  CHECK(mlt::max_error(Vector<double>(g.head(wx)), Vector<double>(wide_g.head(wx))) < 1e-13);
  CHECK(mlt::max_error(Vector<double>(g.segment(p, h * c)), Vector<double>(wide_g.segment(wx, h * c))) < 1e-13);
  CHECK(mlt::max_error(Vector<double>(g.segment(wx, p - wx)), Vector<double>(wide_g.tail(p - wx))) < 1e-13);
  Matrix<double> y(1, n), wide_y(1, n);
  model.predict(theta, batch.inputs, y, ws);
  wide.predict(wide_theta, appended.inputs, wide_y, wide_ws);
  CHECK((y - wide_y).cwiseAbs().maxCoeff() < 1e-13);
  CHECK(model.parameter_groups().back().name == "context");
}

TEST_CASE("CAVIA: the meta-gradient matches central differences of the meta-loss recomputed naively",
          "[cavia][gradient]") {
  Rng rng(33);
  for (const nn::Activation& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Relu{})})
    for (Order order : {Order::first, Order::second})
      for (int steps : {1, 2, 3}) {
        const nn::Context model(Regression(nn::Mlp<double>({1, 7, 6, 1}, act), {}), 4);
        CaviaOptions o;
        o.order = order;
        o.inner_steps = steps;
        o.inner_lr = 0.3;
        o.task_clip = 0;  // the clamp is tested below
        Cavia cavia(model, o);
        INFO(cavia.describe());
        Vector<double> theta(cavia.parameter_count());
        cavia.initialize(theta, rng);
        theta.head(theta.size() - 4) += mlt::random_vector<double>(theta.size() - 4, rng, 0.1);
        const auto tasks = mlt::sine_tasks<double>(40 + static_cast<std::uint64_t>(steps), 3, 6, 3);
        // φ₀ = 0 whatever meta's context entries hold; φ descends its own gradient; the query loss at φ_K
        auto naive = [&](const Vector<double>& meta) {
          typename decltype(model)::Workspace ws;
          double total = 0;
          for (const auto& t : tasks) {
            Vector<double> th = meta, g(meta.size());
            th.tail(4).setZero();
            for (int k = 0; k < steps; ++k) {
              model.loss_and_gradient(th, t.support, g, ws);
              th.tail(4) -= o.inner_lr * g.tail(4);
            }
            total += model.loss_and_gradient(th, t.query, g, ws);
          }
          return total / static_cast<double>(tasks.size());
        };
        if (order == Order::second) {
          const auto r = metalearn::check::meta_gradient(cavia, theta, tasks, naive);
          INFO(r.report());
          CHECK(r.ok);
        } else {  // first order: the query gradient at φ_K, its context entries 0
          Vector<double> g(theta.size()), expected = Vector<double>::Zero(theta.size()), gq(theta.size());
          cavia.meta_loss_and_gradient(theta, tasks, g);
          typename decltype(model)::Workspace ws;
          for (const auto& t : tasks) {
            Vector<double> th = theta, gs(theta.size());
            for (int k = 0; k < steps; ++k) {
              model.loss_and_gradient(th, t.support, gs, ws);
              th.tail(4) -= o.inner_lr * gs.tail(4);
            }
            model.loss_and_gradient(th, t.query, gq, ws);
            expected += gq;
          }
          expected /= static_cast<double>(tasks.size());
          expected.tail(4).setZero();
          CHECK(mlt::max_error(g, expected) < 1e-12);
        }
      }
}

// An nn::Objective without its bias-replacing passes: nn::Context builds θ' for it.
struct PlainRegression {
  using Scalar = double;
  using Batch = Regression::Batch;
  using Workspace = Regression::Workspace;
  Regression obj;
  Index parameter_count() const { return obj.parameter_count(); }
  std::vector<metalearn::ParameterGroup> parameter_groups() const { return obj.parameter_groups(); }
  void initialize(metalearn::VectorRef<double> theta, Rng& rng) const { obj.initialize(theta, rng); }
  double loss_and_gradient(metalearn::ConstVectorRef<double> theta, const Batch& batch,
                           metalearn::VectorRef<double> grad, Workspace& ws) const {
    return obj.loss_and_gradient(theta, batch, grad, ws);
  }
  void hessian_vector_product(metalearn::ConstVectorRef<double> theta, const Batch& batch,
                              metalearn::ConstVectorRef<double> v, metalearn::VectorRef<double> hv, Workspace& ws) const {
    obj.hessian_vector_product(theta, batch, v, hv, ws);
  }
  void cached_hessian_vector_product(metalearn::ConstVectorRef<double> theta, const Batch& batch,
                                     metalearn::ConstVectorRef<double> v, metalearn::VectorRef<double> hv,
                                     Workspace& ws, metalearn::CachedPassKey key) const {
    obj.cached_hessian_vector_product(theta, batch, v, hv, ws, key);
  }
};

TEST_CASE("nn::Context over nn::Objective (no copy of theta, no V products for a context direction) equals it over "
          "a model that builds theta'",
          "[cavia][gradient]") {
  using metalearn::detail::KeyIssuer;
  Rng rng(33);
  for (const char* bias : {"layer 1 b", "layer 2 b"})
    for (int kind = 0; kind < 3; ++kind) {  // tanh, ReLU, and tanh with layer normalisation (no bias directions)
      const nn::Activation act = kind == 1 ? nn::Activation(nn::Relu{}) : nn::Activation(nn::Tanh{});
      const Index in = 1 + static_cast<Index>(rng.uniform_index(3)), c = 1 + static_cast<Index>(rng.uniform_index(4));
      const Regression base(kind == 2 ? nn::Mlp<double>({in, 6, 5, 2}, act, nn::Identity{}, nn::LayerNorm{0.5})
                                      : nn::Mlp<double>({in, 6, 5, 2}, {act, act, nn::Identity{}}),
                            {});
      const nn::Context fast(base, c, bias);
      const nn::Context plain(PlainRegression{base}, c, bias);
      INFO(fast.describe() << " on " << bias);
      const Vector<double> theta = random_context_theta(fast, rng);
      const auto batch = mlt::regression_batch<double>(in, 2, 7, rng);
      const Index p = theta.size();
      typename decltype(fast)::Workspace fws;
      typename decltype(plain)::Workspace pws;
      Vector<double> gf(p), gp(p), gk(p);
      CHECK(fast.loss_and_gradient(theta, batch, gf, fws) == plain.loss_and_gradient(theta, batch, gp, pws));
      CHECK(gf == gp);  // the same operations: bit for bit
      CHECK(fast.loss_and_gradient(theta, batch, gk, fws, KeyIssuer::finite_theta()) == plain.loss_and_gradient(
                                                                                         theta, batch, gp, pws));
      CHECK(gk == gp);
      // cached products: a direction of φ alone (CAVIA's inner loop), then any direction
      Vector<double> v = Vector<double>::Zero(p);
      v.tail(c) = mlt::random_vector<double>(c, rng);
      for (int general = 0; general < 2; ++general) {
        if (general == 1) v = mlt::random_vector<double>(p, rng);
        Vector<double> hf(p), hp(p), full(p);
        fast.cached_hessian_vector_product(theta, batch, v, hf, fws, KeyIssuer::cached_pass());
        plain.cached_hessian_vector_product(theta, batch, v, hp, pws, KeyIssuer::cached_pass());
        fast.hessian_vector_product(theta, batch, v, full, fws);
        CHECK(mlt::max_error(hf, hp) < 1e-12);
        CHECK(mlt::max_error(hf, full) < 1e-12);
        fast.loss_and_gradient(theta, batch, gf, fws);  // (the uncached product ran a pass of its own)
      }
      // a shifted bias that overflows is refused as before, by name
      Vector<double> huge = theta;
      huge.tail(c).setConstant(1e300);
      huge.segment(base.parameter_count(), fast.parameter_count() - base.parameter_count() - c).setConstant(1e300);
      CHECK_THROWS_AS(fast.loss_and_gradient(huge, batch, gf, fws), metalearn::invalid_argument);
      CHECK_THROWS_AS(plain.loss_and_gradient(huge, batch, gp, pws), metalearn::invalid_argument);
    }
}

TEST_CASE("CAVIA: threads bit-identical, each task's meta-gradient clamped before the mean", "[cavia][threads]") {
  const nn::Context model(nn::Objective(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{}), 5);
  const auto tasks = mlt::sine_tasks<float>(7, 25, 10, 3);
  std::vector<Vector<float>> grads;
  for (int threads : {1, 2, 3}) {
    CaviaOptions o;
    o.threads = threads;
    Cavia cavia(model, o);
    Rng rng(3);
    Vector<float> theta(cavia.parameter_count()), g(cavia.parameter_count());
    cavia.initialize(theta, rng);
    cavia.meta_loss_and_gradient(theta, tasks, g);
    grads.push_back(g);
  }
  CHECK(grads[1] == grads[0]);
  CHECK(grads[2] == grads[0]);

  CaviaOptions loose, tight;
  loose.task_clip = 0;
  tight.task_clip = 1e-3;
  Cavia a(model, loose), b(model, tight);
  Rng rng(3);
  Vector<float> theta(a.parameter_count()), g(theta.size()), clamped(theta.size()), one(theta.size());
  a.initialize(theta, rng);
  b.meta_loss_and_gradient(theta, tasks, clamped);
  Vector<double> expected = Vector<double>::Zero(theta.size());
  for (const auto& t : tasks) {
    std::vector<std::decay_t<decltype(t)>> single{t};
    a.meta_loss_and_gradient(theta, single, one);
    expected += one.cast<double>().cwiseMax(-1e-3).cwiseMin(1e-3);
  }
  expected /= 25.0;
  CHECK((clamped.cast<double>() - expected).cwiseAbs().maxCoeff() < 1e-8);
  CHECK(clamped.cwiseAbs().maxCoeff() <= 1e-3f);
  a.meta_loss_and_gradient(theta, tasks, g);
  CHECK(g.cwiseAbs().maxCoeff() > 1e-2f);  // the clamp was active
  CHECK(g.tail(5).isZero(0));              // φ₀ is not learned
}

TEST_CASE("CAVIA and nn::Context refuse bad options and input, naming them", "[cavia][bad_input]") {
  const Regression base(nn::Mlp<double>({1, 4, 1}, nn::Tanh{}), {});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const metalearn::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no exception)");
  };
  CHECK_THAT(message([&] { nn::Context m(base, 0); }), mlt::contains("context size must be >= 1, got 0"));
  CHECK_THAT(message([&] { nn::Context m(base, 2, "layer 9 b"); }),
             mlt::contains("no parameter group 'layer 9 b'; its groups are 'layer 1 W', 'layer 1 b'"));
  CHECK_THAT(message([&] { Cavia c(base); }), mlt::contains("no parameter group named 'context'"));
  const nn::Context model(base, 2);
  CaviaOptions o;
  o.task_clip = -1;
  CHECK_THAT(message([&] { Cavia c(model, o); }), mlt::contains("Cavia: task_clip must be finite and >= 0, got -1"));
  o = {};
  o.inner_lr = 0;
  CHECK_THAT(message([&] { Cavia c(model, o); }), mlt::contains("Cavia: inner_lr must be finite and > 0, got 0"));
  Cavia cavia(model);
  Rng rng(1);
  Vector<double> theta(cavia.parameter_count());
  cavia.initialize(theta, rng);
  theta[theta.size() - 1] = 0.5;
  const auto tasks = mlt::sine_tasks<double>(1, 2, 5, 3);
  Vector<double> g = Vector<double>::Constant(theta.size(), 7.0);
  CHECK_THAT(message([&] { cavia.meta_loss_and_gradient(theta, tasks, g); }),
             mlt::contains("context entries of the meta-parameters (21 to 22) must be 0"));
  CHECK((g.array() == 7.0).all());
}

namespace {

// φ₀ = W_s s + b_s with s the mean of the support set's [x; y] columns, computed the plain way
// (Eigen's rowwise means, one matrix product); p is the model's parameter count, φ its last c.
Vector<double> support_start(const Vector<double>& meta, Index p, Index c,
                             const metalearn::RegressionBatch<double>& support) {
  const Index d = support.inputs.rows() + support.targets.rows();
  Vector<double> s(d);
  s << support.inputs.rowwise().mean(), support.targets.rowwise().mean();
  const Eigen::Map<const Matrix<double>> w(meta.data() + p, c, d);
  return w * s + meta.segment(p + c * d, c);
}

}  // namespace

TEST_CASE("CAVIA's support start: the meta-gradient of W_s, b_s and θ matches central differences",
          "[cavia][gradient]") {
  Rng rng(34);
  const Index c = 3, d = 2;
  for (const nn::Activation& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Relu{})})
    for (Order order : {Order::first, Order::second})
      for (int steps : {1, 2, 3}) {
        const nn::Context model(Regression(nn::Mlp<double>({1, 6, 5, 1}, act), {}), c);
        const Index p = model.parameter_count();
        CaviaOptions o;
        o.order = order;
        o.inner_steps = steps;
        o.inner_lr = 0.3;
        o.task_clip = 0;
        o.context_start = metalearn::ContextStart::support;
        o.summary_size = d;
        Cavia cavia(model, o);
        INFO(cavia.describe());
        REQUIRE(cavia.parameter_count() == p + c * d + c);
        Vector<double> theta(cavia.parameter_count());
        cavia.initialize(theta, rng);
        CHECK(theta.tail(c * d + c).isZero(0));  // W_s = 0, b_s = 0: CAVIA's zero start
        theta.head(p - c) += mlt::random_vector<double>(p - c, rng, 0.1);
        theta.tail(c * d + c) = mlt::random_vector<double>(c * d + c, rng, 0.5);
        const auto tasks = mlt::sine_tasks<double>(50 + static_cast<std::uint64_t>(steps), 3, 6, 3);
        // θ₀ = θ with φ₀ = W_s s + b_s; φ descends its own gradient; the query loss at φ_K
        auto descend = [&](const Vector<double>& meta, const metalearn::Task<metalearn::RegressionBatch<double>>& t,
                           Vector<double>& th) {
          typename decltype(model)::Workspace ws;
          Vector<double> g(p);
          th = meta.head(p);
          th.tail(c) = support_start(meta, p, c, t.support);
          for (int k = 0; k < steps; ++k) {
            model.loss_and_gradient(th, t.support, g, ws);
            th.tail(c) -= o.inner_lr * g.tail(c);
          }
        };
        auto naive = [&](const Vector<double>& meta) {
          typename decltype(model)::Workspace ws;
          Vector<double> th, g(p);
          double total = 0;
          for (const auto& t : tasks) {
            descend(meta, t, th);
            total += model.loss_and_gradient(th, t.query, g, ws);
          }
          return total / static_cast<double>(tasks.size());
        };
        if (order == Order::second) {
          const auto r = metalearn::check::meta_gradient(cavia, theta, tasks, naive);
          INFO(r.report());
          CHECK(r.ok);
        } else {  // first order: u = ∇L_q(θ_K); W_s's is u_φ sᵀ, b_s's u_φ
          Vector<double> g(theta.size()), expected = Vector<double>::Zero(theta.size()), gq(p), th;
          const double loss = cavia.meta_loss_and_gradient(theta, tasks, g);
          CHECK(loss == Catch::Approx(naive(theta)).epsilon(1e-12));
          typename decltype(model)::Workspace ws;
          for (const auto& t : tasks) {
            descend(theta, t, th);
            model.loss_and_gradient(th, t.query, gq, ws);
            expected.head(p) += gq;
            Vector<double> s(d);
            s << t.support.inputs.rowwise().mean(), t.support.targets.rowwise().mean();
            Eigen::Map<Matrix<double>>(expected.data() + p, c, d) += gq.tail(c) * s.transpose();
            expected.tail(c) += gq.tail(c);
          }
          expected /= static_cast<double>(tasks.size());
          expected.segment(p - c, c).setZero();
          CHECK(mlt::max_error(g, expected) < 1e-12);
        }
      }
}

TEST_CASE("CAVIA's support start: zero W_s and b_s is CAVIA, threads bit-identical, adapt and evaluate start there",
          "[cavia][threads]") {
  using S = float;
  const nn::Context model(nn::Objective(nn::Mlp<S>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{}), 5);
  const Index p = model.parameter_count(), c = 5;
  const auto tasks = mlt::sine_tasks<S>(8, 25, 10, 3);
  CaviaOptions o;
  o.context_start = metalearn::ContextStart::support;
  o.summary_size = 2;
  Cavia zero(model), support(model, o);
  Rng rng(4);
  Vector<S> theta(support.parameter_count()), g(theta.size()), gz(p);
  support.initialize(theta, rng);
  const S loss = support.meta_loss_and_gradient(theta, tasks, g);
  const S zero_loss = zero.meta_loss_and_gradient(theta.head(p), tasks, gz);
  CHECK(loss == zero_loss);             // φ₀ = 0 s + 0
  CHECK(g.head(p) == gz);               // the same θ gradient, bit for bit
  CHECK(g.tail(c).cwiseAbs().maxCoeff() > 0);  // and b_s learns

  theta.tail(2 * c + c) = mlt::random_vector<S>(3 * c, rng, 0.5f);
  std::vector<Vector<S>> grads;
  for (int threads : {1, 2, 3}) {
    CaviaOptions ot = o;
    ot.threads = threads;
    Cavia a(model, ot);
    a.meta_loss_and_gradient(theta, tasks, g);
    grads.push_back(g);
  }
  CHECK(grads[1] == grads[0]);
  CHECK(grads[2] == grads[0]);

  // adapt and evaluate start from φ₀ = W_s s + b_s: 0 steps give θ₀, whose query loss evaluate reports
  const auto& t = tasks[3];
  Vector<S> fast(p);
  support.adapt(theta, t.support, fast, 0);
  Vector<S> s(2);
  s << t.support.inputs.row(0).mean(), t.support.targets.row(0).mean();
  const Vector<S> phi0 = Eigen::Map<const Matrix<S>>(theta.data() + p, c, 2) * s + theta.tail(c);
  CHECK(fast.head(p - c) == theta.head(p - c));
  CHECK(mlt::max_error(Vector<S>(fast.tail(c)), phi0) < 1e-6);
  Matrix<S> losses;
  std::vector<metalearn::Task<metalearn::RegressionBatch<S>>> one{t};
  support.evaluate(theta, one, {0, 1}, losses);
  typename decltype(model)::Workspace ws;
  Vector<S> gq(p);
  CHECK(losses(0, 0) == model.loss_and_gradient(fast, t.query, gq, ws));
  support.adapt(theta, t.support, fast, 1);
  CHECK(losses(0, 1) == model.loss_and_gradient(fast, t.query, gq, ws));
  CHECK(losses(0, 1) < losses(0, 0));
}

TEST_CASE("CAVIA's support start refuses bad options and input, naming them", "[cavia][bad_input]") {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("(no exception)");
  };
  const nn::Context model(Regression(nn::Mlp<double>({1, 4, 1}, nn::Tanh{}), {}), 2);
  CaviaOptions o;
  o.context_start = metalearn::ContextStart::support;
  CHECK_THAT(message([&] { Cavia c(model, o); }),
             mlt::contains("context_start support needs summary_size >= 1 (the rows of x plus the rows of y), got 0"));
  const nn::Context classifier(nn::Objective(nn::Mlp<double>({3, 4, 2}, nn::Tanh{}), nn::SoftmaxCrossEntropy{}), 2);
  o.summary_size = 4;
  CHECK_THAT(message([&] { Cavia c(classifier, o); }), mlt::contains("needs real-valued targets"));
  o.context_start = static_cast<metalearn::ContextStart>(7);
  CHECK_THAT(message([&] { Cavia c(model, o); }), mlt::contains("context_start must be ContextStart::zero or"));

  o.context_start = metalearn::ContextStart::support;
  o.summary_size = 3;  // sine's [x; y] has 2 rows
  Cavia cavia(model, o);
  Rng rng(2);
  Vector<double> theta(cavia.parameter_count());
  cavia.initialize(theta, rng);
  auto tasks = mlt::sine_tasks<double>(2, 3, 5, 3);
  Vector<double> g = Vector<double>::Constant(theta.size(), 7.0);
  CHECK_THAT(message([&] { cavia.meta_loss_and_gradient(theta, tasks, g); }),
             mlt::contains("task 0: Cavia's support start: the support set's [x; y] has 1 + 1 rows, expected summary_size = 3"));
  CHECK((g.array() == 7.0).all());
  Vector<double> fast(model.parameter_count());
  CHECK_THAT(message([&] { cavia.adapt(theta, tasks[1].support, fast); }), mlt::contains("expected summary_size = 3"));

  o.summary_size = 2;
  Cavia fitted(model, o);
  Vector<double> meta = Vector<double>::Zero(fitted.parameter_count());
  fitted.initialize(meta, rng);
  g = Vector<double>::Constant(meta.size(), 7.0);
  tasks[1].support.targets(0, 2) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THAT(message([&] { fitted.meta_loss_and_gradient(meta, tasks, g); }),
             mlt::contains("task 1: Cavia's support start: the support set has a non-finite entry"));
  CHECK((g.array() == 7.0).all());
  tasks[1].support.targets(0, 2) = 0.5;
  tasks[0].support.inputs.setConstant(10);  // s = [10; ȳ]: W_s s + b_s overflows
  meta.tail(2 * 2 + 2).setConstant(1e308);
  CHECK_THAT(message([&] { fitted.meta_loss_and_gradient(meta, tasks, g); }),
             mlt::contains("the initial context W_s s + b_s is not finite"));
  CHECK((g.array() == 7.0).all());
}
