// Peak memory of meta-steps, one configuration per process (scripts/bench runs it for several
// inner-step counts; bench/README.md). Prints one JSON object:
//   algorithm       maml, reptile (SGD on the support set) or imaml (λ = 1, 5 CG iterations)
//   parameters      length of θ
//   bytes           the algorithm's bytes(): workspaces and stored inner states after the meta-steps
//   rss_before_kib  peak resident set (getrusage ru_maxrss) before the algorithm exists,
//                   with the network, θ, the optimizer and the tasks already set up
//   rss_peak_kib    peak resident set after the meta-steps
//   rss_growth_kib  rss_peak_kib − rss_before_kib
// Usage: bench_maml_memory [--algorithm maml|reptile|imaml] [--order 1|2] [--steps K] [--width W]
//                          [--batch B] [--threads T] [--meta-steps M]
//                          (defaults: maml, 2, 1, 40, 25, 1, 3; --order is MAML's)
// Width 40 is the paper's network with compile-time sizes, other widths are run-time networks
// 1-W-W-1; float, mean squared error, 10 support and 10 query examples, α = 0.01.
#include <metalearn/core/random.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using S = float;

namespace {

struct Args {
  std::string algorithm = "maml";
  int order = 2, steps = 1, width = 40, batch = 25, threads = 1, meta_steps = 3;
};

long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;  // KiB on Linux
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--algorithm maml|reptile|imaml] [--order 1|2] [--steps K] [--width W] [--batch B] "
               "[--threads T] [--meta-steps M]\n",
               argv0);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage(argv[0]);
    const std::string key = argv[i];
    if (key == "--algorithm") {
      a.algorithm = argv[++i];
      if (a.algorithm != "maml" && a.algorithm != "reptile" && a.algorithm != "imaml") usage(argv[0]);
      continue;
    }
    char* end = nullptr;
    const long value = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || value < 0) usage(argv[0]);
    const int v = static_cast<int>(value);
    if (key == "--order" && (v == 1 || v == 2)) a.order = v;
    else if (key == "--steps" && v >= 1) a.steps = v;
    else if (key == "--width" && v >= 1) a.width = v;
    else if (key == "--batch" && v >= 1) a.batch = v;
    else if (key == "--threads" && v >= 1) a.threads = v;
    else if (key == "--meta-steps" && v >= 1) a.meta_steps = v;
    else usage(argv[0]);
  }
  return a;
}

template <class Obj, class F>
void with_algorithm(const Obj& obj, const Args& a, F&& f) {
  if (a.algorithm == "reptile") {
    metalearn::ReptileOptions o;
    o.inner_lr = 0.01;
    o.inner_steps = a.steps;
    o.threads = a.threads;
    metalearn::Reptile<Obj> r(obj, o);
    f(r);
  } else if (a.algorithm == "imaml") {
    metalearn::ImamlOptions o;
    o.inner_lr = 0.01;
    o.inner_steps = a.steps;
    o.threads = a.threads;
    metalearn::Imaml<Obj> i(obj, o);
    f(i);
  } else {
    metalearn::MamlOptions o;
    o.inner_lr = 0.01;
    o.inner_steps = a.steps;
    o.order = a.order == 1 ? metalearn::Order::first : metalearn::Order::second;
    o.threads = a.threads;
    metalearn::Maml<Obj> m(obj, o);
    f(m);
  }
}

template <class Obj>
int run(const Obj& obj, const Args& a) {
  metalearn::Rng rng(1);
  metalearn::Vector<S> theta(obj.parameter_count()), grad(obj.parameter_count());
  obj.initialize(theta, rng);
  metalearn::optim::Adam<S> adam(theta.size());
  metalearn::tasks::SineTasks<S> sampler(2);
  std::vector<metalearn::tasks::SineTasks<S>::Task> tasks(static_cast<std::size_t>(a.batch));
  for (auto& t : tasks) sampler.sample(t);
  const long before = peak_rss_kib();

  double loss = 0;
  std::size_t bytes = 0;
  with_algorithm(obj, a, [&](auto& algorithm) {
    for (int m = 0; m < a.meta_steps; ++m) {
      for (auto& t : tasks) sampler.sample(t);
      loss += static_cast<double>(algorithm.meta_loss_and_gradient(theta, tasks, grad));
      adam.step(theta, grad);
    }
    bytes = algorithm.bytes();
  });
  const long peak = peak_rss_kib();
  std::printf(
      "{\"algorithm\": \"%s\", \"order\": %d, \"steps\": %d, \"width\": %d, \"batch\": %d, \"threads\": %d, "
      "\"meta_steps\": %d, \"parameters\": %ld, \"bytes\": %zu, \"rss_before_kib\": %ld, \"rss_peak_kib\": %ld, "
      "\"rss_growth_kib\": %ld, \"mean_meta_loss\": %.6g}\n",
      a.algorithm.c_str(), a.algorithm == "maml" ? a.order : 0, a.steps, a.width, a.batch, a.threads, a.meta_steps,
      static_cast<long>(obj.parameter_count()), bytes, before, peak, peak - before, loss / a.meta_steps);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.width == 40)
    return run(nn::Objective(nn::Mlp<S, nn::Dense<1, 40, nn::Relu>, nn::Dense<40, 40, nn::Relu>, nn::Dense<40, 1>>(),
                             nn::MeanSquaredError{}),
               a);
  const metalearn::Index w = a.width;
  return run(nn::Objective(nn::Mlp<S>({1, w, w, 1}, nn::Relu{}), nn::MeanSquaredError{}), a);
}
