// The meta-batch over MPI ranks (distributed/mpi.hpp): run under mpirun with any number of
// ranks, every rank meta-trains 50 iterations on sine with the exchange and compares its θ
// with the one-process result it computes itself, bit for bit, for MAML (order 2), Reptile
// and CAVIA with the support start, with the threads given on the command line.
//   mpi_sine [--threads T]   the bit-identity check; exit 0 when every rank agrees
//   mpi_sine --fault         a task diverges on the last rank: every rank must throw
//                            numerical_error naming that rank, and none may hang
//   mpi_sine --kill          the last rank kills itself mid-run: mpirun must end the job
//                            (the test expects a failure within its timeout)
//   mpi_sine --disagree      the last rank has another inner rate: check_agreement must
//                            refuse it on every rank, naming the rank and both settings
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

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Rng;
using metalearn::Vector;

namespace {

constexpr Index kIterations = 50;

// θ after kIterations meta-iterations of `algorithm` (exchange: null for one process).
template <class Algorithm>
Vector<float> train(Algorithm& algorithm, metalearn::BlockExchange<float>* exchange, Index kill_at = -1,
                    int kill_rank = -1, int rank = 0) {
  algorithm.set_exchange(exchange);
  Vector<float> theta(algorithm.parameter_count());
  Rng rng(11);
  algorithm.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  metalearn::tasks::SineTasks<float> sampler(5);
  metalearn::TrainerOptions o;
  o.meta_batch = 25;
  metalearn::MetaTrainer trainer(algorithm, adam, sampler, o);
  trainer.run(theta, kIterations, [&](const metalearn::Progress& p) {
    if (p.iteration == kill_at && rank == kill_rank) std::raise(SIGKILL);
  });
  algorithm.set_exchange(nullptr);
  return theta;
}

template <class Algorithm>
bool identical(const char* label, Algorithm& algorithm, metalearn::distributed::MpiExchange<float>& exchange,
               int threads) {
  metalearn::distributed::check_agreement(algorithm);
  const Vector<float> alone = train(algorithm, nullptr);
  const Vector<float> shared = train(algorithm, &exchange);
  // with several ranks, each computed a share only: the sum arrived through the exchange
  const bool split = exchange.size() == 1 || exchange.bytes_received() > 0;
  const bool same =
      split && alone.size() == shared.size() &&
      std::memcmp(alone.data(), shared.data(), sizeof(float) * static_cast<std::size_t>(alone.size())) == 0;
  int all = same ? 1 : 0, everyone = 0;
  MPI_Allreduce(&all, &everyone, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (exchange.rank() == 0)
    std::printf(
        "mpi: %s, %d ranks, %d threads each: theta after %ld "
        "meta-iterations %s on every rank (rank 0 "
        "received %.0f bytes of sums)\n",
        label, exchange.size(), threads, static_cast<long>(kIterations),
        everyone ? "bit-identical to one process" : "DIFFERS from one process", exchange.bytes_received());
  return everyone == 1;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int threads = 1;
  std::string mode = "identity";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::stoi(argv[++i]);
    else if (a == "--fault" || a == "--kill" || a == "--disagree")
      mode = a.substr(2);
  }
  metalearn::distributed::MpiExchange<float> exchange;
  const auto obj = nn::Objective(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  int status = 0;
  if (mode == "identity") {
    metalearn::MamlOptions mo;
    mo.inner_lr = 0.01;
    mo.threads = threads;
    metalearn::Maml maml(obj, mo);
    metalearn::ReptileOptions ro;
    ro.inner_steps = 3;
    ro.inner_lr = 0.01;
    ro.threads = threads;
    metalearn::Reptile reptile(obj, ro);
    metalearn::CaviaOptions co;
    co.context_start = metalearn::ContextStart::support;
    co.summary_size = 2;
    co.threads = threads;
    metalearn::Cavia cavia(nn::Context(obj, 5), co);
    const bool ok = identical("MAML order 2", maml, exchange, threads) &&
                    identical("Reptile", reptile, exchange, threads) &&
                    identical("CAVIA, support start", cavia, exchange, threads);
    status = ok ? 0 : 1;
  } else if (mode == "fault") {
    // 25 tasks, the last one's targets so large that its inner step overflows: it lies in the
    // last rank's blocks, so only that rank fails, and every rank must report it
    metalearn::MamlOptions mo;
    mo.inner_lr = 0.01;
    metalearn::Maml maml(obj, mo);
    maml.set_exchange(&exchange);
    metalearn::tasks::SineTasks<float> sampler(5);
    std::vector<metalearn::tasks::SineTasks<float>::Task> tasks(25);
    for (auto& t : tasks) sampler.sample(t);
    tasks.back().support.targets.setConstant(3e38f);
    Vector<float> theta(maml.parameter_count()), grad(theta.size());
    Rng rng(1);
    maml.initialize(theta, rng);
    std::string what;
    try {
      maml.meta_loss_and_gradient(theta, tasks, grad);
    } catch (const metalearn::numerical_error& e) {
      what = e.what();
    } catch (const std::exception& e) {
      what = std::string("wrong exception type: ") + e.what();
    }
    const std::string expected = exchange.rank() == exchange.size() - 1 || exchange.size() == 1
                                     ? "task 24"
                                     : "rank " + std::to_string(exchange.size() - 1) + ": ";
    const bool ok = what.find(expected) != std::string::npos && what.find("task 24") != std::string::npos &&
                    what.find("wrong exception") == std::string::npos;
    std::printf("mpi fault: rank %d of %d: %s%s\n", exchange.rank(), exchange.size(),
                ok ? "" : "UNEXPECTED: ", what.c_str());
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    status = all == 1 ? 0 : 1;
  } else if (mode == "disagree") {
    metalearn::MamlOptions mo;
    mo.inner_lr = exchange.rank() == exchange.size() - 1 && exchange.size() > 1 ? 0.02 : 0.01;
    metalearn::Maml maml(obj, mo);
    std::string what = "(no exception)";
    try {
      metalearn::distributed::check_agreement(maml);
    } catch (const metalearn::invalid_argument& e) {
      what = e.what();
    }
    const std::string last = std::to_string(exchange.size() - 1);
    const bool ok = exchange.size() == 1 ? what == "(no exception)"
                                         : what.find("rank " + last + " runs 'Maml(") != std::string::npos &&
                                               what.find("inner_lr 0.02") != std::string::npos &&
                                               what.find("rank 0 runs 'Maml(") != std::string::npos;
    std::printf("mpi disagree: rank %d of %d: %s%s\n", exchange.rank(), exchange.size(), ok ? "" : "UNEXPECTED: ",
                what.c_str());
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    status = all == 1 ? 0 : 1;
  } else {  // kill: the last rank dies at iteration 5; mpirun must end the others
    metalearn::MamlOptions mo;
    mo.inner_lr = 0.01;
    metalearn::Maml maml(obj, mo);
    train(maml, &exchange, 5, exchange.size() - 1, exchange.rank());
    status = 0;  // reached only without a kill (np 1 cannot kill another rank)
  }
  MPI_Finalize();
  return status;
}
