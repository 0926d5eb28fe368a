// The product kernels of core/gemm.hpp on the shapes of a hidden layer of width k with a batch
// of n (bench/README.md), float:
//   gemm/small/m:<m>/n:<n>/k:<k>            C = A B through detail::gemm (the small kernel)
//   gemm/transposed/copy/depth:<k>/n:<n>    C = Xᵀ B, X k × k: detail::transpose into a buffer,
//                                           then the small kernel on the copy (the path below
//                                           depth 192)
//   gemm/transposed/dot/depth:<k>/n:<n>     the same product by detail::dot_gemm (the path from
//                                           depth 192); counter x_copy = its time / the copy
//                                           path's, paired
// The two transposed paths are what use_dot_gemm chooses between.
#include "floor.hpp"
#include "support.hpp"

#include <metalearn/core/gemm.hpp>
#include <metalearn/core/random.hpp>

#include <array>
#include <string>

namespace ml = metalearn;
using metalearn::Index;
using metalearn::Matrix;

namespace {

using S = float;
using Map = Eigen::Map<const Matrix<S>>;

Matrix<S> random(Index rows, Index cols, ml::Rng& rng) {
  Matrix<S> m(rows, cols);
  mlb::detail::fill_random(m, rng);
  return m;
}

void bm_small(benchmark::State& state, Index m, Index n, Index k) {
  ml::Rng rng(5);
  const Matrix<S> a = random(m, k, rng), b = random(k, n, rng);
  Matrix<S> c(m, n);
  ml::detail::GemmScratch<S> scratch;
  auto once = [&] {
    ml::detail::gemm(c, Map(a.data(), m, k), Map(b.data(), k, n), false, scratch);
    benchmark::ClobberMemory();
  };
  once();
  mlb::run_timed(state, once);
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(m * n * k));
}

// C = Xᵀ B for X k × k and B k × n, by the copy path and by dot_gemm.
struct Transposed {
  Index k, n;
  Matrix<S> x, b, copy, c;
  ml::detail::GemmScratch<S> scratch;
  Transposed(Index depth, Index cols, ml::Rng& rng)
      : k(depth), n(cols), x(random(k, k, rng)), b(random(k, n, rng)), copy(k, k), c(k, n) {}
  void by_copy() {
    ml::detail::transpose(x.data(), k, k, k, copy.data(), k);  // copy = Xᵀ, column-major
    ml::detail::gemm(c, Map(copy.data(), k, k), Map(b.data(), k, n), false, scratch);
    benchmark::ClobberMemory();
  }
  void by_dot() {
    ml::detail::dot_gemm(k, n, k, x.data(), k, b.data(), k, c.data(), k, false);
    benchmark::ClobberMemory();
  }
};

void bm_transposed(benchmark::State& state, Index k, Index n, bool dot) {
  ml::Rng rng(7);
  Transposed t(k, n, rng);
  auto copy = [&] { t.by_copy(); };
  auto by_dot = [&] { t.by_dot(); };
  dot ? by_dot() : copy();
  const double seconds = dot ? mlb::run_timed(state, by_dot) : mlb::run_timed(state, copy);
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(k * k * n));
  if (dot && !state.error_occurred())
    state.counters["x_copy"] = mlb::paired_ratio(by_dot, copy, false, mlb::kPairedShare * seconds);
}

void register_benchmarks() {
  for (const auto& shape : {std::array<Index, 3>{40, 10, 40}, {40, 40, 10}, {256, 10, 256}, {256, 256, 10}}) {
    const Index m = shape[0], n = shape[1], k = shape[2];  // not a structured binding: lambdas capture these (C++17)
    const std::string name =
        "gemm/small/m:" + std::to_string(m) + "/n:" + std::to_string(n) + "/k:" + std::to_string(k);
    benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_small(st, m, n, k); })
        ->Unit(benchmark::kMicrosecond);
  }
  for (Index k : {128, 192, 256, 512})
    for (Index n : {10, 20})
      for (bool dot : {false, true}) {
        const std::string name = std::string("gemm/transposed/") + (dot ? "dot" : "copy") + "/depth:" +
                                 std::to_string(k) + "/n:" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { bm_transposed(st, k, n, dot); })
            ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace

int main(int argc, char** argv) { return mlb::run_main(argc, argv, register_benchmarks); }
