// Network passes and their floors (bench/README.md):
//   nn/<pass>/net:<widths>/batch:<n>/<scalar>        the pass, through nn::Objective / nn::Mlp
//   nn/floor/<pass>/net:<widths>/batch:<n>/<scalar>  the bare Eigen products of that pass
// for the MAML paper's 1-40-40-1 ReLU network (compile-time sizes, mean squared error, batch 10)
// and a 784-256-256-10 ReLU network (run-time sizes, softmax cross-entropy, batch 64).
// Counters: GFLOP/s, x_floor (pass / its floor) and, for the Hessian-vector products, x_grad
// (pass / loss_and_gradient), the ratios measured in alternating rounds. And
//   nn/layer_norm/<pass>/net:784-256-128-64-64-5/batch:25/float
// the few-shot example's network with LayerNorm on its hidden layers (5-way 5-shot support
// set), with x_plain: the pass / the same pass of the network without normalisation.
#include "floor.hpp"
#include "support.hpp"

#include <metalearn/core/random.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;
using mlb::Pass;

namespace {

// The cached product is the library's (model.hpp, CachedPassKey); this benchmark times it.
constexpr metalearn::CachedPassKey kPassKey = metalearn::detail::KeyIssuer::cached_pass();

template <class S>
using PaperNet = nn::Mlp<S, nn::Dense<1, 40, nn::Relu>, nn::Dense<40, 40, nn::Relu>, nn::Dense<40, 1>>;
template <class S>
using PaperFloor = mlb::FloorNet<S, mlb::Shape<1, 40>, mlb::Shape<40, 40>, mlb::Shape<40, 1>>;
template <class S>
using MnistFloor = mlb::FloorNet<S, mlb::DynamicShape, mlb::DynamicShape, mlb::DynamicShape>;

const std::vector<Index> kPaperWidths{1, 40, 40, 1};
const std::vector<Index> kMnistWidths{784, 256, 256, 10};
constexpr Index kPaperBatch = 10;
constexpr Index kMnistBatch = 64;

template <class S>
auto paper_objective() {
  return nn::Objective(PaperNet<S>(), nn::MeanSquaredError{});
}
template <class S>
auto mnist_objective() {
  return nn::Objective(nn::Mlp<S>(kMnistWidths, nn::Relu{}), nn::SoftmaxCrossEntropy{});
}

// Sine regression examples: x ~ U[-5, 5], y = sin(x).
template <class S>
metalearn::RegressionBatch<S> paper_batch(Rng& rng) {
  metalearn::RegressionBatch<S> b;
  b.inputs.resize(1, kPaperBatch);
  b.targets.resize(1, kPaperBatch);
  for (Index j = 0; j < kPaperBatch; ++j) {
    const double x = rng.uniform(-5, 5);
    b.inputs(0, j) = static_cast<S>(x);
    b.targets(0, j) = static_cast<S>(std::sin(x));
  }
  return b;
}

// Image-like examples: pixels ~ U[0, 1], labels uniform over 10 classes.
template <class S>
metalearn::ClassificationBatch<S> mnist_batch(Rng& rng) {
  metalearn::ClassificationBatch<S> b;
  b.inputs.resize(784, kMnistBatch);
  b.targets.resize(kMnistBatch);
  for (Index j = 0; j < kMnistBatch; ++j) {
    for (Index i = 0; i < 784; ++i) b.inputs(i, j) = static_cast<S>(rng.uniform());
    b.targets(j) = static_cast<int>(rng.uniform_index(10));
  }
  return b;
}

// After the timed loop, x_floor (and for the Hessian-vector products x_grad) are measured by
// alternating the pass with its floor (with loss_and_gradient) in short rounds.
template <class Floor, class Obj, class Batch>
void bm_pass(benchmark::State& state, const Obj& obj, const Batch& batch, Pass pass,
             const std::vector<Index>& widths) {
  using S = typename Obj::Scalar;
  Rng rng(7);
  Vector<S> theta(obj.parameter_count()), grad(obj.parameter_count()), hv(obj.parameter_count());
  obj.initialize(theta, rng);
  Vector<S> v(obj.parameter_count());
  for (Index i = 0; i < v.size(); ++i) v[i] = static_cast<S>(rng.normal());
  typename Obj::Workspace ws;
  S sink = 0;
  auto once = [&] {
    switch (pass) {
      case Pass::forward:
        sink += obj.network().forward(theta, batch.inputs, ws)(0, 0);
        break;
      case Pass::loss_and_gradient:
        sink += obj.loss_and_gradient(theta, batch, grad, ws);
        break;
      case Pass::hessian_vector_product:
        obj.hessian_vector_product(theta, batch, v, hv, ws);
        sink += hv[0];
        break;
      case Pass::cached_hessian_vector_product:
        obj.cached_hessian_vector_product(theta, batch, v, hv, ws, kPassKey);
        sink += hv[0];
        break;
    }
    benchmark::DoNotOptimize(sink);
  };
  obj.loss_and_gradient(theta, batch, grad, ws);  // the gradient pass that the cached products reuse
  once();                                         // warm-up (the workspace is already grown)
  const double seconds = mlb::run_timed(state, once);
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(mlb::pass_macs(pass, widths, batch.size())));
  if (state.error_occurred()) return;

  const Index n = batch.size();
  Floor floor(widths, n, rng);
  auto floor_once = [&] {
    floor.run(pass, n);
    benchmark::ClobberMemory();
  };
  const double budget = mlb::kPairedShare * seconds;
  state.counters["x_floor"] = mlb::paired_ratio(once, floor_once, false, budget);
  if (pass == Pass::hessian_vector_product || pass == Pass::cached_hessian_vector_product) {
    typename Obj::Workspace ws2;
    Vector<S> grad2(obj.parameter_count());
    auto gradient = [&] {
      sink += obj.loss_and_gradient(theta, batch, grad2, ws2);
      benchmark::DoNotOptimize(sink);
    };
    state.counters["x_grad"] = mlb::paired_ratio(once, gradient, false, budget);
  }
}

template <class Floor>
void bm_floor(benchmark::State& state, Pass pass, const std::vector<Index>& widths, Index n) {
  Rng rng(11);
  Floor floor(widths, n, rng);
  floor.run(pass, n);  // warm-up: packing buffers are allocated here
  const std::int64_t macs = mlb::pass_macs(pass, widths, n);
  if (floor.macs(pass) != macs) {
    state.SkipWithError(("the floor performed " + std::to_string(floor.macs(pass)) + " MACs, the count says " +
                         std::to_string(macs))
                            .c_str());
    return;
  }
  mlb::run_timed(state, [&] {
    floor.run(pass, n);
    benchmark::ClobberMemory();
  });
  benchmark::DoNotOptimize(floor.sink());
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(macs));
}

std::string widths_name(const std::vector<Index>& widths) {
  std::string s;
  for (Index w : widths) s += (s.empty() ? "" : "-") + std::to_string(w);
  return s;
}

// Registers, for each pass, its floor and the pass.
template <class S, class Floor, class MakeObjective, class MakeBatch>
void register_net(const char* scalar, const std::vector<Index>& widths, Index n, MakeObjective make_objective,
                  MakeBatch make_batch) {
  const std::string suffix = "/net:" + widths_name(widths) + "/batch:" + std::to_string(n) + "/" + scalar;
  for (Pass pass : {Pass::forward, Pass::loss_and_gradient, Pass::hessian_vector_product,
                    Pass::cached_hessian_vector_product}) {
    const std::string name = std::string("nn/") + mlb::pass_name(pass) + suffix;
    const std::string floor = std::string("nn/floor/") + mlb::pass_name(pass) + suffix;
    benchmark::RegisterBenchmark(floor.c_str(), [=](benchmark::State& st) { bm_floor<Floor>(st, pass, widths, n); })
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(name.c_str(),
                                 [=](benchmark::State& st) {
                                   Rng rng(3);
                                   const auto obj = make_objective();
                                   const auto batch = make_batch(rng);
                                   bm_pass<Floor>(st, obj, batch, pass, widths);
                                 })
        ->Unit(benchmark::kMicrosecond);
  }
}

// The cost of layer normalisation: the pass on the normalised network, then its ratio to the
// unnormalised network's, in alternating rounds.
void bm_layer_norm(benchmark::State& state, Pass pass) {
  const std::vector<Index> widths{784, 256, 128, 64, 64, 5};
  const Index n = 25;
  const nn::Objective plain(nn::Mlp<float>(widths, nn::Relu{}), nn::SoftmaxCrossEntropy{});
  const nn::Objective norm(nn::Mlp<float>(widths, nn::Relu{}, nn::Identity{}, nn::LayerNorm{}), nn::SoftmaxCrossEntropy{});
  Rng rng(5);
  metalearn::ClassificationBatch<float> batch;
  batch.inputs.resize(784, n);
  batch.targets.resize(n);
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < 784; ++i) batch.inputs(i, j) = static_cast<float>(rng.uniform());
    batch.targets(j) = static_cast<int>(j % 5);
  }
  auto make_pass = [&](const auto& obj, Vector<float>& theta, Vector<float>& v, Vector<float>& out, auto& ws,
                       float& sink) {
    obj.initialize(theta, rng);
    for (Index i = 0; i < v.size(); ++i) v[i] = static_cast<float>(rng.normal());
    obj.loss_and_gradient(theta, batch, out, ws);  // the gradient pass the cached product reuses
    return [&, pass] {
      switch (pass) {
        case Pass::forward: sink += obj.network().forward(theta, batch.inputs, ws)(0, 0); break;
        case Pass::loss_and_gradient: sink += obj.loss_and_gradient(theta, batch, out, ws); break;
        case Pass::hessian_vector_product: obj.hessian_vector_product(theta, batch, v, out, ws); break;
        case Pass::cached_hessian_vector_product:
          obj.cached_hessian_vector_product(theta, batch, v, out, ws, kPassKey);
          break;
      }
      sink += out[0];
      benchmark::DoNotOptimize(sink);
    };
  };
  Vector<float> tn(norm.parameter_count()), vn(tn.size()), on(tn.size());
  Vector<float> tp(plain.parameter_count()), vp(tp.size()), op(tp.size());
  decltype(norm)::Workspace wn;
  decltype(plain)::Workspace wp;
  float sink = 0;
  auto once_norm = make_pass(norm, tn, vn, on, wn, sink);
  auto once_plain = make_pass(plain, tp, vp, op, wp, sink);
  once_norm();
  once_plain();
  const double seconds = mlb::run_timed(state, once_norm);
  if (state.error_occurred()) return;
  state.counters["x_plain"] = mlb::paired_ratio(once_norm, once_plain, false, mlb::kPairedShare * seconds);
}

void register_benchmarks() {
  register_net<float, PaperFloor<float>>("float", kPaperWidths, kPaperBatch, paper_objective<float>, paper_batch<float>);
  register_net<double, PaperFloor<double>>("double", kPaperWidths, kPaperBatch, paper_objective<double>,
                                           paper_batch<double>);
  register_net<float, MnistFloor<float>>("float", kMnistWidths, kMnistBatch, mnist_objective<float>, mnist_batch<float>);
  register_net<double, MnistFloor<double>>("double", kMnistWidths, kMnistBatch, mnist_objective<double>,
                                           mnist_batch<double>);
  for (Pass pass : {Pass::forward, Pass::loss_and_gradient, Pass::hessian_vector_product,
                    Pass::cached_hessian_vector_product}) {
    const std::string name = std::string("nn/layer_norm/") + mlb::pass_name(pass) + "/net:784-256-128-64-64-5/batch:25/float";
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_layer_norm(st, pass); })
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) { return mlb::run_main(argc, argv, register_benchmarks); }
