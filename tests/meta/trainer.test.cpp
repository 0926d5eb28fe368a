// The meta-training loop: non-finite meta-gradients are never applied (policy throw and skip),
// skips are reported through Progress, the outer clip bounds the update, and meta-training
// with several threads is race-free and bit-identical to one thread.
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace nn = metalearn::nn;
namespace optim = metalearn::optim;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::NonFinitePolicy;
using metalearn::Order;
using metalearn::Progress;
using metalearn::Rng;
using metalearn::TrainerOptions;
using metalearn::Vector;

namespace {

// An algorithm whose meta-gradient is scripted per call: `gradients[i]` (and `losses[i]`)
// for the i-th call; the trainer only needs these members.
struct Scripted {
  using Scalar = double;
  using Task = int;
  std::vector<Vector<double>> gradients;
  std::vector<double> losses;
  std::size_t calls = 0;
  Index parameter_count() const { return 3; }
  template <class Tasks>
  double meta_loss_and_gradient(metalearn::ConstVectorRef<double>, const Tasks&, metalearn::VectorRef<double> grad) {
    const std::size_t i = calls++ % gradients.size();
    grad = gradients[i];
    return losses[i];
  }
};
struct NoTasks {
  void sample(int& t) { t = 0; }
};

Vector<double> vec(double a, double b, double c) { return (Vector<double>(3) << a, b, c).finished(); }

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Sine tasks with amplitudes in [lo, hi], and θ initialised for `obj` from seed 1.
template <class Obj>
auto sine_setup(const Obj& obj, double lo, double hi) {
  using S = typename Obj::Scalar;
  typename metalearn::tasks::SineTasks<S>::Options o;
  o.amplitude_min = lo;
  o.amplitude_max = hi;
  Rng rng(1);
  Vector<S> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  return std::make_pair(metalearn::tasks::SineTasks<S>(1, o), theta);
}

}  // namespace

TEST_CASE("trainer: a non-finite meta-gradient under policy throw leaves θ and Adam untouched", "[trainer][non-finite]") {
  for (const auto& bad : {std::make_pair(vec(1, kNaN, 0), 1.0), std::make_pair(vec(1, 2, 3), kInf),
                          std::make_pair(vec(-kInf, 0, 0), 0.5), std::make_pair(vec(1, 2, 3), kNaN)}) {
    Scripted algo{{vec(1, -1, 2), bad.first}, {0.3, bad.second}};
    optim::Adam<double> adam(3, {0.1});
    NoTasks tasks;
    metalearn::MetaTrainer trainer(algo, adam, tasks, TrainerOptions{1, NonFinitePolicy::throw_error, {}});
    Vector<double> theta = vec(0.5, 0.25, -1);
    trainer.run(theta, 1);  // one good step
    const Vector<double> theta1 = theta, m1 = adam.first_moment(), v1 = adam.second_moment();
    REQUIRE(theta1 != vec(0.5, 0.25, -1));
    CHECK_THROWS_AS(trainer.run(theta, 1), metalearn::numerical_error);
    algo.calls = 1;
    CHECK_THROWS_WITH(trainer.run(theta, 1), mlt::contains(std::isfinite(bad.second) ? "non-finite meta-gradient"
                                                                                      : "non-finite meta-loss"));
    CHECK(theta == theta1);
    CHECK(adam.first_moment() == m1);
    CHECK(adam.second_moment() == v1);
    CHECK(adam.steps() == 1);
    CHECK(trainer.iteration() == 1);
    CHECK(trainer.skipped() == 0);
  }
}

TEST_CASE("trainer: policy skip skips the update, reports it in Progress and counts it", "[trainer][non-finite]") {
  SECTION("Adam") {
    Scripted algo{{vec(1, -1, 2), vec(kNaN, 0, 0), vec(0.5, 0.5, 0.5), vec(0, kInf, 0)}, {0.3, 0.2, 0.1, 0.4}};
    optim::Adam<double> adam(3, {0.1});
    NoTasks tasks;
    metalearn::MetaTrainer trainer(algo, adam, tasks, TrainerOptions{1, NonFinitePolicy::skip, {}});
    Vector<double> theta = vec(0.5, 0.25, -1);
    std::vector<Progress> seen;
    std::vector<Vector<double>> thetas, moments;
    trainer.run(theta, 4, [&](const Progress& p) {
      seen.push_back(p);
      thetas.push_back(theta);
      moments.push_back(adam.second_moment());
    });
    REQUIRE(seen.size() == 4);
    CHECK_FALSE(seen[0].skipped);
    CHECK(seen[1].skipped);
    CHECK_FALSE(seen[2].skipped);
    CHECK(seen[3].skipped);
    CHECK(seen[1].skipped_total == 1);
    CHECK(seen[3].skipped_total == 2);
    CHECK(seen[3].iteration == 4);
    CHECK(thetas[1] == thetas[0]);    // the skipped update left θ ...
    CHECK(moments[1] == moments[0]);  // ... and Adam's state as they were
    CHECK(thetas[2] != thetas[1]);
    CHECK(thetas[3] == thetas[2]);
    CHECK(adam.steps() == 2);
    CHECK(trainer.skipped() == 2);
    CHECK(trainer.iteration() == 4);
    // the skipped gradients never reached Adam: the same good steps alone give the same θ
    optim::Adam<double> reference(3, {0.1});
    Vector<double> expected = vec(0.5, 0.25, -1);
    reference.step(expected, vec(1, -1, 2));
    reference.step(expected, vec(0.5, 0.5, 0.5));
    CHECK(theta == expected);
    CHECK(adam.first_moment() == reference.first_moment());
  }
  SECTION("SGD with momentum: the velocity is untouched by a skip") {
    Scripted algo{{vec(1, 2, 3), vec(kNaN, kNaN, kNaN)}, {1.0, 1.0}};
    optim::Sgd<double> sgd(3, {0.1, 0.9});
    NoTasks tasks;
    metalearn::MetaTrainer trainer(algo, sgd, tasks, TrainerOptions{1, NonFinitePolicy::skip, {}});
    Vector<double> theta = Vector<double>::Zero(3);
    trainer.run(theta, 1);
    const Vector<double> velocity = sgd.velocity(), theta1 = theta;
    trainer.run(theta, 1);
    CHECK(sgd.velocity() == velocity);
    CHECK(theta == theta1);
    CHECK(sgd.steps() == 1);
  }
}

TEST_CASE("trainer: policy skip with real MAML on tasks whose loss overflows", "[trainer][non-finite]") {
  // Amplitudes near float's maximum: the squared errors overflow to infinity.
  const auto obj = nn::Objective(nn::Mlp<float>({1, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto [sampler, theta] = sine_setup(obj, 1e38, 3e38);
  const Vector<float> theta0 = theta;
  Maml maml(obj, MamlOptions{});
  optim::Adam<float> adam(theta.size());
  TrainerOptions to;
  to.meta_batch = 2;
  to.on_non_finite = NonFinitePolicy::skip;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  Index skipped = 0;
  trainer.run(theta, 3, [&](const Progress& p) { skipped += p.skipped ? 1 : 0; });
  CHECK(skipped == 3);
  CHECK(trainer.skipped() == 3);
  CHECK(theta == theta0);
  CHECK(adam.steps() == 0);
  CHECK(adam.first_moment().isZero(0));
  to.on_non_finite = NonFinitePolicy::throw_error;
  metalearn::MetaTrainer strict(maml, adam, sampler, to);
  CHECK_THROWS_AS(strict.run(theta, 1), metalearn::numerical_error);
  CHECK(theta == theta0);
}

TEST_CASE("trainer: a diverging inner loop is skipped under policy skip, named under throw", "[trainer][non-finite]") {
  // inner_lr 1e308 on support gradients of ~1e2: θ_1 = θ − α g overflows, and Maml throws
  // numerical_error from the inner loop instead of returning a meta-gradient.
  const auto obj = nn::Objective(nn::Mlp<double>({1, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto [sampler, theta] = sine_setup(obj, 100, 200);
  const Vector<double> theta0 = theta;
  for (int threads : {1, 3}) {
    MamlOptions mo;
    mo.inner_lr = 1e308;
    mo.threads = threads;
    Maml maml(obj, mo);
    optim::Adam<double> adam(theta.size());
    TrainerOptions to;
    to.meta_batch = 4;
    to.on_non_finite = NonFinitePolicy::skip;
    metalearn::MetaTrainer trainer(maml, adam, sampler, to);
    std::vector<Progress> seen;
    trainer.run(theta, 2, [&](const Progress& p) { seen.push_back(p); });
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].skipped);
    CHECK(seen[1].skipped_total == 2);
    CHECK(std::isnan(seen[1].meta_loss));
    CHECK(theta == theta0);
    CHECK(adam.steps() == 0);
    to.on_non_finite = NonFinitePolicy::throw_error;
    metalearn::MetaTrainer strict(maml, adam, sampler, to);
    try {
      strict.run(theta, 1);
      FAIL("no exception");
    } catch (const metalearn::numerical_error& e) {
      CHECK_THAT(std::string(e.what()), mlt::contains("metalearn: MetaTrainer: meta-iteration 1: Maml: task "));
      CHECK_THAT(std::string(e.what()), mlt::contains(": inner loop: inner step 1 made theta_1 non-finite"));
      CHECK_THAT(std::string(e.what()), mlt::contains("parameters and optimizer state left unchanged"));
    }
    CHECK(theta == theta0);
    CHECK(adam.steps() == 0);
  }
}

TEST_CASE("trainer: the outer clip (meta_clip) bounds the meta-gradient the optimizer sees", "[trainer][clip]") {
  auto step_with = [](metalearn::Clip clip, const Vector<double>& g) {
    Scripted algo{{g}, {1.0}};
    optim::Sgd<double> sgd(3, {1.0});  // θ ← θ − g: the update is the clipped gradient
    NoTasks tasks;
    metalearn::MetaTrainer trainer(algo, sgd, tasks, TrainerOptions{1, NonFinitePolicy::throw_error, clip});
    Vector<double> theta = Vector<double>::Zero(3);
    trainer.run(theta, 1);
    return Vector<double>(-theta);
  };
  const Vector<double> g = vec(30, -40, 0.5);
  CHECK(step_with({}, g) == g);
  CHECK(step_with({1.0, 0}, g) == vec(1, -1, 0.5));
  const Vector<double> by_norm = step_with({0, 5.0}, g);
  CHECK(by_norm.norm() == Catch::Approx(5.0));
  CHECK(mlt::max_error(by_norm, Vector<double>(g * (5.0 / g.norm()))) < 1e-15);
  const Vector<double> both = step_with({1.0, 1.0}, g);  // values first, then the norm
  CHECK(mlt::max_error(both, Vector<double>(vec(1, -1, 0.5) / 1.5)) < 1e-15);
  CHECK(step_with({0, 100.0}, g) == g);  // under the limit: unchanged

  // with MAML: every update of plain SGD (lr 1) is at most the clip norm
  const auto obj = nn::Objective(nn::Mlp<double>({1, 10, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  metalearn::tasks::SineTasks<double> sampler(4);
  Rng rng(4);
  Vector<double> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  Maml maml(obj, MamlOptions{});
  optim::Sgd<double> sgd(theta.size(), {1.0});
  TrainerOptions to;
  to.meta_batch = 3;
  to.meta_clip.norm = 0.05;
  metalearn::MetaTrainer trainer(maml, sgd, sampler, to);
  Vector<double> previous = theta;
  double largest = 0;
  trainer.run(theta, 10, [&](const Progress&) {
    largest = std::max(largest, (theta - previous).norm());
    previous = theta;
  });
  CHECK(largest <= 0.05 * (1 + 1e-12));
  CHECK(largest > 0.04);  // the sine meta-gradients are far larger than 0.05: the clip was active
}

TEST_CASE("trainer: meta-training with 3 threads, second order, is bit-identical to 1 thread", "[trainer][threads]") {
  auto train = [](int threads) {
    const auto obj = nn::Objective(nn::Mlp<double>({1, 20, 20, 1}, nn::Tanh{}), nn::MeanSquaredError{});
    Rng rng(8);
    Vector<double> theta(obj.parameter_count());
    obj.initialize(theta, rng);
    MamlOptions o;
    o.threads = threads;
    o.inner_steps = 2;
    o.order = Order::second;
    o.inner_clip.norm = 5;
    Maml maml(obj, o);
    optim::Adam<double> adam(theta.size());
    metalearn::tasks::SineTasks<double> sampler(8);
    TrainerOptions to;
    to.meta_batch = 7;  // not a multiple of the thread count
    metalearn::MetaTrainer trainer(maml, adam, sampler, to);
    trainer.run(theta, 15);
    return theta;
  };
  const Vector<double> one = train(1);
  CHECK(train(3) == one);
  CHECK(train(2) == one);
}

TEST_CASE("trainer: a task rejected on a worker thread propagates, the gradient unchanged", "[trainer][threads]") {
  using Obj = decltype(nn::Objective(nn::Mlp<double>({1, 4, 1}), nn::MeanSquaredError{}));
  const Obj obj(nn::Mlp<double>({1, 4, 1}), nn::MeanSquaredError{});
  MamlOptions o;
  o.threads = 3;
  Maml maml(obj, o);
  metalearn::tasks::SineTasks<double> sampler(2);
  std::vector<metalearn::Task<Obj::Batch>> tasks(6);
  for (auto& t : tasks) sampler.sample(t);
  tasks[4].query.targets(0, 1) = kNaN;  // task 4 runs on worker 1
  Rng rng(2);
  Vector<double> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  Vector<double> grad = Vector<double>::Constant(theta.size(), 7.0);
  for (int repeat = 0; repeat < 3; ++repeat) {  // the pool stays usable after an exception
    CHECK_THROWS_WITH(maml.meta_loss_and_gradient(theta, tasks, grad), mlt::contains("task 4"));
    CHECK(grad == Vector<double>::Constant(theta.size(), 7.0));
  }
  tasks[4].query.targets(0, 1) = 0;
  maml.meta_loss_and_gradient(theta, tasks, grad);
  CHECK(grad.allFinite());
}

TEST_CASE("Maml: drawing the tasks while the workers run gives the plain meta-gradient bit for bit", "[maml][threads]") {
  using Obj = decltype(nn::Objective(nn::Mlp<double>({1, 16, 16, 1}, nn::Relu{}), nn::MeanSquaredError{}));
  const Obj obj(nn::Mlp<double>({1, 16, 16, 1}, nn::Relu{}), nn::MeanSquaredError{});
  Rng rng(5);
  Vector<double> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  MamlOptions o;
  o.order = Order::second;
  o.inner_steps = 2;
  Maml plain(obj, o);
  std::vector<metalearn::Task<Obj::Batch>> reference(11);
  metalearn::tasks::SineTasks<double> reference_sampler(3);
  for (auto& t : reference) reference_sampler.sample(t);
  Vector<double> expected(theta.size());
  const double expected_loss = plain.meta_loss_and_gradient(theta, reference, expected);
  for (int threads : {1, 2, 3}) {
    INFO(threads << " threads");
    o.threads = threads;
    Maml maml(obj, o);
    metalearn::tasks::SineTasks<double> sampler(3);
    std::vector<metalearn::Task<Obj::Batch>> tasks(11);
    std::vector<Index> order;
    order.reserve(tasks.size());
    for (int repeat = 0; repeat < 3; ++repeat) {  // the same tasks each time: reset the sampler
      sampler = metalearn::tasks::SineTasks<double>(3);
      order.clear();
      Vector<double> grad(theta.size());
      const double loss = maml.meta_loss_and_gradient(theta, tasks, grad, [&](Index t) {
        order.push_back(t);  // on the calling thread only: no synchronisation needed
        sampler.sample(tasks[static_cast<std::size_t>(t)]);
      });
      CHECK(loss == expected_loss);
      CHECK(grad == expected);
      REQUIRE(order.size() == tasks.size());
      for (std::size_t t = 0; t < order.size(); ++t) CHECK(order[t] == static_cast<Index>(t));
    }
  }
}

TEST_CASE("Maml: a task drawn empty, or a fill that throws, stops the meta-step with the gradient unchanged",
          "[maml][threads][bad-input]") {
  using Obj = decltype(nn::Objective(nn::Mlp<double>({1, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{}));
  const Obj obj(nn::Mlp<double>({1, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  Rng rng(6);
  Vector<double> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  for (int threads : {1, 2, 3}) {
    INFO(threads << " threads");
    MamlOptions o;
    o.threads = threads;
    Maml maml(obj, o);
    metalearn::tasks::SineTasks<double> sampler(4);
    std::vector<metalearn::Task<Obj::Batch>> tasks(9);
    Vector<double> grad = Vector<double>::Constant(theta.size(), 3.0);
    auto fill_with_empty_task = [&](Index t) {
      auto& task = tasks[static_cast<std::size_t>(t)];
      sampler.sample(task);
      if (t == 6) task.query = {};
    };
    CHECK_THROWS_WITH(maml.meta_loss_and_gradient(theta, tasks, grad, fill_with_empty_task),
                      mlt::contains("task 6: the query set is empty"));
    CHECK(grad == Vector<double>::Constant(theta.size(), 3.0));
    auto failing_fill = [&](Index t) {
      if (t == 5) throw std::runtime_error("sampler failed at task 5");
      sampler.sample(tasks[static_cast<std::size_t>(t)]);
    };
    CHECK_THROWS_WITH(maml.meta_loss_and_gradient(theta, tasks, grad, failing_fill), mlt::contains("task 5"));
    CHECK(grad == Vector<double>::Constant(theta.size(), 3.0));
    // the pool is usable afterwards
    maml.meta_loss_and_gradient(theta, tasks, grad, [&](Index t) { sampler.sample(tasks[static_cast<std::size_t>(t)]); });
    CHECK(grad.allFinite());
  }
}
