// Any type that meets metalearn's model contract (metalearn/model.hpp) can be meta-trained.
// This example checks the derivatives of two models written from scratch (custom_models.hpp),
// then meta-trains each with MAML on sine tasks and shows what a few adaptation steps buy.
// It exits non-zero if a derivative check fails or adaptation does not help.
#include "custom_models.hpp"

#include <metalearn/check/derivatives.hpp>
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/optim/adam.hpp>

#include <iomanip>
#include <iostream>
#include <vector>

namespace {

using Tasks = std::vector<custom::PointsSineTasks::Task>;

// Mean query MSE over the tasks after `steps` adaptation steps on their support points.
template <class Model>
double mean_query_loss(metalearn::Maml<Model>& maml, const metalearn::Vector<double>& theta, const Tasks& tasks,
                       int steps) {
  typename Model::Workspace ws;
  metalearn::Vector<double> fast(theta.size());
  double total = 0;
  for (const auto& task : tasks) {
    maml.adapt(theta, task.support, fast, steps);
    total += metalearn::evaluate_loss(maml.model(), fast, task.query, ws);
  }
  return total / static_cast<double>(tasks.size());
}

template <class Model>
bool demo(const char* name, const Model& model, metalearn::Order order, double inner_lr) {
  std::cout << "== " << name << " (" << model.parameter_count() << " parameters)\n";
  custom::PointsSineTasks sampler(7, 10, 30);
  metalearn::Rng rng(1);
  metalearn::Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);

  // 1. The derivatives, checked against central differences: do this for every new model.
  Tasks probe(3);
  for (auto& t : probe) sampler.sample(t);
  bool ok = true;
  const auto g = metalearn::check::gradient(model, theta, probe[0].support);
  std::cout << "  " << g.report() << "\n";
  ok = ok && g.ok;
  if constexpr (metalearn::model_traits<Model>::has_hessian_vector_product) {
    const auto h = metalearn::check::hessian_vector_product(model, theta, probe[0].support,
                                                            metalearn::Vector<double>::Ones(theta.size()));
    std::cout << "  " << h.report() << "\n";
    ok = ok && h.ok;
  }

  // 2. MAML with the order this model supports.
  metalearn::MamlOptions options;
  options.order = order;
  options.inner_steps = 2;
  options.inner_lr = inner_lr;
  metalearn::Maml maml(model, options);
  const auto m = metalearn::check::meta_gradient(maml, theta, probe);
  std::cout << "  " << m.report() << "\n";
  ok = ok && m.ok;

  Tasks test(200);
  custom::PointsSineTasks test_sampler(99, 10, 30);
  for (auto& t : test) test_sampler.sample(t);
  const double before = mean_query_loss(maml, theta, test, 2);
  metalearn::optim::Adam<double> adam(theta.size(), {0.005});
  metalearn::TrainerOptions to;
  to.meta_batch = 10;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  trainer.run(theta, 1500);

  std::cout << std::fixed << std::setprecision(3) << "  query MSE on 200 new tasks, before meta-training: " << before
            << " after 2 steps\n  after meta-training: " << mean_query_loss(maml, theta, test, 0) << " with 0 steps, "
            << mean_query_loss(maml, theta, test, 2) << " after 2 steps, " << mean_query_loss(maml, theta, test, 10)
            << " after 10\n";
  const bool adapts = mean_query_loss(maml, theta, test, 2) < 0.7 * mean_query_loss(maml, theta, test, 0) &&
                      mean_query_loss(maml, theta, test, 2) < before;
  if (!adapts) std::cout << "  ADAPTATION DID NOT HELP\n";
  return ok && adapts;
}

}  // namespace

int main() {
  bool ok = demo("Fourier regression, exact second order", custom::FourierRegression(4), metalearn::Order::second, 0.3);
  // No hessian_vector_product: Order::second would be refused at construction.
  ok = demo("hand-written tanh network, second order by finite differences", custom::TinyTanhNet(20),
            metalearn::Order::second_finite_difference, 0.05) &&
       ok;
  std::cout << (ok ? "all checks passed\n" : "FAILED\n");
  return ok ? 0 : 1;
}
