#include <metalearn/core/finite.hpp>

#include <catch.hpp>

#include <limits>

namespace ml = metalearn;

namespace {
template <class S>
void check_scalar_type() {
  using L = std::numeric_limits<S>;
  for (S x : {S(0), S(-0.0), S(1), -L::max(), L::max(), L::min(), L::denorm_min(), L::epsilon()})
    CHECK(ml::detail::is_finite(x));
  for (S x : {L::infinity(), -L::infinity(), L::quiet_NaN(), -L::quiet_NaN(), L::signaling_NaN()})
    CHECK_FALSE(ml::detail::is_finite(x));
}
}  // namespace

TEST_CASE("finite: is_finite reads the exponent bits of float and double", "[core][finite]") {
  check_scalar_type<float>();
  check_scalar_type<double>();
}

TEST_CASE("finite: all_finite and check_finite on vectors, matrices and expressions", "[core][finite]") {
  Eigen::MatrixXf m = Eigen::MatrixXf::Constant(5, 7, 3e38f);
  CHECK(ml::detail::all_finite(m));
  CHECK(ml::detail::all_finite(m.block(1, 1, 3, 3)));
  m(4, 6) = -std::numeric_limits<float>::infinity();
  CHECK_FALSE(ml::detail::all_finite(m));
  CHECK(ml::detail::all_finite(m.block(0, 0, 4, 6)));
  CHECK_THROWS_WITH(ml::detail::check_finite("f", "m", m), mlt::contains("entry (4, 6)"));
  Eigen::VectorXd v = Eigen::VectorXd::Zero(100);
  v[57] = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(ml::detail::all_finite(v));
  CHECK_THROWS_WITH(ml::detail::check_finite("f", "v", v), mlt::contains("entry (57, 0)"));
}

TEST_CASE("finite: check_non_negative accepts 0 and rejects negatives, NaN and infinity", "[core][finite]") {
  CHECK_NOTHROW(ml::detail::check_non_negative("f", "x", 0.0));
  CHECK_NOTHROW(ml::detail::check_non_negative("f", "x", 2.5));
  for (double x : {-1e-300, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()})
    CHECK_THROWS_AS(ml::detail::check_non_negative("f", "x", x), ml::invalid_argument);
}
