// Reptile and iMAML (meta/reptile.hpp, meta/imaml.hpp): the meta-gradient against the same
// loop written naively (Reptile), a linear model's closed-form implicit gradient and central
// differences of the implicit meta-loss (iMAML), thread counts, memory independent of the
// inner steps, resumption (CAVIA's too) and bad input.
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/sine.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <catch.hpp>
#include <custom_models.hpp>
#include <temp_dir.hpp>
#include <sine_tasks.hpp>
#include <test_support.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace io = metalearn::io;
namespace nn = metalearn::nn;
using metalearn::HessianProducts;
using metalearn::Imaml;
using metalearn::ImamlOptions;
using metalearn::Index;
using metalearn::InnerOptimizer;
using metalearn::Matrix;
using metalearn::Reptile;
using metalearn::ReptileOptions;
using metalearn::Rng;
using metalearn::Vector;

namespace {

template <class S>
using Sine = metalearn::tasks::SineTasks<S>;


// Reptile's φ̃ written naively: fresh vectors, plain loops, Adam's formulas spelled out.
template <class Model>
Vector<double> naive_reptile(const Model& model, const ReptileOptions& o, const Vector<double>& theta,
                             const typename Model::Batch& support) {
  typename Model::Workspace ws{};
  Vector<double> phi = theta, m = Vector<double>::Zero(theta.size()), v = Vector<double>::Zero(theta.size());
  const Index n = support.size(), b = o.inner_batch > 0 ? o.inner_batch : n;
  for (int j = 0; j < o.inner_steps; ++j) {
    typename Model::Batch mini = support;
    if (b < n) {
      mini.inputs.resize(support.inputs.rows(), b);
      mini.targets.resize(support.targets.rows(), b);
      for (Index i = 0; i < b; ++i) {  // examples j·b, j·b + 1, … modulo n
        const Index at = (static_cast<Index>(j) * b + i) % n;
        mini.inputs.col(i) = support.inputs.col(at);
        mini.targets.col(i) = support.targets.col(at);
      }
    }
    Vector<double> g(theta.size());
    model.loss_and_gradient(phi, mini, g, ws);
    if (o.inner_optimizer == InnerOptimizer::sgd) {
      phi -= o.inner_lr * g;
    } else {  // Adam, β₁ = 0: m = g; v = β₂v + (1 − β₂)g²; φ −= lr m / (√(v / (1 − β₂^t)) + ε)
      const double t = j + 1;
      v = o.adam_beta2 * v + (1 - o.adam_beta2) * g.cwiseAbs2();
      const Vector<double> denom = (v / (1 - std::pow(o.adam_beta2, t))).cwiseSqrt().array() + o.adam_epsilon;
      phi -= o.inner_lr * g.cwiseQuotient(denom);
    }
  }
  return phi;
}

}  // namespace

TEST_CASE("Reptile: the meta-gradient is theta minus the mean adapted parameters of the naive loop",
          "[reptile][gradient]") {
  Rng rng(2);
  const nn::Objective obj(nn::Mlp<double>({1, 9, 7, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
  const auto tasks = mlt::sine_tasks<double>(4, 5, 10);
  for (InnerOptimizer opt : {InnerOptimizer::sgd, InnerOptimizer::adam})
    for (Index batch : {0, 3, 10})
      for (int steps : {1, 4}) {
        ReptileOptions o;
        o.inner_optimizer = opt;
        o.inner_batch = batch;
        o.inner_steps = steps;
        o.inner_lr = opt == InnerOptimizer::sgd ? 0.05 : 0.01;
        Reptile reptile(obj, o);
        INFO(reptile.describe());
        Vector<double> g(theta.size());
        const double loss = reptile.meta_loss_and_gradient(theta, tasks, g);
        Vector<double> expected = Vector<double>::Zero(theta.size());
        double expected_loss = 0;
        typename decltype(obj)::Workspace ws;
        for (const auto& t : tasks) {
          const Vector<double> phi = naive_reptile(obj, o, theta, t.support);
          expected += theta - phi;
          expected_loss += obj.loss(phi, t.query, ws);
        }
        expected /= static_cast<double>(tasks.size());
        CHECK(mlt::max_error(g, expected) < 1e-12);
        CHECK(loss == Catch::Approx(expected_loss / static_cast<double>(tasks.size())).epsilon(1e-12));
        Vector<double> fast(theta.size());
        reptile.adapt(theta, tasks[1].support, fast);
        CHECK(mlt::max_error(fast, naive_reptile(obj, o, theta, tasks[1].support)) < 1e-12);
      }
}

TEST_CASE("Reptile: one SGD step on the whole support set is alpha times joint training's gradient, and SGD "
          "at rate epsilon on its meta-gradient is Reptile's update",
          "[reptile]") {
  Rng rng(3);
  const nn::Objective obj(nn::Mlp<double>({1, 8, 1}, nn::Relu{}), nn::MeanSquaredError{});
  const Vector<double> theta = mlt::random_theta(obj, rng);
  const auto tasks = mlt::sine_tasks<double>(6, 4, 10);
  ReptileOptions o;
  o.inner_steps = 1;
  o.inner_lr = 0.03;
  Reptile reptile(obj, o);
  Vector<double> g(theta.size()), joint = Vector<double>::Zero(theta.size()), gt(theta.size());
  reptile.meta_loss_and_gradient(theta, tasks, g);
  typename decltype(obj)::Workspace ws;
  for (const auto& t : tasks) {
    obj.loss_and_gradient(theta, t.support, gt, ws);
    joint += gt;
  }
  joint *= 0.03 / static_cast<double>(tasks.size());
  CHECK(mlt::max_error(g, joint) < 1e-13);

  // θ ← θ + ε (mean φ̃ − θ) through optim::Sgd at rate ε
  o.inner_steps = 3;
  Reptile three(obj, o);
  Vector<double> updated = theta, mean_phi = Vector<double>::Zero(theta.size()), fast(theta.size());
  three.meta_loss_and_gradient(theta, tasks, g);
  metalearn::optim::Sgd<double> sgd(theta.size(), {0.25, 0.0, false});
  sgd.step(updated, g);
  for (const auto& t : tasks) {
    three.adapt(theta, t.support, fast);
    mean_phi += fast;
  }
  mean_phi /= static_cast<double>(tasks.size());
  CHECK(mlt::max_error(updated, Vector<double>(theta + 0.25 * (mean_phi - theta))) < 1e-14);
}

TEST_CASE("iMAML: a linear model's meta-gradient is the closed-form implicit gradient", "[imaml][gradient]") {
  // L(φ) = ‖Φφ − y‖²/n: ∇L = Aφ − b. φ* = (A_s + λI)⁻¹(b_s + λθ); g = (I + A_s/λ)⁻¹ (A_q φ* − b_q).
  const custom::FourierRegression model(3);
  const Index p = model.parameter_count();
  custom::PointsSineTasks sampler(9, 8, 12);
  std::vector<custom::PointsSineTasks::Task> tasks(3);
  for (auto& t : tasks) sampler.sample(t);
  auto ab = [&](const custom::Points& b, Matrix<double>& a, Vector<double>& bb) {
    Matrix<double> phi(b.size(), p);
    custom::FourierRegression::Workspace ws;
    Matrix<double> out(1, b.size());
    for (Index i = 0; i < p; ++i) {
      Vector<double> e = Vector<double>::Zero(p);
      e[i] = 1;
      model.predict(e, b.x.transpose(), out, ws);
      phi.col(i) = out.row(0).transpose();
    }
    a = 2.0 / static_cast<double>(b.size()) * phi.transpose() * phi;
    bb = 2.0 / static_cast<double>(b.size()) * phi.transpose() * b.y;
  };
  Rng rng(1);
  Vector<double> theta(p);
  model.initialize(theta, rng);
  for (double lambda : {0.5, 2.0}) {
    INFO("lambda " << lambda);
    Vector<double> expected = Vector<double>::Zero(p);
    double largest = 0;  // the largest eigenvalue of A_s + λI over the tasks: the inner step below
    for (const auto& t : tasks) {
      Matrix<double> as, aq;
      Vector<double> bs, bq;
      ab(t.support, as, bs);
      ab(t.query, aq, bq);
      const Matrix<double> shifted = as + lambda * Matrix<double>::Identity(p, p);
      largest = std::max(largest, Eigen::SelfAdjointEigenSolver<Matrix<double>>(shifted).eigenvalues().maxCoeff());
      const Vector<double> star = shifted.ldlt().solve(bs + lambda * theta);
      expected += (Matrix<double>::Identity(p, p) + as / lambda).ldlt().solve(aq * star - bq);
    }
    expected /= static_cast<double>(tasks.size());
    ImamlOptions o;
    o.lambda = lambda;
    o.inner_lr = 1.0 / largest;       // gradient descent on the proximal problem converges …
    o.inner_steps = 4000;             // … to round-off
    o.cg_iterations = static_cast<int>(p);  // CG is exact in P iterations (up to round-off)
    Imaml imaml(model, o);
    Vector<double> g(p);
    imaml.meta_loss_and_gradient(theta, tasks, g);
    CHECK(mlt::max_error(g, expected) < 1e-9);
    CHECK(imaml.last_residual() < 1e-9);
    // clipping the inner direction changes the path, not the solution it converges to
    o.inner_clip.value = 0.05;
    Imaml clipped(model, o);
    Vector<double> gc(p);
    clipped.meta_loss_and_gradient(theta, tasks, gc);
    CHECK(mlt::max_error(gc, expected) < 1e-9);
    CHECK(clipped.last_stationarity() < 1e-10);
  }
}

// The implicit meta-loss L_q(φ*(θ)), φ* by the same proximal descent written naively.
template <class Obj, class Tasks>
double naive_implicit_meta_loss(const Obj& obj, const ImamlOptions& o, const Tasks& tasks, const Vector<double>& th) {
  typename Obj::Workspace ws;
  double total = 0;
  for (const auto& t : tasks) {
    Vector<double> phi = th, g(th.size());
    for (int k = 0; k < o.inner_steps; ++k) {
      obj.loss_and_gradient(phi, t.support, g, ws);
      phi -= o.inner_lr * (g + o.lambda * (phi - th));
    }
    total += obj.loss(phi, t.query, ws);
  }
  return total / static_cast<double>(tasks.size());
}

TEST_CASE("iMAML: the implicit meta-gradient matches central differences of the meta-loss when the inner "
          "problem is solved to tolerance",
          "[imaml][gradient]") {
  for (const nn::Activation& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Softplus{})}) {
    Rng rng(5);
    const nn::Objective obj(nn::Mlp<double>({1, 6, 5, 1}, {act, act, nn::Identity{}}), nn::MeanSquaredError{});
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
    const auto tasks = mlt::sine_tasks<double>(7, 2, 8);
    ImamlOptions o;
    o.lambda = 5.0;  // strongly convex proximal problems: gradient descent converges fast
    o.inner_lr = 0.02;  // (0.05 oscillates on the softplus network: last_stationarity stays at 4)
    o.inner_steps = 600;
    o.cg_iterations = 60;
    Imaml imaml(obj, o);
    INFO(nn::activation_name(act));
    const auto naive = [&](const Vector<double>& th) { return naive_implicit_meta_loss(obj, o, tasks, th); };
    metalearn::check::Options co;
    co.tolerance = 1e-5;  // φ_K and x are solved to about 1e-8: the implicit gradient is exact only at φ*
    const auto r = metalearn::check::meta_gradient(imaml, theta, tasks, naive, co);
    INFO(r.report());
    CHECK(r.ok);
    CHECK(imaml.last_residual() < 1e-8);
    CHECK(imaml.last_stationarity() < 1e-7);

    // the difference form of the products, chosen explicitly, agrees to its own accuracy
    o.hessian = HessianProducts::finite_difference;
    Imaml fd(obj, o);
    Vector<double> g_exact(theta.size()), g_fd(theta.size());
    imaml.meta_loss_and_gradient(theta, tasks, g_exact);
    fd.meta_loss_and_gradient(theta, tasks, g_fd);
    CHECK(mlt::max_error(g_fd, g_exact) < 1e-6);
  }
}

TEST_CASE("iMAML: the implicit meta-gradient of a softmax classifier matches central differences of the meta-loss",
          "[imaml][gradient]") {
  Rng rng(6);
  const nn::Objective obj(nn::Mlp<double>({3, 5, 4, 3}, {nn::Activation(nn::Tanh{}), nn::Activation(nn::Tanh{}),
                                                         nn::Activation(nn::Identity{})}),
                          nn::SoftmaxCrossEntropy{});
  const Vector<double> theta = mlt::random_theta(obj, rng, 0.3);
  std::vector<metalearn::Task<metalearn::ClassificationBatch<double>>> tasks(3);
  for (auto& t : tasks) {
    t.support = mlt::classification_batch<double>(3, 3, 6, rng);
    t.query = mlt::classification_batch<double>(3, 3, 6, rng);
  }
  ImamlOptions o;
  o.lambda = 4.0;
  o.inner_lr = 0.05;
  o.inner_steps = 800;
  o.cg_iterations = 60;
  Imaml imaml(obj, o);
  const auto naive = [&](const Vector<double>& th) { return naive_implicit_meta_loss(obj, o, tasks, th); };
  metalearn::check::Options co;
  co.tolerance = 1e-5;
  const auto r = metalearn::check::meta_gradient(imaml, theta, tasks, naive, co);
  INFO(r.report());
  CHECK(r.ok);
  CHECK(imaml.last_residual() < 1e-8);
  CHECK(imaml.last_stationarity() < 1e-7);
}

TEST_CASE("iMAML: fewer CG iterations leave a larger residual and fewer inner steps a less stationary "
          "phi, which last_residual and last_stationarity report",
          "[imaml]") {
  Rng rng(8);
  const nn::Objective obj(nn::Mlp<double>({1, 16, 16, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  const Vector<double> theta = mlt::random_theta(obj, rng);
  const auto tasks = mlt::sine_tasks<double>(9, 4, 10);
  std::vector<double> residuals, stationarity;
  for (int m : {1, 3, 10, 30}) {
    ImamlOptions o;
    o.lambda = 2.0;
    o.inner_lr = 0.02;
    o.inner_steps = 100;
    o.cg_iterations = m;
    Imaml imaml(obj, o);
    Vector<double> g(theta.size());
    imaml.meta_loss_and_gradient(theta, tasks, g);
    residuals.push_back(imaml.last_residual());
    stationarity.push_back(imaml.last_stationarity());
  }
  CHECK(stationarity[0] == stationarity[3]);  // the inner loop does not depend on m
  for (int steps : {5, 400}) {
    ImamlOptions o;
    o.lambda = 2.0;
    o.inner_lr = 0.02;
    o.inner_steps = steps;
    Imaml imaml(obj, o);
    Vector<double> g(theta.size());
    imaml.meta_loss_and_gradient(theta, tasks, g);
    if (steps == 5) CHECK(imaml.last_stationarity() > 2 * stationarity[0]);
    else CHECK(imaml.last_stationarity() < 1e-3 * stationarity[0]);
  }
  INFO(residuals[0] << " " << residuals[1] << " " << residuals[2] << " " << residuals[3]);
  CHECK(residuals[0] > residuals[1]);
  CHECK(residuals[1] > residuals[2]);
  CHECK(residuals[2] > residuals[3]);
  CHECK(residuals[0] > 1e-3);
  CHECK(residuals[3] < 1e-6);
}

TEST_CASE("Reptile and iMAML: bit-identical on 1, 2 and 3 threads, memory independent of the inner steps",
          "[reptile][imaml][threads]") {
  const nn::Objective obj(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  const auto tasks = mlt::sine_tasks<float>(17, 25, 10);
  auto run = [&](auto make) {
    std::vector<Vector<float>> grads;
    for (int threads : {1, 2, 3}) {
      auto algorithm = make(threads, 5);
      Rng rng(5);
      Vector<float> theta(algorithm.parameter_count()), g(algorithm.parameter_count());
      algorithm.initialize(theta, rng);
      algorithm.meta_loss_and_gradient(theta, tasks, g);
      grads.push_back(g);
    }
    CHECK(grads[1] == grads[0]);
    CHECK(grads[2] == grads[0]);
    std::vector<std::size_t> bytes;  // one thread, 1 and 50 inner steps
    for (int steps : {1, 50}) {
      auto algorithm = make(1, steps);
      Rng rng(5);
      Vector<float> theta(algorithm.parameter_count()), g(algorithm.parameter_count());
      algorithm.initialize(theta, rng);
      algorithm.meta_loss_and_gradient(theta, tasks, g);
      bytes.push_back(algorithm.bytes());
    }
    CHECK(bytes[0] == bytes[1]);
  };
  run([&](int threads, int steps) {
    ReptileOptions o;
    o.inner_steps = steps;
    o.inner_batch = 5;
    o.inner_optimizer = InnerOptimizer::adam;
    o.threads = threads;
    return Reptile(obj, o);
  });
  run([&](int threads, int steps) {
    ImamlOptions o;
    o.inner_steps = steps;
    o.inner_lr = 0.001;
    o.threads = threads;
    return Imaml(obj, o);
  });
}

TEST_CASE("Reptile, iMAML and CAVIA resume from a checkpoint bit for bit", "[reptile][imaml][cavia][resume]") {
  const nn::Objective obj(nn::Mlp<float>({1, 10, 10, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto check_resume = [&](auto make) {
    constexpr Index n = 4, m = 4;
    mlt::TempDir dir;
    const std::string path = dir.file("r.ckpt");
    metalearn::TrainerOptions to;
    to.meta_batch = 4;
    auto a1 = make();
    Vector<float> t1(a1.parameter_count());
    Rng r1(1);
    a1.initialize(t1, r1);
    metalearn::optim::Adam<float> adam1(t1.size());
    Sine<float> s1(3);
    metalearn::MetaTrainer tr1(a1, adam1, s1, to);
    tr1.run(t1, n + m);

    auto a2 = make();
    Vector<float> t2(a2.parameter_count());
    Rng r2(1);
    a2.initialize(t2, r2);
    metalearn::optim::Adam<float> adam2(t2.size());
    Sine<float> s2(3);
    metalearn::MetaTrainer tr2(a2, adam2, s2, to);
    tr2.run(t2, n);
    io::save_checkpoint(path, a2.describe(), t2, adam2, tr2, s2.rng());

    auto a3 = make();
    Vector<float> t3 = Vector<float>::Zero(a3.parameter_count());
    metalearn::optim::Adam<float> adam3(t3.size());
    Sine<float> s3(99);
    metalearn::MetaTrainer tr3(a3, adam3, s3, to);
    io::load_checkpoint(path, a3.describe(), t3, adam3, tr3, s3.rng());
    tr3.run(t3, m);
    CHECK(t3 == t1);
  };
  check_resume([&] {
    ReptileOptions o;
    o.inner_batch = 4;
    o.inner_optimizer = InnerOptimizer::adam;
    return Reptile(obj, o);
  });
  check_resume([&] {
    ImamlOptions o;
    o.inner_lr = 0.01;
    return Imaml(obj, o);
  });
  check_resume([&] {
    metalearn::CaviaOptions o;
    o.inner_steps = 2;
    return metalearn::Cavia(nn::Context(obj, 3), o);
  });
  check_resume([&] {  // the support start: W_s and b_s after θ
    metalearn::CaviaOptions o;
    o.context_start = metalearn::ContextStart::support;
    o.summary_size = 2;
    return metalearn::Cavia(nn::Context(obj, 3), o);
  });
}

TEST_CASE("Reptile and iMAML refuse bad options and tasks, naming them", "[reptile][imaml][bad_input]") {
  const nn::Objective obj(nn::Mlp<double>({1, 4, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const metalearn::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no exception)");
  };
  auto reptile = [&](auto set) {
    ReptileOptions o;
    set(o);
    return message([&] { Reptile r(obj, o); });
  };
  CHECK_THAT(reptile([](auto& o) { o.inner_steps = 0; }), mlt::contains("Reptile: inner_steps must be >= 1, got 0"));
  CHECK_THAT(reptile([](auto& o) { o.inner_batch = -2; }), mlt::contains("inner_batch must be >= 0"));
  CHECK_THAT(reptile([](auto& o) { o.inner_lr = 0; }), mlt::contains("inner_lr must be finite and > 0, got 0"));
  CHECK_THAT(reptile([](auto& o) { o.adam_beta2 = 1.0; }), mlt::contains("adam_beta2 must be in [0, 1), got 1"));
  CHECK_THAT(reptile([](auto& o) { o.threads = 0; }), mlt::contains("threads must be >= 1"));
  ReptileOptions sliced;
  sliced.inner_batch = 4;
  CHECK_THAT(message([&] { Reptile r(custom::FourierRegression(2), sliced); }),
             mlt::contains("inner_batch needs a model whose Batch is metalearn::Batch"));
  // an inner batch larger than a task's support set: refused, the gradient untouched
  ReptileOptions big;
  big.inner_batch = 20;
  Reptile r(obj, big);
  const auto tasks = mlt::sine_tasks<double>(1, 3, 10);
  Rng rng(1);
  Vector<double> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  Vector<double> g = Vector<double>::Constant(theta.size(), 7.0);
  CHECK_THAT(message([&] { r.meta_loss_and_gradient(theta, tasks, g); }),
             mlt::contains("task 0: the inner batch (20) is larger than the support set (10 examples)"));
  CHECK((g.array() == 7.0).all());

  auto imaml = [&](auto set) {
    ImamlOptions o;
    set(o);
    return message([&] { Imaml i(obj, o); });
  };
  CHECK_THAT(imaml([](auto& o) { o.lambda = 0; }), mlt::contains("Imaml: lambda must be finite and > 0, got 0"));
  CHECK_THAT(imaml([](auto& o) { o.lambda = -1; }), mlt::contains("lambda must be finite and > 0, got -1"));
  CHECK_THAT(imaml([](auto& o) { o.cg_iterations = 0; }), mlt::contains("cg_iterations must be >= 1, got 0"));
  CHECK_THAT(imaml([](auto& o) { o.inner_steps = 0; }), mlt::contains("inner_steps must be >= 1, got 0"));
  CHECK_THAT(imaml([](auto& o) { o.inner_lr = std::nan(""); }), mlt::contains("inner_lr must be finite and > 0"));
  CHECK_THAT(imaml([](auto& o) { o.inner_clip.value = -1; }), mlt::contains("Imaml: clip value must be"));
  CHECK_THAT(message([&] { Imaml i(custom::TinyTanhNet(4)); }),
             mlt::contains("the model has no hessian_vector_product; choose HessianProducts::finite_difference"));
  ImamlOptions fd;
  fd.hessian = HessianProducts::finite_difference;
  Imaml ok(custom::TinyTanhNet(4), fd);  // accepted when asked explicitly
  CHECK(ok.describe().find("hessian differences") != std::string::npos);
}
