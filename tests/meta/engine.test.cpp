// The algorithm contract (meta/algorithm.hpp) and what the meta-batch engine gives an
// algorithm: parallel evaluation, thread-safe adaptation, descriptions that checkpoints check,
// parameter groups, and the generic meta-gradient checker.
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/algorithm.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <custom_models.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Matrix;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {
using Obj = nn::Objective<nn::Mlp<double>, nn::MeanSquaredError>;
Obj objective() { return Obj(nn::Mlp<double>({1, 12, 12, 1}, nn::Tanh{}), nn::MeanSquaredError{}); }
using Sine = metalearn::tasks::SineTasks<double>;

Vector<double> initial_theta(std::uint64_t seed) {
  Rng rng(seed);
  Vector<double> theta(objective().parameter_count());
  objective().initialize(theta, rng);
  return theta;
}

std::vector<Sine::Task> draw(Index count, std::uint64_t seed) {
  Sine sampler(seed);
  std::vector<Sine::Task> tasks(static_cast<std::size_t>(count));
  for (auto& t : tasks) sampler.sample(t);
  return tasks;
}
}  // namespace

static_assert(metalearn::is_algorithm_v<Maml<Obj>>, "Maml must satisfy the algorithm contract");
static_assert(metalearn::is_algorithm_v<Maml<custom::TinyTanhNet>>, "for any model");
static_assert(metalearn::check_algorithm<Maml<Obj>>());
static_assert(!metalearn::is_algorithm_v<int>);

TEST_CASE("algorithm contract: describe() names every option that changes results, not the thread count",
          "[maml][algorithm]") {
  MamlOptions a;
  a.inner_lr = 0.001;
  MamlOptions b = a;
  b.threads = 3;
  MamlOptions c = a;
  c.inner_lr = 0.0010000000000000002;  // the next double: the description must differ
  const Maml<Obj> ma(objective(), a), mb(objective(), b), mc(objective(), c);
  CHECK(ma.describe() == mb.describe());
  CHECK(ma.describe() != mc.describe());
  CHECK_THAT(ma.describe(), mlt::contains("Maml(order 2, inner_steps 1, inner_lr 0.001,"));
  CHECK_THAT(ma.describe(), mlt::contains("on 1-12(tanh)-12(tanh)-1(identity) mse"));
  MamlOptions d = a;
  d.order = Order::first;
  d.inner_steps = 3;
  d.step_weights = {0.25, 0.25, 0.5};
  CHECK_THAT(Maml<Obj>(objective(), d).describe(), mlt::contains("order 1, inner_steps 3"));
  CHECK_THAT(Maml<Obj>(objective(), d).describe(), mlt::contains("step_weights [0.25 0.25 0.5]"));
  // a model without describe(): its parameter count
  CHECK_THAT(Maml<custom::TinyTanhNet>(custom::TinyTanhNet(4), [] {
               MamlOptions o;
               o.order = Order::first;
               return o;
             }()).describe(),
             mlt::contains("on model with 13 parameters"));
}

TEST_CASE("algorithm contract: a checkpoint of one algorithm's options refuses another's, naming both",
          "[maml][algorithm][io]") {
  mlt::TempDir dir;
  const std::string path = dir.file("maml.ckpt");
  MamlOptions o;
  Maml<Obj> maml(objective(), o);
  Rng rng(3);
  Vector<double> theta(maml.parameter_count());
  maml.initialize(theta, rng);
  metalearn::optim::Adam<double> adam(theta.size());
  Sine sampler(1);
  metalearn::MetaTrainer trainer(maml, adam, sampler, {5});
  trainer.run(theta, 2);
  metalearn::io::save_checkpoint(path, maml.describe(), theta, adam, trainer, sampler.rng());
  MamlOptions other = o;
  other.inner_steps = 2;
  Maml<Obj> maml2(objective(), other);
  Vector<double> loaded = Vector<double>::Zero(theta.size());
  try {
    metalearn::io::load_checkpoint(path, maml2.describe(), loaded, adam, trainer, sampler.rng());
    FAIL("no checkpoint_error");
  } catch (const metalearn::checkpoint_error& e) {
    CHECK_THAT(std::string(e.what()), mlt::contains(maml.describe()));
    CHECK_THAT(std::string(e.what()), mlt::contains(maml2.describe()));
  }
  CHECK(loaded.isZero());
  metalearn::io::load_checkpoint(path, maml.describe(), loaded, adam, trainer, sampler.rng());
  CHECK(loaded == theta);
}

TEST_CASE("evaluate: query losses after 0..k steps, in parallel, equal to adapting task by task, any thread count",
          "[maml][evaluate][threads]") {
  const auto tasks = draw(13, 4);
  const Vector<double> theta = initial_theta(5);
  const std::vector<int> steps{0, 1, 3, 5};
  Matrix<double> reference(13, 4);
  {
    MamlOptions o;
    o.inner_lr = 0.01;
    Maml<Obj> maml(objective(), o);
    Obj::Workspace ws;
    for (Index t = 0; t < 13; ++t)
      for (std::size_t j = 0; j < steps.size(); ++j) {
        const Vector<double> fast = maml.adapt(theta, tasks[static_cast<std::size_t>(t)].support, steps[j]);
        reference(t, static_cast<Index>(j)) = maml.model().loss(fast, tasks[static_cast<std::size_t>(t)].query, ws);
      }
  }
  for (int threads : {1, 2, 3}) {
    CAPTURE(threads);
    MamlOptions o;
    o.inner_lr = 0.01;
    o.threads = threads;
    Maml<Obj> maml(objective(), o);
    Matrix<double> losses;
    maml.evaluate(theta, tasks, steps, losses);
    CHECK(losses == reference);  // bit for bit
  }
  {  // scored on their own support sets, small steps of gradient descent lower every task's loss
    auto own = tasks;
    for (auto& t : own) t.query = t.support;
    MamlOptions o;
    o.inner_lr = 0.01;
    o.threads = 2;
    Maml<Obj> maml(objective(), o);
    Matrix<double> losses;
    maml.evaluate(theta, own, steps, losses);
    for (Index t = 0; t < 13; ++t)
      for (Index j = 1; j < 4; ++j) CHECK(losses(t, j) < losses(t, j - 1));
  }
  Maml<Obj> maml(objective());
  Matrix<double> losses;
  CHECK_THROWS_WITH(maml.evaluate(theta, tasks, {}, losses), mlt::contains("the list of step counts is empty"));
  CHECK_THROWS_WITH(maml.evaluate(theta, tasks, {1, -2}, losses), mlt::contains("step counts must be >= 0, got -2"));
  // a batch the model rejects: named by its task, and `losses` keeps what it held
  maml.evaluate(theta, tasks, steps, losses);
  const Matrix<double> before = losses;
  auto bad = tasks;
  bad[7].query.inputs = Matrix<double>::Zero(2, bad[7].query.size());  // the model takes 1 input row
  CHECK_THROWS_WITH(maml.evaluate(theta, bad, {0, 1}, losses), mlt::contains("Maml::evaluate: task 7: "));
  CHECK(losses == before);
}

TEST_CASE("adapt: const with a workspace per thread, two threads at once give the sequential results",
          "[maml][evaluate][threads]") {
  const auto tasks = draw(8, 6);
  const Vector<double> theta = initial_theta(7);
  MamlOptions o;
  o.inner_lr = 0.01;
  o.inner_steps = 4;
  const Maml<Obj> maml(objective(), o);
  std::vector<Vector<double>> sequential(8, Vector<double>(theta.size())), parallel = sequential;
  Maml<Obj>::Workspace ws;
  for (std::size_t t = 0; t < 8; ++t) maml.adapt(theta, tasks[t].support, sequential[t], ws);
  std::thread other([&] {
    Maml<Obj>::Workspace mine;
    for (std::size_t t = 0; t < 8; t += 2) maml.adapt(theta, tasks[t].support, parallel[t], mine);
  });
  Maml<Obj>::Workspace mine;
  for (std::size_t t = 1; t < 8; t += 2) maml.adapt(theta, tasks[t].support, parallel[t], mine);
  other.join();
  for (std::size_t t = 0; t < 8; ++t) CHECK(parallel[t] == sequential[t]);
}

TEST_CASE("parameter groups: each layer's W and b tile theta, bad groups are refused", "[model][groups]") {
  const Obj obj = objective();
  const auto groups = metalearn::parameter_groups(obj);
  REQUIRE(groups.size() == 6);
  CHECK(groups[0].name == "layer 1 W");
  CHECK(groups[0].size == 12);
  CHECK(groups[1].name == "layer 1 b");
  CHECK(groups[1].offset == 12);
  CHECK(groups[5].offset + groups[5].size == obj.parameter_count());
  const auto one = metalearn::parameter_groups(custom::TinyTanhNet(3));  // no parameter_groups(): one group
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "theta");
  CHECK(one[0].size == 10);

  struct Grouped : custom::TinyTanhNet {  // 3 hidden units: 10 parameters
    std::vector<metalearn::ParameterGroup> groups;
    std::vector<metalearn::ParameterGroup> parameter_groups() const { return groups; }
  };
  Grouped g{custom::TinyTanhNet(3), {{"a", 0, 4}, {"b", 3, 7}}};
  CHECK_THROWS_WITH(metalearn::parameter_groups(g), mlt::contains("starts at 3, expected 4 (it overlaps"));
  g.groups = {{"a", 0, 4}, {"b", 5, 5}};
  CHECK_THROWS_WITH(metalearn::parameter_groups(g), mlt::contains("(a gap before it)"));
  g.groups = {{"a", 0, 4}, {"b", 4, 9}};
  CHECK_THROWS_WITH(metalearn::parameter_groups(g), mlt::contains("the groups end at 13, θ has 10"));
  g.groups = {{"a", 0, 0}, {"b", 0, 10}};
  CHECK_THROWS_WITH(metalearn::parameter_groups(g), mlt::contains("('a') is empty"));
}

TEST_CASE("check::meta_gradient takes any algorithm with the caller's naive meta-loss", "[maml][check]") {
  const auto tasks = draw(3, 8);
  const Vector<double> theta = initial_theta(9);
  MamlOptions o;
  o.inner_lr = 0.05;
  o.inner_steps = 2;
  Maml<Obj> maml(objective(), o);
  const auto good = metalearn::check::meta_gradient(maml, theta, tasks, [&](const Vector<double>& m) {
    return metalearn::check::naive_meta_loss(maml.model(), o, m, tasks);
  });
  CHECK(good);
  MamlOptions wrong = o;  // a route with another inner rate: the checker must catch the difference
  wrong.inner_lr = 0.06;
  const auto bad = metalearn::check::meta_gradient(maml, theta, tasks, [&](const Vector<double>& m) {
    return metalearn::check::naive_meta_loss(maml.model(), wrong, m, tasks);
  });
  CHECK_FALSE(bad);
  // the Maml overload with options, an lvalue and a temporary (not taken for a meta-loss)
  metalearn::check::Options opts;
  opts.tolerance = 1e-5;
  CHECK(metalearn::check::meta_gradient(maml, theta, tasks, opts));
  CHECK(metalearn::check::meta_gradient(maml, theta, tasks, metalearn::check::Options{}));
}
