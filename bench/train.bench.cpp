// One supervised training step of the Fashion-MNIST MLP (bench/README.md):
//   train/step/net:784-256-128-10/batch:<n>/float        forward, backward and Adam, through
//                                                         nn::Objective and optim::Adam, 1 thread
//   train/floor/net:784-256-128-10/batch:<n>/float       the bare Eigen products of that step
// Counters: GFLOP/s (of the products), examples/s, x_floor (step / floor, measured in
// alternating rounds after the timed loop).
#include "floor.hpp"
#include "support.hpp"

#include <metalearn/core/random.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>

#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;
using mlb::Pass;

namespace {

const std::vector<Index> kWidths{784, 256, 128, 10};
using Floor = mlb::FloorNet<float, mlb::DynamicShape, mlb::DynamicShape, mlb::DynamicShape>;

metalearn::ClassificationBatch<float> images(Index n, Rng& rng) {
  metalearn::ClassificationBatch<float> b{metalearn::Matrix<float>(784, n), metalearn::Labels(n)};
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < 784; ++i) b.inputs(i, j) = static_cast<float>(rng.uniform());
    b.targets(j) = static_cast<int>(rng.uniform_index(10));
  }
  return b;
}

void bm_step(benchmark::State& state, Index n) {
  Rng rng(3);
  const nn::Objective model(nn::Mlp<float>(kWidths, nn::Relu{}), nn::SoftmaxCrossEntropy{}, nn::HeUniform{});
  Vector<float> theta(model.parameter_count()), grad(model.parameter_count());
  model.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  const auto batch = images(n, rng);
  decltype(model)::Workspace ws;
  float sink = 0;
  auto step = [&] {
    sink += model.loss_and_gradient(theta, batch, grad, ws);  // forward, backward
    adam.step(theta, grad);                                   // Adam
    benchmark::DoNotOptimize(sink);
  };
  step();  // warm-up: the workspace grows here
  const double seconds = mlb::run_timed(state, step);
  const double macs = static_cast<double>(mlb::pass_macs(Pass::loss_and_gradient, kWidths, n));
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * macs);
  state.counters["examples/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
  if (state.error_occurred()) return;
  Floor floor(kWidths, n, rng);
  auto floor_once = [&] {
    floor.run(Pass::loss_and_gradient, n);
    benchmark::ClobberMemory();
  };
  state.counters["x_floor"] = mlb::paired_ratio(step, floor_once, false, mlb::kPairedShare * seconds);
}

void bm_floor(benchmark::State& state, Index n) {
  Rng rng(11);
  Floor floor(kWidths, n, rng);
  floor.run(Pass::loss_and_gradient, n);  // warm-up: packing buffers are allocated here
  mlb::run_timed(state, [&] {
    floor.run(Pass::loss_and_gradient, n);
    benchmark::ClobberMemory();
  });
  benchmark::DoNotOptimize(floor.sink());
  state.counters["GFLOP/s"] =
      mlb::gflops(2.0 * static_cast<double>(mlb::pass_macs(Pass::loss_and_gradient, kWidths, n)));
  state.counters["examples/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

void register_benchmarks() {
  for (Index n : {32, 128, 512}) {
    const std::string suffix = "/net:784-256-128-10/batch:" + std::to_string(n) + "/float";
    benchmark::RegisterBenchmark(("train/floor" + suffix).c_str(), [=](benchmark::State& st) { bm_floor(st, n); })
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("train/step" + suffix).c_str(), [=](benchmark::State& st) { bm_step(st, n); })
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) { return mlb::run_main(argc, argv, register_benchmarks); }
