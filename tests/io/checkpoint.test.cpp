// Checkpoints: the CRC, the byte layout, round trips, bit-identical resumption of meta-training
// (float and double, first and second order, Adam and SGD), adapted weights, and loading that
// rejects every damaged or mismatched file with the destination objects unchanged.
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/io/crc32c.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <cstring>
#include <string>
#include <vector>

namespace io = metalearn::io;
namespace nn = metalearn::nn;
namespace optim = metalearn::optim;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::Order;
using metalearn::Rng;
using metalearn::Vector;

namespace {

template <class S>
auto small_objective() {
  return nn::Objective(nn::Mlp<S>({1, 12, 12, 1}, nn::Tanh{}), nn::MeanSquaredError{});
}

// A complete training setup: θ, MAML, an optimizer, a sampler and a trainer.
template <class S, class Opt = optim::Adam<S>>
struct Run {
  using Obj = decltype(small_objective<S>());
  Obj objective = small_objective<S>();
  Vector<S> theta;
  Maml<Obj> maml;
  Opt optimizer;
  metalearn::tasks::SineTasks<S> sampler;
  metalearn::MetaTrainer<Maml<Obj>, Opt, metalearn::tasks::SineTasks<S>> trainer;

  static MamlOptions maml_options(Order order, int threads) {
    MamlOptions o;
    o.order = order;
    o.inner_steps = 2;
    o.inner_lr = 0.02;
    o.threads = threads;
    return o;
  }
  static typename Opt::Options optimizer_options() {
    if constexpr (std::is_same_v<Opt, optim::Adam<S>>) return {0.003};
    else return {0.01, 0.9, true};
  }
  static metalearn::TrainerOptions trainer_options() {
    metalearn::TrainerOptions t;
    t.meta_batch = 4;
    return t;
  }

  Run(std::uint64_t seed, Order order, int threads = 1)
      : theta(objective.parameter_count()),
        maml(objective, maml_options(order, threads)),
        optimizer(objective.parameter_count(), optimizer_options()),
        sampler(seed),
        trainer(maml, optimizer, sampler, trainer_options()) {
    Rng rng(seed);
    objective.initialize(theta, rng);
  }
};

template <class S>
io::TrainingCheckpoint<S> sample_checkpoint() {
  io::TrainingCheckpoint<S> c;
  c.model = "1-3(tanh)-1(identity) mse";
  c.metadata = "seed=1";
  Rng rng(5);
  c.theta = mlt::random_vector<S>(10, rng);
  c.optimizer.kind = io::OptimizerKind::adam;
  c.optimizer.steps = 17;
  c.optimizer.buffers = {mlt::random_vector<S>(10, rng), mlt::random_vector<S>(10, rng).cwiseAbs()};
  c.iteration = 17;
  c.skipped = 2;
  c.sampler = metalearn::sampler_state(Rng(9));
  return c;
}

template <class S>
void check_same(const io::TrainingCheckpoint<S>& a, const io::TrainingCheckpoint<S>& b) {
  CHECK(a.model == b.model);
  CHECK(a.metadata == b.metadata);
  CHECK(a.theta == b.theta);
  CHECK(a.optimizer.kind == b.optimizer.kind);
  CHECK(a.optimizer.steps == b.optimizer.steps);
  REQUIRE(a.optimizer.buffers.size() == b.optimizer.buffers.size());
  for (std::size_t i = 0; i < a.optimizer.buffers.size(); ++i) CHECK(a.optimizer.buffers[i] == b.optimizer.buffers[i]);
  CHECK(a.iteration == b.iteration);
  CHECK(a.skipped == b.skipped);
  CHECK(a.sampler.kind == b.sampler.kind);
  CHECK(a.sampler.words == b.sampler.words);
}

std::uint32_t u32_at(const std::vector<unsigned char>& b, std::size_t at) {
  return std::uint32_t{b[at]} | std::uint32_t{b[at + 1]} << 8 | std::uint32_t{b[at + 2]} << 16 |
         std::uint32_t{b[at + 3]} << 24;
}

}  // namespace

TEST_CASE("CRC-32C: the standard check values", "[io][crc]") {
  CHECK(io::crc32c("123456789", 9) == 0xE3069283U);
  CHECK(io::crc32c("", 0) == 0U);
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF);
  CHECK(io::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAU);  // RFC 3720, B.4
  CHECK(io::crc32c(ones.data(), ones.size()) == 0x62A8AB43U);
  std::vector<unsigned char> inc(32);
  for (std::size_t i = 0; i < 32; ++i) inc[i] = static_cast<unsigned char>(i);
  CHECK(io::crc32c(inc.data(), inc.size()) == 0x46DD794EU);
  // incremental over any split equals one pass (exercises the 8-byte and the byte loops)
  Rng rng(1);
  std::vector<unsigned char> data(1000);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  const std::uint32_t whole = io::crc32c(data.data(), data.size());
  for (std::size_t split : {0, 1, 7, 8, 9, 500, 999, 1000})
    CHECK(io::crc32c_update(io::crc32c(data.data(), split), data.data() + split, data.size() - split) == whole);
}

TEMPLATE_TEST_CASE("checkpoint: the byte layout is the documented one", "[io][format]", float, double) {
  using S = TestType;
  const auto c = sample_checkpoint<S>();
  const std::vector<unsigned char> b = io::encode(c);
  const unsigned char magic[8] = {0x89, 'M', 'L', 'C', 'K', '\r', '\n', 0x1A};
  CHECK(std::memcmp(b.data(), magic, 8) == 0);
  CHECK(u32_at(b, 8) == 2);                                      // version
  CHECK(u32_at(b, 12) == 1);                                     // kind: training
  CHECK(u32_at(b, 16) == (std::is_same_v<S, float> ? 1U : 2U));  // scalar
  CHECK(u32_at(b, 20) == 0);                                     // flags
  CHECK(u32_at(b, 24) == b.size());                              // size (low word)
  CHECK(u32_at(b, 28) == 0);
  const std::size_t s = sizeof(S), p = 10;
  const std::size_t expected = 32 + (4 + c.model.size()) + (4 + c.metadata.size()) + (8 + p * s) + 4 + 4 + 8 +
                               2 * (8 + p * s) + 8 + 8 + (4 + 3) + 8 + 32 + 4;  // sampler "rng", 4 words
  CHECK(b.size() == expected);
  CHECK(u32_at(b, 32) == c.model.size());
  CHECK(std::string(b.begin() + 36, b.begin() + 36 + static_cast<long>(c.model.size())) == c.model);
  CHECK(u32_at(b, b.size() - 4) == io::crc32c(b.data(), b.size() - 4));
  // θ[0] is stored as its little-endian bit pattern right after its count
  const std::size_t theta_at = 36 + c.model.size() + 4 + c.metadata.size() + 8;
  S first;
  std::memcpy(&first, b.data() + theta_at, sizeof(S));  // the test machine is little-endian
  CHECK(first == c.theta[0]);
  check_same(io::decode_training<S>(b.data(), b.size()), c);
}

TEMPLATE_TEST_CASE("checkpoint: save and load round-trip bit for bit, the write replaces atomically",
                   "[io][checkpoint]", float, double) {
  using S = TestType;
  mlt::TempDir dir;
  const std::string path = dir.file("train.ckpt");
  const auto c = sample_checkpoint<S>();
  io::write_checkpoint(path, c);
  check_same(io::read_checkpoint<S>(path), c);
  auto d = c;
  d.iteration = 99;
  d.theta *= S(2);
  io::write_checkpoint(path, d);  // replaces
  check_same(io::read_checkpoint<S>(path), d);
  CHECK(dir.entries() == std::vector<std::string>{"train.ckpt"});  // no temporary file left
}

TEST_CASE("checkpoint: the scalar type is deduced (no save_checkpoint<float>)", "[io][checkpoint]") {
  mlt::TempDir dir;
  const std::string path = dir.file("deduced.ckpt");
  metalearn::optim::Adam<float> adam(3);
  Vector<float> theta(3), grad(3);
  theta << 1, 2, 3;
  grad << 0.5f, -0.5f, 1;
  adam.step(theta, grad);
  struct Counters {
    metalearn::Index it = 7, sk = 1;
    metalearn::Index iteration() const { return it; }
    metalearn::Index skipped() const { return sk; }
    void restore(metalearn::Index i, metalearn::Index s) { it = i, sk = s; }
  } trainer;
  metalearn::Rng rng(5);
  io::save_checkpoint(path, "model", theta, adam, trainer, rng);
  Vector<float> loaded = Vector<float>::Zero(3);
  metalearn::optim::Adam<float> adam2(3);
  Counters trainer2{0, 0};
  metalearn::Rng rng2(9);
  io::load_checkpoint(path, "model", loaded, adam2, trainer2, rng2);
  CHECK(loaded == theta);
  CHECK(trainer2.iteration() == 7);
  CHECK(rng2 == rng);
  io::save_weights(dir.file("w.bin"), "model", theta);  // float, deduced
  Vector<float> w = Vector<float>::Zero(3);
  io::load_weights(dir.file("w.bin"), "model", w);
  CHECK(w == theta);
}

TEMPLATE_TEST_CASE("checkpoint: every truncation and every single-bit flip is rejected, the objects unchanged",
                   "[io][checkpoint][corrupt]", float, double) {
  using S = TestType;
  using R = Run<S>;
  mlt::TempDir dir;
  R run(3, Order::first);
  run.trainer.run(run.theta, 3);
  const std::string path = dir.file("a.ckpt");
  const std::string model = run.objective.describe();
  io::save_checkpoint<S>(path, model, run.theta, run.optimizer, run.trainer, run.sampler.rng(), "meta");
  const std::vector<unsigned char> good = mlt::read_bytes(path);

  R fresh(4, Order::first);
  const Vector<S> theta0 = fresh.theta;
  const auto rng0 = fresh.sampler.rng().state();
  auto unchanged = [&] {
    CHECK(fresh.theta == theta0);
    CHECK(fresh.optimizer.steps() == 0);
    CHECK(fresh.optimizer.first_moment().isZero(0));
    CHECK(fresh.optimizer.second_moment().isZero(0));
    CHECK(fresh.trainer.iteration() == 0);
    CHECK(fresh.sampler.rng().state() == rng0);
  };
  const std::string bad = dir.file("bad.ckpt");
  for (std::size_t n = 0; n < good.size(); n += (n < 64 ? 1 : 37)) {
    mlt::write_bytes(bad, std::vector<unsigned char>(good.begin(), good.begin() + static_cast<long>(n)));
    INFO("truncated to " << n << " bytes");
    CHECK_THROWS_AS(io::load_checkpoint<S>(bad, model, fresh.theta, fresh.optimizer, fresh.trainer, fresh.sampler.rng()),
                    metalearn::checkpoint_error);
  }
  unchanged();
  int rejected = 0, flips = 0;
  for (std::size_t at = 0; at < good.size(); at += (at < 64 ? 1 : 13)) {
    for (int bit : {0, 5}) {
      auto b = good;
      b[at] ^= static_cast<unsigned char>(1U << bit);
      mlt::write_bytes(bad, b);
      ++flips;
      try {
        io::load_checkpoint<S>(bad, model, fresh.theta, fresh.optimizer, fresh.trainer, fresh.sampler.rng());
      } catch (const metalearn::checkpoint_error&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected == flips);  // CRC-32C detects every single-bit error
  unchanged();
  // and the good file still loads
  const std::string meta =
      io::load_checkpoint<S>(path, model, fresh.theta, fresh.optimizer, fresh.trainer, fresh.sampler.rng());
  CHECK(meta == "meta");
  CHECK(fresh.theta == run.theta);
  CHECK(fresh.trainer.iteration() == 3);
}

namespace {

// N iterations, save, load into fresh objects (built with other seeds), M more iterations:
// θ, the optimizer state, the counters and the sampler must equal N + M iterations in one go.
template <class S, class Opt>
void check_resume(Order order, int threads_after = 1) {
  constexpr Index n = 7, m = 6;
  mlt::TempDir dir;
  const std::string path = dir.file("resume.ckpt");

  Run<S, Opt> straight(11, order);
  straight.trainer.run(straight.theta, n + m);

  Run<S, Opt> first(11, order);
  first.trainer.run(first.theta, n);
  io::save_checkpoint<S>(path, first.objective.describe(), first.theta, first.optimizer, first.trainer,
                         first.sampler.rng());

  Run<S, Opt> resumed(12345, order, threads_after);  // other θ and task stream until loaded
  REQUIRE(resumed.theta != straight.theta);
  io::load_checkpoint<S>(path, resumed.objective.describe(), resumed.theta, resumed.optimizer, resumed.trainer,
                         resumed.sampler.rng());
  CHECK(resumed.trainer.iteration() == n);
  resumed.trainer.run(resumed.theta, m);

  CHECK(resumed.theta == straight.theta);  // bit-identical
  CHECK(resumed.trainer.iteration() == n + m);
  CHECK(resumed.optimizer.steps() == straight.optimizer.steps());
  if constexpr (std::is_same_v<Opt, optim::Adam<S>>) {
    CHECK(resumed.optimizer.first_moment() == straight.optimizer.first_moment());
    CHECK(resumed.optimizer.second_moment() == straight.optimizer.second_moment());
  } else {
    CHECK(resumed.optimizer.velocity() == straight.optimizer.velocity());
  }
  CHECK(resumed.sampler.rng() == straight.sampler.rng());

  // Controls: the test notices a missing piece of state.
  Run<S, Opt> no_rng(12345, order);
  io::load_checkpoint<S>(path, no_rng.objective.describe(), no_rng.theta, no_rng.optimizer, no_rng.trainer,
                         no_rng.sampler.rng());
  no_rng.sampler.rng().reseed(12345);  // as if the sampler's engine were not saved
  no_rng.trainer.run(no_rng.theta, m);
  CHECK(no_rng.theta != straight.theta);

  Run<S, Opt> no_opt(12345, order);
  io::load_checkpoint<S>(path, no_opt.objective.describe(), no_opt.theta, no_opt.optimizer, no_opt.trainer,
                         no_opt.sampler.rng());
  Opt blank(no_opt.theta.size(), Run<S, Opt>::optimizer_options());
  no_opt.optimizer = blank;  // as if the optimizer state were not saved
  no_opt.trainer.run(no_opt.theta, m);
  CHECK(no_opt.theta != straight.theta);
}

}  // namespace

TEMPLATE_TEST_CASE("resume: N + M iterations equal N, save, load, M, bit for bit (Adam)", "[io][resume]", float,
                   double) {
  SECTION("first order") { check_resume<TestType, optim::Adam<TestType>>(Order::first); }
  SECTION("second order") { check_resume<TestType, optim::Adam<TestType>>(Order::second); }
  SECTION("second order, resumed with 3 threads") { check_resume<TestType, optim::Adam<TestType>>(Order::second, 3); }
}

TEMPLATE_TEST_CASE("resume: N + M iterations equal N, save, load, M, bit for bit (SGD, Nesterov)", "[io][resume]",
                   float, double) {
  SECTION("first order") { check_resume<TestType, optim::Sgd<TestType>>(Order::first); }
  SECTION("second order") { check_resume<TestType, optim::Sgd<TestType>>(Order::second); }
}

TEST_CASE("checkpoint: the skipped counter survives a round trip", "[io][checkpoint]") {
  mlt::TempDir dir;
  Run<double> run(1, Order::first);
  run.trainer.restore(40, 3);
  io::save_checkpoint<double>(dir.file("c"), "m", run.theta, run.optimizer, run.trainer, run.sampler.rng());
  Run<double> other(2, Order::first);
  io::load_checkpoint<double>(dir.file("c"), "m", other.theta, other.optimizer, other.trainer, other.sampler.rng());
  CHECK(other.trainer.iteration() == 40);
  CHECK(other.trainer.skipped() == 3);
}

TEMPLATE_TEST_CASE("adapted weights: export one task's fast weights and import them into a fresh vector",
                   "[io][weights]", float, double) {
  using S = TestType;
  mlt::TempDir dir;
  Run<S> run(5, Order::second);
  run.trainer.run(run.theta, 3);
  typename metalearn::tasks::SineTasks<S>::Task task;
  run.sampler.sample(task);
  const Vector<S> fast = run.maml.adapt(run.theta, task.support, 5);
  const std::string path = dir.file("user-42.weights");
  io::save_weights<S>(path, run.objective.describe(), fast, "user 42, 5 steps");

  Vector<S> loaded = Vector<S>::Zero(fast.size());
  CHECK(io::load_weights<S>(path, run.objective.describe(), loaded) == "user 42, 5 steps");
  CHECK(loaded == fast);
  const auto f = io::read_weights<S>(path);
  CHECK(f.model == run.objective.describe());
  CHECK(f.theta == fast);
  // the personalised model predicts exactly as the adapted one did
  typename decltype(run.objective)::Workspace ws;
  CHECK(run.objective.loss(loaded, task.query, ws) == run.objective.loss(fast, task.query, ws));

  // a weights file is not a checkpoint and vice versa
  CHECK_THROWS_WITH(io::read_checkpoint<S>(path), mlt::contains("adapted weights (kind 2)"));
  io::save_checkpoint<S>(dir.file("t.ckpt"), "m", run.theta, run.optimizer, run.trainer, run.sampler.rng());
  CHECK_THROWS_WITH(io::read_weights<S>(dir.file("t.ckpt")), mlt::contains("a training checkpoint (kind 1)"));
}

namespace user {
// A user's optimizer: heavy-ball momentum with its own state, saved under a user kind code.
struct Momentum {
  Vector<double> velocity;
  std::int64_t t = 0;
  Index parameter_count() const { return velocity.size(); }
};
io::OptimizerState<double> optimizer_state(const Momentum& m) {
  return {static_cast<io::OptimizerKind>(300), m.t, {m.velocity}};
}
void check_optimizer_state(const Momentum& m, const io::OptimizerState<double>& s, const char* where) {
  if (s.kind != static_cast<io::OptimizerKind>(300) || s.buffers.size() != 1 || s.buffers[0].size() != m.velocity.size())
    metalearn::detail::fail_file(where, "not the state of a Momentum optimizer of this size");
}
void restore_optimizer_state(Momentum& m, const io::OptimizerState<double>& s) {
  m.velocity = s.buffers[0];
  m.t = s.steps;
}
// A stand-in for the trainer's counters.
struct Counters {
  Index i = 0, s = 0;
  Index iteration() const { return i; }
  Index skipped() const { return s; }
  void restore(Index iteration, Index skipped) {
    i = iteration;
    s = skipped;
  }
};
}  // namespace user

TEST_CASE("checkpoint: a user-defined optimizer takes part through the three overloads", "[io][checkpoint]") {
  mlt::TempDir dir;
  Rng rng(2);
  user::Momentum m{mlt::random_vector<double>(6, rng), 9};
  user::Counters counters{9, 0};
  const Vector<double> theta = mlt::random_vector<double>(6, rng);
  io::save_checkpoint<double>(dir.file("u"), "user model", theta, m, counters, rng);
  user::Momentum m2{Vector<double>::Zero(6), 0};
  user::Counters c2;
  Vector<double> theta2 = Vector<double>::Zero(6);
  Rng rng2(3);
  io::load_checkpoint<double>(dir.file("u"), "user model", theta2, m2, c2, rng2);
  CHECK(m2.velocity == m.velocity);
  CHECK(m2.t == 9);
  CHECK(theta2 == theta);
  CHECK(rng2 == rng);
  CHECK(c2.iteration() == 9);
  // an Adam checkpoint does not load into it, and nothing changes
  optim::Adam<double> adam(6);
  io::save_checkpoint<double>(dir.file("a"), "user model", theta, adam, counters, rng);
  user::Momentum m3{Vector<double>::Zero(6), 0};
  CHECK_THROWS_WITH(io::load_checkpoint<double>(dir.file("a"), "user model", theta2, m3, c2, rng2),
                    mlt::contains("not the state of a Momentum"));
  CHECK(m3.t == 0);
  // kind codes outside the built-in and user ranges are refused
  io::TrainingCheckpoint<double> c = sample_checkpoint<double>();
  c.optimizer.kind = static_cast<io::OptimizerKind>(7);
  CHECK_THROWS_WITH(io::encode(c), mlt::contains("unknown optimizer kind 7"));
}

TEST_CASE("checkpoint: a sampler state that cannot be valid is refused on save and on load", "[io][format]") {
  auto c = sample_checkpoint<double>();
  c.sampler.words = {0, 0, 0, 0};
  CHECK_THROWS_WITH(io::encode(c), mlt::contains("the sampler's RNG state is all zero"));
  c.sampler.words = {1, 2, 3};
  CHECK_THROWS_WITH(io::encode(c), mlt::contains("the sampler state must have 4 to 1048576 words, got 3"));
  c.sampler.words = {1, 2, 3, 4, 5, 6};
  c.sampler.kind = "mine";
  auto b = io::encode(c);
  const auto d = io::decode_training<double>(b.data(), b.size());
  CHECK(d.sampler.kind == "mine");
  CHECK(d.sampler.words.size() == 6);
  // the word count claims more words than the file holds (resealed, so only the field is wrong)
  const std::size_t count_at = b.size() - 4 - 6 * 8 - 8;
  b[count_at + 4] = 1;  // 2^32 + 6 words
  const std::uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[24 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(size >> (8 * i));
  const std::uint32_t crc = io::crc32c(b.data(), b.size() - 4);
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(crc >> (8 * i));
  CHECK_THROWS_WITH(io::decode_training<double>(b.data(), b.size()), mlt::contains("the sampler's state claims 4294967302 words"));
  // a bare Rng refuses another sampler's state, naming both
  metalearn::Rng rng(1);
  CHECK_THROWS_WITH(check_sampler_state(rng, d.sampler, "test"),
                    mlt::contains("the checkpoint's task sampler is 'mine', this run's is 'rng'"));
}

TEST_CASE("checkpoint: the checked-in fuzz seed files still decode as they should (format stability)",
          "[io][format]") {
  const std::string dir = std::string(METALEARN_SOURCE_DIR) + "/tests/fuzz/corpus/checkpoint/";
  const auto adam = io::decode_training<float>(mlt::read_bytes(dir + "valid-float-adam.ckpt").data(),
                                               mlt::read_bytes(dir + "valid-float-adam.ckpt").size());
  CHECK(adam.model == "1-3(tanh)-1(identity) mse");
  CHECK(adam.optimizer.kind == io::OptimizerKind::adam);
  CHECK(adam.theta.size() == 10);
  for (const char* name : {"valid-double-sgd.ckpt", "valid-double-user-optimizer.ckpt"}) {
    const auto b = mlt::read_bytes(dir + name);
    INFO(name);
    CHECK_NOTHROW(io::decode_training<double>(b.data(), b.size()));
  }
  const auto none = mlt::read_bytes(dir + "valid-float-none.ckpt");
  CHECK_NOTHROW(io::decode_training<float>(none.data(), none.size()));
  const auto w = mlt::read_bytes(dir + "valid-float-weights.bin");
  CHECK(io::decode_weights<float>(w.data(), w.size()).metadata == "user 7");
  const auto episodes = mlt::read_bytes(dir + "valid-float-episodes.ckpt");
  const auto e = io::decode_training<float>(episodes.data(), episodes.size());
  CHECK(e.sampler.kind.rfind("tasks::EpisodeSampler(2-way 1-shot", 0) == 0);
  CHECK(e.sampler.words == std::vector<std::uint64_t>{1, 2, 3, 4, 99});
  // version 1 files (written before the sampler state became a kind and words) still load
  for (const char* name : {"v1-valid-float-adam.ckpt", "v1-valid-double-sgd.ckpt"}) {
    const auto b = mlt::read_bytes(dir + name);
    INFO(name);
    CHECK(u32_at(b, 8) == 1);
    if (name[9] == 'f') {
      const auto c = io::decode_training<float>(b.data(), b.size());
      CHECK(c.model == "1-3(tanh)-1(identity) mse");
      CHECK(c.sampler.kind == "rng");
      CHECK(c.sampler.words.size() == 4);
      const auto again = io::encode(c);  // re-encoded as the current version, same contents
      CHECK(u32_at(again, 8) == io::checkpoint_format_version);
      check_same(io::decode_training<float>(again.data(), again.size()), c);
    } else {
      CHECK_NOTHROW(io::decode_training<double>(b.data(), b.size()));
    }
  }
  const auto w1 = mlt::read_bytes(dir + "v1-valid-float-weights.bin");
  CHECK(io::decode_weights<float>(w1.data(), w1.size()).metadata == "user 7");
  for (const char* name : {"truncated-half.ckpt", "truncated-header.ckpt", "corrupt-bitflip.ckpt", "wrong-version.ckpt",
                           "corrupt-count.ckpt"}) {
    const auto b = mlt::read_bytes(dir + name);
    INFO(name);
    CHECK_THROWS_AS(io::decode_training<float>(b.data(), b.size()), metalearn::checkpoint_error);
    CHECK_THROWS_AS(io::decode_training<double>(b.data(), b.size()), metalearn::checkpoint_error);
  }
}
