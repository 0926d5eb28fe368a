// After their first use, mini-batches, supervised steps and evaluation never touch the heap:
// not through Eigen (EIGEN_RUNTIME_NO_MALLOC aborts) and not through operator new.
#include <metalearn/data/dataset.hpp>
#include <metalearn/data/minibatch.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/train/evaluate.hpp>
#include <metalearn/train/supervised.hpp>

#include <allocation_counter.hpp>
#include <catch.hpp>
#include <test_support.hpp>

namespace data = metalearn::data;
namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {
data::LabelledDataset<float> random_dataset(Index n, Index features, int classes, Rng& rng) {
  data::LabelledDataset<float> ds;
  ds.classes = classes;
  ds.features = mlt::random_matrix<float>(features, n, rng);
  ds.labels.resize(n);
  for (Index j = 0; j < n; ++j) ds.labels[j] = static_cast<int>(rng.uniform_index(static_cast<std::uint64_t>(classes)));
  return ds;
}
}  // namespace

TEST_CASE("allocation: mini-batches, supervised steps and evaluation allocate nothing after warm-up",
          "[train][allocation]") {
  Rng rng(4);
  const auto train = random_dataset(250, 20, 5, rng), test = random_dataset(130, 20, 5, rng);
  using Model = nn::Objective<nn::Mlp<float>, nn::SoftmaxCrossEntropy>;
  const Model model(nn::Mlp<float>({20, 16, 5}, nn::Relu{}), nn::SoftmaxCrossEntropy{});
  Vector<float> theta(model.parameter_count());
  model.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  data::MiniBatches<float> batches(train, {32}, 1);  // 7 full batches and one of 26 per epoch
  metalearn::SupervisedTrainer trainer(model, adam, batches);
  metalearn::ClassifierEvaluator evaluator(model, test, 5, 50);  // 2 batches of 50 and one of 30
  trainer.run(theta, batches.batches_per_epoch());  // warm-up: a full and the partial batch
  evaluator.evaluate(theta);

  double sink = 0;
  mlt::NoAllocationRegion region;
  for (int epoch = 0; epoch < 3; ++epoch) {
    trainer.run(theta, batches.batches_per_epoch(), [&](const metalearn::StepProgress& p) { sink += p.loss; });
    sink += evaluator.evaluate(theta).accuracy;
  }
  for (int i = 0; i < 20; ++i) sink += batches.next().inputs(0, 0);
  CHECK(region.allocations() == 0);
  CHECK(std::isfinite(sink));
}
