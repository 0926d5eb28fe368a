// metalearn's side of bench/compare: one MAML meta-iteration (sample the meta-batch, the inner
// loops, the meta-gradient, the Adam step), timed per iteration, with the same flags and the same
// one-line JSON report as maml_torch.py, maml_torch_batched.py (and, for sine, maml_libtorch.cpp).
// Two workloads (bench/compare/README.md describes both):
//   --workload sine      sinusoid regression, 1-W-W-1 network, MSE, alpha 0.01 (the default)
//   --workload omniglot  N-way K-shot episodes of synthetic 28x28 images (--ways N --shots K),
//                        784-256-128-64-64-N network, softmax cross-entropy, alpha 0.4
// With --check-problem FILE it instead reads θ and a meta-batch written by check_grads.py and
// prints the meta-gradient, so that it can be compared with PyTorch's on identical inputs.
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>
#include <metalearn/tasks/task.hpp>
#include <metalearn/version.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using metalearn::Index;

constexpr Index kPixels = 28 * 28;  // omniglot images, flattened
const std::vector<Index> kOmniglotHidden{256, 128, 64, 64};

struct Flags {
  std::string workload = "sine";
  int order = 2, inner_steps = 1, width = 40, meta_batch = -1, threads = 1, ways = 5, shots = 1;
  long iterations = 200, warmup = 20, seed = 0;
  std::string check_problem;
  bool omniglot() const { return workload == "omniglot"; }
};

[[noreturn]] void usage(const std::string& error) {
  (error.empty() ? std::cout : std::cerr)
      << (error.empty() ? "" : "compare_metalearn: " + error + "\n")
      << "usage: compare_metalearn [--workload sine|omniglot] [--order 1|2] [--inner-steps S] [--width W]\n"
         "                         [--ways N] [--shots K] [--meta-batch B] [--threads T] [--iterations N]\n"
         "                         [--warmup M] [--seed X]\n"
         "       compare_metalearn --check-problem FILE\n"
         "  --width: sine only (default 40); --ways, --shots: omniglot only (default 5-way 1-shot);\n"
         "  --meta-batch defaults to 25 (sine) or 32 (omniglot)\n";
  std::exit(error.empty() ? 0 : 2);
}

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") usage("");
    if (i + 1 >= argc) usage(flag + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--workload") {
      if (value != "sine" && value != "omniglot") usage("--workload takes sine or omniglot, got '" + value + "'");
      f.workload = value;
      continue;
    }
    if (flag == "--check-problem") {
      f.check_problem = value;
      continue;
    }
    char* end = nullptr;
    const long v = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || v < 0) usage(flag + " expects a non-negative integer, got '" + value + "'");
    if (flag == "--order" && (v == 1 || v == 2)) f.order = static_cast<int>(v);
    else if (flag == "--inner-steps" && v >= 1) f.inner_steps = static_cast<int>(v);
    else if (flag == "--width" && v >= 1) f.width = static_cast<int>(v);
    else if (flag == "--meta-batch" && v >= 1) f.meta_batch = static_cast<int>(v);
    else if (flag == "--threads" && v >= 1) f.threads = static_cast<int>(v);
    else if (flag == "--ways" && v >= 2) f.ways = static_cast<int>(v);
    else if (flag == "--shots" && v >= 1) f.shots = static_cast<int>(v);
    else if (flag == "--iterations" && v >= 1) f.iterations = v;
    else if (flag == "--warmup") f.warmup = v;
    else if (flag == "--seed") f.seed = v;
    else usage("bad flag or value: " + flag + " " + value);
  }
  if (f.meta_batch < 0) f.meta_batch = f.omniglot() ? 32 : 25;
  return f;
}

/// Synthetic N-way K-shot episodes in the shape of the MAML paper's Omniglot protocol: K support
/// and K query images per class, each 784 uniform pixels in [0, 1], labels 0..N-1 (class c for
/// the examples c·K … c·K + K − 1). The time of a meta-iteration does not depend on the pixels.
struct SyntheticEpisodes {
  using Task = metalearn::Task<metalearn::ClassificationBatch<float>>;

  Index ways, shots;
  metalearn::Rng rng;

  void fill(metalearn::ClassificationBatch<float>& batch) {
    const Index n = ways * shots;
    if (batch.inputs.rows() != kPixels || batch.inputs.cols() != n) batch.inputs.resize(kPixels, n);
    if (batch.targets.size() != n) batch.targets.resize(n);
    float* pixel = batch.inputs.data();
    for (Index i = 0, count = batch.inputs.size(); i < count; ++i) pixel[i] = static_cast<float>(rng.uniform());
    for (Index j = 0; j < n; ++j) batch.targets(j) = static_cast<int>(j / shots);
  }
  void sample(Task& task) {
    fill(task.support);
    fill(task.query);
  }
};

/// p10 / median / p90 as in maml_common.percentile: linear interpolation between closest ranks.
double percentile(const std::vector<double>& sorted, double q) {
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto low = static_cast<std::size_t>(std::floor(position));
  const std::size_t high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - static_cast<double>(low));
}

/// Runs M warm-up and N timed meta-iterations of MetaTrainer and prints the JSON line.
template <class Model, class Sampler>
int run(const Flags& f, const Model& model, Sampler& sampler, double inner_lr, const std::string& workload_fields) {
  using namespace metalearn;
  Rng rng(static_cast<std::uint64_t>(f.seed));
  Vector<float> theta(model.parameter_count());
  model.initialize(theta, rng);
  MamlOptions o;
  o.order = f.order == 1 ? Order::first : Order::second;
  o.inner_steps = f.inner_steps;
  o.inner_lr = inner_lr;
  o.threads = f.threads;
  Maml maml(model, o);
  optim::Adam<float> adam(theta.size(), {1e-3});
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
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "{\"impl\": \"metalearn\", \"order\": %d, \"inner_steps\": %d, %s, \"meta_batch\": %d, \"threads\": %d, "
      "\"iterations\": %ld, \"median_ms\": %.6f, \"p10_ms\": %.6f, \"p90_ms\": %.6f, \"peak_rss_mb\": %.3f, "
      "\"blas\": \"none (Eigen %d.%d.%d, metalearn %s)\", \"torch_version\": \"\", \"bytes_held\": %zu}\n",
      f.order, f.inner_steps, workload_fields.c_str(), f.meta_batch, f.threads, f.iterations, percentile(ms, 0.5),
      percentile(ms, 0.1), percentile(ms, 0.9), static_cast<double>(usage.ru_maxrss) / 1024.0, EIGEN_WORLD_VERSION,
      EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, metalearn::version_string, maml.bytes());
  return 0;
}

template <class Net>
int run_sine(const Flags& f, Net net) {
  using namespace metalearn;
  const nn::Objective model(std::move(net), nn::MeanSquaredError{}, nn::TruncatedNormal{0.01});
  tasks::SineTasks<float> sampler(static_cast<std::uint64_t>(f.seed));
  return run(f, model, sampler, 0.01, "\"width\": " + std::to_string(f.width));
}

std::vector<Index> omniglot_widths(Index ways) {
  std::vector<Index> widths{kPixels};
  widths.insert(widths.end(), kOmniglotHidden.begin(), kOmniglotHidden.end());
  widths.push_back(ways);
  return widths;
}

int run_omniglot(const Flags& f) {
  using namespace metalearn;
  const std::vector<Index> widths = omniglot_widths(f.ways);
  const nn::Objective model(nn::Mlp<float>(widths, nn::Relu{}), nn::SoftmaxCrossEntropy{}, nn::TruncatedNormal{0.01});
  // stream 1: the episodes' draws are independent of θ's initialisation from the same seed
  SyntheticEpisodes sampler{f.ways, f.shots, Rng(static_cast<std::uint64_t>(f.seed), 1)};
  std::string network;
  for (Index w : widths) network += (network.empty() ? "" : "-") + std::to_string(w);
  const std::string fields = "\"workload\": \"omniglot\", \"network\": \"" + network + "\", \"ways\": " +
                             std::to_string(f.ways) + ", \"shots\": " + std::to_string(f.shots);
  return run(f, model, sampler, 0.4, fields);
}

// --- --check-problem ----------------------------------------------------------------------------
//
// The file (written by check_grads.py) holds, whitespace-separated:
//   metalearn-problem LOSS ORDER INNER_STEPS INNER_LR META_BATCH SUPPORT QUERY L W0 W1 … WL
//   then for each layer l = 1…L: W_l (W_l × W_{l−1} values, torch's row-major (out, in)), b_l
//   then per task, in order: support inputs (SUPPORT × W0, one example after the other),
//   support targets (SUPPORT × WL reals for mse, SUPPORT labels for softmax_cross_entropy),
//   query inputs, query targets.
// LOSS is mse or softmax_cross_entropy; the network has ReLU hidden layers and a linear output.
// Prints {"meta_loss": x, "grads": [[W_1 row-major], [b_1], …]}.

[[noreturn]] void bad_problem(const std::string& what) {
  std::cerr << "compare_metalearn: --check-problem: " << what << "\n";
  std::exit(2);
}

template <class T>
T read(std::istream& in, const char* what) {
  T value{};
  if (!(in >> value)) bad_problem(std::string("cannot read ") + what);
  return value;
}

template <class Loss>
int check_problem(std::istream& in, const std::vector<Index>& widths, int order, int inner_steps, double inner_lr,
                  Index meta_batch, Index support, Index query) {
  using namespace metalearn;
  const nn::Objective model(nn::Mlp<float>(widths, nn::Relu{}), Loss{});
  using Model = std::decay_t<decltype(model)>;
  const auto& net = model.network();
  Vector<float> theta(model.parameter_count());
  for (Index l = 0; l < net.layer_count(); ++l) {
    const Index rows = net.layer_output_size(l), cols = net.layer_input_size(l), off = net.layer_offset(l);
    for (Index i = 0; i < rows; ++i)  // torch's W(i, j) at i·in + j; metalearn's at off + i + j·out
      for (Index j = 0; j < cols; ++j) theta(off + i + j * rows) = read<float>(in, "theta");
    for (Index i = 0; i < rows; ++i) theta(off + rows * cols + i) = read<float>(in, "theta");
  }
  const Index in_size = widths.front(), out_size = widths.back();
  auto read_batch = [&](typename Model::Batch& b, Index n) {
    b.inputs.resize(in_size, n);
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < in_size; ++i) b.inputs(i, j) = read<float>(in, "inputs");
    if constexpr (std::is_same_v<Loss, nn::SoftmaxCrossEntropy>) {
      b.targets.resize(n);
      for (Index j = 0; j < n; ++j) b.targets(j) = read<int>(in, "labels");
    } else {
      b.targets.resize(out_size, n);
      for (Index j = 0; j < n; ++j)
        for (Index i = 0; i < out_size; ++i) b.targets(i, j) = read<float>(in, "targets");
    }
  };
  std::vector<Task<typename Model::Batch>> tasks(static_cast<std::size_t>(meta_batch));
  for (auto& t : tasks) {
    read_batch(t.support, support);
    read_batch(t.query, query);
  }
  std::string extra;
  if (in >> extra) bad_problem("unexpected data after the last task");

  MamlOptions o;
  o.order = order == 1 ? Order::first : Order::second;
  o.inner_steps = inner_steps;
  o.inner_lr = inner_lr;
  Maml maml(model, o);
  Vector<float> grad(model.parameter_count());
  const float loss = maml.meta_loss_and_gradient(theta, tasks, grad);

  std::string out = "{\"meta_loss\": " + std::to_string(loss) + ", \"grads\": [";
  char number[32];
  auto append = [&](float v, bool first) {
    std::snprintf(number, sizeof number, "%s%.9g", first ? "" : ", ", static_cast<double>(v));
    out += number;
  };
  for (Index l = 0; l < net.layer_count(); ++l) {
    const Index rows = net.layer_output_size(l), cols = net.layer_input_size(l), off = net.layer_offset(l);
    out += l == 0 ? "[" : ", [";
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) append(grad(off + i + j * rows), i == 0 && j == 0);
    out += "], [";
    for (Index i = 0; i < rows; ++i) append(grad(off + rows * cols + i), i == 0);
    out += "]";
  }
  std::cout << out << "]}\n";
  return 0;
}

int run_check(const std::string& path) {
  std::ifstream in(path);
  if (!in) bad_problem("cannot open " + path);
  if (read<std::string>(in, "the header") != "metalearn-problem") bad_problem(path + " is not a metalearn-problem file");
  const auto loss = read<std::string>(in, "the loss");
  const int order = read<int>(in, "the order");
  const int inner_steps = read<int>(in, "the inner steps");
  const double inner_lr = read<double>(in, "the inner learning rate");
  const auto meta_batch = read<Index>(in, "the meta-batch");
  const auto support = read<Index>(in, "the support size");
  const auto query = read<Index>(in, "the query size");
  const auto layers = read<Index>(in, "the layer count");
  if (order < 1 || order > 2 || inner_steps < 1 || meta_batch < 1 || support < 1 || query < 1 || layers < 1)
    bad_problem("bad header values");
  std::vector<Index> widths;
  for (Index l = 0; l <= layers; ++l) widths.push_back(read<Index>(in, "a width"));
  if (loss == "mse")
    return check_problem<metalearn::nn::MeanSquaredError>(in, widths, order, inner_steps, inner_lr, meta_batch, support,
                                                          query);
  if (loss == "softmax_cross_entropy")
    return check_problem<metalearn::nn::SoftmaxCrossEntropy>(in, widths, order, inner_steps, inner_lr, meta_batch,
                                                             support, query);
  bad_problem("unknown loss '" + loss + "'");
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = parse(argc, argv);
  if (!f.check_problem.empty()) return run_check(f.check_problem);
  if (f.omniglot()) return run_omniglot(f);
  using namespace metalearn::nn;
  if (f.width == 40) return run_sine(f, Mlp<float, Dense<1, 40, Relu>, Dense<40, 40, Relu>, Dense<40, 1>>());
  return run_sine(f, Mlp<float>({1, f.width, f.width, 1}, Relu{}));
}
