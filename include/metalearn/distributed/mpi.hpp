#pragma once
/// @file
/// @brief The meta-batch over MPI ranks, bit-identical to one process (optional: only programs
/// that link MPI include this header; CMake target `metalearn::mpi`).
///
/// Every rank draws every task of a meta-iteration from the same sampler stream (so the union
/// of the ranks' tasks is the one-process meta-batch, whatever the number of ranks), computes
/// the sums of its contiguous share of the engine's fixed summation blocks (with its own
/// threads), and an MPI_Allgatherv gives every rank every block's sum; each rank then adds the
/// blocks in block order, exactly as one process does. A plain MPI_Allreduce with MPI_SUM
/// would add in an order that depends on the implementation and the number of ranks; this
/// exchange moves (blocks × P) numbers instead of P, for results that do not depend on R.
/// Before the exchange the ranks agree on failure: an exception on one rank (a bad task, a
/// diverging inner loop) is thrown on every rank with that rank's message, never a hang.

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

// Throws metalearn::runtime_error-like invalid_argument for an MPI call that failed.
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  metalearn::detail::fail("distributed::MpiExchange", call, " failed: ", std::string(text, static_cast<std::size_t>(length)));
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

/// The engine's block exchange (meta/engine.hpp) over the ranks of an MPI communicator.
/// Give it to an algorithm with `algorithm.set_exchange(&exchange)`; every rank must then run
/// the same meta-steps on the same meta-parameters (MetaTrainer with the same sampler seed
/// does), and every rank ends each meta-step with the same meta-gradient, bit for bit.
template <class S>
class MpiExchange final : public BlockExchange<S> {
 public:
  /// The exchange over `comm` (not owned; MPI must be initialised and stay so while it is used).
  explicit MpiExchange(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    detail::check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    counts_.resize(static_cast<std::size_t>(size_));
    offsets_.resize(static_cast<std::size_t>(size_));
  }

  /// This rank and the number of ranks.
  int rank() const { return rank_; }
  int size() const { return size_; }

  /// Blocks [b·r/R, b·(r+1)/R) on rank r.
  std::pair<Index, Index> share(Index blocks) const override { return range(blocks, rank_); }

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

  /// Every rank's block columns and losses to every rank (in place).
  void gather(MatrixRef<S> sums, VectorRef<S> losses) override {
    const Index blocks = sums.cols(), p = sums.rows();
    if (static_cast<double>(blocks) * static_cast<double>(p) > static_cast<double>(INT_MAX))
      metalearn::detail::fail("distributed::MpiExchange", "a meta-batch of ", blocks, " blocks of ", p,
                              " entries exceeds MPI's int counts");
    for (int r = 0; r < size_; ++r) {
      const auto [first, last] = range(blocks, r);
      counts_[static_cast<std::size_t>(r)] = static_cast<int>((last - first) * p);
      offsets_[static_cast<std::size_t>(r)] = static_cast<int>(first * p);
    }
    bytes_ += static_cast<double>(blocks * p - counts_[static_cast<std::size_t>(rank_)]) * sizeof(S);
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, sums.data(), counts_.data(), offsets_.data(),
                                 detail::mpi_type<S>(), comm_),
                  "MPI_Allgatherv");
    for (int r = 0; r < size_; ++r) {
      const auto [first, last] = range(blocks, r);
      counts_[static_cast<std::size_t>(r)] = static_cast<int>(last - first);
      offsets_[static_cast<std::size_t>(r)] = static_cast<int>(first);
    }
    detail::check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, losses.data(), counts_.data(), offsets_.data(),
                                 detail::mpi_type<S>(), comm_),
                  "MPI_Allgatherv");
  }

  /// Bytes this rank received in block sums so far.
  double bytes_received() const { return bytes_; }

 private:
  std::pair<Index, Index> range(Index blocks, int r) const {
    return {blocks * r / size_, blocks * (r + 1) / size_};
  }

  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  std::vector<int> counts_, offsets_;
  double bytes_ = 0;
};

/// Refuses (on every rank, with `invalid_argument` naming the difference) ranks whose
/// algorithms describe themselves differently or have different parameter counts; call it
/// once at start-up on every rank of `comm`.
template <class Algorithm>
void check_agreement(const Algorithm& algorithm, MPI_Comm comm = MPI_COMM_WORLD) {
  const std::string mine = algorithm.describe() + " | parameters " + std::to_string(algorithm.parameter_count());
  const std::vector<std::string> all = detail::all_strings(comm, mine);
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      metalearn::detail::fail("distributed::check_agreement", "rank ", r, " runs '", all[r], "', rank 0 runs '",
                              all[0], "'");
}

}  // namespace metalearn::distributed
