// mean_interval: x̄ ± z·s/√n against values computed by hand, and its refusals.
#include <metalearn/core/statistics.hpp>

#include <catch.hpp>
#include <test_support.hpp>

#include <cmath>
#include <limits>
#include <vector>

TEST_CASE("mean_interval: the mean and 1.96 s / sqrt(n), s with n - 1", "[core][statistics]") {
  const auto m = metalearn::mean_interval({1, 2, 3, 4});
  CHECK(m.count == 4);
  CHECK(m.mean == 2.5);
  const double s = std::sqrt((2.25 + 0.25 + 0.25 + 2.25) / 3);  // 1.29099…
  CHECK(m.stddev == Approx(s).epsilon(1e-15));
  CHECK(m.half_width == Approx(1.96 * s / 2).epsilon(1e-15));
  CHECK(metalearn::mean_interval({0.5, 0.5, 0.5}).half_width == 0);
  CHECK(metalearn::mean_interval({1, 2, 3, 4}, 2.576).half_width == Approx(2.576 * s / 2));  // 99 %
  // 600 episodes of a 5-way 1-shot accuracy near 0.9 (each in {0, .2, …, 1}): ±≈ 1 %, as papers report
  std::vector<double> acc;
  for (int i = 0; i < 600; ++i) acc.push_back(i % 10 == 0 ? 0.6 : i % 3 == 0 ? 0.8 : 1.0);
  const auto a = metalearn::mean_interval(acc);
  CHECK(a.half_width > 0.01);
  CHECK(a.half_width < 0.02);
  CHECK_THROWS_WITH(metalearn::mean_interval({1}), mlt::contains("needs at least 2 values for a standard deviation, got 1"));
  CHECK_THROWS_WITH(metalearn::mean_interval({}), mlt::contains("got 0"));
  CHECK_THROWS_WITH(metalearn::mean_interval({1, std::numeric_limits<double>::quiet_NaN()}),
                    mlt::contains("value 1 is nan"));
  CHECK_THROWS_WITH(metalearn::mean_interval({1, 2}, 0), mlt::contains("z must be finite and > 0, got 0"));
}
