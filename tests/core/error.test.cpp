#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>

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

TEST_CASE("errors: metalearn::error catches every metalearn exception, the standard catches still work",
          "[core][error]") {
  const auto thrower = [](int kind) {
    switch (kind) {
      case 0: throw ml::invalid_argument("metalearn: a: bad input");
      case 1: throw ml::numerical_error("metalearn: b: not finite");
      case 2: throw ml::checkpoint_error("metalearn: c: corrupt");
      default: throw ml::logic_error("metalearn: d: internal");
    }
  };
  for (int kind = 0; kind < 4; ++kind) {
    try {
      thrower(kind);
      FAIL("nothing was thrown");
    } catch (const ml::error& e) {
      CHECK(std::string(e.what()).rfind("metalearn: ", 0) == 0);
    }
    try {  // one std::exception base, so this catch is not ambiguous
      thrower(kind);
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).find("metalearn: ") == 0);
    }
  }
  CHECK_THROWS_AS(thrower(0), std::invalid_argument);
  CHECK_THROWS_AS(thrower(1), std::runtime_error);
  CHECK_THROWS_AS(thrower(2), std::runtime_error);
  CHECK_THROWS_AS(thrower(3), std::logic_error);
}

TEST_CASE("errors: without_prefix drops one leading 'metalearn: '", "[core][error]") {
  CHECK(std::string(ml::detail::without_prefix(ml::invalid_argument("metalearn: f: x"))) == "f: x");
  CHECK(std::string(ml::detail::without_prefix(std::runtime_error("other: y"))) == "other: y");
}
