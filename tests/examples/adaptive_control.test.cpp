// The control example's pieces: the simulators against physics (energy, the small-angle period),
// the planner's checks and its use of the model, and a short run that learns.
#include <adaptive_control.hpp>

#include <catch.hpp>
#include <json.hpp>
#include <temp_dir.hpp>

#include <cmath>
#include <string>

using control::CartPole;
using control::Pendulum;
using control::Physics;

TEST_CASE("control: the pendulum conserves energy without torque (RK4)", "[example][control]") {
  const Physics p{1.3, 0.8, 1.0};
  Pendulum::State x(2.5, 0.0);  // a large swing
  const double e0 = Pendulum::energy(x, p);
  double worst = 0;
  for (int i = 0; i < 2000; ++i) {  // 100 s
    x = Pendulum::step(x, 0.0, p);
    worst = std::max(worst, std::abs(Pendulum::energy(x, p) - e0));
  }
  CHECK(worst / std::abs(e0) < 1e-5);
  // a torque changes it: the check can fail
  Pendulum::State y(2.5, 0.0);
  for (int i = 0; i < 20; ++i) y = Pendulum::step(y, 5.0, p);
  CHECK(std::abs(Pendulum::energy(y, p) - e0) > 1e-2 * std::abs(e0));
}

TEST_CASE("control: the pendulum's small-angle period is 2 pi sqrt(l / g)", "[example][control]") {
  for (double length : {0.5, 1.0, 1.5}) {
    const Physics p{1.0, length, 1.0};
    Pendulum::State x(control::kPi + 0.01, 0.0);  // hanging, displaced by 0.01 rad
    std::vector<double> crossings;                 // upward crossings of θ = π, interpolated
    for (int i = 0; i < 4000 && crossings.size() < 6; ++i) {
      const Pendulum::State next = Pendulum::step(x, 0.0, p);
      const double a = x[0] - control::kPi, b = next[0] - control::kPi;
      if (a < 0 && b >= 0) crossings.push_back(Pendulum::dt * (i + a / (a - b)));
      x = next;
    }
    REQUIRE(crossings.size() == 6);
    const double period = (crossings.back() - crossings.front()) / 5;
    const double expected = 2 * control::kPi * std::sqrt(length / Pendulum::g);
    INFO("length " << length << ": period " << period << ", expected " << expected);
    CHECK(std::abs(period - expected) < 1e-3 * expected);
  }
}

TEST_CASE("control: the cart-pole conserves energy without force", "[example][control]") {
  const Physics p{1.4, 1.2, 0.7};
  CartPole::State x(0.1, 0.3, 0.8, -0.5);
  const double e0 = CartPole::energy(x, p);
  double worst = 0;
  for (int i = 0; i < 2500; ++i) {  // 50 s of the pole swinging round the cart
    x = CartPole::step(x, 0.0, p);
    worst = std::max(worst, std::abs(CartPole::energy(x, p) - e0));
  }
  CHECK(worst / std::abs(e0) < 1e-4);
  // RK4's error, not the equations': a quarter of the step leaves 4⁴ = 256 times less drift
  CartPole::State z(0.1, 0.3, 0.8, -0.5);
  double finer = 0;
  for (int i = 0; i < 4 * 2500; ++i) {
    z = control::rk4(z, CartPole::dt / 4, [&](const CartPole::State& s) { return CartPole::derivative(s, 0.0, p); });
    finer = std::max(finer, std::abs(CartPole::energy(z, p) - e0));
  }
  INFO("drift " << worst << " at dt, " << finer << " at dt / 4");
  CHECK(finer < worst / 100);
  // and the horizontal momentum (M + m_p) ẋ + m_p l θ̇ cos θ is conserved too
  const auto momentum = [&](const CartPole::State& s) {
    const double mp = 0.1 * p.mass, l = 0.5 * p.length;
    return (CartPole::cart_mass + mp) * s[1] + mp * l * s[3] * std::cos(s[2]);
  };
  CartPole::State y(0.0, 0.3, 0.8, -0.5);
  const double m0 = momentum(y);
  for (int i = 0; i < 500; ++i) y = CartPole::step(y, 0.0, p);
  CHECK(std::abs(momentum(y) - m0) < 1e-6);
}

TEST_CASE("control: actions beyond the bounds are clipped, the motor's gain and sign apply", "[example][control]") {
  const Pendulum::State x(0.3, 0.0);
  const Physics p{1.0, 1.0, 0.5}, flipped{1.0, 1.0, -0.5};
  CHECK(Pendulum::step(x, 1e6, p) == Pendulum::step(x, Pendulum::max_action, p));
  // a flipped motor turns the other way: θ̈ = (g/l) sin θ ± gain u/(m l²)
  const double up = Pendulum::derivative(x, 4.0, p)[1], down = Pendulum::derivative(x, 4.0, flipped)[1];
  const double gravity = Pendulum::g * std::sin(0.3);
  CHECK(up - gravity == Catch::Approx(2.0));
  CHECK(down - gravity == Catch::Approx(-2.0));
}

namespace {
struct Fixture {
  control::Obj obj = control::make_objective<CartPole>({16, 16});
  metalearn::data::Standardizer<control::S> in{metalearn::Vector<float>::Zero(6), metalearn::Vector<float>::Ones(6)};
  metalearn::data::Standardizer<control::S> out{metalearn::Vector<float>::Zero(4), metalearn::Vector<float>::Ones(4)};
};
}  // namespace

TEST_CASE("control: the planner refuses bad settings and a non-finite state", "[example][control]") {
  Fixture f;
  using Planner = control::Planner<CartPole>;
  using Catch::Matchers::Contains;
  const auto make = [&](Planner::Options o) { return Planner(f.obj, f.in, f.out, o, 1); };
  Planner::Options o;
  o.horizon = 0;
  CHECK_THROWS_WITH(make(o), Contains("horizon must be >= 1, got 0"));
  o = {};
  o.candidates = 0;
  CHECK_THROWS_WITH(make(o), Contains("candidate count must be >= 1, got 0"));
  o = {};
  o.action_low = 3;
  o.action_high = -3;
  CHECK_THROWS_WITH(make(o), Contains("action bounds must be finite with low < high, got [3, -3]"));
  o = {};
  o.action_high = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(make(o), metalearn::invalid_argument);
  o = {};
  o.cem = true;
  o.cem_elite = 0;
  CHECK_THROWS_WITH(make(o), Contains("elite fraction"));
  CHECK_THROWS_WITH(Planner(f.obj, f.out, f.in, {}, 1), Contains("standardisers have 4 and 6 entries, expected 6 and 4"));

  Planner planner = make({});
  metalearn::Rng rng(3);
  metalearn::Vector<float> theta(f.obj.parameter_count());
  f.obj.initialize(theta, rng);
  CartPole::State s(0, 0, std::numeric_limits<double>::quiet_NaN(), 0);
  CHECK_THROWS_AS(planner.plan(theta, s), metalearn::numerical_error);
  CHECK_THROWS_WITH(planner.plan(theta, s), Contains("not finite"));
  s[2] = 0.1;
  const double u = planner.plan(theta, s);
  CHECK(std::abs(u) <= CartPole::max_action);
}

TEST_CASE("control: random shooting and CEM with the true physics balance the cart-pole", "[example][control]") {
  // the planner's search itself, apart from any model: with the true dynamics it must balance
  Fixture f;
  control::Planner<CartPole>::Options o;
  o.horizon = 10;
  o.candidates = 200;
  control::Planner<CartPole> planner(f.obj, f.in, f.out, o, 7);
  metalearn::Rng rng(11);
  int balanced = 0;
  for (int episode = 0; episode < 3; ++episode) {
    const Physics p{1.0, 1.0, episode == 1 ? -0.4 : 0.8};  // a flipped, weak motor too
    CartPole::State x = CartPole::initial(rng);
    int good = 0;
    for (int i = 0; i < 200; ++i) {
      x = CartPole::step(x, planner.plan_true(p, x), p);
      good += CartPole::good(x) ? 1 : 0;
    }
    balanced += good >= 195 ? 1 : 0;
  }
  CHECK(balanced == 3);
}

TEST_CASE("control: flags", "[example][control]") {
  control::Config c;
  CHECK(control::parse({"--system", "cartpole", "--seeds", "2", "--planner", "cem", "--hidden", "32,32"}, c));
  CHECK(c.system == "cartpole");
  CHECK(c.seeds == 2);
  CHECK(c.planner == "cem");
  CHECK(c.hidden == std::vector<metalearn::Index>{32, 32});
  CHECK_FALSE(control::parse({"--help"}, c));
  control::Config d;
  CHECK_THROWS_AS(control::parse({"--system", "robot"}, d), examples::UsageError);
  CHECK_THROWS_AS(control::parse({"--horizon", "0"}, d), examples::UsageError);
  CHECK_THROWS_AS(control::parse({"--candidates", "0"}, d), examples::UsageError);
  CHECK_THROWS_AS(control::parse({"--window", "40", "--query", "40", "--length", "60"}, d), examples::UsageError);
}

TEST_CASE("control: a short run learns, adapts, controls and reports", "[example][control]") {
  control::Config c;
  c.seeds = 1;
  c.trajectories = 60;
  c.iterations = 1500;
  c.rounds = 0;
  c.episodes = 4;
  c.candidates = 100;
  c.eval_trajectories = 10;
  c.hidden = {32, 32};
  c.quiet = true;
  mlt::TempDir dir;
  c.save = dir.file("grbal");
  const control::SystemResult r = control::run_system<CartPole>(c, {});
  REQUIRE(r.seeds.size() == 1);
  const control::SeedResult& s = r.seeds.front();
  REQUIRE(s.prediction.size() == 3);
  REQUIRE(s.control.size() == 4);
  const auto& grbal = s.prediction[0];
  const auto& mb = s.prediction[1];
  INFO("GrBAL " << grbal.before << " -> " << grbal.after << ", MB " << mb.before);
  CHECK(grbal.after < grbal.before);  // adapting on the window helps the meta-learned model
  CHECK(grbal.after < mb.after);      // and beats the model that cannot adapt
  CHECK(s.prediction[1].after == s.prediction[1].before);
  for (const auto& row : s.control) {
    CHECK(row.episodes == 4);
    CHECK(row.changed_episodes == 2);
    CHECK(row.latency.steps == 4 * CartPole::episode_steps);
  }
  CHECK(s.control[0].latency.adapt_median > 0);
  // the saved model: θ* with the standardisers it reads and writes through
  const control::Obj obj = control::make_objective<CartPole>(c.hidden);
  metalearn::Vector<float> theta(obj.parameter_count());
  const std::string metadata = metalearn::io::load_weights(c.save + "-cartpole.weights", obj.describe(), theta);
  const auto [in, out] = control::read_standardisers(metadata);
  CHECK(in.size() == 6);
  CHECK(out.size() == 4);
  CHECK((out.scale.array() > 0).all());
  CHECK_THROWS_AS(control::read_standardisers("inputs mean 1; scale 1"), metalearn::invalid_argument);
  // the same seed gives the same numbers (timings aside)
  const control::SystemResult again = control::run_system<CartPole>(c, {});
  CHECK(again.seeds.front().prediction[0].after == grbal.after);
  CHECK(again.seeds.front().control[0].successes == s.control[0].successes);
  const auto json = mlt::json::parse(control::to_json(c, {r}));  // parses: a well-formed report
  CHECK(json["anchor"]["alpaca_maml_pendulum_before"].n == 0.0346);
  const auto& system = json["systems"][0];
  CHECK(system["horizon"].n == 10);
  const auto& seed = system["seeds"][0];
  REQUIRE(seed["prediction"].a.size() == 3);
  CHECK(seed["prediction"][0]["method"].s == "GrBAL");
  CHECK(seed["prediction"][0]["after"].n == Catch::Approx(grbal.after));
  REQUIRE(seed["control"].a.size() == 4);
  CHECK(seed["control"][3]["method"].s == "true physics");
  CHECK(seed["control"][0]["episodes"].n == 4);
  const std::string svg = control::to_svg({r});
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(control::table(c, {r}).find("| GrBAL |") != std::string::npos);
}
