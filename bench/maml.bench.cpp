// MAML meta-steps and their floors, and the family's meta-steps beside MAML's (bench/README.md):
//   maml/step/order:<1|2>/steps:<K>/width:<w>/batch:<B>/threads:<T>
//       one meta-step: B sine tasks drawn and maml.meta_loss_and_gradient(θ, tasks, g, draw)
//       (drawing overlapped with the work on 2 threads, as MetaTrainer does), adam.step(θ, g)
//   maml/floor/order:<1|2>/steps:<K>/width:<w>/batch:<B>
//       the bare Eigen products of that meta-step (one thread)
//   maml/sample/batch:<B>, maml/adam/width:<w>
//       the two parts of a meta-step that are not MAML: drawing the tasks, the Adam update
//   family/step/algorithm:<meta-sgd|maml++|anil|reptile|imaml|cavia>/order:<1|2>/steps:<K>/width:<w>/batch:<B>/threads:<T>
//       the same meta-step with Meta-SGD (learned per-parameter rates), MAML++ (learned
//       per-step, per-group rates), ANIL (the last layer adapted), Reptile (SGD on the support
//       set; order 1: compared with first-order MAML), iMAML (λ = 1, 5 CG iterations; order 2:
//       compared with second-order MAML) or CAVIA (5 context inputs, adapted alone); counters
//       x_maml (its time over MAML's meta-step of the same configuration, in alternating rounds, 1 thread) or
//       speedup and ceiling (2 threads), x_floor against MAML's floor, and bytes
// Network 1-w-w-1 ReLU, mean squared error, K = 10 support and 10 query examples, α = 0.01,
// float. Width 40 is the paper's network with compile-time sizes; width 256 is a run-time
// network (nn::Mlp<float>({1, 256, 256, 1}, Relu{})).
// Counters: tasks/s, GFLOP/s, bytes (maml.bytes()), and x_floor (meta-step / its floor) on 1
// thread or speedup (1-thread time / 2-thread time) on 2, measured in alternating rounds; on 2
// threads also ceiling: 1-thread time / the time of the meta-batch's two halves run at once as
// two independent 1-thread meta-steps (what splitting the tasks over two threads can gain here).
#include "floor.hpp"
#include "support.hpp"

#include <metalearn/core/random.hpp>
#include <metalearn/meta/anil.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/maml_plus_plus.hpp>
#include <metalearn/meta/meta_sgd.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;
using mlb::Pass;

namespace {

using S = float;
using PaperNet = nn::Mlp<S, nn::Dense<1, 40, nn::Relu>, nn::Dense<40, 40, nn::Relu>, nn::Dense<40, 1>>;
using PaperFloor = mlb::FloorNet<S, mlb::Shape<1, 40>, mlb::Shape<40, 40>, mlb::Shape<40, 1>>;
using WideFloor = mlb::FloorNet<S, mlb::DynamicShape, mlb::DynamicShape, mlb::DynamicShape>;
using Sampler = metalearn::tasks::SineTasks<S>;

constexpr Index kExamples = 10;  // support and query examples per task (the sampler's default)
constexpr double kInnerLr = 0.01;

enum class Kind { maml, meta_sgd, maml_pp, anil, reptile, imaml, cavia };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::meta_sgd: return "meta-sgd";
    case Kind::maml_pp: return "maml++";
    case Kind::anil: return "anil";
    case Kind::reptile: return "reptile";
    case Kind::imaml: return "imaml";
    case Kind::cavia: return "cavia";
    default: return "maml";
  }
}

struct Config {
  int order;    // 1: first order, 2: exact second order
  int steps;    // inner steps K
  int width;    // hidden width w of 1-w-w-1
  int batch;    // tasks per meta-batch
  int threads;  // MamlOptions::threads
  Kind kind = Kind::maml;
};

std::string step_name(const Config& c) {
  return "maml/step/order:" + std::to_string(c.order) + "/steps:" + std::to_string(c.steps) +
         "/width:" + std::to_string(c.width) + "/batch:" + std::to_string(c.batch) +
         "/threads:" + std::to_string(c.threads);
}
std::string family_name(const Config& c) {
  return std::string("family/step/algorithm:") + kind_name(c.kind) + "/order:" + std::to_string(c.order) +
         "/steps:" + std::to_string(c.steps) + "/width:" + std::to_string(c.width) + "/batch:" +
         std::to_string(c.batch) + "/threads:" + std::to_string(c.threads);
}
std::string floor_name(const Config& c) {
  return "maml/floor/order:" + std::to_string(c.order) + "/steps:" + std::to_string(c.steps) +
         "/width:" + std::to_string(c.width) + "/batch:" + std::to_string(c.batch);
}

std::vector<Index> widths(int width) { return {1, width, width, 1}; }

// MACs of one meta-step (see support.hpp): per task K support gradients and one query gradient,
// and for second order K cached Hessian-vector products on the support set.
std::int64_t step_macs(const Config& c) {
  const auto w = widths(c.width);
  std::int64_t task = (c.steps + 1) * mlb::pass_macs(Pass::loss_and_gradient, w, kExamples);
  if (c.order == 2) task += c.steps * mlb::pass_macs(Pass::cached_hessian_vector_product, w, kExamples);
  return c.batch * task;
}

// The algorithm A of a configuration, α = kInnerLr (the learned rates start there).
template <class A, class Obj>
A make(const Obj& obj, const Config& c) {
  const metalearn::Order order = c.order == 1 ? metalearn::Order::first : metalearn::Order::second;
  if constexpr (std::is_same_v<A, metalearn::MetaSgd<Obj>>) {
    metalearn::MetaSgdOptions o;
    o.initial_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.order = order;
    o.threads = c.threads;
    return A(obj, o);
  } else if constexpr (std::is_same_v<A, metalearn::MamlPlusPlus<Obj>>) {
    metalearn::MamlPlusPlusOptions o;
    o.initial_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.order = order;
    o.threads = c.threads;
    return A(obj, o);
  } else if constexpr (std::is_same_v<A, metalearn::Reptile<Obj>>) {  // SGD on the whole support set
    metalearn::ReptileOptions o;
    o.inner_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.threads = c.threads;
    return A(obj, o);
  } else if constexpr (std::is_same_v<A, metalearn::Imaml<Obj>>) {  // λ = 1, 5 CG iterations
    metalearn::ImamlOptions o;
    o.inner_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.threads = c.threads;
    return A(obj, o);
  } else if constexpr (std::is_same_v<A, metalearn::Cavia<nn::Context<Obj>>>) {  // 5 context inputs
    metalearn::CaviaOptions o;
    o.inner_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.order = order;
    o.threads = c.threads;
    return A(nn::Context<Obj>(obj, 5), o);
  } else if constexpr (std::is_same_v<A, metalearn::Anil<Obj>>) {
    metalearn::AnilOptions o;
    o.inner_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.order = order;
    o.threads = c.threads;
    return A(obj, o);
  } else {
    metalearn::MamlOptions o;
    o.inner_lr = kInnerLr;
    o.inner_steps = c.steps;
    o.order = order;
    o.threads = c.threads;
    return A(obj, o);
  }
}

// One meta-step's worth of state: the algorithm, its meta-parameters, Adam, the sampler and the
// meta-batch.
template <class Obj, class A = metalearn::Maml<Obj>>
struct MetaStep {
  A maml;
  Vector<S> theta, grad;
  metalearn::optim::Adam<S> adam;
  Sampler sampler{2};
  std::vector<Sampler::Task> tasks;
  Vector<S> initial;
  long count = 0;
  S sink = 0;

  MetaStep(const Obj& obj, const Config& c)
      : maml(make<A>(obj, c)),
        theta(maml.parameter_count()),
        grad(maml.parameter_count()),
        adam(maml.parameter_count()),  // lr 1e-3, the paper's meta step size
        tasks(static_cast<std::size_t>(c.batch)) {
    Rng rng(1);
    maml.initialize(theta, rng);
    initial = theta;
  }
  void operator()() {
    // a new meta-batch every step, drawn while the workers start on it, as MetaTrainer does
    sink += maml.meta_loss_and_gradient(theta, tasks, grad,
                                        [this](Index t) { sampler.sample(tasks[static_cast<std::size_t>(t)]); });
    adam.step(theta, grad);
    // A benchmark runs thousands of meta-steps at one meta-learning rate: learned rates (Meta-SGD
    // with 5 steps) can grow in that time until the inner loop diverges, which a real run's
    // schedule and non-finite guard would meet. The benchmark measures the cost of a step, not
    // training, so the meta-parameters restart from their initial values every 100 steps.
    if (++count % 100 == 0) theta = initial;
    benchmark::DoNotOptimize(sink);
  }
};

// The products of one meta-step (see step_macs), on one thread; counts the MACs it performs.
template <class Floor>
struct FloorStep {
  Config c;
  Floor floor;
  std::int64_t macs = 0;

  FloorStep(const Config& config, Rng& rng) : c(config), floor(widths(c.width), kExamples, rng) {}
  void operator()() {
    macs = 0;
    for (int t = 0; t < c.batch; ++t) {
      for (int k = 0; k < c.steps; ++k) {  // support gradients at θ_0 … θ_{K−1}
        floor.run(Pass::loss_and_gradient, kExamples);
        macs += floor.macs(Pass::loss_and_gradient);
      }
      floor.run(Pass::loss_and_gradient, kExamples);  // query gradient at θ_K
      macs += floor.macs(Pass::loss_and_gradient);
      if (c.order == 2) {
        for (int k = 0; k < c.steps; ++k) {  // H_s(θ_k) u, k = K−1 … 0
          floor.run(Pass::cached_hessian_vector_product, kExamples);
          macs += floor.macs(Pass::cached_hessian_vector_product);
        }
      }
    }
    benchmark::ClobberMemory();
  }
};

// After the timed loop, x_floor (on 1 thread) or the speedup over 1 thread (on 2 threads) is
// measured by alternating the meta-step with its floor (with the same meta-step on 1 thread)
// in short rounds; on 2 threads the ceiling of that speedup too (mlb::concurrent_ratio).
template <class Floor, class Obj>
void bm_step(benchmark::State& state, const Obj& obj, const Config& c) {
  MetaStep<Obj> step(obj, c);
  step();  // warm-up: workspaces grow here
  const double seconds = mlb::run_timed(state, step);
  state.counters["tasks/s"] = benchmark::Counter(c.batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(step_macs(c)));
  state.counters["bytes"] = benchmark::Counter(static_cast<double>(step.maml.bytes()), benchmark::Counter::kDefaults,
                                               benchmark::Counter::kIs1024);
  if (state.error_occurred()) return;

  const double budget = mlb::kPairedShare * seconds;
  if (c.threads == 1) {
    Rng rng(11);
    FloorStep<Floor> floor(c, rng);
    state.counters["x_floor"] = mlb::paired_ratio(step, floor, false, budget);
  } else {
    Config one = c;
    one.threads = 1;
    MetaStep<Obj> single(obj, one);
    single();
    state.counters["speedup"] = 1 / mlb::paired_ratio(step, single, true, budget);
    // The ceiling: the two halves of the meta-batch as two meta-steps that share nothing
    // (each its own Maml on one thread, θ, Adam and sampler), on two threads at once.
    Config half_a = one, half_b = one;
    half_a.batch = (c.batch + 1) / 2;
    half_b.batch = c.batch / 2;
    MetaStep<Obj> a(obj, half_a), b(obj, half_b);
    a();
    b();
    state.counters["ceiling"] = mlb::concurrent_ratio(single, a, b, budget);
  }
}

// A family member's meta-step: its time, x_maml (over MAML's meta-step of the same
// configuration) and x_floor (over MAML's floor) on 1 thread, speedup and ceiling on 2.
template <class Floor, class A, class Obj>
void bm_family(benchmark::State& state, const Obj& obj, const Config& c) {
  MetaStep<Obj, A> step(obj, c);
  step();  // warm-up: workspaces grow here
  const double seconds = mlb::run_timed(state, step);
  state.counters["tasks/s"] = benchmark::Counter(c.batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes"] = benchmark::Counter(static_cast<double>(step.maml.bytes()), benchmark::Counter::kDefaults,
                                               benchmark::Counter::kIs1024);
  if (state.error_occurred()) return;
  const double budget = mlb::kPairedShare * seconds;
  if (c.threads == 1) {
    MetaStep<Obj> maml(obj, c);
    maml();
    state.counters["x_maml"] = mlb::paired_ratio(step, maml, false, budget);
    Rng rng(11);
    FloorStep<Floor> floor(c, rng);
    state.counters["x_floor"] = mlb::paired_ratio(step, floor, false, budget);
  } else {
    Config one = c;
    one.threads = 1;
    MetaStep<Obj, A> single(obj, one);
    single();
    state.counters["speedup"] = 1 / mlb::paired_ratio(step, single, true, budget);
    Config half_a = one, half_b = one;
    half_a.batch = (c.batch + 1) / 2;
    half_b.batch = c.batch / 2;
    MetaStep<Obj, A> a(obj, half_a), b(obj, half_b);
    a();
    b();
    state.counters["ceiling"] = mlb::concurrent_ratio(single, a, b, budget);
  }
}

template <class Floor, class Obj>
void bm_family_kind(benchmark::State& state, const Obj& obj, const Config& c) {
  switch (c.kind) {
    case Kind::meta_sgd: return bm_family<Floor, metalearn::MetaSgd<Obj>>(state, obj, c);
    case Kind::maml_pp: return bm_family<Floor, metalearn::MamlPlusPlus<Obj>>(state, obj, c);
    case Kind::reptile: return bm_family<Floor, metalearn::Reptile<Obj>>(state, obj, c);
    case Kind::imaml: return bm_family<Floor, metalearn::Imaml<Obj>>(state, obj, c);
    case Kind::cavia: return bm_family<Floor, metalearn::Cavia<nn::Context<Obj>>>(state, obj, c);
    default: return bm_family<Floor, metalearn::Anil<Obj>>(state, obj, c);
  }
}

template <class Floor>
void bm_floor(benchmark::State& state, const Config& c) {
  Rng rng(11);
  FloorStep<Floor> step(c, rng);
  step();  // warm-up: packing buffers are allocated here
  if (step.macs != step_macs(c)) {
    state.SkipWithError(("the floor performed " + std::to_string(step.macs) + " MACs, the count says " +
                         std::to_string(step_macs(c)))
                            .c_str());
    return;
  }
  mlb::run_timed(state, step);
  benchmark::DoNotOptimize(step.floor.sink());
  state.counters["tasks/s"] = benchmark::Counter(c.batch, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = mlb::gflops(2.0 * static_cast<double>(step_macs(c)));
}

void bm_sample(benchmark::State& state, int batch) {
  Sampler sampler(2);
  std::vector<Sampler::Task> tasks(static_cast<std::size_t>(batch));
  for (auto& t : tasks) sampler.sample(t);
  mlb::run_timed(state, [&] {
    for (auto& t : tasks) sampler.sample(t);
    benchmark::ClobberMemory();
  });
  state.counters["tasks/s"] = benchmark::Counter(batch, benchmark::Counter::kIsIterationInvariantRate);
}

void bm_adam(benchmark::State& state, Index parameters) {
  Rng rng(5);
  Vector<S> theta(parameters), grad(parameters);
  for (Index i = 0; i < parameters; ++i) {
    theta[i] = static_cast<S>(rng.normal());
    grad[i] = static_cast<S>(rng.normal());
  }
  metalearn::optim::Adam<S> adam(parameters);
  mlb::run_timed(state, [&] {
    adam.step(theta, grad);
    benchmark::ClobberMemory();
  });
}

// Single-threaded benchmarks are timed in CPU time of the benchmark thread (robust against the
// other processes of a shared machine), meta-steps on several threads in wall-clock time.
template <class F>
void add(const std::string& name, F&& f, bool wall_clock = false) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(f))->Unit(benchmark::kMicrosecond);
  if (wall_clock) b->UseRealTime();
}

void register_benchmarks() {
  for (int batch : {25, 100})
    add("maml/sample/batch:" + std::to_string(batch), [=](benchmark::State& st) { bm_sample(st, batch); });
  for (int width : {40, 256}) {
    const Index p = width * width + 4 * width + 1;  // 1-w-w-1: (w + w) + (w² + w) + (w + 1)
    add("maml/adam/width:" + std::to_string(width), [=](benchmark::State& st) { bm_adam(st, p); });
  }
  // Every combination of order, inner steps, width, meta-batch and threads: the floor, then the
  // meta-step on 1 and on 2 threads.
  for (int width : {40, 256})
    for (int order : {1, 2})
      for (int steps : {1, 5, 10, 20})
        for (int batch : {25, 100}) {
          const Config c{order, steps, width, batch, 1};
          add(floor_name(c), [=](benchmark::State& st) {
            if (c.width == 40)
              bm_floor<PaperFloor>(st, c);
            else
              bm_floor<WideFloor>(st, c);
          });
          for (int threads : {1, 2}) {
            Config t = c;
            t.threads = threads;
            add(step_name(t), [=](benchmark::State& st) {
              if (t.width == 40)
                bm_step<PaperFloor>(st, nn::Objective(PaperNet(), nn::MeanSquaredError{}), t);
              else
                bm_step<WideFloor>(st, nn::Objective(nn::Mlp<S>(widths(t.width), nn::Relu{}), nn::MeanSquaredError{}), t);
            }, /*wall_clock=*/threads > 1);
          }
        }
  // The family beside MAML: the paper's network and width 256; 1 and 5 inner steps; both orders;
  // batch 25 on 1 and 2 threads, and batch 100 on 2 threads (the ceiling).
  for (Kind kind : {Kind::meta_sgd, Kind::maml_pp, Kind::anil})
    for (int width : {40, 256})
      for (int order : {1, 2})
        for (int steps : {1, 5})
          for (const auto& [batch, threads] : {std::pair{25, 1}, std::pair{25, 2}, std::pair{100, 2}}) {
            const Config c{order, steps, width, batch, threads, kind};
            add(family_name(c), [=](benchmark::State& st) {
              if (c.width == 40)
                bm_family_kind<PaperFloor>(st, nn::Objective(PaperNet(), nn::MeanSquaredError{}), c);
              else
                bm_family_kind<WideFloor>(st, nn::Objective(nn::Mlp<S>(widths(c.width), nn::Relu{}),
                                                            nn::MeanSquaredError{}), c);
            }, /*wall_clock=*/threads > 1);
          }
  // Reptile beside first-order MAML and iMAML (5 CG iterations) beside second-order MAML, each of
  // the same inner steps (the row's order is the MAML it is compared with).
  // CAVIA (5 context inputs, second order) beside second-order MAML.
  for (Kind kind : {Kind::reptile, Kind::imaml, Kind::cavia})
    for (int width : {40, 256})
      for (int steps : {1, 5})
        for (const auto& [batch, threads] : {std::pair{25, 1}, std::pair{25, 2}}) {
          const Config c{kind == Kind::reptile ? 1 : 2, steps, width, batch, threads, kind};
          add(family_name(c), [=](benchmark::State& st) {
            if (c.width == 40)
              bm_family_kind<PaperFloor>(st, nn::Objective(PaperNet(), nn::MeanSquaredError{}), c);
            else
              bm_family_kind<WideFloor>(st, nn::Objective(nn::Mlp<S>(widths(c.width), nn::Relu{}),
                                                          nn::MeanSquaredError{}), c);
          }, /*wall_clock=*/threads > 1);
        }
}

}  // namespace

int main(int argc, char** argv) { return mlb::run_main(argc, argv, register_benchmarks); }
