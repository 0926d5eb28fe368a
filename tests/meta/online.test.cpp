// Online adaptation (meta/online.hpp): OnlineAdapter with MAML equals Maml::adapt on a batch of
// the last `window` examples bit for bit and a hand-written loop of gradient steps to rounding,
// starts again from θ* at every call, and refuses bad arguments leaving `fast` unchanged.
#include <metalearn/data/transition_window.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/online.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <catch.hpp>
#include <expect.hpp>
#include <test_support.hpp>

#include <deque>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>

namespace data = metalearn::data;
namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Matrix;
using metalearn::OnlineAdapter;
using metalearn::RegressionBatch;
using metalearn::Rng;
using metalearn::Vector;

namespace {

auto objective() { return nn::Objective(nn::Mlp<double>({3, 8, 8, 2}, nn::Tanh{}), nn::MeanSquaredError{}); }
using Objective = decltype(objective());

MamlOptions options(double lr = 0.05) {
  MamlOptions o;
  o.inner_lr = lr;
  o.inner_steps = 2;
  return o;
}

// A stream of examples pushed into a window and recorded in full, for building the expected
// support batch independently of the window.
struct Stream {
  data::TransitionWindow<double> window;
  std::deque<std::pair<Vector<double>, Vector<double>>> all;

  explicit Stream(Index capacity) : window(3, 2, capacity) {}
  void push(int n, Rng& rng) {
    for (int i = 0; i < n; ++i) {
      const Vector<double> in = mlt::random_vector<double>(3, rng);
      Vector<double> out(2);
      out << std::sin(in[0]) + 0.3 * in[1], in[2] * in[0];
      window.push(in, out);
      all.emplace_back(in, out);
    }
  }
  // The last n examples pushed, oldest first.
  RegressionBatch<double> last(Index n) const {
    RegressionBatch<double> b{Matrix<double>(3, n), Matrix<double>(2, n)};
    const Index size = static_cast<Index>(all.size());
    for (Index j = 0; j < n; ++j) {
      b.inputs.col(j) = all[static_cast<std::size_t>(size - n + j)].first;
      b.targets.col(j) = all[static_cast<std::size_t>(size - n + j)].second;
    }
    return b;
  }
};

// θ_k = θ_{k−1} − α ∇L(θ_{k−1}) written out with the objective's own gradient.
Vector<double> plain_steps(const Objective& obj, Vector<double> theta, const RegressionBatch<double>& support,
                           double alpha, int steps) {
  Objective::Workspace ws;
  Vector<double> grad(theta.size());
  for (int k = 0; k < steps; ++k) {
    obj.loss_and_gradient(theta, support, grad, ws);
    theta -= alpha * grad;
  }
  return theta;
}

}  // namespace

TEST_CASE("online: adapt equals Maml::adapt on the last window examples bit for bit, 0, 1 and 3 steps",
          "[online][maml]") {
  const auto obj = objective();
  const double alpha = 0.05;
  Maml maml(obj, options(alpha));
  Rng rng(41);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  Stream stream(10);
  stream.push(14, rng);  // wrapped around: the ring's oldest slot is not its first
  for (int steps : {0, 1, 3}) {
    for (Index window : {1, 6, 10}) {
      INFO(steps << " steps, window " << window);
      OnlineAdapter adapter(maml, meta, window, steps);
      CHECK(adapter.meta() == meta);
      CHECK(adapter.window() == window);
      CHECK(adapter.steps() == steps);
      Vector<double> fast = Vector<double>::Constant(meta.size(), 7.0);
      adapter.adapt(stream.window, fast);

      const RegressionBatch<double> support = stream.last(window);
      Vector<double> expected(meta.size());
      maml.adapt(meta, support, expected, steps);
      CHECK(fast == expected);  // bit for bit
      const Vector<double> by_hand = plain_steps(obj, meta, support, alpha, steps);
      CHECK(mlt::max_error(fast, by_hand) <= 1e-12);
      if (steps == 0) CHECK(fast == meta);
      if (steps > 0) CHECK(mlt::max_error(fast, meta) > 1e-6);  // the steps did something

      // the overload on a batch the caller assembled gives the same
      Vector<double> from_batch = Vector<double>::Constant(meta.size(), -3.0);
      adapter.adapt(support, from_batch);
      CHECK(from_batch == fast);
    }
  }
}

TEST_CASE("online: adaptation starts again from theta* at every call and never accumulates", "[online][maml]") {
  const auto obj = objective();
  const double alpha = 0.05;
  Maml maml(obj, options(alpha));
  Rng rng(43);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  Stream stream(8);
  stream.push(8, rng);
  OnlineAdapter adapter(maml, meta, 5, 2);
  Vector<double> first(meta.size()), second(meta.size());
  adapter.adapt(stream.window, first);
  adapter.adapt(stream.window, second);
  CHECK(second == first);
  // not the adaptation of the first result, which two accumulated calls would give
  const Vector<double> twice = plain_steps(obj, first, stream.last(5), alpha, 2);
  CHECK(mlt::max_error(second, twice) > 1e-6);
  CHECK(mlt::max_error(second, plain_steps(obj, meta, stream.last(5), alpha, 2)) <= 1e-12);

  // `fast` may hold anything, even the previous result: it is output only
  Vector<double> reused = first;
  adapter.adapt(stream.window, reused);
  CHECK(reused == first);

  // new data: the adaptation of θ* to the new window, not of the previous fast weights
  for (int rep = 0; rep < 4; ++rep) {
    stream.push(3, rng);
    adapter.adapt(stream.window, reused);
    Vector<double> expected(meta.size());
    maml.adapt(meta, stream.last(5), expected, 2);
    CHECK(reused == expected);
  }
  CHECK(adapter.meta() == meta);
}

TEST_CASE("online: theta* is copied at construction", "[online][maml]") {
  const auto obj = objective();
  Maml maml(obj, options());
  Rng rng(47);
  Vector<double> meta = mlt::random_theta(obj, rng);
  const Vector<double> original = meta;
  Stream stream(4);
  stream.push(4, rng);
  OnlineAdapter adapter(maml, meta, 4, 1);
  meta.setZero();
  Vector<double> fast(meta.size()), expected(meta.size());
  adapter.adapt(stream.window, fast);
  maml.adapt(original, stream.last(4), expected, 1);
  CHECK(fast == expected);
  CHECK(adapter.meta() == original);
}

TEST_CASE("online: a window larger than the data held is refused and fast is unchanged", "[online][maml][bad-input]") {
  const auto obj = objective();
  Maml maml(obj, options());
  Rng rng(53);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  Stream stream(10);
  OnlineAdapter adapter(maml, meta, 6, 1);
  const Vector<double> untouched = Vector<double>::Constant(meta.size(), 7.0);
  Vector<double> fast = untouched;
  mlt::expect_throw<metalearn::invalid_argument>([&] { adapter.adapt(stream.window, fast); },
                                            {"asked for the last 6 examples", "the window holds 0"});
  CHECK(fast == untouched);
  stream.push(5, rng);
  mlt::expect_throw<metalearn::invalid_argument>([&] { adapter.adapt(stream.window, fast); },
                                            {"asked for the last 6 examples", "the window holds 5"});
  CHECK(fast == untouched);
  // with 0 steps too: θ* is not written either
  OnlineAdapter none(maml, meta, 6, 0);
  CHECK_THROWS_AS(none.adapt(stream.window, fast), metalearn::invalid_argument);
  CHECK(fast == untouched);
  // a window longer than the capacity can never be filled
  Stream small(4);
  small.push(9, rng);
  mlt::expect_throw<metalearn::invalid_argument>([&] { adapter.adapt(small.window, fast); },
                                            {"asked for the last 6 examples", "the window holds 4", "capacity 4"});
  CHECK(fast == untouched);
  stream.push(1, rng);
  CHECK_NOTHROW(adapter.adapt(stream.window, fast));
  CHECK(fast != untouched);
}

TEST_CASE("online: fast of the wrong size and data of other sizes than the model reads are refused",
          "[online][maml][bad-input]") {
  const auto obj = objective();
  Maml maml(obj, options());
  Rng rng(59);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  const Index p = meta.size();
  Stream stream(6);
  stream.push(6, rng);
  for (int steps : {0, 1}) {
    INFO(steps << " steps");
    OnlineAdapter adapter(maml, meta, 4, steps);
    for (Index wrong : {p - 1, p + 1, Index(0)}) {
      Vector<double> fast = Vector<double>::Constant(wrong, 7.0);
      mlt::expect_throw<metalearn::invalid_argument>(
          [&] { adapter.adapt(stream.window, fast); },
          {"OnlineAdapter::adapt", "fast has " + std::to_string(wrong) + " entries, expected " + std::to_string(p)});
      CHECK(fast == Vector<double>::Constant(wrong, 7.0));
      mlt::expect_throw<metalearn::invalid_argument>([&] { adapter.adapt(stream.last(4), fast); },
                                                {"OnlineAdapter::adapt", "fast has " + std::to_string(wrong)});
      CHECK(fast == Vector<double>::Constant(wrong, 7.0));
    }
  }
  // a window of 4 inputs for a model of 3
  data::TransitionWindow<double> other(4, 2, 5);
  for (int k = 0; k < 5; ++k) other.push(mlt::random_vector<double>(4, rng), mlt::random_vector<double>(2, rng));
  OnlineAdapter adapter(maml, meta, 4, 1);
  const Vector<double> untouched = Vector<double>::Constant(p, 7.0);
  Vector<double> fast = untouched;
  CHECK_THROWS_AS(adapter.adapt(other, fast), metalearn::invalid_argument);
  CHECK(fast == untouched);
}

TEST_CASE("online: the constructor refuses a theta* of the wrong size or not finite, steps < 0 and window < 1",
          "[online][maml][bad-input]") {
  const auto obj = objective();
  Maml maml(obj, options());
  Rng rng(61);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  const Index p = meta.size();
  using Adapter = OnlineAdapter<Maml<Objective>>;
  mlt::expect_throw<metalearn::invalid_argument>([&] { Adapter(maml, meta.head(p - 1), 4, 1); },
                                            {"OnlineAdapter", "theta* has " + std::to_string(p - 1) +
                                                                  " entries, expected " + std::to_string(p)});
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    Vector<double> theta = meta;
    theta[5] = bad;
    mlt::expect_throw<metalearn::invalid_argument>([&] { Adapter(maml, theta, 4, 1); },
                                              {"OnlineAdapter", "theta* must be finite", "entry (5, 0)"});
  }
  mlt::expect_throw<metalearn::invalid_argument>([&] { Adapter(maml, meta, 4, -1); },
                                            {"OnlineAdapter", "steps must be >= 0, got -1"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { Adapter(maml, meta, 0, 1); },
                                            {"OnlineAdapter", "the window must hold >= 1 examples, got 0"});
  mlt::expect_throw<metalearn::invalid_argument>([&] { Adapter(maml, meta, -3, 1); }, {"got -3"});
  CHECK_NOTHROW(Adapter(maml, meta, 1, 0));
}

TEST_CASE("online: an inner step that diverges throws numerical_error and fast is unchanged",
          "[online][maml][bad-input]") {
  const auto obj = objective();
  Maml maml(obj, options(1e10));
  Rng rng(67);
  const Vector<double> meta = mlt::random_theta(obj, rng);
  data::TransitionWindow<double> window(3, 2, 4);
  for (int k = 0; k < 4; ++k) window.push(mlt::random_vector<double>(3, rng), Vector<double>::Constant(2, 1e300));
  OnlineAdapter adapter(maml, meta, 4, 2);
  const Vector<double> untouched = Vector<double>::Constant(meta.size(), 7.0);
  Vector<double> fast = untouched;
  CHECK_THROWS_AS(adapter.adapt(window, fast), metalearn::numerical_error);
  CHECK(fast == untouched);
}
