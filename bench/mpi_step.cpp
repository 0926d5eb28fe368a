// One distributed meta-iteration (distributed/mpi.hpp) under mpirun: second-order MAML, one
// inner step, on the sine network of the given width and a meta-batch of the given size, the
// same tasks and θ every iteration. Rank 0 prints one JSON line with medians over the timed
// iterations: the meta-step, the part of it spent in the exchange (agreeing and reducing),
// the bytes each rank receives, and — for the same P and number of blocks — the exchange's
// ordered reduction against one plain MPI_Allreduce of P numbers (which is not bit-identical
// across rank counts), and the latency and bandwidth of one message between ranks 0 and 1.
//   mpirun -np R bench_mpi_step [--width W] [--batch B] [--iterations N] [--threads T]
#include <metalearn/distributed/mpi.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/tasks/sine.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

namespace nn = metalearn::nn;
using metalearn::Index;
using metalearn::Vector;

namespace {

// The MPI exchange, with the wall time of its calls added up.
class TimedExchange final : public metalearn::BlockExchange<float> {
 public:
  int rank() const override { return inner.rank(); }
  int size() const override { return inner.size(); }
  std::string agree(const std::string& failure) override {
    const double t = MPI_Wtime();
    std::string r = inner.agree(failure);
    seconds += MPI_Wtime() - t;
    return r;
  }
  void reduce(metalearn::ConstMatrixRef<float> blocks, const Index* first, metalearn::VectorRef<float> sum) override {
    const double t = MPI_Wtime();
    inner.reduce(blocks, first, sum);
    seconds += MPI_Wtime() - t;
  }
  metalearn::distributed::MpiExchange<float> inner;
  double seconds = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  Index width = 40, batch = 25;
  int iterations = 30, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::stol(argv[i + 1]);
    if (a == "--width")
      width = v;
    else if (a == "--batch")
      batch = v;
    else if (a == "--iterations")
      iterations = static_cast<int>(v);
    else if (a == "--threads")
      threads = static_cast<int>(v);
  }
  TimedExchange exchange;
  const auto obj = nn::Objective(nn::Mlp<float>({1, width, width, 1}, nn::Relu{}), nn::MeanSquaredError{});
  metalearn::MamlOptions o;
  o.inner_lr = 0.01;
  o.threads = threads;
  metalearn::Maml maml(obj, o);
  metalearn::distributed::check_agreement(maml);
  maml.set_exchange(&exchange);
  metalearn::tasks::SineTasks<float> sampler(3);
  std::vector<metalearn::tasks::SineTasks<float>::Task> tasks(static_cast<std::size_t>(batch));
  for (auto& t : tasks) sampler.sample(t);
  Vector<float> theta(maml.parameter_count()), grad(theta.size());
  metalearn::Rng rng(1);
  maml.initialize(theta, rng);
  const Index p = theta.size();

  std::vector<double> step, comm;
  for (int it = -3; it < iterations; ++it) {  // 3 untimed warm-up iterations
    MPI_Barrier(MPI_COMM_WORLD);
    exchange.seconds = 0;
    const double t = MPI_Wtime();
    maml.meta_loss_and_gradient(theta, tasks, grad);
    const double s = MPI_Wtime() - t;
    if (it >= 0) {
      step.push_back(s);
      comm.push_back(exchange.seconds);
    }
  }

  // the reduction alone, for this P and this meta-batch's blocks (split evenly by blocks here)
  const Index blocks = metalearn::detail::TaskBlocks(batch).size();
  const int ranks = exchange.size(), rank = exchange.rank();
  std::vector<Index> first(static_cast<std::size_t>(ranks) + 1);
  for (int r = 0; r <= ranks; ++r) first[static_cast<std::size_t>(r)] = blocks * r / ranks;
  metalearn::Matrix<float> sums = metalearn::Matrix<float>::Random(p + 1, blocks);  // gradient sums, loss sums
  Vector<float> sum(p + 1), reduced(p + 1);
  std::vector<double> ours, plain;
  for (int it = -3; it < iterations; ++it) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t = MPI_Wtime();
    exchange.inner.reduce(sums, first.data(), reduced);
    const double a = MPI_Wtime() - t;
    MPI_Barrier(MPI_COMM_WORLD);
    t = MPI_Wtime();
    const Index b0 = first[static_cast<std::size_t>(rank)], b1 = first[static_cast<std::size_t>(rank) + 1];
    sum.setZero();
    for (Index b = b0; b < b1; ++b) sum += sums.col(b);
    MPI_Allreduce(sum.data(), reduced.data(), static_cast<int>(p + 1), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    const double b = MPI_Wtime() - t;
    if (it >= 0) {
      ours.push_back(a);
      plain.push_back(b);
    }
  }
  // ranks 0 and 1: half the round trip of a 4-byte and of a 1 MB message (the α and β of
  // bench/README.md's cost model)
  double latency = 0, per_byte = 0;
  if (ranks >= 2 && rank < 2) {
    std::vector<float> buffer(262144);
    auto half_round_trip = [&](int count) {
      std::vector<double> times;
      for (int it = -3; it < 50; ++it) {
        const double t = MPI_Wtime();
        if (rank == 0) {
          MPI_Send(buffer.data(), count, MPI_FLOAT, 1, 7, MPI_COMM_WORLD);
          MPI_Recv(buffer.data(), count, MPI_FLOAT, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
          MPI_Recv(buffer.data(), count, MPI_FLOAT, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
          MPI_Send(buffer.data(), count, MPI_FLOAT, 0, 7, MPI_COMM_WORLD);
        }
        if (it >= 0) times.push_back((MPI_Wtime() - t) / 2);
      }
      return median(times);
    };
    latency = half_round_trip(1);
    per_byte = (half_round_trip(262144) - latency) / (262144.0 * sizeof(float));
  }
  if (exchange.inner.rank() == 0) {
    const double received = static_cast<double>(ranks > 1 ? p + 1 : 0) * sizeof(float);  // rank 0: the broadcast
    std::printf(
        "{\"ranks\": %d, \"threads\": %d, \"width\": %ld, \"batch\": "
        "%ld, \"parameters\": %ld, \"blocks\": %ld, "
        "\"step_ms\": %.4f, \"exchange_ms\": %.4f, \"bytes_received\": "
        "%.0f, \"ordered_reduce_ms\": %.4f, "
        "\"allreduce_ms\": %.4f, \"latency_us\": %.2f, "
        "\"bandwidth_GBps\": %.2f, \"iterations\": %d}\n",
        exchange.inner.size(), threads, static_cast<long>(width), static_cast<long>(batch), static_cast<long>(p),
        static_cast<long>(blocks), 1e3 * median(step), 1e3 * median(comm), received, 1e3 * median(ours),
        1e3 * median(plain), 1e6 * latency, per_byte > 0 ? 1e-9 / per_byte : 0.0, iterations);
  }
  MPI_Finalize();
  return 0;
}
