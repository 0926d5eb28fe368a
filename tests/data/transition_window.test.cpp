// The sliding window of the latest examples (data/transition_window.hpp): order oldest first
// after wrap-around against a naive std::deque model, write(n) into kept and fresh batches,
// non-finite examples refused with the window unchanged, clear, and bad arguments.
#include <metalearn/data/transition_window.hpp>

#include <catch.hpp>
#include <expect.hpp>
#include <test_support.hpp>

#include <deque>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

namespace data = metalearn::data;
using metalearn::Index;
using metalearn::Matrix;
using metalearn::RegressionBatch;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// Example k: input (k, −k, k + 0.5), target (10k, 100k).
template <class S>
Vector<S> input_of(int k) {
  return mlt::vec<S>({S(k), S(-k), S(k) + S(0.5)});
}
template <class S>
Vector<S> target_of(int k) {
  return mlt::vec<S>({S(10 * k), S(100 * k)});
}

// Everything observable about a window: the counters and every example held, oldest first.
template <class S>
struct Snapshot {
  Index size, pushed;
  bool full;
  Matrix<S> inputs, targets;
  bool operator==(const Snapshot& o) const {
    return size == o.size && pushed == o.pushed && full == o.full && inputs == o.inputs && targets == o.targets;
  }
};
template <class S>
Snapshot<S> snapshot(const data::TransitionWindow<S>& w) {
  Snapshot<S> s{w.size(), w.pushed(), w.full(), Matrix<S>(w.input_size(), w.size()),
                Matrix<S>(w.target_size(), w.size())};
  for (Index i = 0; i < w.size(); ++i) {
    s.inputs.col(i) = w.input(i);
    s.targets.col(i) = w.target(i);
  }
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("window: a new window is empty and has the sizes it was given", "[data][window]", float, double) {
  const data::TransitionWindow<TestType> w(3, 2, 5);
  CHECK(w.input_size() == 3);
  CHECK(w.target_size() == 2);
  CHECK(w.capacity() == 5);
  CHECK(w.size() == 0);
  CHECK(w.pushed() == 0);
  CHECK_FALSE(w.full());
}

TEMPLATE_TEST_CASE("window: pushing past the capacity forgets the oldest, write gives the rest oldest first",
                   "[data][window]", float, double) {
  using S = TestType;
  data::TransitionWindow<S> w(3, 2, 3);
  for (int k = 1; k <= 5; ++k) w.push(input_of<S>(k), target_of<S>(k));
  CHECK(w.size() == 3);
  CHECK(w.full());
  CHECK(w.pushed() == 5);
  CHECK(w.input(0) == input_of<S>(3));
  CHECK(w.input(1) == input_of<S>(4));
  CHECK(w.input(2) == input_of<S>(5));
  CHECK(w.target(0) == target_of<S>(3));
  CHECK(w.target(2) == target_of<S>(5));
  RegressionBatch<S> b;
  w.write(3, b);
  REQUIRE(b.inputs.rows() == 3);
  REQUIRE(b.inputs.cols() == 3);
  REQUIRE(b.targets.rows() == 2);
  REQUIRE(b.targets.cols() == 3);
  for (int j = 0; j < 3; ++j) {
    CHECK(b.inputs.col(j) == input_of<S>(3 + j));
    CHECK(b.targets.col(j) == target_of<S>(3 + j));
  }
  w.write(2, b);
  REQUIRE(b.size() == 2);
  CHECK(b.inputs.col(0) == input_of<S>(4));
  CHECK(b.inputs.col(1) == input_of<S>(5));
  CHECK(b.targets.col(0) == target_of<S>(4));
  w.write(1, b);
  REQUIRE(b.size() == 1);
  CHECK(b.inputs.col(0) == input_of<S>(5));
  CHECK(b.targets.col(0) == target_of<S>(5));
}

TEMPLATE_TEST_CASE("window: input, target and write agree with a std::deque over many random pushes",
                   "[data][window]", float, double) {
  using S = TestType;
  Rng rng(23);
  for (Index capacity : {1, 2, 3, 5, 8, 13}) {
    INFO("capacity " << capacity);
    data::TransitionWindow<S> w(4, 3, capacity);
    std::deque<std::pair<Vector<S>, Vector<S>>> model;
    RegressionBatch<S> kept;  // kept across calls, as a controller keeps it
    Index pushed = 0;
    for (int step = 0; step < 6 * capacity + 20; ++step) {
      INFO("push " << step);
      const Vector<S> in = mlt::random_vector<S>(4, rng), out = mlt::random_vector<S>(3, rng);
      if (step % 7 == 3) {  // from a column of a matrix and from a map too
        Matrix<S> m(4, 2);
        m.col(1) = in;
        const Eigen::Map<const Vector<S>> t(out.data(), 3);
        w.push(m.col(1), t);
      } else {
        w.push(in, out);
      }
      ++pushed;
      model.emplace_back(in, out);
      if (static_cast<Index>(model.size()) > capacity) model.pop_front();
      const Index size = static_cast<Index>(model.size());
      REQUIRE(w.size() == size);
      REQUIRE(w.pushed() == pushed);
      REQUIRE(w.full() == (size == capacity));
      for (Index i = 0; i < size; ++i) {
        CHECK(w.input(i) == model[static_cast<std::size_t>(i)].first);
        CHECK(w.target(i) == model[static_cast<std::size_t>(i)].second);
      }
      for (Index n = 1; n <= size; ++n) {
        INFO("write(" << n << ")");
        RegressionBatch<S> fresh;
        w.write(n, fresh);
        w.write(n, kept);
        REQUIRE(fresh.inputs.rows() == 4);
        REQUIRE(fresh.inputs.cols() == n);
        REQUIRE(fresh.targets.rows() == 3);
        REQUIRE(fresh.targets.cols() == n);
        for (Index j = 0; j < n; ++j) {
          const auto& ex = model[static_cast<std::size_t>(size - n + j)];
          CHECK(fresh.inputs.col(j) == ex.first);
          CHECK(fresh.targets.col(j) == ex.second);
        }
        CHECK(kept.inputs == fresh.inputs);
        CHECK(kept.targets == fresh.targets);
      }
    }
  }
}

TEST_CASE("window: write into a batch of the right shape keeps its storage, other shapes are resized",
          "[data][window]") {
  data::TransitionWindow<double> w(3, 2, 4);
  for (int k = 0; k < 6; ++k) w.push(input_of<double>(k), target_of<double>(k));
  RegressionBatch<double> b{Matrix<double>::Zero(3, 2), Matrix<double>::Zero(2, 2)};
  const double* in = b.inputs.data();
  const double* out = b.targets.data();
  for (int rep = 0; rep < 3; ++rep) {
    w.push(input_of<double>(6 + rep), target_of<double>(6 + rep));
    w.write(2, b);
    CHECK(b.inputs.data() == in);
    CHECK(b.targets.data() == out);
    CHECK(b.inputs.col(1) == input_of<double>(6 + rep));
    CHECK(b.inputs.col(0) == input_of<double>(5 + rep));
  }
  RegressionBatch<double> wrong{Matrix<double>::Zero(7, 1), Matrix<double>::Zero(1, 9)};
  w.write(4, wrong);
  CHECK(wrong.inputs.rows() == 3);
  CHECK(wrong.inputs.cols() == 4);
  CHECK(wrong.targets.rows() == 2);
  CHECK(wrong.targets.cols() == 4);
  CHECK(wrong.inputs.col(3) == input_of<double>(8));
  CHECK(wrong.targets.col(0) == target_of<double>(5));
}

TEST_CASE("window: write refuses more examples than it holds and fewer than one, naming both numbers",
          "[data][window][bad-input]") {
  data::TransitionWindow<double> w(3, 2, 5);
  RegressionBatch<double> b{Matrix<double>::Constant(3, 2, 9.0), Matrix<double>::Constant(2, 2, 9.0)};
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(1, b); },
                                            {"data::TransitionWindow::write", "asked for the last 1 examples",
                                             "the window holds 0", "capacity 5"});
  for (int k = 0; k < 3; ++k) w.push(input_of<double>(k), target_of<double>(k));
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(4, b); },
                                            {"asked for the last 4 examples", "the window holds 3", "capacity 5"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(6, b); }, {"asked for the last 6 examples", "holds 3"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(0, b); },
                                            {"data::TransitionWindow::write", "must be >= 1, got 0"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(-2, b); }, {"must be >= 1, got -2"});
  // the batch is left as it was
  CHECK(b.inputs == Matrix<double>::Constant(3, 2, 9.0));
  CHECK(b.targets == Matrix<double>::Constant(2, 2, 9.0));
  for (int k = 3; k < 9; ++k) w.push(input_of<double>(k), target_of<double>(k));
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.write(6, b); },
                                            {"asked for the last 6 examples", "the window holds 5", "capacity 5"});
  CHECK_NOTHROW(w.write(5, b));
}

TEST_CASE("window: input and target refuse an example it does not hold", "[data][window][bad-input]") {
  data::TransitionWindow<double> w(3, 2, 4);
  CHECK_THROWS_AS(w.input(0), metalearn::invalid_argument);
  for (int k = 0; k < 3; ++k) w.push(input_of<double>(k), target_of<double>(k));
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.input(3); }, {"example 3 of 3 held"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.target(-1); }, {"example -1 of 3 held"});
  CHECK(w.input(2) == input_of<double>(2));
}

TEMPLATE_TEST_CASE("window: push refuses wrong sizes and leaves the window as it was", "[data][window][bad-input]",
                   float, double) {
  using S = TestType;
  data::TransitionWindow<S> w(3, 2, 2);
  w.push(input_of<S>(1), target_of<S>(1));
  const auto before = snapshot(w);
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.push(Vector<S>::Zero(2), target_of<S>(2)); },
                                            {"data::TransitionWindow::push", "the input has 2 entries, expected 3"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.push(Vector<S>::Zero(4), target_of<S>(2)); },
                                            {"the input has 4 entries, expected 3"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.push(input_of<S>(2), Vector<S>::Zero(3)); },
                                            {"data::TransitionWindow::push", "the target has 3 entries, expected 2"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { w.push(input_of<S>(2), Vector<S>(0)); },
                                            {"the target has 0 entries, expected 2"});
  CHECK(snapshot(w) == before);
}

TEMPLATE_TEST_CASE("window: a NaN or an infinity in an example throws numerical_error, the window unchanged",
                   "[data][window][bad-input]", float, double) {
  using S = TestType;
  using L = std::numeric_limits<S>;
  for (int held : {0, 2, 4, 7}) {  // empty, partly filled, full, full after wrap-around
    INFO(held << " pushed before");
    data::TransitionWindow<S> w(3, 2, 4);
    for (int k = 0; k < held; ++k) w.push(input_of<S>(k), target_of<S>(k));
    const auto before = snapshot(w);
    for (S bad : {L::quiet_NaN(), L::infinity(), -L::infinity()}) {
      for (Index entry = 0; entry < 3; ++entry) {
        Vector<S> in = input_of<S>(100);
        in[entry] = bad;
        try {
          w.push(in, target_of<S>(100));
          FAIL("nothing was thrown");
        } catch (const metalearn::numerical_error& e) {
          const std::string what = e.what();
          CHECK_THAT(what, mlt::contains("data::TransitionWindow::push: input entry " + std::to_string(entry) + " is "));
          CHECK_THAT(what, mlt::contains("the window is unchanged"));
        }
        CHECK(snapshot(w) == before);
      }
      for (Index entry = 0; entry < 2; ++entry) {
        Vector<S> out = target_of<S>(100);
        out[entry] = bad;
        try {
          w.push(input_of<S>(100), out);
          FAIL("nothing was thrown");
        } catch (const metalearn::numerical_error& e) {
          CHECK_THAT(std::string(e.what()),
                     mlt::contains("data::TransitionWindow::push: target entry " + std::to_string(entry) + " is "));
        }
        CHECK(snapshot(w) == before);
      }
    }
    // not an invalid_argument: a controller that catches bad input separately still stops here
    Vector<S> in = input_of<S>(100);
    in[1] = L::quiet_NaN();
    CHECK_THROWS_AS(w.push(in, target_of<S>(100)), metalearn::numerical_error);
    CHECK_THROWS_AS(w.push(in, target_of<S>(100)), metalearn::error);
    // and the next good example goes where it would have gone
    w.push(input_of<S>(50), target_of<S>(50));
    CHECK(w.pushed() == held + 1);
    CHECK(w.input(w.size() - 1) == input_of<S>(50));
    if (held > 0) CHECK(w.input(w.size() - 2) == input_of<S>(held - 1));
    CHECK(w.input(0) == input_of<S>(held + 1 > 4 ? held + 1 - 4 : (held == 0 ? 50 : 0)));
  }
}

TEST_CASE("window: an example pushed from the window itself is copied before the slot is reused", "[data][window]") {
  data::TransitionWindow<double> w(3, 2, 2);
  w.push(input_of<double>(1), target_of<double>(1));
  w.push(input_of<double>(2), target_of<double>(2));
  w.push(w.input(0), w.target(0));  // the oldest, whose slot the push overwrites
  CHECK(w.input(0) == input_of<double>(2));
  CHECK(w.input(1) == input_of<double>(1));
  CHECK(w.target(1) == target_of<double>(1));
  w.push(w.input(1), w.target(0));
  CHECK(w.input(0) == input_of<double>(1));
  CHECK(w.input(1) == input_of<double>(1));
  CHECK(w.target(1) == target_of<double>(2));
}

TEST_CASE("window: clear forgets every example and the next pushes start afresh", "[data][window]") {
  data::TransitionWindow<double> w(3, 2, 3);
  for (int k = 0; k < 5; ++k) w.push(input_of<double>(k), target_of<double>(k));
  w.clear();
  CHECK(w.size() == 0);
  CHECK(w.pushed() == 0);
  CHECK_FALSE(w.full());
  CHECK(w.capacity() == 3);
  CHECK(w.input_size() == 3);
  CHECK(w.target_size() == 2);
  RegressionBatch<double> b;
  CHECK_THROWS_AS(w.write(1, b), metalearn::invalid_argument);
  CHECK_THROWS_AS(w.input(0), metalearn::invalid_argument);
  w.push(input_of<double>(10), target_of<double>(10));
  w.push(input_of<double>(11), target_of<double>(11));
  CHECK(w.size() == 2);
  CHECK(w.pushed() == 2);
  CHECK(w.input(0) == input_of<double>(10));
  w.write(2, b);
  CHECK(b.inputs.col(0) == input_of<double>(10));
  CHECK(b.inputs.col(1) == input_of<double>(11));
  CHECK(b.targets.col(1) == target_of<double>(11));
  for (int k = 12; k < 15; ++k) w.push(input_of<double>(k), target_of<double>(k));
  w.write(3, b);
  for (int j = 0; j < 3; ++j) CHECK(b.inputs.col(j) == input_of<double>(12 + j));
  w.clear();
  w.clear();  // twice is harmless
  CHECK(w.size() == 0);
}

TEST_CASE("window: the constructor refuses sizes and capacities below one, naming them", "[data][window][bad-input]") {
  using W = data::TransitionWindow<double>;
  mlt::expect_throw<metalearn::invalid_argument>([] { W(0, 2, 3); },
                                            {"data::TransitionWindow", "input_size must be >= 1, got 0"});
  mlt::expect_throw<metalearn::invalid_argument>([] { W(-1, 2, 3); }, {"input_size must be >= 1, got -1"});
  mlt::expect_throw<metalearn::invalid_argument>([] { W(3, 0, 3); }, {"target_size must be >= 1, got 0"});
  mlt::expect_throw<metalearn::invalid_argument>([] { W(3, 2, 0); }, {"capacity must be >= 1, got 0"});
  mlt::expect_throw<metalearn::invalid_argument>([] { W(3, 2, -4); }, {"capacity must be >= 1, got -4"});
  CHECK_NOTHROW(W(1, 1, 1));
}
