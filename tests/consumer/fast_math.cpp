// A consumer compiled with -ffast-math (tests/consumer/run, check fast_math): metalearn is
// header-only, so its checks are compiled with the consumer's flags, under which the compiler
// may assume that no value is NaN or infinite. Every check that guards against non-finite
// values must still fire: a NaN input, a non-finite option, a non-finite gradient given to an
// optimizer, the trainer's non-finite policy, MAML's check of its inner iterates, and the
// checkpoint's refusal to save a diverged θ.
// Exits non-zero, naming the check, if any of them lets a NaN through.
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/metalearn.hpp>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#if !defined(__FINITE_MATH_ONLY__) || !__FINITE_MATH_ONLY__
#error "compile this file with -ffast-math (or -ffinite-math-only)"
#endif

namespace {

int failures = 0;

template <class E, class F>
void expect(const char* name, F&& f) {
  try {
    f();
  } catch (const E& e) {
    std::printf("  ok: %s: %s\n", name, e.what());
    return;
  } catch (const std::exception& e) {
    std::printf("  FAILED: %s: wrong exception: %s\n", name, e.what());
    ++failures;
    return;
  }
  std::printf("  FAILED: %s: nothing was thrown\n", name);
  ++failures;
}

// A value the optimiser cannot see as a constant (a NaN or ∞ computed at run time).
double runtime_value(const char* text) { return std::strtod(text, nullptr); }

// A model whose loss and gradient become NaN once θ₀ leaves [−1, 1]: meta-training with it
// produces a NaN meta-gradient that the trainer must refuse.
struct Diverging {
  using Scalar = double;
  using Batch = metalearn::RegressionBatch<double>;
  struct Workspace {};
  metalearn::Index parameter_count() const { return 2; }
  void initialize(metalearn::VectorRef<double> theta, metalearn::Rng&) const { theta.setConstant(0.5); }
  double loss_and_gradient(metalearn::ConstVectorRef<double> theta, const Batch&, metalearn::VectorRef<double> grad,
                           Workspace&) const {
    const double nan = runtime_value("nan");
    grad.setConstant(nan);
    return theta[0] + nan;
  }
};

struct FixedTask {
  using Task = metalearn::Task<Diverging::Batch>;
  void sample(Task& task) {
    task.support = {metalearn::Matrix<double>::Zero(1, 2), metalearn::Matrix<double>::Zero(1, 2)};
    task.query = task.support;
  }
};

}  // namespace

int main() {
  namespace ml = metalearn;
  namespace nn = metalearn::nn;
  const double nan = runtime_value("nan"), inf = runtime_value("inf");
  std::printf("fast-math consumer (__FINITE_MATH_ONLY__ = %d):\n", __FINITE_MATH_ONLY__);

  if (ml::detail::is_finite(nan) || ml::detail::is_finite(inf) || !ml::detail::is_finite(1.0)) {
    std::printf("  FAILED: is_finite\n");
    ++failures;
  }
  nn::Objective model(nn::Mlp<double>({2, 4, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  ml::Rng rng(3);
  ml::Vector<double> theta(model.parameter_count()), grad(model.parameter_count());
  model.initialize(theta, rng);
  ml::RegressionBatch<double> batch{ml::Matrix<double>::Constant(2, 3, 0.5), ml::Matrix<double>::Zero(1, 3)};
  decltype(model)::Workspace ws;
  batch.inputs(1, 2) = nan;
  expect<ml::invalid_argument>("a NaN input", [&] { model.loss_and_gradient(theta, batch, grad, ws); });
  batch.inputs(1, 2) = 0.5;
  batch.targets(0, 1) = inf;
  expect<ml::invalid_argument>("an infinite target", [&] { model.loss_and_gradient(theta, batch, grad, ws); });

  expect<ml::invalid_argument>("a NaN Adam learning rate", [&] { ml::optim::Adam<double>(3, {nan}); });
  expect<ml::invalid_argument>("a NaN clip norm", [&] { ml::Clip{0, nan}.validate("fast_math"); });
  expect<ml::invalid_argument>("a NaN inner learning rate", [&] {
    ml::MamlOptions o;
    o.inner_lr = nan;
    ml::Maml<decltype(model)> maml(model, o);
  });
  ml::optim::Adam<double> adam(theta.size());
  ml::Vector<double> bad = ml::Vector<double>::Zero(theta.size());
  bad[3] = nan;
  const ml::Vector<double> before = theta;
  expect<ml::invalid_argument>("a NaN gradient given to Adam", [&] { adam.step(theta, bad); });
  if (theta != before) {
    std::printf("  FAILED: Adam changed theta on a NaN gradient\n");
    ++failures;
  }

  // The trainer's policy: a NaN meta-gradient (no inner step: the query gradient at θ) and a
  // NaN inner iterate (one inner step) both throw, θ unchanged.
  for (int steps : {0, 1}) {
    ml::MamlOptions o;
    o.order = ml::Order::first;
    o.inner_steps = steps;
    ml::Maml<Diverging> maml(Diverging{}, o);
    ml::optim::Sgd<double> sgd(2, {0.1});
    FixedTask tasks;
    ml::MetaTrainer trainer(maml, sgd, tasks, {2});
    ml::Vector<double> t = ml::Vector<double>::Constant(2, 0.5);
    expect<ml::numerical_error>(steps == 0 ? "a NaN meta-gradient in MetaTrainer" : "a NaN inner iterate in MetaTrainer",
                                [&] { trainer.run(t, 1); });
    if (t[0] != 0.5 || t[1] != 0.5) {
      std::printf("  FAILED: MetaTrainer applied a NaN update\n");
      ++failures;
    }
  }

  ml::Vector<double> diverged = theta;
  diverged[0] = nan;
  struct Counters {
    ml::Index iteration() const { return 1; }
    ml::Index skipped() const { return 0; }
  } counters;
  const std::string path = "fast_math_consumer.ckpt";
  expect<ml::invalid_argument>("saving a NaN theta",
                               [&] { ml::io::save_checkpoint(path, "m", diverged, adam, counters, rng); });
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
    std::remove(path.c_str());
    std::printf("  FAILED: a checkpoint of a NaN theta was written\n");
    ++failures;
  }
  std::printf("fast-math consumer: %s\n", failures == 0 ? "every check fired" : "CHECKS LET NaN THROUGH");
  return failures == 0 ? 0 : 1;
}
