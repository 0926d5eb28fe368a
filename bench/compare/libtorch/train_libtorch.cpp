// libtorch side of the supervised-training comparison (bench/compare/README.md): one training
// step (zero_grad, forward, cross-entropy, backward, Adam) of the 784-256-128-10 ReLU MLP on
// random images, the way a libtorch user writes it (torch::nn::Sequential, torch::optim::Adam),
// one thread. Prints one JSON line: the median milliseconds per step.
//   train_libtorch --batch N [--steps S] [--warmup W] [--seed K]
#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  long batch = 128, steps = 200, warmup = 20, seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--batch") batch = value;
    else if (flag == "--steps") steps = value;
    else if (flag == "--warmup") warmup = value;
    else if (flag == "--seed") seed = value;
    else {
      std::fprintf(stderr, "train_libtorch: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  torch::set_num_threads(1);
  // Debian's libtorch calls the BLAS of libblas.so.3; OpenBLAS keeps its own thread count
  // (torch's governs OpenMP only): one thread, as everywhere in the comparison.
  if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set_threads(1);
  torch::manual_seed(static_cast<std::uint64_t>(seed));
  torch::nn::Sequential model(torch::nn::Linear(784, 256), torch::nn::ReLU(), torch::nn::Linear(256, 128),
                              torch::nn::ReLU(), torch::nn::Linear(128, 10));
  torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
  const torch::Tensor x = torch::rand({batch, 784});
  const torch::Tensor y = torch::randint(0, 10, {batch}, torch::kLong);
  std::vector<double> times;
  for (long i = 0; i < warmup + steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    adam.zero_grad();
    const torch::Tensor loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    adam.step();
    if (i >= warmup) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  std::printf("{\"impl\": \"libtorch\", \"batch\": %ld, \"ms_median\": %.6f, \"steps\": %ld}\n", batch,
              1e3 * times[times.size() / 2], steps);
  return 0;
}
