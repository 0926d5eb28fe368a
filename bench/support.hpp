#pragma once
// Shared by metalearn's Google Benchmark executables (bench/README.md describes them):
//   - run_timed: the timed loop, failing the benchmark if anything allocates inside it;
//   - FloorScratch / floor_product: "floor" products, i.e. bare Eigen matrix products into
//     preallocated storage, to compare a pass with the products it performs;
//   - multiply-add counts of the network passes (the derivation is in nn/dense.hpp);
//   - a main() whose reporters add ratio counters (x_floor, x_grad, speedup) computed from
//     the times of other benchmarks of the same run.
#include <metalearn/core/types.hpp>

#include <Eigen/Core>
#include <allocation_counter.hpp>
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace mlb {

using metalearn::Index;
using metalearn::Matrix;
using metalearn::Vector;

// ---------------------------------------------------------------------------------------------
// The timed loop

/// Runs `body` once per benchmark iteration. Any heap allocation in the loop fails the
/// benchmark: operator new calls are counted (tests/support/allocation_counter.cpp is linked
/// in), and Eigen's own heap allocations abort through EIGEN_RUNTIME_NO_MALLOC in builds with
/// assertions (the scripts/test build, where ctest runs every benchmark once).
template <class Body>
void run_timed(benchmark::State& state, Body&& body) {
  std::int64_t allocations = 0;
  {
    mlt::NoAllocationRegion region;
    for (auto _ : state) body();
    allocations = region.allocations();
  }
  if (allocations != 0)
    state.SkipWithError(("heap allocation in the timed loop: " + std::to_string(allocations) + " operator new calls").c_str());
}

/// Counter: flops per iteration as a rate in GFLOP/s.
inline benchmark::Counter gflops(double flops_per_iteration) {
  return benchmark::Counter(flops_per_iteration * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------------
// Multiply-add (MAC) counts of the passes, from the derivation in include/metalearn/nn/dense.hpp,
// for layers l = 1…L with p_l = out_l · in_l weights and a batch of n columns. Only the matrix
// products are counted (2 flops per MAC); bias broadcasts, activations and the loss are not.
//   forward                   Z_l = W_l A_{l−1}                                   Σ_l p_l n
//   loss_and_gradient         forward, ∇W_l = δ_l A_{l−1}ᵀ (all l),
//                             G_{l−1} = W_lᵀ δ_l (l ≥ 2)                          n (3 Σ_l p_l − p_1)
//   hessian_vector_product    fused forward + R-forward: l = 1: Z = W X, RZ += V X (2 p_1 n);
//                             l ≥ 2: [Z | RZ] = W [A | RA] (2n columns), RZ += V A (3 p_l n);
//                             fused backward + R-backward: (Hv)_W = Rδ Xᵀ (l = 1, p_1 n),
//                             (Hv)_W = [Rδ | δ] [A | RA]ᵀ (l ≥ 2, 2 p_l n),
//                             [RG | G] = Wᵀ [Rδ | δ] and RG += Vᵀ δ (l ≥ 2, 3 p_l n)
//                                                                                 n (3 p_1 + 8 Σ_{l≥2} p_l)
//   cached_hessian_vector_product   beside a finished gradient pass:
//                             RZ = V A (+ W RA for l ≥ 2),  (Hv)_W as above,
//                             RG = Wᵀ Rδ + Vᵀ δ (l ≥ 2)                           n (2 p_1 + 6 Σ_{l≥2} p_l)
// The floors below perform exactly these products, and each benchmark checks that the MACs the
// floor performed equal the count here.
enum class Pass { forward, loss_and_gradient, hessian_vector_product, cached_hessian_vector_product };

inline const char* pass_name(Pass p) {
  switch (p) {
    case Pass::forward: return "forward";
    case Pass::loss_and_gradient: return "loss_and_gradient";
    case Pass::hessian_vector_product: return "hessian_vector_product";
    case Pass::cached_hessian_vector_product: return "cached_hessian_vector_product";
  }
  return "?";
}

/// MACs of a pass of the network with these widths ({inputs, hidden…, outputs}) on n columns.
inline std::int64_t pass_macs(Pass pass, const std::vector<Index>& widths, Index n) {
  std::int64_t first = 0, rest = 0;
  for (std::size_t l = 1; l < widths.size(); ++l) (l == 1 ? first : rest) += widths[l - 1] * widths[l];
  switch (pass) {
    case Pass::forward: return n * (first + rest);
    case Pass::loss_and_gradient: return n * (2 * first + 3 * rest);
    case Pass::hessian_vector_product: return n * (3 * first + 8 * rest);
    case Pass::cached_hessian_vector_product: return n * (2 * first + 6 * rest);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Floor products

/// Packing buffers for floor products, one slot per product of a pass, created the first time
/// (outside the timed loop) and reused. Also counts the MACs performed since `begin()`.
template <class S>
class FloorScratch {
 public:
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, S, S, Eigen::Dynamic, Eigen::Dynamic,
                                                        Eigen::Dynamic, 1, false>;

  /// Starts a pass: products take the slots from the first on again.
  void begin() {
    next_ = 0;
    macs_ = 0;
  }
  /// MACs since begin().
  std::int64_t macs() const { return macs_; }
  void count(Index m, Index n, Index k) { macs_ += static_cast<std::int64_t>(m) * n * k; }

  /// Eigen's blocking for an m × n × k product with its packing buffers allocated.
  Blocking& blocking(Index m, Index n, Index k) {
    if (next_ == slots_.size()) slots_.emplace_back();
    Slot& s = slots_[next_++];
    if (!s.blocking || s.m != m || s.n != n || s.k != k) {  // only on the first run of a pass
      s.blocking = std::make_unique<Blocking>(m, n, k, 1, true);
      s.blocking->allocateAll();
      s.m = m;
      s.n = n;
      s.k = k;
    }
    return *s.blocking;
  }

 private:
  struct Slot {
    Index m = 0, n = 0, k = 0;
    std::unique_ptr<Blocking> blocking;
  };
  std::vector<Slot> slots_;
  std::size_t next_ = 0;
  std::int64_t macs_ = 0;
};

/// dst = lhs · rhs (or += when `accumulate`), one bare Eigen product into preallocated storage:
/// `dst.noalias() = lhs * rhs`, except for products whose sizes are all run-time values:
///   - depth 1: the outer product `lhs.col(0) * rhs.row(0)` (Eigen would run its blocked kernel
///     for a depth that is 1 only at run time);
///   - blocked sizes (m, n, k > 1, m + n + k ≥ 20, Eigen's rule): Eigen's blocked kernel
///     general_matrix_matrix_product — the code behind noalias() — with packing buffers
///     allocated once, since noalias() allocates them on the heap (malloc and free per call)
///     once they exceed EIGEN_STACK_ALLOCATION_LIMIT (128 KiB), e.g. for a 256 × 784 weight.
template <class S, class Dst, class Lhs, class Rhs>
void floor_product(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate, FloorScratch<S>& scratch) {
  namespace ei = Eigen::internal;
  using D = std::decay_t<Dst>;
  const Index m = dst.rows(), n = dst.cols(), k = lhs.cols();
  scratch.count(m, n, k);
  constexpr bool dynamic = Lhs::RowsAtCompileTime == Eigen::Dynamic && Lhs::ColsAtCompileTime == Eigen::Dynamic &&
                           Rhs::ColsAtCompileTime == Eigen::Dynamic;
  if constexpr (dynamic) {
    static_assert(!(D::Flags & Eigen::RowMajorBit), "floor_product: column-major destinations only");
    if (k == 1) {
      if (accumulate)
        dst.noalias() += lhs.col(0) * rhs.row(0);
      else
        dst.noalias() = lhs.col(0) * rhs.row(0);
      return;
    }
    if (m > 1 && n > 1 && m + n + k >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD) {
      using LT = ei::blas_traits<Lhs>;
      using RT = ei::blas_traits<Rhs>;
      using LX = std::decay_t<typename LT::ExtractType>;
      using RX = std::decay_t<typename RT::ExtractType>;
      const auto& l = LT::extract(lhs);
      const auto& r = RT::extract(rhs);
      if (!accumulate) dst.setZero();  // as noalias() does before its kernel
      ei::general_matrix_matrix_product<Index, S, (LX::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
                                        false, S, (RX::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
                                        false, Eigen::ColMajor, 1>::run(m, n, k, l.data(), l.outerStride(), r.data(),
                                                                        r.outerStride(), dst.data(), 1,
                                                                        dst.outerStride(), S(1),
                                                                        scratch.blocking(m, n, k), nullptr);
      return;
    }
  }
  if (accumulate)
    dst.noalias() += lhs * rhs;
  else
    dst.noalias() = lhs * rhs;
}

// ---------------------------------------------------------------------------------------------
// main() with derived counters

/// Ratio counters added to a benchmark's results by the reporters: `counter` = (time of the
/// benchmark) / (time of `reference`), or the inverse, each time being the benchmark's own
/// measure (CPU time, or wall-clock time for benchmarks with UseRealTime()). Benchmarks are
/// matched by the names they were registered with; the reference must have run earlier in the
/// same run (the executables register references first). Medians are divided by medians, means
/// by means, repetition i by repetition i; stddev and cv get no ratio.
struct Ratio {
  std::string counter;
  std::string reference;
  bool inverse = false;
};

inline std::map<std::string, std::vector<Ratio>>& ratios() {
  static std::map<std::string, std::vector<Ratio>> r;
  return r;
}

/// Declares a ratio counter of `benchmark` (a registered name).
inline void add_ratio(const std::string& benchmark, std::string counter, std::string reference, bool inverse = false) {
  ratios()[benchmark].push_back({std::move(counter), std::move(reference), inverse});
}

/// Forwards every run to another reporter after adding the ratio counters.
class RatioReporter : public benchmark::BenchmarkReporter {
 public:
  explicit RatioReporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}

  bool ReportContext(const Context& context) override {
    inner_->SetOutputStream(&GetOutputStream());
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) {
        ++errors_;
        continue;
      }
      const std::string key = time_key(r);
      if (key.empty()) continue;
      auto& times = times_[r.run_name.function_name];
      times[key] = seconds(r);
      if (r.run_type == Run::RT_Iteration) times["last"] = seconds(r);  // if the reference ran fewer repetitions
    }
    std::vector<Run> out = runs;
    for (Run& r : out) {
      const auto rel = ratios().find(r.run_name.function_name);
      const std::string key = time_key(r);
      if (r.error_occurred || rel == ratios().end() || key.empty()) continue;
      for (const Ratio& ratio : rel->second) {
        const auto ref = times_.find(ratio.reference);
        if (ref == times_.end()) continue;
        auto t = ref->second.find(key);
        if (t == ref->second.end()) t = ref->second.find("last");
        if (t == ref->second.end() || t->second <= 0) continue;
        const double value = seconds(r) / t->second;
        r.counters[ratio.counter] = benchmark::Counter(ratio.inverse ? 1 / value : value);
      }
    }
    inner_->ReportRuns(out);
  }

  void Finalize() override { inner_->Finalize(); }

  /// Runs that failed (an error, e.g. an allocation in the timed loop).
  int errors() const { return errors_; }

 private:
  // The benchmark's own measure: wall-clock time for benchmarks registered with UseRealTime(),
  // CPU time of the benchmark thread otherwise.
  static double seconds(const Run& r) {
    const double t = r.run_name.time_type == "real_time" ? r.GetAdjustedRealTime() : r.GetAdjustedCPUTime();
    return t / benchmark::GetTimeUnitMultiplier(r.time_unit);
  }
  // "median", "mean", "#<repetition>"; "" for the other aggregates.
  static std::string time_key(const Run& r) {
    if (r.run_type == Run::RT_Aggregate)
      return r.aggregate_name == "median" || r.aggregate_name == "mean" ? r.aggregate_name : std::string();
    return "#" + std::to_string(r.repetition_index);
  }

  benchmark::BenchmarkReporter* inner_;
  std::map<std::string, std::map<std::string, double>> times_;
  int errors_ = 0;
};

/// The benchmarks' main: registers them, runs them with the display reporter chosen by
/// --benchmark_format and, with --benchmark_out, a JSON file reporter, both adding the ratio
/// counters. Returns 1 if a benchmark failed.
inline int run_main(int argc, char** argv, void (*register_benchmarks)()) {
  bool file = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--benchmark_out=", 0) == 0) file = true;
    if (a.rfind("--benchmark_out_format=", 0) == 0 && a != "--benchmark_out_format=json") {
      std::fprintf(stderr, "%s: the output file is always JSON; drop %s\n", argv[0], a.c_str());
      return 1;
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_benchmarks();
  RatioReporter display(benchmark::CreateDefaultDisplayReporter());
  benchmark::JSONReporter json;
  RatioReporter to_file(&json);
  benchmark::RunSpecifiedBenchmarks(&display, file ? &to_file : nullptr);
  benchmark::Shutdown();
  return display.errors() == 0 ? 0 : 1;
}

}  // namespace mlb
