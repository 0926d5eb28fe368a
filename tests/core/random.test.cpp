#include <metalearn/core/random.hpp>

#include <catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

using metalearn::Rng;

TEST_CASE("Rng: xoshiro256** known answers from the reference state {1,2,3,4}", "[core][random]") {
  Rng rng;
  rng.set_state({1, 2, 3, 4});
  // result = rotl(s1 * 5, 7) * 9 = rotl(10, 7) * 9 = 1280 * 9; after the first step s1 = 0.
  CHECK(rng() == 11520u);
  CHECK(rng() == 0u);
}

TEST_CASE("Rng: a seed reproduces the sequence and streams are independent", "[core][random]") {
  Rng a(42), b(42), c(43), d(42, 1);
  std::vector<std::uint64_t> va, vb, vc, vd;
  for (int i = 0; i < 64; ++i) {
    va.push_back(a());
    vb.push_back(b());
    vc.push_back(c());
    vd.push_back(d());
  }
  CHECK(va == vb);
  CHECK(va != vc);
  CHECK(va != vd);
}

TEST_CASE("Rng: state round-trips and resumes the sequence exactly", "[core][random]") {
  Rng a(7);
  for (int i = 0; i < 10; ++i) a.normal();
  const Rng::State saved = a.state();
  const double next = a.normal();
  Rng b(999);
  b.set_state(saved);
  CHECK(b.normal() == next);
  CHECK(a == b);
}

TEST_CASE("Rng: uniform and normal have the right moments", "[core][random]") {
  Rng rng(2026);
  const int n = 200000;
  double s1 = 0, s2 = 0, n1 = 0, n2 = 0, lo = 1, hi = 0;
  for (int i = 0; i < n; ++i) {
    const double u = rng.uniform();
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    s1 += u;
    s2 += u * u;
    const double z = rng.normal();
    n1 += z;
    n2 += z * z;
  }
  // Means within ~5 standard errors: sd(U) = 0.289, sd(Z) = 1.
  CHECK(lo >= 0.0);
  CHECK(hi < 1.0);
  CHECK(std::abs(s1 / n - 0.5) < 5 * 0.289 / std::sqrt(n));
  CHECK(std::abs(s2 / n - 1.0 / 3.0) < 0.005);
  CHECK(std::abs(n1 / n) < 5.0 / std::sqrt(n));
  CHECK(std::abs(n2 / n - 1.0) < 0.02);
}

TEST_CASE("Rng: truncated normal stays within the bound and uniform_index covers its range",
          "[core][random]") {
  Rng rng(5);
  for (int i = 0; i < 10000; ++i) REQUIRE(std::abs(rng.truncated_normal(0.01)) <= 0.02);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70000; ++i) {
    const auto k = rng.uniform_index(7);
    REQUIRE(k < 7u);
    ++counts[k];
  }
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);  // sd ≈ 93
  CHECK(rng.uniform_index(0) == 0u);
}
