// A whole control step of the example — online adaptation on the last M transitions (fewer at
// an episode's start), planning by random shooting or CEM through the network, the window's
// update — does not touch the heap after the first episode.
#include <adaptive_control.hpp>

#include <allocation_counter.hpp>
#include <catch.hpp>

TEST_CASE("allocation: none per control step (adapt, plan, push) after the first", "[example][control][allocation]") {
  using control::CartPole;
  using control::S;
  const control::Obj obj = control::make_objective<CartPole>({32, 32});
  metalearn::MamlOptions mo;
  mo.inner_lr = 0.01;
  const control::MamlS maml(obj, mo);
  metalearn::Rng rng(2);
  metalearn::Vector<S> theta(obj.parameter_count());
  obj.initialize(theta, rng);
  const metalearn::data::Standardizer<S> in{metalearn::Vector<S>::Zero(6), metalearn::Vector<S>::Ones(6)};
  const metalearn::data::Standardizer<S> out{metalearn::Vector<S>::Zero(4), metalearn::Vector<S>::Constant(4, 20.0f)};  // σ = 0.05
  for (bool cem : {false, true}) {
    INFO((cem ? "CEM" : "random shooting"));
    control::Planner<CartPole>::Options o;
    o.candidates = 200;
    o.cem = cem;
    control::Planner<CartPole> planner(obj, in, out, o, 5);
    metalearn::data::TransitionWindow<S> window(6, 4, 16);
    metalearn::OnlineAdapter<control::MamlS> adapter(maml, theta, 16, 1);
    metalearn::Vector<S> fast = theta, x(6), y(4);
    const control::Physics p{1.0, 1.0, 0.7};
    CartPole::State s = CartPole::initial(rng);
    const auto step = [&] {
      if (window.size() > 0) adapter.adapt_available(window, fast);
      const double u = planner.plan(fast, s);
      const CartPole::State next = CartPole::step(s, u, p);
      control::put(x, control::model_input<CartPole>(s, u));
      in.normalize(x, x);
      control::put(y, CartPole::State(next - s));
      out.normalize(y, y);
      window.push(x, y);
      s = next;
    };
    for (int i = 0; i < 20; ++i) step();  // warm-up: the window fills, the workspaces grow
    window.clear();                       // a new episode: partial windows again
    s = CartPole::initial(rng);
    mlt::NoAllocationRegion region;
    for (int i = 0; i < 50; ++i) step();
    CHECK(region.allocations() == 0);
    CHECK(window.pushed() == 50);
  }
}
