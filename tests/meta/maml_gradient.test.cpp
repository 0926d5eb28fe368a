// MAML meta-gradients against a separate, naive route (check/meta_gradient.hpp): central
// differences of the meta-loss re-computed by re-running the inner loop from perturbed θ.
// First and second order; 1, 2 and 5 inner steps; ReLU and tanh; float and double; with and
// without clipping and multi-step loss weights; exact and finite-difference HVPs.
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <sine_tasks.hpp>
#include <test_support.hpp>

namespace nn = metalearn::nn;
namespace check = metalearn::check;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {


MamlOptions options(Order order, int steps, double lr = 0.05) {
  MamlOptions o;
  o.order = order;
  o.inner_steps = steps;
  o.inner_lr = lr;
  return o;
}

// double: the checker with tolerance 1e-6. float: the float meta-gradient against the double
// one at the same θ (itself checked), tolerance 1e-4 (float rounding through K steps).
void check_orders(const nn::Activation& act, int steps, std::uint64_t seed) {
  const auto spec = mlt::NetSpec{{1, 8, 8, 1}, {act, act, nn::Identity{}}};
  const nn::Objective dbl(spec.make<double>(), nn::MeanSquaredError{});
  const nn::Objective flt(spec.make<float>(), nn::MeanSquaredError{});
  Rng rng(seed);
  const Vector<double> theta = mlt::random_theta(dbl, rng, 0.2);
  const auto tasks = mlt::sine_tasks<double>(seed, 3, 5);
  const auto tasks_f = mlt::sine_tasks<float>(seed, 3, 5);
  for (Order order : {Order::first, Order::second, Order::second_finite_difference}) {
    INFO(nn::activation_name(act) << ", " << steps << " steps, order " << static_cast<int>(order));
    Maml maml(dbl, options(order, steps));
    const auto r = check::meta_gradient(maml, theta, tasks);
    INFO(r.report());
    CHECK(r.ok);

    // differences of float gradients step over ReLU kinks (the documented limit of
    // finite-difference HVPs), so that route is compared in float on tanh only
    if (order == Order::second_finite_difference && std::holds_alternative<nn::Relu>(act)) continue;
    Maml maml_f(flt, options(order, steps));
    const Vector<float> theta_f = theta.cast<float>();
    Vector<float> g_f(theta.size());
    Vector<double> g_d(theta.size());
    maml_f.meta_loss_and_gradient(theta_f, tasks_f, g_f);
    Maml maml_d(dbl, options(order, steps));
    maml_d.meta_loss_and_gradient(theta_f.cast<double>(), tasks, g_d);
    CHECK(mlt::max_error(g_f, g_d) < (order == Order::second_finite_difference ? 1e-3 : 1e-4));
  }
}

}  // namespace

TEST_CASE("MAML meta-gradients match central differences of the meta-loss: tanh", "[maml][gradient]") {
  for (int steps : {1, 2, 5}) check_orders(nn::Tanh{}, steps, 10 + static_cast<std::uint64_t>(steps));
}

TEST_CASE("MAML meta-gradients match central differences of the meta-loss: ReLU", "[maml][gradient]") {
  for (int steps : {1, 2, 5}) check_orders(nn::Relu{}, steps, 20 + static_cast<std::uint64_t>(steps));
}

TEST_CASE("MAML meta-gradients through layer-normalised layers match central differences", "[maml][gradient][layer-norm]") {
  // Second order differentiates the inner steps through the normalisation's HVP (the cached
  // R-passes beside the support gradient pass); classification as in few-shot learning.
  Rng rng(31);
  for (const auto& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Relu{})}) {
    const auto spec = mlt::NetSpec{{3, 6, 5, 3}, {act, act, nn::Identity{}}, {nn::LayerNorm{0.1}, nn::LayerNorm{0.5}, std::nullopt}};
    const nn::Objective obj(spec.make<double>(), nn::SoftmaxCrossEntropy{});
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
    std::vector<metalearn::Task<metalearn::ClassificationBatch<double>>> tasks(3);
    for (auto& t : tasks) {
      t.support = mlt::classification_batch<double>(3, 3, 6, rng);
      t.query = mlt::classification_batch<double>(3, 3, 9, rng);
    }
    for (int steps : {1, 2, 3}) {
      for (Order order : {Order::first, Order::second}) {
        INFO(obj.describe() << ", " << steps << " steps, order " << static_cast<int>(order));
        Maml maml(obj, options(order, steps, 0.3));
        const auto r = check::meta_gradient(maml, theta, tasks);
        INFO(r.report());
        CHECK(r.ok);
      }
    }
  }
}

TEST_CASE("MAML meta-gradients in float pass the checker's own float differences (tanh)", "[maml][gradient]") {
  const nn::Objective flt(nn::Mlp<float>({1, 8, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  Rng rng(3);
  const Vector<float> theta = mlt::random_theta(flt, rng, 0.2);
  const auto tasks = mlt::sine_tasks<float>(3, 2, 5);
  for (int steps : {1, 2, 5}) {
    Maml maml(flt, options(Order::second, steps));
    const auto r = check::meta_gradient(maml, theta, tasks);
    INFO(r.report());
    CHECK(r.ok);
  }
}

TEST_CASE("MAML: exact second order through clipped inner steps and multi-step loss weights", "[maml][gradient]") {
  const nn::Objective dbl(nn::Mlp<double>({1, 8, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  Rng rng(4);
  const Vector<double> theta = mlt::random_theta(dbl, rng, 0.3);
  const auto tasks = mlt::sine_tasks<double>(4, 3, 6);
  // how large are the raw inner gradients? clip below that so the clips are active
  Vector<double> g(theta.size());
  typename decltype(dbl)::Workspace ws;
  dbl.loss_and_gradient(theta, tasks[0].support, g, ws);
  const double gmax = g.cwiseAbs().maxCoeff(), gnorm = g.norm();
  REQUIRE(gmax > 0);

  struct Case {
    const char* name;
    metalearn::Clip clip;
    std::vector<double> weights;
  };
  const std::vector<Case> cases{
      {"value clip", {0.5 * gmax, 0}, {}},
      {"norm clip", {0, 0.5 * gnorm}, {}},
      {"value and norm clip", {0.7 * gmax, 0.4 * gnorm}, {}},
      {"step weights", {}, {0.2, 0.3, 0.5}},
      {"step weights and clip", {0.6 * gmax, 0.5 * gnorm}, {0.5, 0.0, 1.0}},
  };
  for (const auto& c : cases) {
    for (Order order : {Order::first, Order::second}) {
      INFO(c.name << ", order " << static_cast<int>(order));
      MamlOptions o = options(order, 3);
      o.inner_clip = c.clip;
      o.step_weights = c.weights;
      Maml maml(dbl, o);
      const auto r = check::meta_gradient(maml, theta, tasks);
      INFO(r.report());
      CHECK(r.ok);
    }
  }
}

TEST_CASE("MAML: first order is the query gradient at the adapted weights, second order is not",
          "[maml][gradient]") {
  const nn::Objective obj(nn::Mlp<double>({1, 16, 16, 1}, nn::Relu{}), nn::MeanSquaredError{});
  Rng rng(5);
  const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
  const auto tasks = mlt::sine_tasks<double>(5, 4, 10);
  for (int steps : {1, 3}) {
    Maml first(obj, options(Order::first, steps, 0.01));
    Maml second(obj, options(Order::second, steps, 0.01));
    Vector<double> g1(theta.size()), g2(theta.size()), gq = Vector<double>::Zero(theta.size()), g(theta.size());
    first.meta_loss_and_gradient(theta, tasks, g1);
    second.meta_loss_and_gradient(theta, tasks, g2);
    // the query gradient at the adapted weights, from Maml::adapt and the model alone
    typename decltype(obj)::Workspace ws;
    for (const auto& t : tasks) {
      const Vector<double> fast = first.adapt(theta, t.support);
      obj.loss_and_gradient(fast, t.query, g, ws);
      gq += g / static_cast<double>(tasks.size());
    }
    CHECK(mlt::max_error(g1, gq) < 1e-13);
    // the terms α H g make second order differ, and only second order is the true gradient
    CHECK((g2 - g1).norm() > 1e-3 * g1.norm());
    const double fd_i = [&] {
      Index i = 0;
      (g2 - g1).cwiseAbs().maxCoeff(&i);
      const double h = 1e-6;
      Vector<double> tp = theta, tm = theta;
      tp[i] += h;
      tm[i] -= h;
      const double d = (check::naive_meta_loss(obj, second.options(), tp, tasks) -
                        check::naive_meta_loss(obj, second.options(), tm, tasks)) / (2 * h);
      CHECK(std::abs(d - g2[i]) < 1e-6 * std::max(1.0, std::abs(d)));
      return std::abs(d - g1[i]);
    }();
    CHECK(fd_i > 1e-4);  // first order misses the second-order term at that entry
  }
}
