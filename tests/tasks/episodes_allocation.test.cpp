// After a task's first episode, the episode sampler, MAML meta-training on its episodes and the
// few-shot evaluator never touch the heap: not through Eigen (EIGEN_RUNTIME_NO_MALLOC aborts)
// and not through operator new.
#include <metalearn/meta/few_shot.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/episodes.hpp>

#include <allocation_counter.hpp>
#include <catch.hpp>
#include <test_support.hpp>

#include <cmath>
#include <vector>

using metalearn::Index;

TEST_CASE("allocation: episodes, MAML on them and few-shot evaluation allocate nothing after warm-up",
          "[tasks][episodes][allocation]") {
  metalearn::Rng rng(2);
  metalearn::data::LabelledDataset<float> ds;
  ds.classes = 9;
  ds.features = mlt::random_matrix<float>(16, 9 * 6, rng);
  ds.labels.resize(9 * 6);
  for (Index j = 0; j < ds.labels.size(); ++j) ds.labels[j] = static_cast<int>(j % 9);
  const metalearn::tasks::ClassPool<float> pool(ds, {0, 1, 2, 3, 4, 5, 6, 7, 8}, {4});  // rotated 4 × 4 images
  metalearn::tasks::EpisodeSampler<float> sampler(pool, {3, 2, 3}, 5);
  using Model = metalearn::nn::Objective<metalearn::nn::Mlp<float>, metalearn::nn::SoftmaxCrossEntropy>;
  const Model model(metalearn::nn::Mlp<float>({16, 12, 3}, metalearn::nn::Relu{}), metalearn::nn::SoftmaxCrossEntropy{});
  metalearn::MamlOptions mo;
  mo.inner_lr = 0.2;
  mo.threads = 2;
  metalearn::Maml<Model> maml(model, mo);
  metalearn::Vector<float> theta(maml.parameter_count());
  maml.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  metalearn::TrainerOptions to;
  to.meta_batch = 4;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  std::vector<metalearn::tasks::EpisodeSampler<float>::Task> episodes(5);
  for (auto& e : episodes) sampler.sample(e);
  metalearn::FewShotEvaluator<metalearn::Maml<Model>> evaluator(maml, 3);
  const std::vector<int> steps{0, 1, 3};
  trainer.run(theta, 2);  // warm-up
  evaluator.evaluate(theta, episodes, steps);

  double sink = 0;
  mlt::NoAllocationRegion region;
  for (int i = 0; i < 5; ++i) {
    for (auto& e : episodes) sampler.sample(e);
    trainer.run(theta, 3, [&](const metalearn::Progress& p) { sink += p.meta_loss; });
    sink += evaluator.evaluate(theta, episodes, steps).sum();
  }
  CHECK(region.allocations() == 0);
  CHECK(std::isfinite(sink));
}
