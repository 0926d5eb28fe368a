#pragma once
// Small helpers of the tests that check error messages and write vectors by their entries.
#include <metalearn/core/types.hpp>

#include <catch.hpp>

#include <initializer_list>
#include <string>

namespace mlt {

/// Runs f, which must throw E whose message contains every one of `parts`.
template <class E, class F>
void expect_throw(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("nothing was thrown");
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& p : parts) CHECK_THAT(what, contains(p));
  }
}

/// A vector of the listed entries: vec<float>({1, 2, 3}).
template <class S>
metalearn::Vector<S> vec(std::initializer_list<S> v) {
  metalearn::Vector<S> out(static_cast<metalearn::Index>(v.size()));
  metalearn::Index i = 0;
  for (S x : v) out[i++] = x;
  return out;
}

}  // namespace mlt
