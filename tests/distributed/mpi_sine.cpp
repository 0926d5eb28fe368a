// The meta-batch over MPI ranks (distributed/mpi.hpp), as Catch2 test cases that every rank of
// an mpirun job runs in the same order (so their collectives match; only CHECK, never REQUIRE,
// so that a failure on one rank does not skip another rank's collectives):
//   [identity]  θ after 50 meta-iterations of MAML (order 2), Reptile and CAVIA (support start),
//               1 and 2 threads per rank, bit-identical to the one-process result every rank
//               computes itself
//   [fault]     a task diverging on the last rank: numerical_error naming it on every rank
//   [disagree]  the last rank with another inner rate: check_agreement refuses it everywhere
//   [.kill]     the last rank kills itself mid-run: mpirun must end the job (the ctest entry
//               expects a failure within its timeout)
// A rank's exit status is Catch's; mpirun fails when any rank fails.
#include <metalearn/distributed/mpi.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/context.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <mpi.h>

#if defined(METALEARN_TEST_MAJOR_CATCH) && METALEARN_TEST_MAJOR_CATCH >= 3
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER  // this file's main: MPI around Catch's session
#endif
#include <catch.hpp>

#include <csignal>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {

constexpr Index kIterations = 50;

const auto kObjective = nn::Objective(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});

metalearn::distributed::MpiExchange<float>& exchange() {
  static metalearn::distributed::MpiExchange<float> x;  // after MPI_Init (first use is in a test)
  return x;
}

// θ after kIterations meta-iterations of `algorithm` (through `shared`: null for one process);
// rank `kill_rank` kills itself after meta-iteration `kill_at`.
template <class Algorithm>
Vector<float> train(Algorithm& algorithm, metalearn::BlockExchange<float>* shared, Index kill_at = -1,
                    int kill_rank = -1) {
  algorithm.set_exchange(shared);
  Vector<float> theta(algorithm.parameter_count());
  Rng rng(11);
  algorithm.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  metalearn::tasks::SineTasks<float> sampler(5);
  metalearn::TrainerOptions o;
  o.meta_batch = 25;
  metalearn::MetaTrainer trainer(algorithm, adam, sampler, o);
  trainer.run(theta, kIterations, [&](const metalearn::Progress& p) {
    if (p.iteration == kill_at && exchange().rank() == kill_rank) std::raise(SIGKILL);
  });
  algorithm.set_exchange(nullptr);
  return theta;
}

// Whether `ok` holds on every rank.
bool everywhere(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

template <class Algorithm>
void check_identical(Algorithm& algorithm) {
  metalearn::distributed::check_agreement(algorithm);
  const double received = exchange().bytes_received();
  const Vector<float> alone = train(algorithm, nullptr);
  const Vector<float> shared = train(algorithm, &exchange());
  INFO(algorithm.describe() << " on rank " << exchange().rank() << " of " << exchange().size());
  CHECK(shared == alone);  // bit for bit
  // with several ranks each computed a share only: the sum arrived through the exchange
  if (exchange().size() > 1) CHECK(exchange().bytes_received() > received);
  CHECK(everywhere(shared == alone));  // and so on every other rank
}

metalearn::MamlOptions maml_options(double inner_lr, int threads = 1) {
  metalearn::MamlOptions o;
  o.inner_lr = inner_lr;
  o.threads = threads;
  return o;
}

}  // namespace

TEST_CASE("mpi: theta after 50 meta-iterations is bit-identical to one process on every rank", "[identity]") {
  for (int threads : {1, 2}) {
    metalearn::Maml maml(kObjective, maml_options(0.01, threads));
    check_identical(maml);
    metalearn::ReptileOptions ro;
    ro.inner_steps = 3;
    ro.inner_lr = 0.01;
    ro.threads = threads;
    metalearn::Reptile reptile(kObjective, ro);
    check_identical(reptile);
    metalearn::CaviaOptions co;
    co.context_start = metalearn::ContextStart::support;
    co.summary_size = 2;
    co.threads = threads;
    metalearn::Cavia cavia(nn::Context(kObjective, 5), co);
    check_identical(cavia);
  }
}

TEST_CASE("mpi: a task that diverges on the last rank fails the meta-step on every rank", "[fault]") {
  // 25 tasks, the last one's targets so large that its inner step overflows: it lies in the
  // last rank's blocks, so only that rank fails, and every rank must report it
  metalearn::Maml maml(kObjective, maml_options(0.01));
  maml.set_exchange(&exchange());
  metalearn::tasks::SineTasks<float> sampler(5);
  std::vector<metalearn::tasks::SineTasks<float>::Task> tasks(25);
  for (auto& t : tasks) sampler.sample(t);
  tasks.back().support.targets.setConstant(3e38f);
  Vector<float> theta(maml.parameter_count());
  Rng rng(1);
  maml.initialize(theta, rng);
  Vector<float> grad = Vector<float>::Constant(theta.size(), 7.0f);
  std::string what = "(no numerical_error)";
  try {
    maml.meta_loss_and_gradient(theta, tasks, grad);
  } catch (const metalearn::numerical_error& e) {
    what = e.what();
  }
  const int last = exchange().size() - 1;
  INFO("rank " << exchange().rank() << ": " << what);
  CHECK_THAT(what, mlt::contains("task 24: inner loop: inner step 1 made theta_1 non-finite"));
  if (exchange().rank() != last) CHECK_THAT(what, mlt::contains("metalearn: rank " + std::to_string(last) + ": Maml:"));
  CHECK((grad.array() == 7.0f).all());
  maml.set_exchange(nullptr);
}

TEST_CASE("mpi: ranks that disagree on the options are refused at start-up", "[disagree]") {
  const bool odd = exchange().size() > 1 && exchange().rank() == exchange().size() - 1;
  metalearn::Maml maml(kObjective, maml_options(odd ? 0.02 : 0.01));
  std::string what = "(no exception)";
  try {
    metalearn::distributed::check_agreement(maml);
  } catch (const metalearn::invalid_argument& e) {
    what = e.what();
  }
  INFO("rank " << exchange().rank() << ": " << what);
  if (exchange().size() == 1) {
    CHECK(what == "(no exception)");
  } else {
    CHECK_THAT(what, mlt::contains("rank " + std::to_string(exchange().size() - 1) + " runs 'Maml("));
    CHECK_THAT(what, mlt::contains("inner_lr 0.02"));
    CHECK_THAT(what, mlt::contains("rank 0 runs 'Maml("));
  }
}

TEST_CASE("mpi: the last rank dies at meta-iteration 5", "[.kill]") {
  metalearn::Maml maml(kObjective, maml_options(0.01));
  const Vector<float> theta = train(maml, &exchange(), 5, exchange().size() - 1);
  CHECK(theta.allFinite());  // reached by no rank: mpirun ends the job when the last one dies
}

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  const int status = Catch::Session().run(argc, argv);
  MPI_Finalize();
  return status;
}
