#include <metalearn/metalearn.hpp>

#include <iostream>

int main() {
  using namespace metalearn;
  // A 1-40-40-1 ReLU network with mean squared error: a model whose gradient and exact
  // Hessian-vector product are written by hand. Parameters live in one flat vector θ.
  nn::Objective model(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  Rng rng(1);
  Vector<float> theta(model.parameter_count());
  model.initialize(theta, rng);

  // MAML with exact second-order meta-gradients (one inner step, alpha = 0.001), Adam as the
  // meta-optimizer, and the sinusoid tasks of the MAML paper: y = A sin(x - phi).
  Maml maml(model, MamlOptions{});
  optim::Adam<float> adam(theta.size(), {1e-3});
  tasks::SineTasks<float> sine(/*seed=*/1);
  MetaTrainer trainer(maml, adam, sine, {/*meta_batch=*/25});
  trainer.run(theta, 2000);

  // A new task: adapt on its 10 support points, then measure on its query points.
  tasks::SineTasks<float>::Task task;
  sine.sample(task);
  nn::MlpWorkspace<float> ws;
  const Vector<float> fast = maml.adapt(theta, task.support, /*steps=*/10);
  std::cout << "query MSE before adaptation " << model.loss(theta, task.query, ws) << ", after "
            << model.loss(fast, task.query, ws) << "\n";
}
