// The engine's block exchange (meta/engine.hpp) without MPI: R "ranks" as threads of one
// process, each with its own algorithm, joined by a loopback exchange; θ after meta-training
// must be bit-identical to one process's for any R and any thread count, a failure on one
// rank must reach every rank, and a checkpoint must resume on another number of ranks.
// (tests/distributed runs the same over MPI; this runs under the sanitizers.)
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/engine.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <sine_tasks.hpp>
#include <temp_dir.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {

// The ranks' meeting point: a reusable barrier and each rank's buffers.
struct Loopback {
  explicit Loopback(int ranks) : ranks(ranks), failures(static_cast<std::size_t>(ranks)) {}
  void barrier() {
    std::unique_lock<std::mutex> lock(m);
    const long g = generation;
    if (++arrived == ranks) {
      arrived = 0;
      ++generation;
      cv.notify_all();
    } else {
      cv.wait(lock, [&] { return generation != g; });
    }
  }
  int ranks;
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  long generation = 0;
  std::vector<std::string> failures;
  const float* partial = nullptr;  // the sum so far, in the rank whose turn ended last
};

class LoopbackExchange final : public metalearn::BlockExchange<float> {
 public:
  LoopbackExchange(Loopback& net, int rank) : net_(net), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return net_.ranks; }
  std::string agree(const std::string& failure) override {
    net_.failures[static_cast<std::size_t>(rank_)] = failure;
    net_.barrier();
    std::string first;
    for (const std::string& f : net_.failures)
      if (!f.empty()) {
        first = f;
        break;
      }
    net_.barrier();  // every rank has read the failures before any writes the next
    return first;
  }
  // the ranks in turn: each continues its predecessor's partial sum; then all copy the last one's
  void reduce(metalearn::ConstMatrixRef<float> blocks, const Index* first, metalearn::VectorRef<float> sum) override {
    for (int r = 0; r < net_.ranks; ++r) {
      if (r == rank_) {
        if (r == 0)
          sum.setZero();
        else
          sum = Eigen::Map<const Vector<float>>(net_.partial, sum.size());
        for (Index b = first[r]; b < first[r + 1]; ++b) sum += blocks.col(b);
        net_.partial = sum.data();
      }
      net_.barrier();
    }
    if (rank_ + 1 < net_.ranks) sum = Eigen::Map<const Vector<float>>(net_.partial, sum.size());
    net_.barrier();  // every rank has copied before the last changes its sum
  }

 private:
  Loopback& net_;
  int rank_;
};

// θ after `iterations` meta-iterations of make()'s algorithm (θ from seed 21, tasks from sampler
// seed 4) through `exchange` (null: one process); `resume` loads that checkpoint first (the
// sampler then starts from seed 99: the checkpoint must restore its stream), `save` writes one.
template <class Make>
Vector<float> train(Make make, metalearn::BlockExchange<float>* exchange, Index iterations = 20,
                    const std::string& resume = "", const std::string& save = "") {
  auto algorithm = make();
  algorithm.set_exchange(exchange);
  Vector<float> theta(algorithm.parameter_count());
  Rng rng(21);
  algorithm.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  metalearn::tasks::SineTasks<float> sampler(resume.empty() ? 4 : 99);
  metalearn::TrainerOptions o;
  o.meta_batch = 25;
  metalearn::MetaTrainer trainer(algorithm, adam, sampler, o);
  if (!resume.empty()) metalearn::io::load_checkpoint(resume, algorithm.describe(), theta, adam, trainer, sampler.rng());
  trainer.run(theta, iterations);
  if (!save.empty()) metalearn::io::save_checkpoint(save, algorithm.describe(), theta, adam, trainer, sampler.rng());
  return theta;
}

// Runs f(exchange, r) for r = 0 … ranks − 1, each on its own thread, joined by one loopback.
template <class F>
void on_ranks(int ranks, F f) {
  Loopback net(ranks);
  std::vector<std::thread> workers;
  for (int r = 0; r < ranks; ++r)
    workers.emplace_back([&, r] {
      LoopbackExchange x(net, r);
      f(x, r);
    });
  for (auto& w : workers) w.join();
}

// θ on every one of `ranks` loopback ranks.
template <class Make>
std::vector<Vector<float>> train_shared(Make make, int ranks) {
  std::vector<Vector<float>> thetas(static_cast<std::size_t>(ranks));
  on_ranks(ranks, [&](LoopbackExchange& x, int r) { thetas[static_cast<std::size_t>(r)] = train(make, &x); });
  return thetas;
}

const auto kObjective = nn::Objective(nn::Mlp<float>({1, 20, 20, 1}, nn::Relu{}), nn::MeanSquaredError{});

auto maml_with(int threads) {
  return [threads] {
    metalearn::MamlOptions o;
    o.inner_lr = 0.01;
    o.threads = threads;
    return metalearn::Maml(kObjective, o);
  };
}

}  // namespace

TEST_CASE("engine: a meta-batch shared by 1-3 ranks gives theta bit-identical to one process", "[engine][exchange]") {
  for (int threads : {1, 2}) {
    auto reptile = [&] {
      metalearn::ReptileOptions o;
      o.inner_steps = 2;
      o.inner_lr = 0.01;
      o.threads = threads;
      return metalearn::Reptile(kObjective, o);
    };
    const Vector<float> alone = train(maml_with(threads), nullptr), alone_reptile = train(reptile, nullptr);
    for (int ranks : {1, 2, 3}) {
      INFO(ranks << " ranks, " << threads << " threads");
      for (const Vector<float>& t : train_shared(maml_with(threads), ranks)) CHECK(t == alone);
      for (const Vector<float>& t : train_shared(reptile, ranks)) CHECK(t == alone_reptile);
    }
  }
}

TEST_CASE("engine: a task that fails on one rank fails the meta-step on every rank, grad unchanged",
          "[engine][exchange][bad_input]") {
  auto tasks = mlt::sine_tasks<float>(9, 25, 10);
  tasks.back().support.targets.setConstant(3e38f);  // its inner step overflows, on the last rank only
  const int ranks = 3;
  std::vector<std::string> messages(static_cast<std::size_t>(ranks));
  std::vector<bool> unchanged(static_cast<std::size_t>(ranks));
  on_ranks(ranks, [&](LoopbackExchange& x, int r) {
    auto maml = maml_with(1)();
    maml.set_exchange(&x);
    Vector<float> theta(maml.parameter_count());
    Rng rng(1);
    maml.initialize(theta, rng);
    Vector<float> grad = Vector<float>::Constant(theta.size(), 7.0f);
    try {
      maml.meta_loss_and_gradient(theta, tasks, grad);
    } catch (const metalearn::numerical_error& e) {
      messages[static_cast<std::size_t>(r)] = e.what();
    }
    unchanged[static_cast<std::size_t>(r)] = (grad.array() == 7.0f).all();
  });
  for (int r = 0; r < ranks; ++r) {
    INFO("rank " << r << ": " << messages[static_cast<std::size_t>(r)]);
    CHECK(messages[static_cast<std::size_t>(r)].find("task 24: inner loop: inner step 1 made theta_1 non-finite") !=
          std::string::npos);
    CHECK(unchanged[static_cast<std::size_t>(r)]);
  }
}

TEST_CASE("engine: a checkpoint of 2 ranks resumes on 3 and continues bit for bit", "[engine][exchange][resume]") {
  const Vector<float> straight = train(maml_with(1), nullptr, 20);  // one process, 20 meta-iterations
  mlt::TempDir dir;
  const std::string path = dir.file("shared.ckpt");
  on_ranks(2, [&](LoopbackExchange& x, int r) {  // rank 0 writes it (atomically); every rank holds the same state
    train(maml_with(1), &x, 10, "", r == 0 ? path : "");
  });
  std::vector<Vector<float>> resumed(3);
  on_ranks(3, [&](LoopbackExchange& x, int r) {
    resumed[static_cast<std::size_t>(r)] = train(maml_with(1), &x, 10, path);
  });
  for (const Vector<float>& t : resumed) CHECK(t == straight);
}
