#pragma once
/// @file
/// @brief The meta-batch over MPI ranks, bit-identical to one process
/// (optional: only programs that link MPI include this header; CMake target
/// `metalearn::mpi`).
///
/// Every rank draws every task of a meta-iteration from the same sampler stream
/// (so the union of the ranks' tasks is the one-process meta-batch, whatever
/// the number of ranks) and computes the sums of its contiguous share of the
/// engine's fixed summation blocks (with its own threads); then the sum is
/// carried from rank to rank in block order — rank r adds its blocks to the
/// partial sum of ranks 0 … r − 1 — and the last rank broadcasts it, so every
/// rank adds exactly as one process does. A plain MPI_Allreduce with MPI_SUM
/// would add in an order that depends on the implementation and the number of
/// ranks. Before the exchange the ranks agree on failure: an exception on one
/// rank (a bad task, a diverging inner loop) is thrown on every rank with that
/// rank's message, never a hang.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/meta/engine.hpp>

#ifndef OMPI_SKIP_MPICXX  // MPI's C interface only (the deprecated C++ bindings warn)
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::distributed {

namespace detail {
template <class S>
MPI_Datatype mpi_type() {
  static_assert(std::is_same_v<S, float> || std::is_same_v<S, double>, "float or double");
  return std::is_same_v<S, float> ? MPI_FLOAT : MPI_DOUBLE;
}

// Throws invalid_argument naming an MPI call that failed and MPI's message.
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  metalearn::detail::fail("distributed::MpiExchange", call,
                          " failed: ", std::string(text, static_cast<std::size_t>(length)));
}

// Every rank's string, gathered to every rank.
inline std::vector<std::string> all_strings(MPI_Comm comm, const std::string& mine) {
  int size = 0;
  MPI_Comm_size(comm, &size);
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(static_cast<std::size_t>(size)), offsets(static_cast<std::size_t>(size));
  check(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm), "MPI_Allgather");
  int total = 0;
  for (int r = 0; r < size; ++r) {
    offsets[static_cast<std::size_t>(r)] = total;
    total += lengths[static_cast<std::size_t>(r)];
  }
  std::string all(static_cast<std::size_t>(total), '\0');
  check(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, comm),
        "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]),
                             static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
  return out;
}
}  // namespace detail

/// The engine's block exchange (meta/engine.hpp) over the ranks of an MPI
/// communicator. Give it to an algorithm with
/// `algorithm.set_exchange(&exchange)`; every rank must then run the same
/// meta-steps on the same meta-parameters (MetaTrainer with the same sampler
/// seed does), and every rank ends each meta-step with the same meta-gradient,
/// bit for bit.
template <class S>
class MpiExchange final : public BlockExchange<S> {
 public:
  /// The exchange over `comm` (not owned; MPI must be initialised and stay so
  /// while it is used).
  explicit MpiExchange(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  /// The engine's shares of the blocks: rank and size of the communicator.
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  /// The lowest failing rank's failure, on every rank ("" when none failed).
  std::string agree(const std::string& failure) override {
    const int mine = failure.empty() ? size_ : rank_;
    int first = size_;
    detail::check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
    if (first == size_) return {};
    int length = rank_ == first ? static_cast<int>(failure.size()) : 0;
    detail::check(MPI_Bcast(&length, 1, MPI_INT, first, comm_), "MPI_Bcast");
    std::string text = rank_ == first ? failure : std::string(static_cast<std::size_t>(length), '\0');
    detail::check(MPI_Bcast(text.data(), length, MPI_CHAR, first, comm_), "MPI_Bcast");
    if (rank_ != first && text.size() > 3) {  // "n: metalearn: rank 2: Maml: task 24: …"
      const std::string prefix = "metalearn: ";
      const std::size_t at = text.compare(3, prefix.size(), prefix) == 0 ? 3 + prefix.size() : 3;
      text = text.substr(0, 3) + prefix + "rank " + std::to_string(first) + ": " + text.substr(at);
    }
    return text;
  }

  /// The sum in block order: rank r receives the sum of ranks 0 … r − 1's
  /// blocks from r − 1, adds its own in order and passes it to r + 1; the last
  /// rank broadcasts the total. Each entry's additions keep their order, so the
  /// sum moves in chunks: rank r + 1 adds chunk c while rank r still adds chunk
  /// c + 1 (a pipeline, not R sums one after another). P + 1 numbers from the
  /// predecessor and P + 1 in the broadcast per rank and meta-step.
  void reduce(ConstMatrixRef<S> blocks, const Index* first, VectorRef<S> sum) override {
    const Index n = sum.size();
    if (n > INT_MAX)
      metalearn::detail::fail("distributed::MpiExchange", "a meta-gradient of ", n,
                              " entries exceeds MPI's int counts");
    const Index b0 = first[rank_], b1 = first[rank_ + 1];
    for (Index at = 0; at < n; at += kChunk) {
      const Index len = std::min(kChunk, n - at);
      auto part = sum.segment(at, len);
      if (rank_ > 0)
        detail::check(MPI_Recv(part.data(), static_cast<int>(len), detail::mpi_type<S>(), rank_ - 1, kTag, comm_,
                               MPI_STATUS_IGNORE),
                      "MPI_Recv");
      else
        part.setZero();
      for (Index b = b0; b < b1; ++b) part += blocks.col(b).segment(at, len);  // in block order
      if (rank_ + 1 < size_)
        detail::check(MPI_Send(part.data(), static_cast<int>(len), detail::mpi_type<S>(), rank_ + 1, kTag, comm_),
                      "MPI_Send");
    }
    detail::check(MPI_Bcast(sum.data(), static_cast<int>(n), detail::mpi_type<S>(), size_ - 1, comm_), "MPI_Bcast");
    bytes_ +=
        static_cast<double>((rank_ > 0 ? 1 : 0) + (rank_ + 1 < size_ ? 1 : 0)) * static_cast<double>(n) * sizeof(S);
  }

  /// Bytes of sums this rank received so far (its predecessor's partial sum and
  /// the broadcast).
  double bytes_received() const { return bytes_; }

 private:
  static constexpr int kTag = 0x6d6c;    // "ml"
  static constexpr Index kChunk = 8192;  // entries per message of the pipelined sum

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  double bytes_ = 0;
};

/// Refuses (on every rank, with `invalid_argument` naming the difference) ranks
/// whose algorithms describe themselves differently or have different parameter
/// counts; call it once at start-up on every rank of `comm`.
template <class Algorithm>
void check_agreement(const Algorithm& algorithm, MPI_Comm comm = MPI_COMM_WORLD) {
  const std::string mine = algorithm.describe() + " | parameters " + std::to_string(algorithm.parameter_count());
  const std::vector<std::string> all = detail::all_strings(comm, mine);
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      metalearn::detail::fail("distributed::check_agreement", "rank ", r, " runs '", all[r], "', rank 0 runs '", all[0],
                              "'");
}

}  // namespace metalearn::distributed
