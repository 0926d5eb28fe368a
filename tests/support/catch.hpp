#pragma once
#include <string>
// Catch2 v2 / v3 compatibility: include this instead of a Catch2 header.
#if defined(METALEARN_TEST_MAJOR_CATCH) && METALEARN_TEST_MAJOR_CATCH >= 3
#include <catch2/catch_approx.hpp>
#include <catch2/catch_template_test_macros.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
namespace mlt {
/// Matcher: the string contains `s`.
inline auto contains(const std::string& s) { return Catch::Matchers::ContainsSubstring(s); }
}  // namespace mlt
#else
#include <catch2/catch.hpp>
namespace Catch {
using Detail::Approx;  // v3 spells it Catch::Approx
}  // namespace Catch
namespace mlt {
/// Matcher: the string contains `s`.
inline auto contains(const std::string& s) { return Catch::Matchers::Contains(s); }
}  // namespace mlt
#endif
