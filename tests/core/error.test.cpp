#include <metalearn/core/error.hpp>

#include <catch.hpp>

#include <limits>
#include <string>

namespace ml = metalearn;

TEST_CASE("errors: check_size names what was expected and what came", "[core][error]") {
  CHECK_NOTHROW(ml::detail::check_size("f", "theta", 3, 3));
  try {
    ml::detail::check_size("Objective::loss", "theta", 17, 1761);
    FAIL("check_size did not throw");
  } catch (const std::invalid_argument& e) {  // the metalearn type derives from it
    const std::string msg = e.what();
    CHECK(msg.find("Objective::loss") != std::string::npos);
    CHECK(msg.find("17") != std::string::npos);
    CHECK(msg.find("expected 1761") != std::string::npos);
  }
}

TEST_CASE("errors: check_finite names the first non-finite entry", "[core][error]") {
  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(3, 4);
  CHECK_NOTHROW(ml::detail::check_finite("f", "inputs", x));
  x(2, 1) = std::numeric_limits<double>::quiet_NaN();
  x(1, 3) = std::numeric_limits<double>::infinity();
  try {
    ml::detail::check_finite("f", "inputs", x);
    FAIL("check_finite did not throw");
  } catch (const ml::invalid_argument& e) {
    const std::string msg = e.what();
    CHECK(msg.find("inputs must be finite") != std::string::npos);
    CHECK(msg.find("(2, 1)") != std::string::npos);
  }
}

TEST_CASE("errors: check_positive rejects zero, negatives, NaN and infinity", "[core][error]") {
  CHECK_NOTHROW(ml::detail::check_positive("f", "lr", 1e-3));
  CHECK_THROWS_AS(ml::detail::check_positive("f", "lr", 0.0), ml::invalid_argument);
  CHECK_THROWS_AS(ml::detail::check_positive("f", "lr", -1.0), ml::invalid_argument);
  CHECK_THROWS_AS(ml::detail::check_positive("f", "lr", std::numeric_limits<double>::quiet_NaN()),
                  ml::invalid_argument);
  CHECK_THROWS_AS(ml::detail::check_positive("f", "lr", std::numeric_limits<double>::infinity()),
                  ml::invalid_argument);
}
