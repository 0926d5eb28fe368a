// metalearn's side of bench/compare: one MAML sine meta-iteration (sample the meta-batch, the
// inner loops, the meta-gradient, the Adam step), timed per iteration, with the same flags and
// the same one-line JSON report as maml_torch.py, maml_torch_batched.py and maml_libtorch.cpp.
// See bench/compare/README.md for the workload.
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>
#include <metalearn/version.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

struct Flags {
  int order = 2, inner_steps = 1, width = 40, meta_batch = 25, threads = 1;
  long iterations = 200, warmup = 20, seed = 0;
};

[[noreturn]] void usage(const std::string& error) {
  std::cerr << "compare_metalearn: " << error
            << "\nusage: compare_metalearn [--order 1|2] [--inner-steps S] [--width W] [--meta-batch B] [--threads T]"
               " [--iterations N] [--warmup M] [--seed X]\n";
  std::exit(error.empty() ? 0 : 2);
}

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("");
    if (i + 1 >= argc) usage(flag + " needs a value");
    char* end = nullptr;
    const long v = std::strtol(argv[++i], &end, 10);
    if (*end != '\0' || v < 0) usage(flag + " expects a non-negative integer, got '" + argv[i] + "'");
    if (flag == "--order" && (v == 1 || v == 2)) f.order = static_cast<int>(v);
    else if (flag == "--inner-steps" && v >= 1) f.inner_steps = static_cast<int>(v);
    else if (flag == "--width" && v >= 1) f.width = static_cast<int>(v);
    else if (flag == "--meta-batch" && v >= 1) f.meta_batch = static_cast<int>(v);
    else if (flag == "--threads" && v >= 1) f.threads = static_cast<int>(v);
    else if (flag == "--iterations" && v >= 1) f.iterations = v;
    else if (flag == "--warmup") f.warmup = v;
    else if (flag == "--seed") f.seed = v;
    else usage("bad flag or value: " + flag + " " + argv[i]);
  }
  return f;
}

template <class Net>
int run(const Flags& f, Net net) {
  using namespace metalearn;
  const nn::Objective model(std::move(net), nn::MeanSquaredError{}, nn::TruncatedNormal{0.01});
  Rng rng(static_cast<std::uint64_t>(f.seed));
  Vector<float> theta(model.parameter_count());
  model.initialize(theta, rng);
  MamlOptions o;
  o.order = f.order == 1 ? Order::first : Order::second;
  o.inner_steps = f.inner_steps;
  o.inner_lr = 0.01;
  o.threads = f.threads;
  Maml maml(model, o);
  optim::Adam<float> adam(theta.size(), {1e-3});
  tasks::SineTasks<float> sampler(static_cast<std::uint64_t>(f.seed));
  TrainerOptions to;
  to.meta_batch = f.meta_batch;
  MetaTrainer trainer(maml, adam, sampler, to);

  std::vector<double> ms;
  ms.reserve(static_cast<std::size_t>(f.iterations));
  auto last = std::chrono::steady_clock::now();
  trainer.run(theta, f.warmup + f.iterations, [&](const Progress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (p.iteration > f.warmup) ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  });
  std::sort(ms.begin(), ms.end());
  auto quantile = [&](double q) { return ms[static_cast<std::size_t>(q * static_cast<double>(ms.size() - 1) + 0.5)]; };
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"impl\": \"metalearn\", \"order\": %d, \"inner_steps\": %d, \"width\": %d, \"meta_batch\": %d, \"threads\": %d, "
      "\"iterations\": %ld, \"median_ms\": %.6f, \"p10_ms\": %.6f, \"p90_ms\": %.6f, \"peak_rss_mb\": %.3f, "
      "\"blas\": \"none (Eigen %d.%d.%d, metalearn %s)\", \"torch_version\": \"\", \"bytes_held\": %zu}\n",
      f.order, f.inner_steps, f.width, f.meta_batch, f.threads, f.iterations, quantile(0.5), quantile(0.1),
      quantile(0.9), static_cast<double>(usage.ru_maxrss) / 1024.0, EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
      EIGEN_MINOR_VERSION, metalearn::version_string, maml.bytes());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse(argc, argv);
  using namespace metalearn::nn;
  if (f.width == 40) return run(f, Mlp<float, Dense<1, 40, Relu>, Dense<40, 40, Relu>, Dense<40, 1>>());
  return run(f, Mlp<float>({1, f.width, f.width, 1}, Relu{}));
}
