// MAML on sinusoid regression in libtorch (C++), written the straightforward way: a loop over tasks.
//
// The same algorithm as ../maml_torch.py, written as a libtorch user writes it: a functional
// 1-W-W-1 network on explicit weight tensors, torch::autograd::grad in the inner loop
// (create_graph = true for the exact second-order meta-gradient, false for first-order MAML), each
// task's query loss back-propagated into the parameters' .grad as soon as it is computed, and
// torch::optim::Adam for the meta-step.
//
// Prints one JSON line (see ../README.md). With --check-problem FILE it instead reads theta and a
// batch of tasks written by ../check_grads.py and prints the meta-gradient, so that the Python and
// C++ implementations can be compared on identical inputs.

#include <torch/torch.h>

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr int64_t kShot = 10;       // support points and query points per task
constexpr double kInnerLr = 0.01;   // alpha
constexpr double kMetaLr = 1e-3;    // Adam
constexpr double kInitStd = 0.01;   // truncated normal, cut at 2 sigma
constexpr double kPi = 3.14159265358979323846;

using Params = std::vector<torch::Tensor>;  // w1, b1, w2, b2, w3, b3 in torch's (out, in) layout

struct Options {
  int order = 2;
  int64_t inner_steps = 1;
  int64_t width = 40;
  int64_t meta_batch = 25;
  int threads = 1;
  int64_t iterations = 100;
  int64_t warmup = 10;
  uint64_t seed = 0;
  std::string check_problem;
};

struct Tasks {
  torch::Tensor xs, ys, xq, yq;  // each [B, K, 1]
};

constexpr const char* kUsage =
    "usage: maml_libtorch [--order {1,2}] [--inner-steps S] [--width W] [--meta-batch B]\n"
    "                     [--threads T] [--iterations N] [--warmup M] [--seed X]\n"
    "                     [--check-problem FILE]\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::cerr << "maml_libtorch: " << message << "\n" << kUsage;
  std::exit(2);
}

int64_t parse_int(const std::string& flag, const std::string& text, int64_t min) {
  std::size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) usage_error(flag + " expects an integer, got '" + text + "'");
  if (value < min) usage_error(flag + " must be at least " + std::to_string(min));
  return value;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      std::cout << "MAML sine meta-iteration benchmark, libtorch loop over tasks (see README.md)\n" << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("missing value for " + flag);
    const std::string value = argv[++i];
    if (flag == "--order") {
      o.order = static_cast<int>(parse_int(flag, value, 1));
      if (o.order != 1 && o.order != 2) usage_error("--order must be 1 or 2");
    } else if (flag == "--inner-steps") {
      o.inner_steps = parse_int(flag, value, 1);
    } else if (flag == "--width") {
      o.width = parse_int(flag, value, 1);
    } else if (flag == "--meta-batch") {
      o.meta_batch = parse_int(flag, value, 1);
    } else if (flag == "--threads") {
      o.threads = static_cast<int>(parse_int(flag, value, 1));
    } else if (flag == "--iterations") {
      o.iterations = parse_int(flag, value, 1);
    } else if (flag == "--warmup") {
      o.warmup = parse_int(flag, value, 0);
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(parse_int(flag, value, 0));
    } else if (flag == "--check-problem") {
      o.check_problem = value;
    } else {
      usage_error("unknown flag " + flag);
    }
  }
  return o;
}

// --- BLAS discovery --------------------------------------------------------------------------

struct BlasInfo {
  std::string path;
  std::string config;
};

// Which library sgemm_ resolves to in this process (Debian's libtorch calls the generic BLAS
// interface of libblas.so.3, whichever implementation the alternatives system selected). If it is
// OpenBLAS, also give it `threads` threads: at::set_num_threads only governs OpenMP.
BlasInfo blas_info(int threads) {
  BlasInfo info{"none (sgemm_ not resolved)", ""};
  if (void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_")) {
    Dl_info where{};
    if (dladdr(sgemm, &where) != 0 && where.dli_fname != nullptr) {
      char resolved[4096];
      info.path = realpath(where.dli_fname, resolved) != nullptr ? resolved : where.dli_fname;
    } else {
      info.path = "unknown";
    }
  }
  using GetConfig = char* (*)();
  using SetThreads = void (*)(int);
  if (auto get_config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) {
    info.config = get_config();
  }
  if (auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_threads(threads);
  }
  return info;
}

// --- the workload ----------------------------------------------------------------------------

// Weights: truncated normal (sigma 0.01, cut at 2 sigma) as the MAML paper, drawn the way PyTorch's
// nn.init.trunc_normal_ does it (inverse CDF of a uniform); biases zero.
Params init_params(int64_t width) {
  const auto norm_cdf = [](double v) { return 0.5 * (1.0 + std::erf(v / std::sqrt(2.0))); };
  const double lo = norm_cdf(-2.0), hi = norm_cdf(2.0);
  Params params;
  for (auto [out, in] : {std::pair<int64_t, int64_t>{width, 1}, {width, width}, {1, width}}) {
    auto w = torch::empty({out, in}).uniform_(2 * lo - 1, 2 * hi - 1);
    w.erfinv_().mul_(kInitStd * std::sqrt(2.0)).clamp_(-2 * kInitStd, 2 * kInitStd);
    params.push_back(w.requires_grad_());
    params.push_back(torch::zeros({out}, torch::requires_grad()));
  }
  return params;
}

Tasks sample_tasks(int64_t meta_batch) {
  auto amplitude = torch::empty({meta_batch, 1, 1}).uniform_(0.1, 5.0);
  auto phase = torch::empty({meta_batch, 1, 1}).uniform_(0.0, kPi);
  auto x = torch::empty({meta_batch, 2 * kShot, 1}).uniform_(-5.0, 5.0);
  auto y = amplitude * torch::sin(x - phase);
  using torch::indexing::Slice;
  return {x.index({Slice(), Slice(0, kShot)}), y.index({Slice(), Slice(0, kShot)}),
          x.index({Slice(), Slice(kShot, torch::indexing::None)}),
          y.index({Slice(), Slice(kShot, torch::indexing::None)})};
}

torch::Tensor forward(const Params& p, const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  auto h = torch::relu(F::linear(x, p[0], p[1]));
  h = torch::relu(F::linear(h, p[2], p[3]));
  return F::linear(h, p[4], p[5]);
}

// Inner loop: S steps of gradient descent on one task's support loss, starting from params.
Params adapt(const Params& params, const torch::Tensor& x, const torch::Tensor& y, int order,
             int64_t inner_steps) {
  Params fast = params;
  for (int64_t s = 0; s < inner_steps; ++s) {
    auto loss = torch::mse_loss(forward(fast, x), y);
    auto grads = torch::autograd::grad({loss}, fast, /*grad_outputs=*/{}, /*retain_graph=*/c10::nullopt,
                                       /*create_graph=*/order == 2);
    for (std::size_t i = 0; i < fast.size(); ++i) fast[i] = fast[i] - kInnerLr * grads[i];
  }
  return fast;
}

// Adds the meta-gradient of the mean query loss over the B tasks to each parameter's .grad.
void accumulate_meta_gradient(const Params& params, const Tasks& tasks, int order, int64_t inner_steps) {
  const int64_t meta_batch = tasks.xs.size(0);
  for (int64_t i = 0; i < meta_batch; ++i) {
    auto fast = adapt(params, tasks.xs[i], tasks.ys[i], order, inner_steps);
    auto query_loss = torch::mse_loss(forward(fast, tasks.xq[i]), tasks.yq[i]);
    (query_loss / meta_batch).backward();
  }
}

// --- check mode: meta-gradient for a given theta and tasks ------------------------------------

// The problem file written by check_grads.py: a header line
//   maml-problem order inner_steps width meta_batch k
// then w1 b1 w2 b2 w3 b3 (torch layout, row-major) and xs ys xq yq ([B, K]), whitespace-separated.
int run_check(const std::string& file) {
  std::ifstream in(file);
  std::string magic;
  int order = 0;
  int64_t inner_steps = 0, width = 0, meta_batch = 0, k = 0;
  if (!(in >> magic >> order >> inner_steps >> width >> meta_batch >> k) || magic != "maml-problem") {
    std::cerr << "maml_libtorch: cannot read problem file " << file << "\n";
    return 1;
  }
  const auto read = [&in](std::vector<int64_t> shape) {
    auto t = torch::empty(shape);
    auto* data = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (!(in >> data[i])) throw std::runtime_error("problem file ends early");
    }
    return t;
  };
  Params params;
  for (auto [out, in_features] : {std::pair<int64_t, int64_t>{width, 1}, {width, width}, {1, width}}) {
    params.push_back(read({out, in_features}).requires_grad_());
    params.push_back(read({out}).requires_grad_());
  }
  Tasks tasks;
  tasks.xs = read({meta_batch, k, 1});
  tasks.ys = read({meta_batch, k, 1});
  tasks.xq = read({meta_batch, k, 1});
  tasks.yq = read({meta_batch, k, 1});

  accumulate_meta_gradient(params, tasks, order, inner_steps);
  std::cout.precision(std::numeric_limits<float>::max_digits10);
  std::cout << "{\"impl\": \"libtorch_loop\", \"grads\": [";
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto g = params[i].grad().contiguous();
    std::cout << (i ? ", [" : "[");
    for (int64_t j = 0; j < g.numel(); ++j) std::cout << (j ? ", " : "") << g.data_ptr<float>()[j];
    std::cout << "]";
  }
  std::cout << "]}\n";
  return 0;
}

// --- timing and report -----------------------------------------------------------------------

// Linear interpolation between closest ranks, as maml_common.percentile.
double percentile(const std::vector<double>& sorted, double q) {
  const double position = q * static_cast<double>(sorted.size() - 1);
  const auto low = static_cast<std::size_t>(std::floor(position));
  const auto high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - static_cast<double>(low));
}

std::string json_string(const std::string& s) {
  std::ostringstream out;
  out << '"';
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out << ' ';
    } else {
      out << c;
    }
  }
  out << '"';
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  at::set_num_threads(o.threads);
  at::set_num_interop_threads(1);
  torch::manual_seed(o.seed);
  const BlasInfo blas = blas_info(o.threads);

  if (!o.check_problem.empty()) return run_check(o.check_problem);

  Params params = init_params(o.width);
  torch::optim::Adam optimizer(params, torch::optim::AdamOptions(kMetaLr));
  const auto meta_iteration = [&] {
    const Tasks tasks = sample_tasks(o.meta_batch);
    optimizer.zero_grad();
    accumulate_meta_gradient(params, tasks, o.order, o.inner_steps);
    optimizer.step();
  };

  for (int64_t i = 0; i < o.warmup; ++i) meta_iteration();
  std::vector<double> times_ms;
  times_ms.reserve(static_cast<std::size_t>(o.iterations));
  for (int64_t i = 0; i < o.iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    meta_iteration();
    const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
    times_ms.push_back(elapsed.count());
  }
  std::sort(times_ms.begin(), times_ms.end());

  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mb = static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB

  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(4);
  out << "{\"impl\": \"libtorch_loop\", \"order\": " << o.order << ", \"inner_steps\": " << o.inner_steps
      << ", \"width\": " << o.width << ", \"meta_batch\": " << o.meta_batch << ", \"threads\": " << o.threads
      << ", \"iterations\": " << o.iterations << ", \"median_ms\": " << percentile(times_ms, 0.5)
      << ", \"p10_ms\": " << percentile(times_ms, 0.1) << ", \"p90_ms\": " << percentile(times_ms, 0.9);
  out.precision(1);
  out << ", \"peak_rss_mb\": " << peak_rss_mb << ", \"blas\": " << json_string(blas.path)
      << ", \"blas_config\": " << json_string(blas.config) << ", \"torch_version\": " << json_string(TORCH_VERSION)
      << "}\n";
  std::cout << out.str() << std::flush;
  return 0;
}
