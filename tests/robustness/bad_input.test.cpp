// Bad input everywhere in the public API. Every case asserts the exception type, that the
// message names the problem, and that the caller's state is unchanged: θ, gradient and output
// buffers, optimizer moments and counters, the sampler's engine, files on disk.
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/parallel/thread_pool.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <limits>
#include <string>
#include <vector>

namespace io = metalearn::io;
namespace nn = metalearn::nn;
namespace optim = metalearn::optim;
using metalearn::Index;
using metalearn::Labels;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Matrix;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// The cached product is the library's (model.hpp, CachedPassKey); this file tests it.
constexpr metalearn::CachedPassKey kPassKey = metalearn::detail::KeyIssuer::cached_pass();
constexpr metalearn::FiniteThetaKey kFiniteKey = metalearn::detail::KeyIssuer::finite_theta();

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Runs f, which must throw E with a message containing `what`.
template <class E, class F>
void expect_throw(F&& f, const std::string& what) {
  try {
    f();
  } catch (const E& e) {
    CHECK_THAT(std::string(e.what()), mlt::contains(what));
    const std::string msg = e.what();
    CHECK(msg.rfind("metalearn: ", 0) == 0);                         // the prefix, once:
    CHECK(msg.find("metalearn: ", 1) == std::string::npos);          // context is not re-prefixed
    return;
  }
  FAIL("no exception was thrown; expected one mentioning '" << what << "'");
}
template <class F>
void expect_invalid(F&& f, const std::string& what) {
  expect_throw<metalearn::invalid_argument>(std::forward<F>(f), what);
}
template <class F>
void expect_checkpoint_error(F&& f, const std::string& what) {
  expect_throw<metalearn::checkpoint_error>(std::forward<F>(f), what);
}

using Net = nn::Mlp<double>;
using Regression = nn::Objective<Net, nn::MeanSquaredError>;
using Classifier = nn::Objective<Net, nn::SoftmaxCrossEntropy>;
using Binary = nn::Objective<Net, nn::BinaryCrossEntropyWithLogits>;

// A regression objective with θ, a batch and sentinel-filled output buffers.
struct Fixture {
  Regression obj{Net({2, 5, 3}, nn::Tanh{}), nn::MeanSquaredError{}};
  Rng rng{7};
  Vector<double> theta = mlt::random_theta(obj, rng);
  metalearn::RegressionBatch<double> batch = mlt::regression_batch<double>(2, 3, 4, rng);
  Vector<double> grad = Vector<double>::Constant(obj.parameter_count(), 42.0);
  Vector<double> hv = Vector<double>::Constant(obj.parameter_count(), 43.0);
  Vector<double> v = mlt::random_vector<double>(obj.parameter_count(), rng);
  Regression::Workspace ws;
  const Vector<double> theta0 = theta;

  void unchanged() const {
    CHECK(theta == theta0);
    CHECK((grad.array() == 42.0).all());
    CHECK((hv.array() == 43.0).all());
  }
};

// MAML over a small regression objective, with tasks.
struct MamlFixture {
  Regression obj{Net({1, 6, 1}, nn::Tanh{}), nn::MeanSquaredError{}};
  Maml<Regression> maml{obj, MamlOptions{}};
  Rng rng{3};
  Vector<double> theta = mlt::random_theta(obj, rng);
  std::vector<metalearn::Task<Regression::Batch>> tasks;
  Vector<double> grad = Vector<double>::Constant(obj.parameter_count(), 42.0);
  const Vector<double> theta0 = theta;
  MamlFixture() {
    metalearn::tasks::SineTasks<double> sampler(3);
    tasks.resize(3);
    for (auto& t : tasks) sampler.sample(t);
  }
  void unchanged() const {
    CHECK(theta == theta0);
    CHECK((grad.array() == 42.0).all());
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// nn::Objective: shapes, empty batches, labels, non-finite values, aliasing

TEST_CASE("bad input: theta of the wrong length", "[bad-input][nn]") {
  Fixture f;
  Vector<double> short_theta = f.theta.head(f.theta.size() - 1);
  expect_invalid([&] { f.obj.loss_and_gradient(short_theta, f.batch, f.grad, f.ws); },
                 "theta has " + std::to_string(f.theta.size() - 1) + " entries, expected " + std::to_string(f.theta.size()));
  f.unchanged();
}

TEST_CASE("bad input: a non-finite entry of theta is refused by every pass, outputs untouched", "[bad-input][nn]") {
  for (double bad : {kNaN, kInf, -kInf}) {
    Fixture f;
    Vector<double> theta = f.theta;
    theta[theta.size() / 2] = bad;
    const std::string what = "theta must be finite, but entry (" + std::to_string(theta.size() / 2) + ", 0)";
    expect_invalid([&] { f.obj.loss_and_gradient(theta, f.batch, f.grad, f.ws); }, what);
    expect_invalid([&] { f.obj.loss(theta, f.batch, f.ws); }, what);
    expect_invalid([&] { f.obj.hessian_vector_product(theta, f.batch, f.v, f.hv, f.ws); }, what);
    Matrix<double> out = Matrix<double>::Constant(f.obj.output_size(), f.batch.size(), 42.0);
    expect_invalid([&] { f.obj.predict(theta, f.batch.inputs, out, f.ws); }, what);
    CHECK((out.array() == 42.0).all());
    f.unchanged();
    // the keyed pass of the library's algorithms skips θ's check alone, not the inputs'
    auto nan_inputs = f.batch;
    nan_inputs.inputs(0, 0) = kNaN;
    expect_invalid([&] { f.obj.loss_and_gradient(f.theta, nan_inputs, f.grad, f.ws, kFiniteKey); },
                   "inputs must be finite, but entry (0, 0)");
    f.unchanged();
    // and by MAML, once per meta-step, before any task
    MamlOptions o;
    Maml<Regression> maml(f.obj, o);
    std::vector<Maml<Regression>::Task> tasks{{f.batch, f.batch}};
    Vector<double> grad = Vector<double>::Constant(theta.size(), 7.0);
    expect_invalid([&] { maml.meta_loss_and_gradient(theta, tasks, grad); }, "Maml::meta_loss_and_gradient: " + what);
    CHECK((grad.array() == 7.0).all());
  }
}

TEST_CASE("bad input: the keyed gradient pass equals the checked one on a finite theta", "[bad-input][nn]") {
  Fixture f;
  Vector<double> g1(f.theta.size()), g2(f.theta.size());
  const double l1 = f.obj.loss_and_gradient(f.theta, f.batch, g1, f.ws);
  const double l2 = f.obj.loss_and_gradient(f.theta, f.batch, g2, f.ws, kFiniteKey);
  CHECK(l1 == l2);
  CHECK(g1 == g2);
}

TEST_CASE("bad input: an inner step that overflows theta is a numerical error naming the task and step",
          "[bad-input][maml]") {
  const std::string what = "inner loop: inner step 1 made theta_1 non-finite (entry ";
  for (int steps : {1, 2}) {
    for (Order order : {Order::first, Order::second}) {
      MamlFixture f;
      for (auto& t : f.tasks) t.support.targets *= 1e3;  // support gradients of ~1e3
      MamlOptions o;
      o.inner_lr = 1e308;  // finite, but θ − α g overflows
      o.inner_steps = steps;
      o.order = order;
      Maml<Regression> maml(f.obj, o);
      expect_throw<metalearn::numerical_error>([&] { maml.meta_loss_and_gradient(f.theta, f.tasks, f.grad); },
                                               "Maml: task 0: " + what);
      f.unchanged();
      expect_throw<metalearn::numerical_error>([&] { maml.meta_loss(f.theta, f.tasks); }, "Maml::meta_loss: task 0: " + what);
      metalearn::Matrix<double> losses = metalearn::Matrix<double>::Constant(3, 2, 7.0);
      expect_throw<metalearn::numerical_error>([&] { maml.evaluate(f.theta, f.tasks, {0, 1}, losses); },
                                               "Maml::evaluate: task 0: " + what);
      CHECK((losses.array() == 7.0).all());
      Vector<double> fast = f.theta;
      expect_throw<metalearn::numerical_error>([&] { maml.adapt(f.theta, f.tasks[0].support, fast); }, what);
      CHECK(fast == f.theta);
    }
  }
}

TEST_CASE("bad input: gradient buffer of the wrong length", "[bad-input][nn]") {
  Fixture f;
  Vector<double> g = Vector<double>::Constant(f.theta.size() + 3, 42.0);
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, g, f.ws); }, "grad has");
  CHECK((g.array() == 42.0).all());
  f.unchanged();
}

TEST_CASE("bad input: inputs with the wrong number of features", "[bad-input][nn]") {
  Fixture f;
  f.batch.inputs = Matrix<double>::Ones(3, 4);
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.grad, f.ws); }, "inputs has 3 rows (features), expected 2");
  f.unchanged();
}

TEST_CASE("bad input: an empty batch", "[bad-input][nn]") {
  Fixture f;
  f.batch.inputs.resize(2, 0);
  f.batch.targets.resize(3, 0);
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.grad, f.ws); }, "the batch is empty");
  expect_invalid([&] { f.obj.loss(f.theta, f.batch, f.ws); }, "the batch is empty");
  f.unchanged();
}

TEST_CASE("bad input: a NaN input", "[bad-input][nn]") {
  Fixture f;
  f.batch.inputs(1, 2) = kNaN;
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.grad, f.ws); }, "inputs must be finite, but entry (1, 2)");
  f.unchanged();
}

TEST_CASE("bad input: an infinite regression target", "[bad-input][nn]") {
  Fixture f;
  f.batch.targets(0, 3) = -kInf;
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.grad, f.ws); }, "targets must be finite");
  f.unchanged();
}

TEST_CASE("bad input: targets of the wrong shape", "[bad-input][nn]") {
  Fixture f;
  f.batch.targets = Matrix<double>::Zero(3, 5);
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.grad, f.ws); }, "targets are 3 x 5, expected 3 x 4");
  f.unchanged();
}

TEST_CASE("bad input: a class label out of range (too large and negative)", "[bad-input][nn]") {
  Classifier obj(Net({2, 4, 3}), nn::SoftmaxCrossEntropy{});
  Rng rng(1);
  auto batch = mlt::classification_batch<double>(2, 3, 5, rng);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  Vector<double> grad = Vector<double>::Constant(theta.size(), 42.0);
  Classifier::Workspace ws;
  batch.targets[2] = 3;
  expect_invalid([&] { obj.loss_and_gradient(theta, batch, grad, ws); }, "label 2 is 3, expected a class in [0, 2]");
  batch.targets[2] = -1;
  expect_invalid([&] { obj.loss(theta, batch, ws); }, "label 2 is -1");
  CHECK((grad.array() == 42.0).all());
}

TEST_CASE("bad input: one label too few", "[bad-input][nn]") {
  Classifier obj(Net({2, 4, 3}), nn::SoftmaxCrossEntropy{});
  Rng rng(1);
  auto batch = mlt::classification_batch<double>(2, 3, 5, rng);
  batch.targets = Labels::Zero(4);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  Vector<double> grad = Vector<double>::Constant(theta.size(), 42.0);
  Classifier::Workspace ws;
  expect_invalid([&] { obj.loss_and_gradient(theta, batch, grad, ws); }, "labels has 4 entries, expected 5");
  CHECK((grad.array() == 42.0).all());
}

TEST_CASE("bad input: a binary target outside [0, 1] or NaN", "[bad-input][nn]") {
  Binary obj(Net({2, 4, 1}), nn::BinaryCrossEntropyWithLogits{});
  Rng rng(1);
  auto batch = mlt::binary_batch<double>(2, 1, 5, rng);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  Vector<double> grad = Vector<double>::Constant(theta.size(), 42.0);
  Binary::Workspace ws;
  batch.targets(0, 1) = 1.5;
  expect_invalid([&] { obj.loss_and_gradient(theta, batch, grad, ws); }, "target (0, 1) is 1.5, expected a probability");
  batch.targets(0, 1) = kNaN;
  expect_invalid([&] { obj.loss_and_gradient(theta, batch, grad, ws); }, "expected a probability in [0, 1]");
  CHECK((grad.array() == 42.0).all());
}

TEST_CASE("bad input: the gradient aliasing theta", "[bad-input][nn]") {
  Fixture f;
  expect_invalid([&] { f.obj.loss_and_gradient(f.theta, f.batch, f.theta, f.ws); }, "grad must not be the same vector");
  f.unchanged();
}

TEST_CASE("bad input: Hessian-vector product with a direction of the wrong length", "[bad-input][nn]") {
  Fixture f;
  Vector<double> v(3);
  v.setOnes();
  expect_invalid([&] { f.obj.hessian_vector_product(f.theta, f.batch, v, f.hv, f.ws); }, "v has 3 entries");
  f.unchanged();
}

TEST_CASE("bad input: Hessian-vector product output aliasing the direction", "[bad-input][nn]") {
  Fixture f;
  Vector<double> v = f.hv;
  expect_invalid([&] { f.obj.hessian_vector_product(f.theta, f.batch, v, v, f.ws); }, "hv must not be the same vector");
  CHECK((v.array() == 43.0).all());
  f.unchanged();
}

TEST_CASE("bad input: cached Hessian-vector product without a gradient pass", "[bad-input][nn]") {
  Fixture f;
  expect_invalid([&] { f.obj.cached_hessian_vector_product(f.theta, f.batch, f.v, f.hv, f.ws, kPassKey); },
                 "holds no gradient pass");
  // a pass at another θ does not count
  Vector<double> other = f.theta;
  f.obj.loss_and_gradient(other, f.batch, f.grad, f.ws);
  f.grad.setConstant(42.0);
  expect_invalid([&] { f.obj.cached_hessian_vector_product(f.theta, f.batch, f.v, f.hv, f.ws, kPassKey); },
                 "holds no gradient pass");
  f.unchanged();
}

TEST_CASE("bad input: predict into outputs of the wrong shape, and NaN inputs", "[bad-input][nn]") {
  Fixture f;
  Matrix<double> out = Matrix<double>::Constant(2, 4, 44.0);
  expect_invalid([&] { f.obj.predict(f.theta, f.batch.inputs, out, f.ws); }, "outputs are 2 x 4, expected 3 x 4");
  Matrix<double> good = Matrix<double>::Constant(3, 4, 44.0);
  f.batch.inputs(0, 0) = kInf;
  expect_invalid([&] { f.obj.predict(f.theta, f.batch.inputs, good, f.ws); }, "inputs must be finite");
  CHECK((out.array() == 44.0).all());
  CHECK((good.array() == 44.0).all());
}

TEST_CASE("bad input: forward of the bare network with no examples", "[bad-input][nn]") {
  Fixture f;
  Matrix<double> none(2, 0);
  expect_invalid([&] { f.obj.network().forward(f.theta, none, f.ws); }, "the batch is empty (inputs have 0 columns)");
}

TEST_CASE("bad input: softmax cross-entropy on a single output", "[bad-input][nn]") {
  expect_invalid([] { Classifier(Net({2, 4, 1}), nn::SoftmaxCrossEntropy{}); }, "at least 2 outputs");
}

// ---------------------------------------------------------------------------------------------
// Networks, layers, initialisation

TEST_CASE("bad input: a network with fewer than two widths", "[bad-input][nn]") {
  expect_invalid([] { Net({3}); }, "needs at least 2 widths");
  expect_invalid([] { Net(std::vector<Index>{}); }, "needs at least 2 widths");
}

TEST_CASE("bad input: a zero or negative width", "[bad-input][nn]") {
  expect_invalid([] { Net({2, 0, 1}); }, "width 1 is 0, expected > 0");
  expect_invalid([] { Net({2, 4, -3}); }, "width 2 is -3");
}

TEST_CASE("bad input: activations not one per layer", "[bad-input][nn]") {
  expect_invalid([] { Net({2, 4, 1}, std::vector<nn::Activation>{nn::Relu{}}); }, "got 1 activations, expected 2");
}

TEST_CASE("bad input: a dense layer with zero or negative sizes", "[bad-input][nn]") {
  using D = nn::Dense<Eigen::Dynamic, Eigen::Dynamic, nn::Relu>;
  expect_invalid([] { D(0, 3); }, "sizes must be > 0, got 0 inputs and 3 outputs");
  expect_invalid([] { D(2, -1); }, "sizes must be > 0");
}

TEST_CASE("bad input: a LayerNorm with a non-positive or non-finite epsilon, or on one output", "[bad-input][nn]") {
  using D = nn::Dense<Eigen::Dynamic, Eigen::Dynamic, nn::Relu>;
  expect_invalid([] { D(2, 3, nn::Relu{}, nn::LayerNorm{0.0}); }, "nn::Dense: LayerNorm epsilon must be finite and > 0, got 0");
  expect_invalid([] { D(2, 3, nn::Relu{}, nn::LayerNorm{-1e-5}); }, "LayerNorm epsilon must be finite and > 0, got -1e-05");
  expect_invalid([] { D(2, 3, nn::Relu{}, nn::LayerNorm{kNaN}); }, "LayerNorm epsilon must be finite and > 0, got nan");
  expect_invalid([] { D(2, 1, nn::Relu{}, nn::LayerNorm{}); }, "a layer with LayerNorm needs at least 2 outputs, got 1");
  expect_invalid([] { nn::Dense<2, 1>(nn::Identity{}, nn::LayerNorm{}); }, "needs at least 2 outputs, got 1");
  expect_invalid([] { Net({2, 4, 1}, {nn::Relu{}, nn::Identity{}}, {std::nullopt, nn::LayerNorm{}}); },
                 "nn::Mlp: layer 1: a layer with LayerNorm needs at least 2 outputs, got 1");
  expect_invalid([] { Net({2, 4, 3, 1}, nn::Relu{}, nn::Identity{}, nn::LayerNorm{kInf}); },
                 "nn::Mlp: layer 0: LayerNorm epsilon must be finite and > 0, got inf");
  expect_invalid([] { Net({2, 4, 1}, {nn::Relu{}, nn::Identity{}}, {nn::LayerNorm{}}); },
                 "got 1 normalisation entries, expected 2 (one per layer, or none)");
}

TEST_CASE("bad input: run-time sizes that contradict a layer's fixed sizes", "[bad-input][nn]") {
  using D = nn::Dense<1, Eigen::Dynamic>;
  expect_invalid([] { D(2, 4); }, "inputs is 2, expected 1");
}

TEST_CASE("bad input: layers whose sizes do not chain", "[bad-input][nn]") {
  using D = nn::Dense<Eigen::Dynamic, Eigen::Dynamic>;
  using Chain = nn::Mlp<double, D, D>;
  expect_invalid([] { Chain(D(2, 3), D(4, 1)); }, "layer 1 has 4 inputs, expected 3");
}

TEST_CASE("bad input: initialize into theta of the wrong length", "[bad-input][nn]") {
  Fixture f;
  Vector<double> t = Vector<double>::Constant(f.theta.size() + 1, 5.0);
  const Rng before = f.rng;
  expect_invalid([&] { f.obj.initialize(t, f.rng); }, "theta has");
  CHECK((t.array() == 5.0).all());
  CHECK(f.rng == before);
}

TEST_CASE("bad input: an initialiser with a NaN, zero or negative standard deviation", "[bad-input][nn]") {
  expect_invalid([] { Regression(Net({1, 3, 1}), {}, nn::Normal{kNaN}); }, "Normal's stddev must be finite and > 0");
  expect_invalid([] { Regression(Net({1, 3, 1}), {}, nn::TruncatedNormal{-0.1}); }, "TruncatedNormal's stddev");
  // the network's own initialize checks too, before writing
  Net net({1, 3, 1});
  Vector<double> theta = Vector<double>::Constant(net.parameter_count(), 5.0);
  Rng rng(1);
  expect_invalid([&] { net.initialize(theta, rng, nn::Normal{0.0}); }, "Normal's stddev");
  CHECK((theta.array() == 5.0).all());
}

// ---------------------------------------------------------------------------------------------
// Maml: options, adapt, meta-gradients

TEST_CASE("bad input: Maml with a zero, negative or NaN inner learning rate", "[bad-input][maml]") {
  Regression obj(Net({1, 3, 1}), {});
  for (double lr : {0.0, -0.1, kNaN, kInf}) {
    MamlOptions o;
    o.inner_lr = lr;
    expect_invalid([&] { Maml<Regression>(obj, o); }, "inner_lr must be finite and > 0");
  }
}

TEST_CASE("bad input: Maml with negative inner steps, or second order with none", "[bad-input][maml]") {
  Regression obj(Net({1, 3, 1}), {});
  MamlOptions o;
  o.inner_steps = -1;
  expect_invalid([&] { Maml<Regression>(obj, o); }, "inner_steps must be >= 0, got -1");
  o.inner_steps = 0;
  o.order = Order::second;
  expect_invalid([&] { Maml<Regression>(obj, o); }, "second order needs inner_steps >= 1");
}

TEST_CASE("bad input: Maml step weights of the wrong count or non-finite", "[bad-input][maml]") {
  Regression obj(Net({1, 3, 1}), {});
  MamlOptions o;
  o.inner_steps = 2;
  o.step_weights = {1.0};
  expect_invalid([&] { Maml<Regression>(obj, o); }, "step_weights has 1 entries, expected inner_steps = 2");
  o.step_weights = {0.5, kNaN};
  expect_invalid([&] { Maml<Regression>(obj, o); }, "step_weights must be finite");
}

TEST_CASE("bad input: Maml with zero threads or a negative inner clip", "[bad-input][maml]") {
  Regression obj(Net({1, 3, 1}), {});
  MamlOptions o;
  o.threads = 0;
  expect_invalid([&] { Maml<Regression>(obj, o); }, "threads must be >= 1, got 0");
  o.threads = 1;
  o.inner_clip.value = -1;
  expect_invalid([&] { Maml<Regression>(obj, o); }, "clip value must be finite and >= 0");
  o.inner_clip = {0, kInf};
  expect_invalid([&] { Maml<Regression>(obj, o); }, "clip norm must be finite and >= 0");
}

TEST_CASE("bad input: adapt on an empty support set or into a buffer of the wrong length", "[bad-input][maml]") {
  MamlFixture f;
  Regression::Batch empty{Matrix<double>(1, 0), Matrix<double>(1, 0)};
  Vector<double> fast = Vector<double>::Constant(f.theta.size(), 42.0);
  expect_invalid([&] { f.maml.adapt(f.theta, empty, fast); }, "the support set is empty");
  Vector<double> wrong = Vector<double>::Constant(f.theta.size() - 2, 42.0);
  expect_invalid([&] { f.maml.adapt(f.theta, f.tasks[0].support, wrong); }, "fast has");
  CHECK((fast.array() == 42.0).all());
  CHECK((wrong.array() == 42.0).all());
  f.unchanged();
}

TEST_CASE("bad input: adapt in place on a support set with a NaN leaves theta unchanged", "[bad-input][maml]") {
  MamlFixture f;
  f.tasks[0].support.inputs(0, 3) = kNaN;
  expect_invalid([&] { f.maml.adapt(f.theta, f.tasks[0].support, f.theta, 3); }, "inputs must be finite");
  f.unchanged();
}

TEST_CASE("bad input: a meta-batch with no tasks", "[bad-input][maml]") {
  MamlFixture f;
  f.tasks.clear();
  expect_invalid([&] { f.maml.meta_loss_and_gradient(f.theta, f.tasks, f.grad); }, "the meta-batch has no tasks");
  f.unchanged();
}

TEST_CASE("bad input: a task with an empty query set", "[bad-input][maml]") {
  MamlFixture f;
  f.tasks[1].query = Regression::Batch{Matrix<double>(1, 0), Matrix<double>(1, 0)};
  expect_invalid([&] { f.maml.meta_loss_and_gradient(f.theta, f.tasks, f.grad); }, "task 1: the query set is empty");
  f.unchanged();
}

TEST_CASE("bad input: a task whose targets the model rejects, on any thread", "[bad-input][maml][threads]") {
  for (int threads : {1, 2}) {
    MamlFixture f;
    MamlOptions o;
    o.threads = threads;
    Maml<Regression> maml(f.obj, o);
    f.tasks[2].support.targets(0, 0) = kInf;
    expect_invalid([&] { maml.meta_loss_and_gradient(f.theta, f.tasks, f.grad); }, "task 2");
    f.unchanged();
  }
}

TEST_CASE("bad input: the meta-gradient aliasing theta, or theta of the wrong length", "[bad-input][maml]") {
  MamlFixture f;
  expect_invalid([&] { f.maml.meta_loss_and_gradient(f.theta, f.tasks, f.theta); }, "grad must not be the same vector");
  Vector<double> longer = Vector<double>::Zero(f.theta.size() + 1);
  expect_invalid([&] { f.maml.meta_loss_and_gradient(longer, f.tasks, f.grad); }, "theta has");
  expect_invalid([&] { f.maml.meta_loss(longer, f.tasks); }, "theta has");
  f.unchanged();
}

// ---------------------------------------------------------------------------------------------
// Optimizers

TEST_CASE("bad input: Adam with zero parameters or bad hyper-parameters", "[bad-input][optim]") {
  expect_invalid([] { optim::Adam<double>(0); }, "parameter count must be > 0, got 0");
  expect_invalid([] { optim::Adam<double>(-4); }, "parameter count must be > 0, got -4");
  expect_invalid([] { optim::Adam<double>(3, {-1e-3}); }, "lr must be finite and > 0");
  expect_invalid([] { optim::Adam<double>(3, {1e-3, 1.0}); }, "beta1 must be in [0, 1), got 1");
  expect_invalid([] { optim::Adam<double>(3, {1e-3, 0.9, kNaN}); }, "beta2 must be in [0, 1)");
  expect_invalid([] { optim::Adam<double>(3, {1e-3, 0.9, 0.999, 0.0}); }, "epsilon must be finite and > 0");
}

TEST_CASE("bad input: an Adam step with a NaN gradient leaves θ and the moments unchanged", "[bad-input][optim]") {
  optim::Adam<double> adam(3, {0.1});
  Vector<double> theta = Vector<double>::Ones(3);
  adam.step(theta, Vector<double>::Constant(3, 0.5));
  const Vector<double> theta1 = theta, m = adam.first_moment(), v = adam.second_moment();
  Vector<double> g = Vector<double>::Constant(3, 0.5);
  g[1] = kNaN;
  expect_invalid([&] { adam.step(theta, g); }, "gradient must be finite, but entry (1, 0)");
  expect_invalid([&] { adam.step(theta, Vector<double>::Ones(4)); }, "gradient has 4 entries, expected 3");
  CHECK(theta == theta1);
  CHECK(adam.first_moment() == m);
  CHECK(adam.second_moment() == v);
  CHECK(adam.steps() == 1);
}

TEST_CASE("bad input: Adam restore with a wrong size, negative or non-finite state", "[bad-input][optim]") {
  optim::Adam<double> adam(3);
  Vector<double> theta = Vector<double>::Ones(3);
  adam.step(theta, Vector<double>::Constant(3, 0.5));
  const Vector<double> m = adam.first_moment(), v = adam.second_moment();
  const Vector<double> ok = Vector<double>::Ones(3);
  expect_invalid([&] { adam.restore(Vector<double>::Ones(2), ok, 4); }, "first moment has 2 entries");
  expect_invalid([&] { adam.restore(ok, -ok, 4); }, "second moment must be >= 0");
  expect_invalid([&] { adam.restore(ok, ok, -1); }, "step count must be >= 0");
  expect_invalid([&] { adam.restore(Vector<double>::Constant(3, kNaN), ok, 4); }, "first moment must be finite");
  CHECK(adam.first_moment() == m);
  CHECK(adam.second_moment() == v);
  CHECK(adam.steps() == 1);
}

TEST_CASE("bad input: SGD with bad hyper-parameters", "[bad-input][optim]") {
  expect_invalid([] { optim::Sgd<float>(-2); }, "parameter count must be > 0, got -2");
  expect_invalid([] { optim::Sgd<float>(3, {kInf}); }, "lr must be finite and > 0");
  expect_invalid([] { optim::Sgd<float>(3, {0.1, 1.0}); }, "momentum must be in [0, 1), got 1");
  expect_invalid([] { optim::Sgd<float>(3, {0.1, -0.5}); }, "momentum must be in [0, 1)");
}

TEST_CASE("bad input: an SGD step or restore with non-finite values leaves its state unchanged", "[bad-input][optim]") {
  optim::Sgd<double> sgd(2, {0.1, 0.9});
  Vector<double> theta = Vector<double>::Ones(2);
  sgd.step(theta, Vector<double>::Ones(2));
  const Vector<double> theta1 = theta, b = sgd.velocity();
  expect_invalid([&] { sgd.step(theta, Vector<double>::Constant(2, kInf)); }, "gradient must be finite");
  expect_invalid([&] { sgd.restore(Vector<double>::Constant(2, kNaN), 3); }, "velocity must be finite");
  expect_invalid([&] { sgd.restore(Vector<double>::Ones(5), 3); }, "velocity has 5 entries, expected 2");
  CHECK(theta == theta1);
  CHECK(sgd.velocity() == b);
  CHECK(sgd.steps() == 1);
}

// ---------------------------------------------------------------------------------------------
// MetaTrainer

namespace {
struct TrainerFixture {
  MamlFixture m;
  optim::Adam<double> adam{m.obj.parameter_count()};
  metalearn::tasks::SineTasks<double> sampler{5};
  const Rng::State rng0 = sampler.rng().state();
};
}  // namespace

TEST_CASE("bad input: MetaTrainer with a zero meta-batch or a NaN meta clip", "[bad-input][trainer]") {
  TrainerFixture f;
  metalearn::TrainerOptions to;
  to.meta_batch = 0;
  expect_invalid([&] { metalearn::MetaTrainer(f.m.maml, f.adam, f.sampler, to); }, "meta_batch must be > 0, got 0");
  to.meta_batch = 2;
  to.meta_clip.norm = kNaN;
  expect_invalid([&] { metalearn::MetaTrainer(f.m.maml, f.adam, f.sampler, to); }, "clip norm must be finite");
}

TEST_CASE("bad input: MetaTrainer with an optimizer sized for another model", "[bad-input][trainer]") {
  TrainerFixture f;
  optim::Adam<double> other(f.m.obj.parameter_count() + 1);
  expect_invalid([&] { metalearn::MetaTrainer(f.m.maml, other, f.sampler, {}); },
                 "the optimizer has state for " + std::to_string(f.m.obj.parameter_count() + 1) + " parameters");
  CHECK(f.sampler.rng().state() == f.rng0);
}

TEST_CASE("bad input: MetaTrainer::run with theta of the wrong length or negative iterations", "[bad-input][trainer]") {
  TrainerFixture f;
  metalearn::MetaTrainer trainer(f.m.maml, f.adam, f.sampler, {});
  Vector<double> wrong = Vector<double>::Constant(3, 1.0);
  expect_invalid([&] { trainer.run(wrong, 5); }, "theta has 3 entries");
  expect_invalid([&] { trainer.run(f.m.theta, -1); }, "iterations must be >= 0, got -1");
  CHECK((wrong.array() == 1.0).all());
  CHECK(f.m.theta == f.m.theta0);
  CHECK(f.adam.steps() == 0);
  CHECK(f.sampler.rng().state() == f.rng0);  // no task was drawn
  CHECK(trainer.iteration() == 0);
}

TEST_CASE("bad input: MetaTrainer::restore with skipped > iteration or negative counters", "[bad-input][trainer]") {
  TrainerFixture f;
  metalearn::MetaTrainer trainer(f.m.maml, f.adam, f.sampler, {});
  trainer.restore(10, 2);
  expect_invalid([&] { trainer.restore(3, 4); }, "0 <= skipped <= iteration, got 4 and 3");
  expect_invalid([&] { trainer.restore(-1, 0); }, "0 <= skipped <= iteration");
  CHECK(trainer.iteration() == 10);
  CHECK(trainer.skipped() == 2);
}

// ---------------------------------------------------------------------------------------------
// SineTasks and the thread pool

TEST_CASE("bad input: SineTasks with an empty or inverted range", "[bad-input][tasks]") {
  metalearn::tasks::SineTasks<float>::Options o;
  o.amplitude_min = 5;
  o.amplitude_max = 1;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "ranges must be finite with min <= max");
  o = {};
  o.x_min = o.x_max = 2;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "x_min < x_max");
}

TEST_CASE("bad input: SineTasks with a NaN or infinite range", "[bad-input][tasks]") {
  metalearn::tasks::SineTasks<float>::Options o;
  o.phase_max = kNaN;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "ranges must be finite");
  o = {};
  o.x_max = kInf;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "ranges must be finite");
}

TEST_CASE("bad input: SineTasks with zero or negative support and query sizes", "[bad-input][tasks]") {
  metalearn::tasks::SineTasks<float>::Options o;
  o.support = 0;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "support and query sizes must be > 0, got 0 and 10");
  o.support = 5;
  o.query = -3;
  expect_invalid([&] { metalearn::tasks::SineTasks<float>(1, o); }, "got 5 and -3");
}

TEST_CASE("bad input: SineTasks sample_points and grid with a zero or negative count", "[bad-input][tasks]") {
  metalearn::tasks::SineTasks<double> sampler(1);
  const auto s = sampler.sample_sinusoid();
  const Rng::State rng0 = sampler.rng().state();
  metalearn::tasks::SineTasks<double>::Batch batch{Matrix<double>::Constant(1, 2, 9.0), Matrix<double>::Constant(1, 2, 9.0)};
  expect_invalid([&] { sampler.sample_points(s, -1, batch); }, "count must be > 0, got -1");
  expect_invalid([&] { sampler.sample_points(s, 0, batch); }, "count must be > 0, got 0");
  expect_invalid([&] { sampler.grid(s, -5); }, "count must be > 0, got -5");
  CHECK((batch.inputs.array() == 9.0).all());
  CHECK(batch.inputs.cols() == 2);
  CHECK(sampler.rng().state() == rng0);
}

TEST_CASE("bad input: a thread pool of zero threads, or a negative spin time", "[bad-input][threads]") {
  expect_invalid([] { metalearn::parallel::ThreadPool pool(0); }, "threads must be >= 1, got 0");
  expect_invalid([] { metalearn::parallel::ThreadPool pool(2, -1); }, "spin_microseconds must be >= 0, got -1");
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: corrupt, truncated, wrong version, wrong model, wrong optimizer, I/O errors

namespace {

// Recomputes the size field and the checksum, as a forger (or a buggy writer) would.
void reseal(std::vector<unsigned char>& b) {
  const std::uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[24 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(size >> (8 * i));
  const std::uint32_t crc = io::crc32c(b.data(), b.size() - 4);
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(crc >> (8 * i));
}

void put_u32(std::vector<unsigned char>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(std::vector<unsigned char>& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}

// A training run in float whose state a bad checkpoint must not change, and a good checkpoint.
struct CheckpointFixture {
  mlt::TempDir dir;
  using Obj = nn::Objective<nn::Mlp<float>, nn::MeanSquaredError>;
  Obj obj{nn::Mlp<float>({1, 5, 1}, nn::Tanh{}), nn::MeanSquaredError{}};
  Maml<Obj> maml{obj, MamlOptions{}};
  optim::Adam<float> adam{obj.parameter_count()};
  metalearn::tasks::SineTasks<float> sampler{1};
  metalearn::MetaTrainer<Maml<Obj>, optim::Adam<float>, metalearn::tasks::SineTasks<float>> trainer{
      maml, adam, sampler, metalearn::TrainerOptions{2, metalearn::NonFinitePolicy::throw_error, {}}};
  Vector<float> theta = Vector<float>::Constant(obj.parameter_count(), 0.25f);
  std::string good = dir.file("good.ckpt");
  std::string model = obj.describe();
  std::vector<unsigned char> good_bytes;
  // the state of the destination before each bad load
  Vector<float> theta0, m0, v0;
  Rng::State rng0{};
  Index iteration0 = 0;

  CheckpointFixture() {
    trainer.run(theta, 2);
    io::save_checkpoint<float>(good, model, theta, adam, trainer, sampler.rng(), "good");
    good_bytes = mlt::read_bytes(good);
    trainer.run(theta, 1);  // the live state now differs from the checkpoint's
    theta0 = theta;
    m0 = adam.first_moment();
    v0 = adam.second_moment();
    rng0 = sampler.rng().state();
    iteration0 = trainer.iteration();
  }
  std::string write(const std::string& name, const std::vector<unsigned char>& bytes) {
    const std::string path = dir.file(name);
    mlt::write_bytes(path, bytes);
    return path;
  }
  void load(const std::string& path) { io::load_checkpoint<float>(path, model, theta, adam, trainer, sampler.rng()); }
  void unchanged() const {
    CHECK(theta == theta0);
    CHECK(adam.first_moment() == m0);
    CHECK(adam.second_moment() == v0);
    CHECK(adam.steps() == 3);
    CHECK(sampler.rng().state() == rng0);
    CHECK(trainer.iteration() == iteration0);
    CHECK(mlt::read_bytes(good) == good_bytes);
  }
  std::size_t theta_count_offset() const { return 32 + 4 + model.size() + 4 + std::string("good").size(); }
};

}  // namespace

TEST_CASE("bad input: a checkpoint with a flipped bit (checksum)", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  auto b = f.good_bytes;
  b[b.size() / 2] ^= 0x04;
  const std::string path = f.write("flipped.ckpt", b);
  expect_checkpoint_error([&] { f.load(path); }, "checksum mismatch");
  expect_checkpoint_error([&] { f.load(path); }, "flipped.ckpt");  // the message names the file
  CHECK(mlt::read_bytes(path) == b);  // loading never modifies the file
  f.unchanged();
}

TEST_CASE("bad input: a truncated checkpoint", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  const std::string cut = f.write("cut.ckpt", std::vector<unsigned char>(f.good_bytes.begin(), f.good_bytes.end() - 9));
  expect_checkpoint_error([&] { f.load(cut); }, "truncated: the header records");
  const std::string tiny = f.write("tiny.ckpt", std::vector<unsigned char>(f.good_bytes.begin(), f.good_bytes.begin() + 20));
  expect_checkpoint_error([&] { f.load(tiny); }, "truncated: 20 bytes");
  const std::string empty = f.write("empty.ckpt", {});
  expect_checkpoint_error([&] { f.load(empty); }, "truncated: 0 bytes");
  f.unchanged();
}

TEST_CASE("bad input: a checkpoint of another format version", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  auto b = f.good_bytes;
  put_u32(b, 8, 3);
  reseal(b);
  expect_checkpoint_error([&] { f.load(f.write("v3.ckpt", b)); }, "format version 3, this build reads versions 1 to 2");
  f.unchanged();
}

TEST_CASE("bad input: a file that is not a checkpoint", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  std::vector<unsigned char> text(200, 'x');
  expect_checkpoint_error([&] { f.load(f.write("notes.txt", text)); }, "not a metalearn checkpoint (bad magic number)");
  f.unchanged();
}

TEST_CASE("bad input: a double checkpoint loaded as float", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  optim::Adam<double> adam(f.theta.size());
  const Vector<double> theta = Vector<double>::Ones(f.theta.size());
  io::save_checkpoint<double>(f.dir.file("double.ckpt"), f.model, theta, adam, f.trainer, f.sampler.rng());
  expect_checkpoint_error([&] { f.load(f.dir.file("double.ckpt")); },
                          "scalar type double (binary64) (code 2), expected float (binary32)");
  f.unchanged();
}

TEST_CASE("bad input: a checkpoint of another model", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  const auto other = nn::Objective(nn::Mlp<float>({1, 5, 1}, nn::Relu{}), nn::MeanSquaredError{});
  REQUIRE(other.parameter_count() == f.obj.parameter_count());  // same size, other activation
  expect_checkpoint_error(
      [&] { io::load_checkpoint<float>(f.good, other.describe(), f.theta, f.adam, f.trainer, f.sampler.rng()); },
      "is a checkpoint of model '1-5(tanh)-1(identity) mse', expected '1-5(relu)-1(identity) mse'");
  f.unchanged();
}

TEST_CASE("bad input: a checkpoint whose parameter count differs from the model's", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  Vector<float> bigger = Vector<float>::Constant(f.theta.size() + 1, 3.0f);
  optim::Adam<float> adam(bigger.size());
  expect_checkpoint_error([&] { io::load_checkpoint<float>(f.good, f.model, bigger, adam, f.trainer, f.sampler.rng()); },
                          "theta has " + std::to_string(f.theta.size()) + " parameters, the model has " +
                              std::to_string(bigger.size()));
  CHECK((bigger.array() == 3.0f).all());
  CHECK(adam.steps() == 0);
  f.unchanged();
}

TEST_CASE("bad input: a checkpoint of another optimizer", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  optim::Sgd<float> sgd(f.theta.size(), {0.1f, 0.9f});
  io::save_checkpoint<float>(f.dir.file("sgd.ckpt"), f.model, f.theta, sgd, f.trainer, f.sampler.rng());
  expect_checkpoint_error([&] { f.load(f.dir.file("sgd.ckpt")); }, "state of optimizer 'SGD', expected Adam");
  f.unchanged();
}

TEST_CASE("bad input: a missing checkpoint, or a directory", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  expect_checkpoint_error([&] { f.load(f.dir.file("missing.ckpt")); }, "cannot open");
  expect_checkpoint_error([&] { f.load(f.dir.path().string()); }, "is not a regular file");
  f.unchanged();
}

TEST_CASE("bad input: a checkpoint with trailing bytes", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  auto b = f.good_bytes;
  b.push_back(0);
  expect_checkpoint_error([&] { f.load(f.write("long.ckpt", b)); }, "(trailing bytes)");
  f.unchanged();
}

TEST_CASE("bad input: a forged checkpoint claiming 2^60 parameters (valid checksum) allocates nothing",
          "[bad-input][checkpoint]") {
  CheckpointFixture f;
  auto b = f.good_bytes;
  put_u64(b, f.theta_count_offset(), std::uint64_t{1} << 60);
  reseal(b);
  expect_checkpoint_error([&] { f.load(f.write("huge.ckpt", b)); }, "theta claims 1152921504606846976 entries");
  f.unchanged();
}

TEST_CASE("bad input: a forged checkpoint with a negative Adam second moment (valid checksum)",
          "[bad-input][checkpoint]") {
  CheckpointFixture f;
  auto c = io::read_checkpoint<float>(f.good);
  c.optimizer.buffers[1][0] = -1.0f;
  const auto b = io::encode(c);
  expect_checkpoint_error([&] { f.load(f.write("negv.ckpt", b)); }, "second moment has negative entries");
  f.unchanged();
}

TEST_CASE("bad input: a forged checkpoint with skipped > iteration or an all-zero RNG (valid checksum)",
          "[bad-input][checkpoint]") {
  CheckpointFixture f;
  const std::size_t tail = f.good_bytes.size() - 4 - 32;  // the sampler's RNG words are the last field
  auto zero_rng = f.good_bytes;
  for (std::size_t i = 0; i < 32; ++i) zero_rng[tail + i] = 0;
  reseal(zero_rng);
  expect_checkpoint_error([&] { f.load(f.write("rng.ckpt", zero_rng)); }, "RNG state is all zero");
  auto counters = f.good_bytes;
  put_u64(counters, tail - 8 - (4 + 3) - 8, 99);  // skipped, before the kind "rng" and the word count
  reseal(counters);
  expect_checkpoint_error([&] { f.load(f.write("cnt.ckpt", counters)); }, "0 <= skipped <= iteration, got 99 and 2");
  f.unchanged();
}

TEST_CASE("bad input: saving into a missing directory keeps everything as it was", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  const std::string path = f.dir.file("no/such/dir/x.ckpt");
  expect_checkpoint_error([&] { io::save_checkpoint<float>(path, f.model, f.theta, f.adam, f.trainer, f.sampler.rng()); },
                          "cannot create the temporary file");
  CHECK_FALSE(std::filesystem::exists(path));
  f.unchanged();
}

TEST_CASE("bad input: saving inconsistent state writes nothing", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  Vector<float> wrong = Vector<float>::Ones(f.theta.size() - 1);
  expect_invalid([&] { io::save_checkpoint<float>(f.good, f.model, wrong, f.adam, f.trainer, f.sampler.rng()); },
                 "optimizer buffer 0 has " + std::to_string(f.theta.size()) + " entries, expected " +
                     std::to_string(wrong.size()));
  Rng dead;
  dead.set_state({0, 0, 0, 0});
  expect_invalid([&] { io::save_checkpoint<float>(f.good, f.model, f.theta, f.adam, f.trainer, dead); },
                 "RNG state is all zero");
  expect_invalid([&] { io::save_checkpoint<float>(f.good, std::string(2 << 20, 'm'), f.theta, f.adam, f.trainer,
                                                  f.sampler.rng()); },
                 "at most 1048576 bytes");
  CHECK(f.dir.entries().size() == 1);  // no temporary file either
  f.unchanged();
}

TEST_CASE("bad input: adapted weights of another model or size", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  io::save_weights<float>(f.dir.file("w"), f.model, f.theta, "user 1");
  Vector<float> target = Vector<float>::Constant(f.theta.size(), 9.0f);
  expect_checkpoint_error([&] { io::load_weights<float>(f.dir.file("w"), "1-7(relu)-1(identity) mse", target); },
                          "holds weights of model '1-5(tanh)-1(identity) mse'");
  Vector<float> small = Vector<float>::Constant(3, 9.0f);
  expect_checkpoint_error([&] { io::load_weights<float>(f.dir.file("w"), f.model, small); }, "holds 16 weights, the model has 3");
  expect_checkpoint_error([&] { f.load(f.dir.file("w")); }, "holds adapted weights (kind 2), expected a training checkpoint");
  CHECK((target.array() == 9.0f).all());
  CHECK((small.array() == 9.0f).all());
  f.unchanged();
}

TEST_CASE("bad input: saving a diverged (NaN) θ keeps the last good checkpoint", "[bad-input][checkpoint]") {
  CheckpointFixture f;
  f.theta[3] = std::numeric_limits<float>::quiet_NaN();
  f.theta0 = f.theta;
  expect_invalid([&] { io::save_checkpoint<float>(f.good, f.model, f.theta, f.adam, f.trainer, f.sampler.rng()); },
                 "theta holds non-finite values; refusing to save them");
  expect_invalid([&] { io::save_weights<float>(f.good, f.model, f.theta); }, "non-finite");
  CHECK(io::read_checkpoint<float>(f.good).metadata == "good");
  CHECK(f.dir.entries().size() == 1);
  CHECK(f.theta.hasNaN());
  CHECK(mlt::read_bytes(f.good) == f.good_bytes);
}
