// Supervised training (train/supervised.hpp) and classifier evaluation (train/evaluate.hpp)
// on a synthetic classification problem.
#include <metalearn/data/dataset.hpp>
#include <metalearn/data/minibatch.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/train/evaluate.hpp>
#include <metalearn/train/supervised.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <cmath>
#include <limits>
#include <string>

namespace data = metalearn::data;
namespace nn = metalearn::nn;
namespace io = metalearn::io;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// Three Gaussian blobs in 4 dimensions (centres ±2 on different axes), n examples.
data::LabelledDataset<double> blobs(Index n, std::uint64_t seed) {
  data::LabelledDataset<double> ds;
  ds.classes = 3;
  ds.features.resize(4, n);
  ds.labels.resize(n);
  Rng rng(seed);
  for (Index j = 0; j < n; ++j) {
    const int c = static_cast<int>(j % 3);
    ds.labels[j] = c;
    for (Index i = 0; i < 4; ++i) ds.features(i, j) = 0.7 * rng.normal() + (i == c ? 2.0 : 0.0) - (i == 3 ? 1.0 : 0.0);
  }
  return ds;
}

using Classifier = nn::Objective<nn::Mlp<double>, nn::SoftmaxCrossEntropy>;
Classifier classifier() { return Classifier(nn::Mlp<double>({4, 8, 3}, nn::Tanh{}), nn::SoftmaxCrossEntropy{}); }

}  // namespace

TEST_CASE("supervised: training a classifier on mini-batches learns, and the evaluator scores it",
          "[train][supervised]") {
  const auto train = blobs(300, 1), test = blobs(150, 2);
  const Classifier model = classifier();
  Rng rng(3);
  Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  metalearn::optim::Adam<double> adam(theta.size(), {0.01});
  data::MiniBatches<double> batches(train, {32}, 5);
  metalearn::SupervisedTrainer trainer(model, adam, batches);
  metalearn::ClassifierEvaluator evaluator(model, test, model.output_size(), 64);  // 150 = 2 × 64 + 22
  const double before = evaluator.evaluate(theta).accuracy;
  Index epochs = 0;
  double last_loss = 0;
  trainer.run(theta, 10 * batches.batches_per_epoch(), [&](const metalearn::StepProgress& p) {
    CHECK(p.examples == (p.batch == 10 ? 12 : 32));  // 300 = 9 × 32 + 12
    if (p.epoch_done()) ++epochs;
    last_loss = p.loss;
    CHECK(p.examples_per_second > 0);
  });
  CHECK(epochs == 10);
  CHECK(trainer.iteration() == 100);
  const auto& r = evaluator.evaluate(theta);
  INFO("accuracy before " << before << ", after " << r.accuracy << ", loss " << r.loss);
  CHECK(r.accuracy > 0.9);
  CHECK(r.accuracy > before + 0.3);
  CHECK(r.examples == 150);
  CHECK(r.confusion.sum() == 150);
  CHECK(r.confusion.rowwise().sum().isConstant(50));  // 50 test examples per class
  CHECK(static_cast<double>(r.confusion.diagonal().sum()) / 150 == r.accuracy);
  // the mean loss is the model's loss on the whole set
  Classifier::Workspace ws;
  const auto all = test.batch();
  CHECK(r.loss == Catch::Approx(model.loss(theta, all, ws)).epsilon(1e-12));
  CHECK(last_loss < 0.5);
}

TEST_CASE("supervised: a non-finite loss is never applied (throw or skip), theta and Adam unchanged",
          "[train][supervised][bad-input]") {
  auto train = blobs(30, 1);
  const Classifier model = classifier();
  Rng rng(3);
  Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  // output biases ±1e308: for class-1 examples the loss log Σ e^z − z_1 is 1e308 + 1e308 = ∞
  const Index bias = model.parameter_count() - 3;
  theta[bias] = 1e308;
  theta[bias + 1] = -1e308;
  const Vector<double> start = theta;
  for (auto policy : {metalearn::NonFinitePolicy::throw_error, metalearn::NonFinitePolicy::skip}) {
    metalearn::optim::Adam<double> adam(theta.size());
    data::MiniBatches<double> batches(train, {30}, 5);
    metalearn::SupervisedTrainer trainer(model, adam, batches, {policy});
    if (policy == metalearn::NonFinitePolicy::throw_error) {
      CHECK_THROWS_WITH(trainer.run(theta, 1), mlt::contains("SupervisedTrainer: step 1: non-finite"));
    } else {
      bool skipped = false;
      trainer.run(theta, 2, [&](const metalearn::StepProgress& p) { skipped = p.skipped; });
      CHECK(skipped);
      CHECK(trainer.skipped() == 2);
    }
    CHECK(theta == start);
    CHECK(adam.steps() == 0);
  }
}

TEST_CASE("supervised: resuming from a checkpoint continues bit for bit, mid-epoch and at an epoch's end",
          "[train][supervised][resume]") {
  const auto train = blobs(100, 4);
  const Classifier model = classifier();
  const auto fresh = [&] {
    Rng rng(8);
    Vector<double> t(model.parameter_count());
    model.initialize(t, rng);
    return t;
  };
  // uninterrupted: 25 steps (batches of 16: 7 per epoch)
  Vector<double> straight = fresh();
  {
    metalearn::optim::Adam<double> adam(straight.size(), {0.01});
    data::MiniBatches<double> batches(train, {16}, 21);
    metalearn::SupervisedTrainer trainer(model, adam, batches);
    trainer.run(straight, 25);
  }
  for (Index first : {Index(10), Index(14)}) {  // inside epoch 2; exactly at its end
    CAPTURE(first);
    mlt::TempDir dir;
    const std::string path = dir.file("supervised.ckpt");
    Vector<double> resumed = fresh();
    {
      metalearn::optim::Adam<double> adam(resumed.size(), {0.01});
      data::MiniBatches<double> batches(train, {16}, 21);
      metalearn::SupervisedTrainer trainer(model, adam, batches);
      trainer.run(resumed, first);
      io::save_checkpoint(path, model.describe(), resumed, adam, trainer, batches.epoch_rng());
    }
    Vector<double> theta = Vector<double>::Zero(model.parameter_count());
    metalearn::optim::Adam<double> adam(theta.size(), {0.01});
    data::MiniBatches<double> batches(train, {16}, 999);  // another seed: the checkpoint decides
    metalearn::SupervisedTrainer trainer(model, adam, batches);
    Rng epoch_rng;
    io::load_checkpoint(path, model.describe(), theta, adam, trainer, epoch_rng);
    batches.restore_after(epoch_rng, trainer.iteration());
    trainer.run(theta, 25 - first);
    CHECK(theta == straight);
  }
}

TEST_CASE("evaluator: bad arguments are refused", "[train][bad-input]") {
  const auto test = blobs(10, 2);
  const Classifier model = classifier();
  CHECK_THROWS_WITH(metalearn::ClassifierEvaluator(model, test, 4), mlt::contains("4 outputs, the dataset 3 classes"));
  CHECK_THROWS_WITH(metalearn::ClassifierEvaluator(model, test, 3, 0), mlt::contains("batch_size must be >= 1"));
}
