// The MAML paper's sine regression with the meta-batch shared by the ranks of an MPI job
// (distributed/mpi.hpp): θ after any number of meta-iterations is bit-identical to one
// process's, whatever the number of ranks and threads. Rank 0 reports, evaluates and writes
// the checkpoint; every rank can resume from it, on any number of ranks.
//
//   mpirun -np 2 --bind-to none build/test/examples/sine_mpi --iterations 20000 --threads 1
//
// Settings: the paper's network (1-40-40-1, ReLU), second-order MAML with one inner step,
// α = 0.001 (the paper's code), meta-batch 25, K = 10 support and query points, Adam 10⁻³;
// the evaluation adapts 600 test tasks on K = 5 points (the sine example's tasks) and prints
// the paper's numbers.
#include <metalearn/distributed/mpi.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Vector;

namespace {

struct Flags {
  long iterations = 20000;
  int threads = 1;
  std::uint64_t seed = 1;
  std::string save, resume, report;
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("flag " + a + " needs a value");
    const std::string v = argv[++i];
    if (a == "--iterations")
      f.iterations = std::stol(v);
    else if (a == "--threads")
      f.threads = std::stoi(v);
    else if (a == "--seed")
      f.seed = std::stoull(v);
    else if (a == "--save")
      f.save = v;
    else if (a == "--resume")
      f.resume = v;
    else if (a == "--report")
      f.report = v;
    else
      throw std::invalid_argument("unknown flag " + a +
                                  " (--iterations N --threads T --seed S "
                                  "--save F --resume F --report F)");
  }
  if (f.iterations < 0 || f.threads < 1) throw std::invalid_argument("--iterations must be >= 0 and --threads >= 1");
  return f;
}

int run(const Flags& f, metalearn::distributed::MpiExchange<float>& exchange) {
  const bool root = exchange.rank() == 0;
  const auto objective = nn::Objective(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  metalearn::MamlOptions o;
  o.inner_lr = 0.001;  // the paper's code (the sine example's default; README explains)
  o.threads = f.threads;
  metalearn::Maml maml(objective, o);
  metalearn::distributed::check_agreement(maml);  // every rank runs the same algorithm
  Vector<float> theta(maml.parameter_count());
  metalearn::Rng rng(f.seed);
  maml.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size());
  metalearn::tasks::SineTasks<float> sampler(f.seed + 1);
  metalearn::TrainerOptions to;
  to.meta_batch = 25;
  metalearn::MetaTrainer trainer(maml, adam, sampler, to);
  if (!f.resume.empty()) metalearn::io::load_checkpoint(f.resume, maml.describe(), theta, adam, trainer, sampler.rng());
  const Index start = trainer.iteration();
  maml.set_exchange(&exchange);
  const double t0 = MPI_Wtime();
  double last_loss = 0;
  trainer.run(theta, f.iterations, [&](const metalearn::Progress& p) {
    last_loss = p.meta_loss;
    if (root && p.iteration % 1000 == 0)
      std::printf("meta-iteration %ld: meta-loss %.4f\n", static_cast<long>(p.iteration), p.meta_loss);
  });
  const double seconds = MPI_Wtime() - t0;
  maml.set_exchange(nullptr);
  if (!root) return 0;
  if (!f.save.empty()) metalearn::io::save_checkpoint(f.save, maml.describe(), theta, adam, trainer, sampler.rng());

  // 600 test tasks of K = 5 points, adapted 1, 5 and 10 steps (rank 0 alone)
  metalearn::tasks::SineTasks<float>::Options eo;
  eo.support = 5;
  eo.query = 100;
  metalearn::tasks::SineTasks<float> test(20170309, eo);
  std::vector<metalearn::tasks::SineTasks<float>::Task> tasks(600);
  for (auto& t : tasks) test.sample(t);
  metalearn::Matrix<float> losses;
  const std::vector<int> steps{0, 1, 5, 10};
  maml.evaluate(theta, tasks, steps, losses);
  const Vector<float> mse = losses.colwise().mean();
  std::printf(
      "%d ranks x %d threads: %ld meta-iterations (from %ld) in %.1f s "
      "(%.3f ms each)\n",
      exchange.size(), f.threads, f.iterations, static_cast<long>(start), seconds,
      1e3 * seconds / std::max(1L, f.iterations));
  std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a of θ's bytes: equal runs print equal hashes
  const auto* bytes = reinterpret_cast<const unsigned char*>(theta.data());
  for (std::size_t i = 0; i < sizeof(float) * static_cast<std::size_t>(theta.size()); ++i)
    hash = (hash ^ bytes[i]) * 1099511628211ULL;
  std::printf("theta: FNV-1a %016llx\n", static_cast<unsigned long long>(hash));
  std::printf(
      "MSE on 100 points after k steps, K = 5, 600 test tasks: k = 0: "
      "%.3f, k = 1: %.3f, k = 5: %.3f, "
      "k = 10: %.3f\n(MAML paper, K = 5: k = 1: 0.67, k = 5: 0.38, k = "
      "10: 0.35)\n",
      mse[0], mse[1], mse[2], mse[3]);
  if (!f.report.empty()) {
    std::ofstream out(f.report);
    out << "{\"ranks\": " << exchange.size() << ", \"threads\": " << f.threads << ", \"iterations\": " << f.iterations
        << ", \"resumed_from\": " << start << ", \"seed\": " << f.seed << ", \"inner_lr\": 0.001, \"meta_batch\": 25"
        << ", \"seconds\": " << seconds << ", \"final_meta_loss\": " << last_loss << ", \"mse_k5\": {\"0\": " << mse[0]
        << ", \"1\": " << mse[1] << ", \"5\": " << mse[2] << ", \"10\": " << mse[3]
        << "}, \"anchor\": {\"source\": \"Finn et al. 2017, MAML, K = 5\", "
           "\"1\": 0.67, \"5\": 0.38, \"10\": 0.35}}\n";
    if (!out) throw std::runtime_error("cannot write " + f.report);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int status = 0;
  try {
    const Flags f = parse(argc, argv);
    metalearn::distributed::MpiExchange<float> exchange;
    status = run(f, exchange);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sine_mpi: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD,
              2);  // an error on one rank ends the job, never a hang
  }
  MPI_Finalize();
  return status;
}
