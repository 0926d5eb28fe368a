#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>

#include <cmath>

using metalearn::Index;
using metalearn::tasks::SineTasks;

TEST_CASE("SineTasks: the MAML paper's distribution, reproducible from a seed", "[tasks]") {
  SineTasks<float> a(5), b(5), c(6);
  SineTasks<float>::Task ta, tb, tc;
  double amin = 10, amax = 0, pmin = 10, pmax = -10, xmin = 10, xmax = -10;
  for (int i = 0; i < 2000; ++i) {
    const auto s = a.sample(ta);
    b.sample(tb);
    c.sample(tc);
    REQUIRE(ta.support.inputs == tb.support.inputs);
    REQUIRE(ta.query.targets == tb.query.targets);
    amin = std::min(amin, s.amplitude);
    amax = std::max(amax, s.amplitude);
    pmin = std::min(pmin, s.phase);
    pmax = std::max(pmax, s.phase);
    xmin = std::min<double>(xmin, ta.support.inputs.minCoeff());
    xmax = std::max<double>(xmax, ta.support.inputs.maxCoeff());
    for (Index j = 0; j < ta.query.size(); ++j)
      REQUIRE(std::abs(ta.query.targets(0, j) - s.amplitude * std::sin(ta.query.inputs(0, j) - s.phase)) < 1e-5);
  }
  CHECK(ta.support.size() == 10);
  CHECK(ta.query.size() == 10);
  CHECK(ta.support.inputs.rows() == 1);
  CHECK(ta.support.inputs != tc.support.inputs);
  CHECK(amin >= 0.1);
  CHECK(amax <= 5.0);
  CHECK(amin < 0.2);
  CHECK(amax > 4.9);
  CHECK(pmin >= 0.0);
  CHECK(pmax <= 3.1416);
  CHECK(xmin >= -5.0);
  CHECK(xmax <= 5.0);
  CHECK(xmin < -4.9);
}

TEST_CASE("SineTasks: the grid is evenly spaced over [-5, 5], ends included", "[tasks]") {
  SineTasks<double> s(1);
  const auto g = s.grid({2.0, 0.5}, 101);
  CHECK(g.inputs(0, 0) == -5.0);
  CHECK(g.inputs(0, 100) == 5.0);
  CHECK(g.inputs(0, 50) == Catch::Approx(0.0).margin(1e-15));
  CHECK(g.targets(0, 50) == Catch::Approx(2.0 * std::sin(-0.5)));
}

TEST_CASE("SineTasks: the RNG state restores the stream", "[tasks]") {
  SineTasks<float> s(8);
  SineTasks<float>::Task t1, t2;
  s.sample(t1);
  const auto state = s.rng().state();
  s.sample(t1);
  SineTasks<float> r(0);
  r.rng().set_state(state);
  r.sample(t2);
  CHECK(t1.support.inputs == t2.support.inputs);
}

TEST_CASE("SineTasks: a frequency range draws omega (Meta-SGD's protocol), a single value draws nothing", "[tasks]") {
  SineTasks<double>::Options o;
  o.frequency_min = 0.8;
  o.frequency_max = 1.2;
  o.phase_min = -3.14159265358979323846;  // y = A sin(ωx + b), b ∈ [0, π]
  o.phase_max = 0;
  SineTasks<double> s(3, o);
  SineTasks<double>::Task t;
  double wmin = 10, wmax = 0;
  for (int i = 0; i < 2000; ++i) {
    const auto sinusoid = s.sample(t);
    wmin = std::min(wmin, sinusoid.frequency);
    wmax = std::max(wmax, sinusoid.frequency);
    REQUIRE(sinusoid.phase <= 0.0);
    for (Index j = 0; j < t.query.size(); ++j)
      REQUIRE(t.query.targets(0, j) ==
              sinusoid.amplitude * std::sin(sinusoid.frequency * t.query.inputs(0, j) - sinusoid.phase));
  }
  CHECK(wmin >= 0.8);
  CHECK(wmin < 0.81);
  CHECK(wmax <= 1.2);
  CHECK(wmax > 1.19);

  // ω = 1 by default and not drawn: the stream is the MAML paper's, as before the option existed
  SineTasks<double>::Options fixed;
  fixed.frequency_min = fixed.frequency_max = 1.0;
  SineTasks<double> a(9), b(9, fixed);
  SineTasks<double>::Task ta, tb;
  for (int i = 0; i < 50; ++i) {
    CHECK(a.sample(ta).frequency == 1.0);
    b.sample(tb);
    CHECK(ta.support.inputs == tb.support.inputs);
  }
  CHECK(a.rng() == b.rng());

  SineTasks<double>::Options bad;
  bad.frequency_min = 1.3;
  bad.frequency_max = 1.2;
  CHECK_THROWS_AS(SineTasks<double>(1, bad), metalearn::invalid_argument);
  bad.frequency_min = std::nan("");
  CHECK_THROWS_AS(SineTasks<double>(1, bad), metalearn::invalid_argument);
}
