// Standardisation (data/standardizer.hpp): fit against a naive double loop (per feature and
// global, with the min_std rule), apply / normalize / denormalize (in place too), encode /
// decode bit for bit, and the messages of bad input.
#include <metalearn/data/dataset.hpp>  // LabelledDataset, for apply(dataset)
#include <metalearn/data/standardizer.hpp>

#include <catch.hpp>
#include <expect.hpp>
#include <test_support.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace data = metalearn::data;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// The bits of a float or double, for comparisons that tell -0 from 0.
template <class S>
auto bits(S x) {
  std::conditional_t<std::is_same_v<S, float>, std::uint32_t, std::uint64_t> b;
  static_assert(sizeof b == sizeof x);
  std::memcpy(&b, &x, sizeof b);
  return b;
}

template <class Derived>
bool same_bits(const Eigen::DenseBase<Derived>& a, const Eigen::DenseBase<Derived>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index j = 0; j < a.cols(); ++j)
    for (Index i = 0; i < a.rows(); ++i)
      if (bits(a.derived().coeff(i, j)) != bits(b.derived().coeff(i, j))) return false;
  return true;
}

// The mean and population standard deviation of x(i, ·) by a naive loop in double.
template <class S>
std::pair<double, double> naive_row(const Matrix<S>& x, Index i) {
  double mean = 0;
  for (Index j = 0; j < x.cols(); ++j) mean += static_cast<double>(x(i, j));
  mean /= static_cast<double>(x.cols());
  double var = 0;
  for (Index j = 0; j < x.cols(); ++j)
    var += (static_cast<double>(x(i, j)) - mean) * (static_cast<double>(x(i, j)) - mean);
  return {mean, std::sqrt(var / static_cast<double>(x.cols()))};  // population: divided by n, not n − 1
}

}  // namespace

TEMPLATE_TEST_CASE("standardizer: fit gives each row's mean and the inverse of its population standard deviation",
                   "[data][standardizer]", float, double) {
  using S = TestType;
  Rng rng(11);
  // accumulated in double, rounded once to S: half an ulp of S plus the summation order
  const double tol = std::is_same_v<S, float> ? 1e-7 : 1e-13;
  for (Index cols : {1, 2, 3, 4, 17, 100}) {
    INFO(cols << " columns");
    Matrix<S> x(5, cols);
    for (Index i = 0; i < x.rows(); ++i)
      for (Index j = 0; j < cols; ++j)
        x(i, j) = static_cast<S>(static_cast<double>(i * i) - 3.0 + (0.1 + static_cast<double>(i)) * rng.normal());
    const auto s = data::Standardizer<S>::fit(x);
    REQUIRE(s.size() == 5);
    REQUIRE(s.mean.size() == 5);
    REQUIRE(s.scale.size() == 5);
    for (Index i = 0; i < x.rows(); ++i) {
      const auto [mean, sigma] = naive_row(x, i);
      const double magnitude = std::max(1.0, static_cast<double>(x.row(i).cwiseAbs().maxCoeff()));
      INFO("row " << i << ": mean " << s.mean[i] << " vs " << mean << ", scale " << s.scale[i] << " vs 1/" << sigma);
      CHECK(std::abs(static_cast<double>(s.mean[i]) - mean) <= tol * magnitude);
      if (sigma < 1e-6) {
        CHECK(s.scale[i] == S(1));  // one column: σ = 0, only centred
      } else {
        CHECK(std::abs(static_cast<double>(s.scale[i]) - 1 / sigma) <= tol / sigma);
      }
    }
  }
}

TEST_CASE("standardizer: fit on two known columns gives the population deviation, not the sample one",
          "[data][standardizer]") {
  Matrix<double> x(2, 2);
  x << 1, 3,  //
      -4, 4;
  const auto s = data::Standardizer<double>::fit(x);
  CHECK(s.mean == mlt::vec<double>({2, 0}));
  CHECK(s.scale == mlt::vec<double>({1, 0.25}));  // 1/σ with σ = 1 and 4: the sample deviation would be √2 and 4√2
  Matrix<double> z(2, 2);
  s.normalize(x, z);
  Matrix<double> expected(2, 2);
  expected << -1, 1,  //
      -1, 1;
  CHECK(z == expected);
}

TEMPLATE_TEST_CASE("standardizer: a row whose deviation is below min_std is only centred, not floored",
                   "[data][standardizer]", float, double) {
  using S = TestType;
  Rng rng(3);
  Matrix<S> x = mlt::random_matrix<S>(5, 50, rng);
  x.row(1).setConstant(S(0.1));
  x.row(3).setConstant(S(-7));
  x.row(2) *= S(0.01);  // deviation ≈ 0.01: above the default min_std, below 0.5
  for (Index j = 0; j < x.cols(); ++j) x(4, j) = j % 2 ? S(1.25) : S(0.75);  // mean 1, deviation 0.25 exactly
  const auto plain = data::Standardizer<S>::fit(x);
  CHECK(plain.scale[1] == S(1));
  CHECK(plain.scale[3] == S(1));
  CHECK(plain.mean[1] == S(0.1));  // the mean of equal entries, accumulated in double, is exact
  CHECK(plain.mean[3] == S(-7));
  CHECK(plain.scale[0] < S(2));
  CHECK(plain.scale[2] > S(20));  // 1/σ ≈ 100
  CHECK(plain.scale[2] < S(1000));
  CHECK(plain.mean[4] == S(1));
  CHECK(plain.scale[4] == S(4));

  const auto coarse = data::Standardizer<S>::fit(x, data::Standardization::per_feature, 0.5);
  CHECK(coarse.scale[1] == S(1));
  CHECK(coarse.scale[2] == S(1));  // σ ≈ 0.01 < 0.5: scale 1, not 1/0.5
  CHECK(coarse.scale[3] == S(1));
  CHECK(coarse.scale[4] == S(1));
  CHECK(coarse.scale[0] == plain.scale[0]);
  CHECK(coarse.mean == plain.mean);
  // "below" is strict: σ = min_std is scaled
  CHECK(data::Standardizer<S>::fit(x, data::Standardization::per_feature, 0.25).scale[4] == S(4));
  CHECK(data::Standardizer<S>::fit(x, data::Standardization::per_feature, 0.2500001).scale[4] == S(1));

  // normalising a constant row gives exactly zero, not a division by zero; a row that is only
  // centred keeps its spread
  Matrix<S> z(5, 50);
  coarse.normalize(x, z);
  CHECK(z.allFinite());
  CHECK(z.row(1).isZero(0));
  CHECK(z.row(3).isZero(0));
  CHECK(z.row(2) == (x.row(2).array() - coarse.mean[2]).matrix());
  // the fitted data standardised: mean 0 and deviation 1 where the row varies enough
  plain.normalize(x, z);
  for (Index i : {Index(0), Index(2), Index(4)}) {
    const auto [m, sd] = naive_row(z, i);
    INFO("row " << i);
    CHECK(std::abs(m) < 1e-5);
    CHECK(std::abs(sd - 1) < 1e-5);
  }
}

TEMPLATE_TEST_CASE("standardizer: fit never gives a scale that is infinite, even for min_std <= 0",
                   "[data][standardizer]", float, double) {
  using S = TestType;
  using L = std::numeric_limits<S>;
  Matrix<S> x(3, 4);
  x << 1, 1, 1, 1,                                                  // σ = 0
      0, L::denorm_min(), 0, L::denorm_min(),                       // 1/σ beyond the largest S
      S(1), S(2), S(3), S(4);                                       // an ordinary row
  for (double min_std : {0.0, -1.0, 1e-300}) {
    INFO("min_std " << min_std);
    const auto s = data::Standardizer<S>::fit(x, data::Standardization::per_feature, min_std);
    CHECK(s.scale[0] == S(1));
    CHECK(s.scale[1] == S(1));
    CHECK(s.scale[2] == static_cast<S>(1 / std::sqrt(1.25)));
    CHECK_NOTHROW(data::Standardizer<S>::decode(s.encode()));
    Matrix<S> z(3, 4);
    s.normalize(x, z);
    CHECK(z.allFinite());
    CHECK(z.row(0).isZero(0));
  }
}

TEMPLATE_TEST_CASE("standardizer: global fit uses one mean and one deviation over every entry",
                   "[data][standardizer]", float, double) {
  using S = TestType;
  Rng rng(23);
  Matrix<S> x = mlt::random_matrix<S>(4, 30, rng, 2.0);
  for (Index i = 0; i < x.rows(); ++i) x.row(i).array() += static_cast<S>(3 * i);  // rows of other means
  double mean = 0;
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i) mean += static_cast<double>(x(i, j));
  mean /= static_cast<double>(x.size());
  double var = 0;
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i) var += (static_cast<double>(x(i, j)) - mean) * (static_cast<double>(x(i, j)) - mean);
  const double sigma = std::sqrt(var / static_cast<double>(x.size()));
  const double tol = std::is_same_v<S, float> ? 1e-7 : 1e-13;

  const auto g = data::Standardizer<S>::fit(x, data::Standardization::global);
  REQUIRE(g.size() == 4);
  for (Index i = 0; i < 4; ++i) {
    INFO("feature " << i);
    CHECK(g.mean[i] == g.mean[0]);
    CHECK(g.scale[i] == g.scale[0]);
  }
  CHECK(std::abs(static_cast<double>(g.mean[0]) - mean) <= tol * static_cast<double>(x.cwiseAbs().maxCoeff()));
  CHECK(std::abs(static_cast<double>(g.scale[0]) - 1 / sigma) <= tol / sigma);
  // not the per-feature statistics
  const auto p = data::Standardizer<S>::fit(x);
  CHECK(p.mean[0] != g.mean[0]);
  CHECK(p.scale[0] != g.scale[0]);
  // the whole matrix standardised: mean 0 and deviation 1 over all entries, not per row
  Matrix<S> z(4, 30);
  g.normalize(x, z);
  const Matrix<double> zd = z.template cast<double>();
  CHECK(std::abs(zd.mean()) < 1e-5);
  CHECK(std::abs(std::sqrt((zd.array() - zd.mean()).square().mean()) - 1) < 1e-5);
  CHECK(zd.row(3).mean() > 0.5);

  // min_std applies to the one deviation: rows that each are constant are scaled, as they
  // differ from each other
  Matrix<S> rows(2, 3);
  rows << 0, 0, 0,  //
      4, 4, 4;
  const auto r = data::Standardizer<S>::fit(rows, data::Standardization::global);
  CHECK(r.mean == mlt::vec<S>({2, 2}));
  CHECK(r.scale == mlt::vec<S>({0.5, 0.5}));  // σ = 2 over all entries
  CHECK(data::Standardizer<S>::fit(rows).scale == mlt::vec<S>({1, 1}));
  CHECK(data::Standardizer<S>::fit(rows, data::Standardization::global, 2.0).scale == mlt::vec<S>({0.5, 0.5}));
  CHECK(data::Standardizer<S>::fit(rows, data::Standardization::global, 2.5).scale == mlt::vec<S>({1, 1}));
  rows.setConstant(S(5));
  const auto c = data::Standardizer<S>::fit(rows, data::Standardization::global);
  CHECK(c.mean == mlt::vec<S>({5, 5}));
  CHECK(c.scale == mlt::vec<S>({1, 1}));
}

TEST_CASE("standardizer: fit refuses no examples and a non-finite entry", "[data][standardizer][bad-input]") {
  using St = data::Standardizer<double>;
  for (auto kind : {data::Standardization::per_feature, data::Standardization::global}) {
    mlt::expect_throw<metalearn::invalid_argument>([&] { St::fit(Matrix<double>(3, 0), kind); },
                 {"metalearn: data::Standardizer::fit: the training set is empty"});
    Matrix<double> x = Matrix<double>::Ones(3, 4);
    x(1, 2) = std::numeric_limits<double>::quiet_NaN();
    mlt::expect_throw<metalearn::invalid_argument>([&] { St::fit(x, kind); },
                 {"data::Standardizer::fit: the training features must be finite, but entry (1, 2) is nan"});
    x(1, 2) = -std::numeric_limits<double>::infinity();
    mlt::expect_throw<metalearn::invalid_argument>([&] { St::fit(x, kind); }, {"entry (1, 2) is -inf"});
  }
}

TEST_CASE("dataset: standardisation uses the training split's statistics only", "[data]") {
  Matrix<double> train(3, 4), test(3, 2);
  train << 1, 2, 3, 4,  //
      10, 10, 10, 10,   // a constant feature: centred, not scaled
      -2, 0, 2, 4;
  test << 5, 0,  //
      11, 9,     //
      1, 1;
  const auto s = data::Standardizer<double>::fit(train);
  Matrix<double> t = train;
  s.apply(t);
  CHECK(std::abs(t.row(0).mean()) < 1e-15);
  CHECK(std::abs((t.row(0).array().square().mean()) - 1) < 1e-12);
  CHECK(t.row(1).isZero());
  s.apply(test);  // with the training set's μ = 2.5, σ = √1.25 for feature 0
  CHECK(test(0, 0) == Catch::Approx((5 - 2.5) / std::sqrt(1.25)));
  CHECK(test(1, 0) == 1);  // 11 − 10, unscaled
  const auto g = data::Standardizer<double>::fit(train, data::Standardization::global);
  CHECK(g.mean[0] == Catch::Approx(train.mean()));
  CHECK(g.mean[0] == g.mean[2]);
  Matrix<double> wrong(2, 1);
  CHECK_THROWS_AS(s.apply(wrong), metalearn::invalid_argument);
  CHECK_THROWS_AS(data::Standardizer<double>::fit(Matrix<double>(3, 0)), metalearn::invalid_argument);
}

TEST_CASE("standardizer: normalize multiplies by scale and denormalize divides by it, exactly here",
          "[data][standardizer]") {
  const data::Standardizer<double> s{mlt::vec<double>({1, -2}), mlt::vec<double>({0.5, 4})};  // σ = 2 and 0.25
  CHECK(s.size() == 2);
  Matrix<double> x(2, 2), z(2, 2), back(2, 2);
  x << 3, -1,  //
      0, -2.5;
  s.normalize(x, z);
  Matrix<double> expected(2, 2);
  expected << 1, -1,  //
      8, -2;
  CHECK(z == expected);
  s.denormalize(z, back);
  CHECK(back == x);
  Matrix<double> applied = x;
  s.apply(applied);
  CHECK(applied == expected);
}

TEMPLATE_TEST_CASE("standardizer: normalize is (x - mean) * scale, denormalize its inverse, both also in place",
                   "[data][standardizer]", float, double) {
  using S = TestType;
  Rng rng(5);
  const Vector<S> mean = mlt::random_vector<S>(6, rng, 3.0);
  Vector<S> scale = mlt::random_vector<S>(6, rng, 4.0).cwiseAbs();
  scale.array() += S(0.05);
  const data::Standardizer<S> s{mean, scale};
  const double eps = static_cast<double>(std::numeric_limits<S>::epsilon());
  for (Index cols : {0, 1, 3, 8, 31}) {
    INFO(cols << " columns");
    const Matrix<S> x = mlt::random_matrix<S>(6, cols, rng, 4.0);
    Matrix<S> z(6, cols), back(6, cols);
    s.normalize(x, z);
    s.denormalize(z, back);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < 6; ++i) {
        const double xi = static_cast<double>(x(i, j)), mi = static_cast<double>(mean[i]),
                     si = static_cast<double>(scale[i]);
        const double expected = (xi - mi) * si;
        INFO("entry (" << i << ", " << j << ")");
        // two roundings: of (x − μ) and of the product
        CHECK(std::abs(static_cast<double>(z(i, j)) - expected) <= 2 * eps * (std::abs(xi) + std::abs(mi)) * si);
        // and back: those over σ, then the division and the sum
        CHECK(std::abs(static_cast<double>(back(i, j)) - xi) <= 4 * eps * (std::abs(xi) + std::abs(mi)));
      }

    // apply is normalize in place
    Matrix<S> applied = x;
    s.apply(applied);
    CHECK(same_bits(applied, z));
    // in place: the same values as into another matrix
    Matrix<S> y = x;
    s.normalize(y, y);
    CHECK(same_bits(y, z));
    s.denormalize(y, y);
    CHECK(same_bits(y, back));
    // into and from blocks of a larger matrix, in place too
    Matrix<S> big = Matrix<S>::Constant(8, cols + 2, S(42));
    s.normalize(x, big.block(1, 1, 6, cols));
    CHECK(same_bits(Matrix<S>(big.block(1, 1, 6, cols)), z));
    s.denormalize(big.block(1, 1, 6, cols), big.block(1, 1, 6, cols));
    CHECK(same_bits(Matrix<S>(big.block(1, 1, 6, cols)), back));
    CHECK(big.row(0).cwiseEqual(S(42)).all());
    CHECK(big.row(7).cwiseEqual(S(42)).all());
    CHECK(big.col(0).cwiseEqual(S(42)).all());
    CHECK(big.col(cols + 1).cwiseEqual(S(42)).all());
  }
}

TEST_CASE("standardizer: normalize and denormalize refuse wrong shapes and leave the output as it was",
          "[data][standardizer][bad-input]") {
  const data::Standardizer<double> s{mlt::vec<double>({1, 2, 3}), mlt::vec<double>({1, 2, 3})};
  const Matrix<double> x = Matrix<double>::Ones(3, 4);
  const Matrix<double> sevens = Matrix<double>::Constant(3, 4, 7.0);
  Matrix<double> out = sevens;
  mlt::expect_throw<metalearn::invalid_argument>([&] { s.normalize(Matrix<double>::Ones(2, 4), out); },
               {"metalearn: data::Standardizer::normalize: the input has 2 rows, expected 3"});
  CHECK(out == sevens);
  Matrix<double> wrong = Matrix<double>::Constant(3, 5, 7.0);
  mlt::expect_throw<metalearn::invalid_argument>([&] { s.normalize(x, wrong); },
               {"metalearn: data::Standardizer::normalize: the output is 3 x 5, expected 3 x 4"});
  CHECK(wrong == Matrix<double>::Constant(3, 5, 7.0));
  Matrix<double> wrong_rows = Matrix<double>::Constant(4, 4, 7.0);
  mlt::expect_throw<metalearn::invalid_argument>([&] { s.denormalize(x, wrong_rows); },
               {"metalearn: data::Standardizer::denormalize: the output is 4 x 4, expected 3 x 4"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { s.denormalize(Matrix<double>::Ones(4, 4), wrong_rows); },
               {"metalearn: data::Standardizer::denormalize: the input has 4 rows, expected 3"});
  CHECK(wrong_rows == Matrix<double>::Constant(4, 4, 7.0));
  Matrix<double> two_rows = Matrix<double>::Constant(2, 4, 7.0);
  mlt::expect_throw<metalearn::invalid_argument>([&] { s.apply(two_rows); }, {"metalearn: data::Standardizer::apply: the input has 2 rows, expected 3"});
  CHECK(two_rows == Matrix<double>::Constant(2, 4, 7.0));

  // statistics whose sizes differ (a hand-built aggregate) are refused before any output is written
  const data::Standardizer<double> odd{mlt::vec<double>({1, 2, 3}), mlt::vec<double>({1, 2})};
  mlt::expect_throw<metalearn::invalid_argument>([&] { odd.normalize(x, out); }, {"data::Standardizer::normalize: mean has 3 entries and scale 2"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { odd.denormalize(x, out); }, {"data::Standardizer::denormalize: mean has 3 entries and scale 2"});
  Matrix<double> in_place = sevens;
  mlt::expect_throw<metalearn::invalid_argument>([&] { odd.apply(in_place); }, {"data::Standardizer::apply: mean has 3 entries and scale 2"});
  CHECK(out == sevens);
  CHECK(in_place == sevens);
}

TEST_CASE("standardizer: encode writes the shortest decimals of the scalar type, scale as 1/sigma",
          "[data][standardizer]") {
  CHECK(data::Standardizer<double>{mlt::vec<double>({0.1, -2, 0}), mlt::vec<double>({1, 0.5, 1e6})}.encode() ==
        "mean 0.1,-2,0; scale 1,0.5,1e+06");
  // a float's shortest text, not that of the double it widens to (0.10000000149011612)
  CHECK(data::Standardizer<float>{mlt::vec<float>({0.1f, -0.3f}), mlt::vec<float>({3.4e38f, 1e-30f})}.encode() ==
        "mean 0.1,-0.3; scale 3.4e+38,1e-30");
  // a fitted σ of 4 is written as its inverse
  Matrix<double> x(1, 2);
  x << -4, 4;
  CHECK(data::Standardizer<double>::fit(x).encode() == "mean 0; scale 0.25");
}

TEMPLATE_TEST_CASE("standardizer: decode(encode()) gives mean and scale back bit for bit", "[data][standardizer]",
                   float, double) {
  using S = TestType;
  using L = std::numeric_limits<S>;
  const auto round_trip = [](const Vector<S>& mean, const Vector<S>& scale) {
    const data::Standardizer<S> s{mean, scale};
    const std::string text = s.encode();
    INFO(text);
    const auto back = data::Standardizer<S>::decode(text);
    CHECK(back.size() == mean.size());
    CHECK(same_bits(back.mean, mean));
    CHECK(same_bits(back.scale, scale));
    CHECK(back.encode() == text);
  };
  // huge and tiny values, negative means, -0, and scales down to the subnormals
  const std::vector<S> means{S(-1e-30), S(-0.1), S(3.4e38), S(0), -S(0), S(1) / S(3), S(-2) / S(3), L::min(),
                             -L::denorm_min(), L::max(), L::lowest(), L::epsilon(), S(-1e-6), S(123456.789),
                             -L::min(), L::denorm_min(), S(-7.5), -L::min() / S(3)};
  const std::vector<S> scales{L::denorm_min(), S(3) * L::denorm_min(), L::min() / S(2), L::min() / S(1000),
                              L::min(), L::epsilon(), S(1e-30), S(1) / S(3), S(0.5), S(1), S(1e6), S(3.4e38),
                              L::max(), S(123456.789), S(1) / S(7), L::max() / S(3), S(2) / S(3), S(1e-6)};
  REQUIRE(means.size() == scales.size());
  const auto n = static_cast<Index>(means.size());
  const Vector<S> mean = Eigen::Map<const Vector<S>>(means.data(), n), scale = Eigen::Map<const Vector<S>>(scales.data(), n);
  CHECK(scale.minCoeff() > S(0));
  CHECK(scale[2] < L::min());  // subnormal
  round_trip(mean, scale);
  round_trip(mean.head(1), scale.head(1));
  for (Index i = 0; i < n; ++i) round_trip(mean.segment(i, 1), scale.segment(i, 1));
  CHECK(std::signbit(data::Standardizer<S>::decode(data::Standardizer<S>{mean, scale}.encode()).mean[4]));  // -0 stays -0
  if constexpr (std::is_same_v<S, double>) {
    round_trip(mlt::vec<double>({-1e300, 1e-300, -1e-310}), mlt::vec<double>({1e-310, 1e300, 5e-324}));
  }

  // random finite bit patterns, every exponent
  Rng rng(17);
  for (int rep = 0; rep < 200; ++rep) {
    Vector<S> m(7), s(7);
    for (Index i = 0; i < 7; ++i) {
      for (;;) {
        const auto raw = static_cast<decltype(bits(S(0)))>(rng());
        S v;
        std::memcpy(&v, &raw, sizeof v);
        if (metalearn::detail::is_finite(v) && v != S(0)) {
          m[i] = v;
          s[i] = std::abs(v);
          break;
        }
      }
    }
    round_trip(m, s);
  }
  // and ordinary values, as fit gives them: what was saved standardises exactly as before
  for (int rep = 0; rep < 50; ++rep) {
    const Matrix<S> x = mlt::random_matrix<S>(4, 9, rng, 10.0);
    const auto fitted = data::Standardizer<S>::fit(x, rep % 2 ? data::Standardization::global
                                                              : data::Standardization::per_feature);
    round_trip(fitted.mean, fitted.scale);
    const auto back = data::Standardizer<S>::decode(fitted.encode());
    Matrix<S> a(4, 9), b(4, 9);
    fitted.normalize(x, a);
    back.normalize(x, b);
    CHECK(same_bits(a, b));
  }
}

TEST_CASE("standardizer: decode reads text written by hand", "[data][standardizer]") {
  const auto s = data::Standardizer<double>::decode("mean 1.5,-2e-3,7; scale 0.25,1E2,3");
  CHECK(s.mean == mlt::vec<double>({1.5, -2e-3, 7}));
  CHECK(s.scale == mlt::vec<double>({0.25, 100, 3}));
  const auto f = data::Standardizer<float>::decode("mean 0.1; scale 2");
  CHECK(f.mean[0] == 0.1f);
  CHECK(f.scale[0] == 2.0f);
  // it standardises with what it read: scale multiplies
  Matrix<double> x(3, 1);
  x << 2, 0, 10;
  Matrix<double> z(3, 1);
  s.normalize(x, z);
  CHECK(z(0, 0) == 0.125);
  CHECK(z(2, 0) == 9.0);
}

TEMPLATE_TEST_CASE("standardizer: decode names what is wrong with its text", "[data][standardizer][bad-input]", float,
                   double) {
  using St = data::Standardizer<TestType>;
  const auto bad = [](const std::string& text, std::initializer_list<std::string> parts) {
    INFO("text: \"" << text << "\"");
    mlt::expect_throw<metalearn::invalid_argument>([&] { St::decode(text); }, parts);
    CHECK_THROWS_WITH(St::decode(text), Catch::Matchers::StartsWith("metalearn: data::Standardizer::decode: "));
  };
  // a part missing or in another order
  bad("", {"expected \"mean …; scale …\", got \"\""});
  bad("mean 1, scale 2", {"expected \"mean", "got \"mean 1, scale 2\""});
  bad("mean 1;scale 2", {"expected \"mean"});
  bad("mean 1", {"expected \"mean"});
  bad("scale 1; mean 2", {"expected \"mean", "got \"scale 1; mean 2\""});
  bad("Mean 1; scale 2", {"expected \"mean"});
  bad(" mean 1; scale 2", {"expected \"mean"});
  // entries that are not numbers
  bad("mean x; scale 1", {"mean entry 0 is not a number: \"x\""});
  bad("mean 1,abc; scale 1,1", {"mean entry 1 is not a number: \"abc\""});
  bad("mean 1; scale 1x", {"scale entry 0 is not a number: \"1x\""});
  bad("mean 1,,2; scale 1,1,1", {"mean entry 1 is not a number"});
  bad("mean ,1; scale 1", {"mean entry 0 is not a number"});
  bad("mean 1 ; scale 1", {"mean entry 0 is not a number"});
  bad("mean 1; scale 1; scale 2", {"scale entry 0 is not a number"});
  bad("mean +1; scale 1", {"mean entry 0 is not a number"});
  bad("mean 1e999; scale 1", {"mean entry 0 is not a number"});  // out of range in float and double
  // empty parts and trailing commas
  bad("mean ; scale 1", {"mean has no entries"});
  bad("mean 1; scale ", {"scale has no entries"});
  bad("mean ; scale ", {"mean has no entries"});
  bad("mean 1,; scale 1", {"mean ends with a comma"});
  bad("mean 1,2; scale 1,2,", {"scale ends with a comma"});
  bad("mean ,; scale 1", {"mean entry 0 is not a number"});
  // sizes that differ
  bad("mean 1,2; scale 1", {"data::Standardizer::decode: mean has 2 entries and scale 1"});
  bad("mean 1; scale 1,2,3", {"mean has 1 entries and scale 3"});
  // values a standardiser cannot hold
  bad("mean 1; scale 0", {"scale entry 0 must be finite and > 0, got 0"});
  bad("mean 1,2; scale 1,-0.5", {"scale entry 1 must be finite and > 0, got -0.5"});
  bad("mean 1; scale -0", {"scale entry 0 must be finite and > 0, got -0"});
  bad("mean 1; scale inf", {"scale entry 0 must be finite and > 0, got inf"});
  bad("mean 1,2; scale 1,nan", {"scale entry 1 must be finite and > 0, got nan"});
  bad("mean nan; scale 1", {"mean must be finite, but entry (0, 0) is nan"});
  bad("mean -inf,0; scale 1,1", {"mean must be finite, but entry (0, 0) is -inf"});
  bad("mean 0,inf; scale 1,1", {"mean must be finite, but entry (1, 0) is inf"});
}

TEST_CASE("standardizer: a float standardiser refuses text beyond the float range", "[data][standardizer][bad-input]") {
  mlt::expect_throw<metalearn::invalid_argument>([] { data::Standardizer<float>::decode("mean 1e39; scale 1"); },
               {"mean entry 0 is not a number: \"1e39\""});
  // the same text is a double
  CHECK(data::Standardizer<double>::decode("mean 1e39; scale 1").mean[0] == 1e39);
}

TEMPLATE_TEST_CASE("standardizer: encode refuses statistics that decode would refuse", "[data][standardizer][bad-input]",
                   float, double) {
  using S = TestType;
  using St = data::Standardizer<S>;
  const S nan = std::numeric_limits<S>::quiet_NaN(), inf = std::numeric_limits<S>::infinity();
  const auto refused = [](const St& s, const std::string& message) {
    mlt::expect_throw<metalearn::invalid_argument>([&] { (void)s.encode(); }, {"metalearn: data::Standardizer::encode: " + message});
  };
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({1})}, "mean has 2 entries and scale 1");
  refused(St{mlt::vec<S>({1}), mlt::vec<S>({1, 1})}, "mean has 1 entries and scale 2");
  refused(St{mlt::vec<S>({1, nan}), mlt::vec<S>({1, 1})}, "mean must be finite, but entry (1, 0) is nan");
  refused(St{mlt::vec<S>({-inf, 0}), mlt::vec<S>({1, 1})}, "mean must be finite, but entry (0, 0) is -inf");
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({1, 0})}, "scale entry 1 must be finite and > 0, got 0");
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({-0.5, 1})}, "scale entry 0 must be finite and > 0, got -0.5");
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({-S(0), 1})}, "scale entry 0 must be finite and > 0, got -0");
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({1, inf})}, "scale entry 1 must be finite and > 0, got inf");
  refused(St{mlt::vec<S>({1, 2}), mlt::vec<S>({nan, 1})}, "scale entry 0 must be finite and > 0, got nan");
  refused(St{mlt::vec<S>({1}), mlt::vec<S>({-std::numeric_limits<S>::denorm_min()})}, "scale entry 0 must be finite and > 0");
  // the smallest positive scale is accepted
  CHECK_NOTHROW(St{mlt::vec<S>({1}), mlt::vec<S>({std::numeric_limits<S>::denorm_min()})}.encode());
}

TEST_CASE("standardizer: an empty one refuses to encode, a dataset is standardised in place", "[data][standardizer]") {
  const data::Standardizer<double> empty;
  CHECK_THROWS_WITH(empty.encode(), mlt::contains("no features (fit it first)"));
  data::LabelledDataset<double> ds;
  ds.features.resize(2, 3);
  ds.features << 1, 2, 3,  //
      4, 4, 4;
  ds.labels.setZero(3);
  ds.classes = 1;
  const auto s = data::Standardizer<double>::fit(ds.features);
  Matrix<double> expected = ds.features;
  s.apply(expected);
  s.apply(ds);
  CHECK(ds.features == expected);
  CHECK(ds.features(1, 0) == 0);
}
