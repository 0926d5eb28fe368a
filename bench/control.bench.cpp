// One control step of examples/adaptive_control.cpp (GrBAL inside the loop), and its parts:
//   control/adapt/system:<s>/width:<w>/window:<M>
//       OnlineAdapter::adapt: reset to θ*, one inner SGD step (α = 0.01) on the last M transitions
//   control/plan/system:<s>/width:<w>/planner:<rs|cem>/candidates:<N>/horizon:<H>
//       Planner::plan: N action sequences of H steps rolled through the network at once
//       (CEM: 3 rounds of N), the best first action
//   control/step/system:<s>/width:<w>/planner:<p>/candidates:<N>/horizon:<H>
//       a whole step: adapt, plan, simulate, normalise and push the transition
// Network (features, action)-w-w-(state change), ReLU, float, one thread. Counters p50_us and
// p99_us: the median and the 99th percentile of the iterations' own times (each timed), so the
// tail a real-time loop sees is reported beside the mean. No heap allocation in the loop.
#include "support.hpp"

#include <adaptive_control.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

namespace {

using control::S;
using metalearn::Index;
using metalearn::Vector;

// Per-iteration times, kept without allocating inside the timed loop (storage reserved first).
class Timings {
 public:
  Timings() { us_.reserve(1 << 22); }
  template <class F>
  void time(F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    if (us_.size() < us_.capacity())
      us_.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  void report(benchmark::State& state) const {
    if (us_.empty()) return;
    state.counters["p50_us"] = control::percentile(us_, 0.5);  // the example's own percentiles
    state.counters["p99_us"] = control::percentile(us_, 0.99);
  }

 private:
  std::vector<double> us_;
};

// A system's model, normalisers, meta-parameters and a window of real transitions.
template <class System>
struct Setup {
  static constexpr Index F = System::feature_size + 1, D = System::state_size;
  control::Obj obj;
  control::MamlS maml;
  Vector<S> theta;
  metalearn::data::Standardizer<S> in{Vector<S>::Zero(F), Vector<S>::Ones(F)};
  metalearn::data::Standardizer<S> out{Vector<S>::Zero(D), Vector<S>::Constant(D, 10.0f)};  // σ = 0.1
  metalearn::data::TransitionWindow<S> window{F, D, 16};
  control::Physics physics{1.0, 1.0, 0.4};
  typename System::State state;

  explicit Setup(Index width)
      : obj(control::make_objective<System>({width, width})), maml(obj, options()), theta(obj.parameter_count()) {
    metalearn::Rng rng(3);
    obj.initialize(theta, rng);
    state = System::initial(rng);
    Vector<S> x(F), y(D);
    typename System::State s = state;
    for (int i = 0; i < 16; ++i) {  // 16 transitions of the system under random actions
      const double u = rng.uniform(-System::max_action, System::max_action);
      const typename System::State next = System::step(s, u, physics);
      control::put(x, control::model_input<System>(s, u));
      in.normalize(x, x);
      control::put(y, typename System::State(next - s));
      out.normalize(y, y);
      window.push(x, y);
      s = next;
    }
  }
  static metalearn::MamlOptions options() {
    metalearn::MamlOptions o;
    o.inner_lr = 0.01;
    return o;
  }
};

template <class System>
void bm_adapt(benchmark::State& state, Index width) {
  Setup<System> s(width);
  metalearn::OnlineAdapter<control::MamlS> adapter(s.maml, s.theta, 16, 1);
  Vector<S> fast(s.theta.size());
  adapter.adapt(s.window, fast);  // warm-up
  Timings t;
  mlb::run_timed(state, [&] {
    t.time([&] { adapter.adapt(s.window, fast); });
    benchmark::DoNotOptimize(fast.data());
  });
  t.report(state);
}

template <class System>
typename control::Planner<System>::Options planner_options(bool cem, int candidates, int horizon) {
  typename control::Planner<System>::Options o;
  o.cem = cem;
  o.candidates = candidates;
  o.horizon = horizon;
  return o;
}

template <class System>
void bm_plan(benchmark::State& state, Index width, bool cem, int candidates, int horizon) {
  Setup<System> s(width);
  control::Planner<System> planner(s.obj, s.in, s.out, planner_options<System>(cem, candidates, horizon), 9);
  double sink = planner.plan(s.theta, s.state);
  Timings t;
  mlb::run_timed(state, [&] { t.time([&] { sink += planner.plan(s.theta, s.state); }); });
  benchmark::DoNotOptimize(sink);
  t.report(state);
}

template <class System>
void bm_step(benchmark::State& state, Index width, bool cem, int candidates, int horizon) {
  Setup<System> s(width);
  control::Planner<System> planner(s.obj, s.in, s.out, planner_options<System>(cem, candidates, horizon), 9);
  metalearn::OnlineAdapter<control::MamlS> adapter(s.maml, s.theta, 16, 1);
  Vector<S> fast(s.theta.size()), x(Setup<System>::F), y(Setup<System>::D);
  typename System::State x0 = s.state;
  const auto step = [&] {
    adapter.adapt(s.window, fast);
    const double u = planner.plan(fast, x0);
    typename System::State next = System::step(x0, u, s.physics);
    control::put(x, control::model_input<System>(x0, u));
    s.in.normalize(x, x);
    control::put(y, typename System::State(next - x0));
    s.out.normalize(y, y);
    s.window.push(x, y);
    if (!System::good(next)) next = s.state;  // keep it in the region a controller works in
    x0 = next;
  };
  step();  // warm-up
  Timings t;
  mlb::run_timed(state, [&] { t.time(step); });
  t.report(state);
}

template <class System>
void register_system() {
  const std::string sys = std::string("system:") + System::name;
  for (Index w : {32, 64}) {
    const std::string width = "/width:" + std::to_string(w);
    benchmark::RegisterBenchmark(("control/adapt/" + sys + width + "/window:16").c_str(),
                                 [=](benchmark::State& st) { bm_adapt<System>(st, w); })
        ->Unit(benchmark::kMicrosecond);
    for (int h : {10, 20}) {
      for (bool cem : {false, true}) {
        const std::string tail = width + "/planner:" + (cem ? "cem" : "rs") + "/candidates:500/horizon:" + std::to_string(h);
        benchmark::RegisterBenchmark(("control/plan/" + sys + tail).c_str(),
                                     [=](benchmark::State& st) { bm_plan<System>(st, w, cem, 500, h); })
            ->Unit(benchmark::kMicrosecond);
        benchmark::RegisterBenchmark(("control/step/" + sys + tail).c_str(),
                                     [=](benchmark::State& st) { bm_step<System>(st, w, cem, 500, h); })
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

void register_benchmarks() {
  register_system<control::Pendulum>();
  register_system<control::CartPole>();
}

}  // namespace

int main(int argc, char** argv) { return mlb::run_main(argc, argv, register_benchmarks); }
