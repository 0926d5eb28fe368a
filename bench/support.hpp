#pragma once
// Shared by metalearn's Google Benchmark executables (bench/README.md describes them):
//   - run_timed: the timed loop, failing the benchmark if anything allocates inside it;
//   - paired_ratio: the ratio of two pieces of work timed in alternating short rounds, so
//     that both meet the same load on a shared machine (x_floor, x_grad, speedup);
//   - concurrent_ratio: the same for one workload against its two halves run on two threads at
//     once (ceiling);
//   - FloorScratch / floor_product: "floor" products, i.e. bare Eigen matrix products into
//     preallocated storage, to compare a pass with the products it performs;
//   - multiply-add counts of the network passes (the derivation is in nn/dense.hpp);
//   - main(), which fails when a benchmark reports an error.
#include <metalearn/core/types.hpp>

#include <Eigen/Core>
#include <allocation_counter.hpp>
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
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
/// assertions (the scripts/test build, where ctest runs every benchmark once). Returns the
/// wall-clock seconds the loop took.
template <class Body>
double run_timed(benchmark::State& state, Body&& body) {
  std::int64_t allocations = 0;
  const auto start = std::chrono::steady_clock::now();
  {
    mlt::NoAllocationRegion region;
    for (auto _ : state) body();
    allocations = region.allocations();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (allocations != 0)
    state.SkipWithError(("heap allocation in the timed loop: " + std::to_string(allocations) + " operator new calls").c_str());
  return seconds;
}

/// CPU time of the calling thread, in seconds.
inline double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The time a paired measurement gets, as a share of the benchmark's timed loop.
inline constexpr double kPairedShare = 0.25;

namespace detail {
/// How many calls of a piece of work that takes `seconds` per call fill one side of a round
/// of paired_ratio / concurrent_ratio (about 2 ms, at least one call).
inline long calls_per_side(double seconds) { return std::max(1L, std::lround(2e-3 / std::max(seconds, 1e-9))); }

/// Seconds per call of `work` over `calls` back-to-back calls, timed with `now()` (seconds),
/// after one untimed call: a side of a round is timed as a run of back-to-back calls is (as in
/// the benchmark's own loop), its data in cache and a thread pool's workers awake rather than
/// asleep since the other side's turn.
template <class Work, class Now>
double seconds_per_call(Work& work, long calls, Now& now) {
  work();
  const double start = now();
  for (long i = 0; i < calls; ++i) work();
  return (now() - start) / static_cast<double>(calls);
}

/// The median of the rounds' ratios.
inline double median(std::vector<double> ratios) {
  std::sort(ratios.begin(), ratios.end());
  const std::size_t m = ratios.size() / 2;
  return ratios.size() % 2 ? ratios[m] : 0.5 * (ratios[m - 1] + ratios[m]);
}
}  // namespace detail

/// Time of `subject` / time of `reference`, measured after a benchmark's timed loop in
/// alternating rounds (subject then reference, then reference then subject, …) of about 2 ms
/// per side, until `budget` seconds are spent (at least one round); the median of the rounds'
/// ratios. Both are timed in CPU time of the calling thread, or in wall-clock time when
/// `wall_clock` (for work on several threads). On a machine shared with other processes the
/// load changes over seconds, so a ratio of two separate benchmarks' medians can be off by tens
/// of percent; rounds of milliseconds see the same load on both sides. Each side of a round
/// starts with one untimed call (detail::seconds_per_call).
template <class Subject, class Reference>
double paired_ratio(Subject&& subject, Reference&& reference, bool wall_clock, double budget) {
  auto now = [&] {
    return wall_clock ? std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count()
                      : thread_cpu_seconds();
  };
  auto per_call = [&](auto& work, long calls) { return detail::seconds_per_call(work, calls, now); };
  const double t_subject = per_call(subject, 1), t_reference = per_call(reference, 1);
  const long n_subject = detail::calls_per_side(t_subject), n_reference = detail::calls_per_side(t_reference);
  std::vector<double> ratios;
  double spent = 2 * (t_subject + t_reference);
  for (int round = 0; round == 0 || spent < budget; ++round) {
    double a = 0, b = 0;
    if (round % 2 == 0) {
      a = per_call(subject, n_subject);
      b = per_call(reference, n_reference);
    } else {
      b = per_call(reference, n_reference);
      a = per_call(subject, n_subject);
    }
    ratios.push_back(b > 0 ? a / b : 0);
    spent += a * static_cast<double>(n_subject + 1) + b * static_cast<double>(n_reference + 1);
  }
  return detail::median(std::move(ratios));
}

/// Wall-clock time of `reference` alone / time of `half_a` while `half_b` runs at the same time
/// on a second thread, free-running (no synchronisation between the two: the second thread
/// repeats `half_b` from before the timing starts until after it ends). Both halves are timed
/// and the slower one counts. Measured in alternating rounds like paired_ratio, each side after
/// an untimed call (the second thread is started for each round, runs `half_b` once before
/// the timing starts, and is idle during the reference's turn), until `budget`
/// seconds are spent; the median of the rounds' ratios. With two halves of a workload that
/// share no data, this is the most that splitting the workload over two threads can gain on
/// this machine: the ceiling a threaded implementation is compared with.
template <class Reference, class HalfA, class HalfB>
double concurrent_ratio(Reference&& reference, HalfA&& half_a, HalfB&& half_b, double budget) {
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::duration d) { return std::chrono::duration<double>(d).count(); };
  auto now = [&] { return seconds(clock::now().time_since_epoch()); };
  auto per_call = [&](auto& work, long calls) { return detail::seconds_per_call(work, calls, now); };
  auto concurrent = [&](long calls) {  // per-call time of the slower half
    std::atomic<int> state{0};  // 0: starting, 1: half_b is running, 2: stop
    std::atomic<long> b_calls{0};
    std::atomic<double> b_time{0};
    std::thread other([&] {
      half_b();
      state.store(1, std::memory_order_release);
      long n = 0;
      const auto start = clock::now();
      while (state.load(std::memory_order_acquire) != 2) {
        half_b();
        ++n;
      }
      b_time.store(seconds(clock::now() - start));
      b_calls.store(n);
    });
    while (state.load(std::memory_order_acquire) != 1) std::this_thread::yield();
    const double a = per_call(half_a, calls);
    state.store(2, std::memory_order_release);
    other.join();
    const double b = b_calls.load() > 0 ? b_time.load() / static_cast<double>(b_calls.load()) : a;
    return std::max(a, b);
  };
  const double t_reference = per_call(reference, 1), t_half = per_call(half_a, 1);
  const long n_reference = detail::calls_per_side(t_reference), n_half = detail::calls_per_side(t_half);
  std::vector<double> ratios;
  double spent = 2 * (t_reference + t_half);
  for (int round = 0; round == 0 || spent < budget; ++round) {
    const double r = per_call(reference, n_reference);
    const double h = concurrent(n_half);
    ratios.push_back(h > 0 ? r / h : 0);
    spent += r * static_cast<double>(n_reference + 1) + h * static_cast<double>(n_half + 1);
  }
  return detail::median(std::move(ratios));
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
/// (outside the timed loop) and reused. Also counts the MACs performed since `begin()`. Uses
/// Eigen 3.4 internals, as include/metalearn/core/gemm.hpp does.
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
// main()

/// Forwards everything to the display reporter and counts the runs that failed.
class ErrorCountingReporter : public benchmark::BenchmarkReporter {
 public:
  explicit ErrorCountingReporter(benchmark::BenchmarkReporter* inner) : inner_(inner) {}
  bool ReportContext(const Context& context) override {
    inner_->SetOutputStream(&GetOutputStream());
    inner_->SetErrorStream(&GetErrorStream());
    return inner_->ReportContext(context);
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) errors_ += r.error_occurred ? 1 : 0;
    inner_->ReportRuns(runs);
  }
  void Finalize() override { inner_->Finalize(); }
  /// Runs that reported an error (e.g. an allocation in the timed loop).
  int errors() const { return errors_; }

 private:
  benchmark::BenchmarkReporter* inner_;
  int errors_ = 0;
};

/// The benchmarks' main: registers them and runs them as BENCHMARK_MAIN() would, but returns 1
/// when a benchmark failed, so that ctest notices.
inline int run_main(int argc, char** argv, void (*register_benchmarks)()) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_benchmarks();
  ErrorCountingReporter display(benchmark::CreateDefaultDisplayReporter());
  benchmark::RunSpecifiedBenchmarks(&display);
  benchmark::Shutdown();
  return display.errors() == 0 ? 0 : 1;
}

}  // namespace mlb
