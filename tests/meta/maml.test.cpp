// MAML beyond the meta-gradient checks: a closed form, determinism, threads, a short
// meta-training run, and user-defined models that are not metalearn networks.
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <numeric>
#include <vector>
#include <custom_models.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
namespace check = metalearn::check;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Matrix;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {

using SineTasks = metalearn::tasks::SineTasks<float>;
using PaperNet = nn::Mlp<float, nn::Dense<1, 40, nn::Relu>, nn::Dense<40, 40, nn::Relu>, nn::Dense<40, 1>>;

auto paper_objective() { return nn::Objective(PaperNet(), nn::MeanSquaredError{}); }

// Mean MSE on 100 grid points of `count` fresh tasks, after `steps` steps on 10 support points.
template <class M>
double evaluate(Maml<M>& maml, const Vector<float>& theta, int steps, std::uint64_t seed, int count = 100) {
  SineTasks sampler(seed, {}, /*stream=*/7);
  SineTasks::Task task;
  typename M::Workspace ws;
  double total = 0;
  for (int i = 0; i < count; ++i) {
    const auto sinusoid = sampler.sample(task);
    const Vector<float> fast = maml.adapt(theta, task.support, steps);
    total += maml.model().loss(fast, sampler.grid(sinusoid, 100), ws);
  }
  return total / count;
}

}  // namespace

TEST_CASE("MAML: second-order meta-gradient of a linear model equals its closed form", "[maml]") {
  // L(θ) = ‖Φθ − y‖²/n: ∇L = Aθ − b with A = 2ΦᵀΦ/n, b = 2Φᵀy/n; θ_K = (I − αA_s)θ_{K−1} + αb_s;
  // meta-gradient = (I − αA_s)^K (A_q θ_K − b_q), averaged over tasks.
  const custom::FourierRegression model(3);
  custom::PointsSineTasks sampler(9, 8, 12);
  std::vector<custom::PointsSineTasks::Task> tasks(3);
  for (auto& t : tasks) sampler.sample(t);
  Rng rng(1);
  Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  const double alpha = 0.05;
  auto ab = [&](const custom::Points& b, Matrix<double>& a, Vector<double>& bb) {
    Matrix<double> phi(b.size(), model.parameter_count());
    custom::FourierRegression::Workspace ws;
    Matrix<double> out(1, b.size());
    for (Index i = 0; i < model.parameter_count(); ++i) {  // Φ column by column via predict
      Vector<double> e = Vector<double>::Zero(model.parameter_count());
      e[i] = 1;
      model.predict(e, b.x.transpose(), out, ws);
      phi.col(i) = out.row(0).transpose();
    }
    a = 2.0 / static_cast<double>(b.size()) * phi.transpose() * phi;
    bb = 2.0 / static_cast<double>(b.size()) * phi.transpose() * b.y;
  };
  for (int steps : {1, 2, 5}) {
    Vector<double> expected = Vector<double>::Zero(theta.size());
    for (const auto& t : tasks) {
      Matrix<double> as, aq;
      Vector<double> bs, bq;
      ab(t.support, as, bs);
      ab(t.query, aq, bq);
      const Matrix<double> step = Matrix<double>::Identity(theta.size(), theta.size()) - alpha * as;
      Vector<double> th = theta;
      Matrix<double> jac = Matrix<double>::Identity(theta.size(), theta.size());
      for (int k = 0; k < steps; ++k) {
        th = step * th + alpha * bs;
        jac = step * jac;
      }
      expected += jac.transpose() * (aq * th - bq);  // (I − αA_s)^K ∇L_q(θ_K)
    }
    expected /= static_cast<double>(tasks.size());
    MamlOptions o;
    o.inner_lr = alpha;
    o.inner_steps = steps;
    Maml maml(model, o);
    Vector<double> g(theta.size());
    maml.meta_loss_and_gradient(theta, tasks, g);
    INFO(steps << " steps");
    CHECK(mlt::max_error(g, expected) < 1e-12);
  }
}

TEST_CASE("MAML: the tasks' results are added in the documented order, on 1 and on 2 threads", "[maml][threads]") {
  // Blocks of four consecutive tasks while more than five remain, then single tasks; within a
  // block in task order, then the blocks in order (maml.hpp). Each task's own loss and gradient
  // come from a meta-batch of that task alone.
  const auto obj = paper_objective();
  Rng rng(8);
  Vector<float> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  MamlOptions o;
  Maml single(obj, o);
  for (Index count : {1, 5, 6, 9, 10, 25}) {
    INFO(count << " tasks");
    SineTasks sampler(count);
    std::vector<SineTasks::Task> tasks(static_cast<std::size_t>(count));
    for (auto& t : tasks) sampler.sample(t);
    Matrix<float> g(theta.size(), count);
    std::vector<float> l(static_cast<std::size_t>(count));
    for (Index t = 0; t < count; ++t) {
      Vector<float> gt(theta.size());
      const std::vector<SineTasks::Task> alone{tasks[static_cast<std::size_t>(t)]};
      l[static_cast<std::size_t>(t)] = single.meta_loss_and_gradient(theta, alone, gt);
      g.col(t) = gt;
    }
    Vector<float> sum = Vector<float>::Zero(theta.size()), plain = Vector<float>::Zero(theta.size());
    Vector<float> block(theta.size());
    float loss = 0;
    for (Index begin = 0; begin < count;) {
      const Index end = begin + (count - begin > 5 ? 4 : 1);
      float block_loss = 0;
      for (Index t = begin; t < end; ++t) {
        block_loss += l[static_cast<std::size_t>(t)];
        if (t == begin) block = g.col(t);
        else block += g.col(t);
      }
      loss += block_loss;
      sum += block;
      begin = end;
    }
    for (Index t = 0; t < count; ++t) plain += g.col(t);
    const float inv = 1.0f / static_cast<float>(count);
    const Vector<float> expected = sum * inv;
    if (count == 25) CHECK(expected != Vector<float>(plain * inv));  // the order is visible in the bits
    for (int threads : {1, 2}) {
      INFO(threads << " threads");
      MamlOptions ot;
      ot.threads = threads;
      Maml maml(obj, ot);
      Vector<float> grad(theta.size());
      CHECK(maml.meta_loss_and_gradient(theta, tasks, grad) == loss * inv);
      CHECK(grad == expected);
    }
  }
}

TEST_CASE("MAML: the same seed reproduces θ bit for bit, 1, 2 and 3 threads agree bit for bit", "[maml][threads]") {
  auto train = [](int threads, std::uint64_t seed, int meta_batch) {
    const auto obj = paper_objective();
    Rng rng(seed);
    Vector<float> theta(obj.parameter_count());
    obj.initialize(theta, rng);
    MamlOptions o;
    o.threads = threads;
    Maml maml(obj, o);
    metalearn::optim::Adam<float> adam(theta.size());
    SineTasks sampler(seed);
    metalearn::TrainerOptions to;
    to.meta_batch = meta_batch;
    metalearn::MetaTrainer trainer(maml, adam, sampler, to);
    trainer.run(theta, 50);
    return theta;
  };
  for (int meta_batch : {7, 25}) {  // one block of four and single tasks; five blocks of four
    INFO("meta-batch " << meta_batch);
    const Vector<float> one = train(1, 42, meta_batch);
    CHECK(train(1, 42, meta_batch) == one);
    CHECK(train(2, 42, meta_batch) == one);
    CHECK(train(3, 42, meta_batch) == one);
    CHECK(train(1, 43, meta_batch) != one);
  }
}

TEST_CASE("MAML: a short meta-training run on sine tasks makes one step of adaptation pay off", "[maml][train]") {
  const auto obj = paper_objective();
  Rng rng(2026);
  Vector<float> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  MamlOptions mo;
  mo.inner_lr = 0.01;  // a large step, so that 2000 iterations teach one step to pay off by half
  Maml maml(obj, mo);
  metalearn::optim::Adam<float> adam(theta.size());
  SineTasks sampler(2026);
  metalearn::TrainerOptions to;
  to.meta_batch = 10;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  std::vector<double> losses;
  const Index ran = trainer.run(theta, 2000, [&](const metalearn::Progress& p) { losses.push_back(p.meta_loss); });
  CHECK(ran == 2000);
  CHECK(trainer.iteration() == 2000);
  const double before = evaluate(maml, theta, 0, 99);
  const double after1 = evaluate(maml, theta, 1, 99);
  const double after10 = evaluate(maml, theta, 10, 99);
  INFO("MSE before adaptation " << before << ", after 1 step " << after1 << ", after 10 steps " << after10);
  CHECK(after1 < 0.5 * before);
  CHECK(after10 < after1);
  // the meta-loss went down
  const double first = std::accumulate(losses.begin(), losses.begin() + 50, 0.0) / 50;
  const double last = std::accumulate(losses.end() - 50, losses.end(), 0.0) / 50;
  CHECK(last < 0.5 * first);
}

TEST_CASE("MAML: the callback can stop training", "[maml][train]") {
  const auto obj = paper_objective();
  Vector<float> theta(obj.parameter_count());
  Rng rng(1);
  obj.initialize(theta, rng);
  Maml maml(obj, MamlOptions{});
  metalearn::optim::Adam<float> adam(theta.size());
  SineTasks sampler(1);
  metalearn::MetaTrainer trainer(maml, adam, sampler, {});
  const Index ran = trainer.run(theta, 100, [](const metalearn::Progress& p) { return p.iteration < 7; });
  CHECK(ran == 7);
  CHECK(trainer.iteration() == 7);
  CHECK(adam.steps() == 7);
}

TEST_CASE("custom models: a linear Fourier model and a hand-written tanh network plug into MAML", "[maml][custom]") {
  custom::PointsSineTasks sampler(3, 10, 10);
  std::vector<custom::PointsSineTasks::Task> tasks(4);
  for (auto& t : tasks) sampler.sample(t);

  SECTION("Fourier regression: exact HVP, every order matches the naive route") {
    const custom::FourierRegression model(4);
    STATIC_REQUIRE(metalearn::model_traits<custom::FourierRegression>::has_hessian_vector_product);
    Rng rng(1);
    Vector<double> theta(model.parameter_count());
    model.initialize(theta, rng);
    CHECK(check::gradient(model, theta, tasks[0].support).ok);
    CHECK(check::hessian_vector_product(model, theta, tasks[0].support, Vector<double>::Ones(theta.size())).ok);
    for (Order order : {Order::first, Order::second, Order::second_finite_difference}) {
      MamlOptions o;
      o.order = order;
      o.inner_steps = 3;
      Maml maml(model, o);
      const auto r = check::meta_gradient(maml, theta, tasks);
      INFO(r.report());
      CHECK(r.ok);
    }
  }

  SECTION("hand-written tanh network: no HVP, so exact second order is refused, finite differences are explicit") {
    const custom::TinyTanhNet model(6);
    STATIC_REQUIRE_FALSE(metalearn::model_traits<custom::TinyTanhNet>::has_hessian_vector_product);
    STATIC_REQUIRE(metalearn::is_model_v<custom::TinyTanhNet>);
    MamlOptions o;
    o.order = Order::second;
    CHECK_THROWS_WITH(Maml(model, o), mlt::contains("Order::second_finite_difference"));
    Rng rng(2);
    Vector<double> theta(model.parameter_count());
    model.initialize(theta, rng);
    CHECK(check::gradient(model, theta, tasks[0].support).ok);
    o.order = Order::second_finite_difference;
    o.inner_steps = 2;
    Maml maml(model, o);
    const auto r = check::meta_gradient(maml, theta, tasks);
    INFO(r.report());
    CHECK(r.ok);
  }
}
