// After the first call, a meta-step (meta_loss_and_gradient and the optimizer update), adapt
// and a whole trainer iteration do not touch the heap, on one thread and on several; nor does
// a control step of online adaptation (window push and write, OnlineAdapter::adapt, predict).
#include <metalearn/data/transition_window.hpp>
#include <metalearn/meta/anil.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/maml_plus_plus.hpp>
#include <metalearn/meta/meta_sgd.hpp>
#include <metalearn/meta/online.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/sine.hpp>

#include <allocation_counter.hpp>
#include <catch.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {
using PaperNet = nn::Mlp<float, nn::Dense<1, 40, nn::Relu>, nn::Dense<40, 40, nn::Relu>, nn::Dense<40, 1>>;

template <class Obj>
void expect_no_allocation(const Obj& obj, MamlOptions o) {
  using S = typename Obj::Scalar;
  INFO(obj.describe() << ", order " << static_cast<int>(o.order) << ", " << o.inner_steps << " steps, " << o.threads
                      << " threads");
  Rng rng(1);
  Vector<S> theta = mlt::random_theta(obj, rng);
  Maml maml(obj, o);
  metalearn::optim::Adam<S> adam(theta.size());
  metalearn::tasks::SineTasks<S> sampler(3);
  std::vector<typename metalearn::tasks::SineTasks<S>::Task> tasks(25);
  for (auto& t : tasks) sampler.sample(t);
  Vector<S> grad(theta.size()), fast(theta.size());
  maml.meta_loss_and_gradient(theta, tasks, grad);  // warm-up: workspaces grow here
  maml.adapt(theta, tasks[0].support, fast, 10);
  const std::size_t bytes = maml.bytes();
  metalearn::TrainerOptions to;
  to.meta_batch = 25;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  trainer.run(theta, 1);

  S sink = 0;
  mlt::NoAllocationRegion region;
  for (int rep = 0; rep < 10; ++rep) {
    sink += maml.meta_loss_and_gradient(theta, tasks, grad);
    adam.step(theta, grad);
    maml.adapt(theta, tasks[static_cast<std::size_t>(rep)].support, fast, 5);
  }
  trainer.run(theta, 5);
  CHECK(region.allocations() == 0);
  CHECK(maml.bytes() == bytes);
  CHECK(std::isfinite(static_cast<double>(sink)));
}

// The same for any algorithm of the family (θ followed by its learned rates): meta-steps, adapt,
// evaluate and trainer iterations (which call set_iteration) after a warm-up.
template <class Algorithm>
void expect_no_allocation_in(Algorithm& algorithm) {
  using S = typename Algorithm::Scalar;
  INFO(algorithm.describe() << ", threads " << algorithm.options().threads);
  Rng rng(1);
  Vector<S> meta(algorithm.parameter_count());
  algorithm.initialize(meta, rng);
  metalearn::optim::Adam<S> adam(meta.size());
  metalearn::tasks::SineTasks<S> sampler(3);
  std::vector<typename metalearn::tasks::SineTasks<S>::Task> tasks(25);
  for (auto& t : tasks) sampler.sample(t);
  Vector<S> grad(meta.size()), fast(algorithm.model().parameter_count());
  metalearn::Matrix<S> losses;
  const std::vector<int> steps{0, 1, 5};
  metalearn::TrainerOptions to;
  to.meta_batch = 25;
  metalearn::MetaTrainer trainer(algorithm, adam, sampler, to);
  trainer.run(meta, 6);  // warm-up: every order and weighting the annealing passes through
  algorithm.meta_loss_and_gradient(meta, tasks, grad);
  algorithm.adapt(meta, tasks[0].support, fast, 10);
  algorithm.evaluate(meta, tasks, steps, losses);
  const std::size_t bytes = algorithm.bytes();

  S sink = 0;
  mlt::NoAllocationRegion region;
  for (int rep = 0; rep < 5; ++rep) {
    sink += algorithm.meta_loss_and_gradient(meta, tasks, grad);
    adam.step(meta, grad);
    algorithm.adapt(meta, tasks[static_cast<std::size_t>(rep)].support, fast, 5);
  }
  algorithm.evaluate(meta, tasks, steps, losses);
  trainer.run(meta, 5);
  CHECK(region.allocations() == 0);
  CHECK(algorithm.bytes() == bytes);
  CHECK(std::isfinite(static_cast<double>(sink)));
}
}  // namespace

TEST_CASE("allocation: none per meta-step of Meta-SGD, MAML++ and ANIL after the first, 1 and 2 threads",
          "[family][allocation][threads]") {
  const auto obj = nn::Objective(PaperNet(), nn::MeanSquaredError{});
  for (int threads : {1, 2}) {
    metalearn::MetaSgdOptions so;
    so.inner_steps = 2;
    so.inner_clip = {1.0, 5.0};
    so.threads = threads;
    metalearn::MetaSgd sgd(obj, so);
    expect_no_allocation_in(sgd);

    metalearn::MamlPlusPlusOptions po;
    po.inner_steps = 3;
    po.initial_lr = 0.01;
    po.first_order_iterations = 2;  // first order, then second, inside the warm-up
    po.multi_step_iterations = 4;   // weighted steps, then the final one alone, inside the warm-up
    po.threads = threads;
    metalearn::MamlPlusPlus pp(obj, po);
    expect_no_allocation_in(pp);

    metalearn::AnilOptions ao;
    ao.inner_steps = 3;
    ao.inner_clip = {0, 1.0};
    ao.threads = threads;
    metalearn::Anil anil(obj, ao);
    expect_no_allocation_in(anil);
  }
}

TEST_CASE("allocation: none per meta-step of Reptile, iMAML and CAVIA after the first, 1 and 2 threads",
          "[reptile][imaml][cavia][allocation][threads]") {
  const auto obj = nn::Objective(PaperNet(), nn::MeanSquaredError{});
  auto check = [](auto& algorithm) {
    using S = float;
    INFO(algorithm.describe());
    Rng rng(1);
    Vector<S> theta(algorithm.parameter_count()), grad(algorithm.parameter_count()),
        fast(algorithm.model().parameter_count());
    algorithm.initialize(theta, rng);
    metalearn::optim::Adam<S> adam(theta.size());
    metalearn::tasks::SineTasks<S> sampler(3);
    std::vector<metalearn::tasks::SineTasks<S>::Task> tasks(25);
    for (auto& t : tasks) sampler.sample(t);
    metalearn::TrainerOptions to;
    to.meta_batch = 25;
    metalearn::MetaTrainer trainer(algorithm, adam, sampler, to);
    trainer.run(theta, 2);
    algorithm.meta_loss_and_gradient(theta, tasks, grad);
    algorithm.adapt(theta, tasks[0].support, fast);
    const std::size_t bytes = algorithm.bytes();
    S sink = 0;
    mlt::NoAllocationRegion region;
    for (int rep = 0; rep < 5; ++rep) {
      sink += algorithm.meta_loss_and_gradient(theta, tasks, grad);
      adam.step(theta, grad);
      algorithm.adapt(theta, tasks[static_cast<std::size_t>(rep)].support, fast);
    }
    trainer.run(theta, 3);
    CHECK(region.allocations() == 0);
    CHECK(algorithm.bytes() == bytes);
    CHECK(std::isfinite(static_cast<double>(sink)));
  };
  for (int threads : {1, 2}) {
    metalearn::ReptileOptions ro;
    ro.inner_batch = 4;
    ro.inner_optimizer = metalearn::InnerOptimizer::adam;
    ro.threads = threads;
    metalearn::Reptile reptile(obj, ro);
    check(reptile);
    metalearn::ImamlOptions io;
    io.inner_lr = 0.001;
    io.threads = threads;
    metalearn::Imaml imaml(obj, io);
    check(imaml);
    metalearn::CaviaOptions co;
    co.threads = threads;
    metalearn::Cavia cavia(nn::Context(obj, 5), co);
    check(cavia);
    co.context_start = metalearn::ContextStart::support;  // φ₀ = W_s s + b_s
    co.summary_size = 2;
    metalearn::Cavia amortised(nn::Context(obj, 5), co);
    check(amortised);
  }
}

TEST_CASE("allocation: none per meta-step on the paper network after the first, any order", "[maml][allocation]") {
  for (Order order : {Order::first, Order::second, Order::second_finite_difference}) {
    for (int steps : {1, 5}) {
      MamlOptions o;
      o.order = order;
      o.inner_steps = steps;
      expect_no_allocation(nn::Objective(PaperNet(), nn::MeanSquaredError{}), o);
    }
  }
}

TEST_CASE("allocation: none per meta-step with clipping, step weights and 2 or 3 threads", "[maml][allocation][threads]") {
  MamlOptions o;
  o.inner_steps = 3;
  o.inner_clip = {1.0, 5.0};
  o.step_weights = {0.2, 0.3, 0.5};
  for (int threads : {1, 2, 3}) {
    o.threads = threads;
    expect_no_allocation(nn::Objective(PaperNet(), nn::MeanSquaredError{}), o);
  }
}

TEST_CASE("allocation: none per meta-step at width 256 (blocked products)", "[maml][allocation]") {
  MamlOptions o;
  o.threads = 2;
  expect_no_allocation(nn::Objective(nn::Mlp<float>({1, 256, 256, 1}, nn::Relu{}), nn::MeanSquaredError{}), o);
}

TEST_CASE("allocation: none per control step of online adaptation after the first", "[online][allocation]") {
  using S = float;
  const auto obj = nn::Objective(nn::Mlp<float>({4, 32, 32, 2}, nn::Relu{}), nn::MeanSquaredError{});
  MamlOptions o;
  o.inner_steps = 1;
  o.inner_lr = 0.01;
  Maml maml(obj, o);
  Rng rng(5);
  const Vector<S> meta = mlt::random_theta(obj, rng);
  metalearn::data::TransitionWindow<S> window(4, 2, 64);
  const metalearn::Matrix<S> inputs = mlt::random_matrix<S>(4, 300, rng), targets = mlt::random_matrix<S>(2, 300, rng);
  metalearn::OnlineAdapter adapter(maml, meta, 32, 1);
  metalearn::RegressionBatch<S> kept;
  Vector<S> fast(meta.size());
  const metalearn::Matrix<S> plan = mlt::random_matrix<S>(4, 500, rng);  // candidate (state, action) pairs
  metalearn::Matrix<S> predicted(2, 500);
  std::decay_t<decltype(obj)>::Workspace ws;
  // warm-up: the window fills past its capacity, the batch, the adapter and the workspace grow
  for (Index k = 0; k < 70; ++k) window.push(inputs.col(k), targets.col(k));
  window.write(32, kept);
  adapter.adapt(window, fast);
  obj.predict(fast, plan, predicted, ws);

  S sink = 0;
  mlt::NoAllocationRegion region;
  for (Index k = 70; k < 300; ++k) {
    window.push(inputs.col(k), targets.col(k));
    window.write(32, kept);
    adapter.adapt(window, fast);
    obj.predict(fast, plan, predicted, ws);
    sink += predicted(1, k % 500) + kept.targets(0, 31);
  }
  CHECK(region.allocations() == 0);
  CHECK(std::isfinite(static_cast<double>(sink)));
  CHECK(window.pushed() == 300);
  CHECK(kept.targets.col(31) == targets.col(299));
}
