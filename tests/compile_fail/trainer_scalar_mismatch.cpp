// Must-fail compile check (tests/compile_fail/run): MetaTrainer with a double model and a
// float sampler must stop at metalearn's static_assert naming the sampler, not deep inside
// trainer.hpp. -DMETALEARN_CONTROL: the double sampler, which compiles.
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

int main() {
  namespace nn = metalearn::nn;
  nn::Objective model(nn::Mlp<double>({1, 8, 1}, nn::Relu{}), nn::MeanSquaredError{});
  metalearn::Maml maml(model);
  metalearn::optim::Adam<double> adam(model.parameter_count());
#ifdef METALEARN_CONTROL
  metalearn::tasks::SineTasks<double> sampler(1);
#else
  metalearn::tasks::SineTasks<float> sampler(1);
#endif
  metalearn::MetaTrainer trainer(maml, adam, sampler);
  metalearn::Vector<double> theta(model.parameter_count());
  metalearn::Rng rng(2);
  model.initialize(theta, rng);
  trainer.run(theta, 2);
  return theta.allFinite() ? 0 : 1;
}
