#pragma once
/// @file
/// @brief The deterministic task-parallel meta-batch that every meta-learning algorithm of
/// metalearn runs on: threads, fixed summation blocks, the ordered add, drawing tasks while
/// the others work, per-worker workspaces. An algorithm states only what one task
/// contributes (its meta-loss and meta-gradient); the engine makes the mean over a
/// meta-batch bit-identical for any number of threads.
///
/// The per-task results are added in an order fixed by the number of tasks alone — blocks of
/// four consecutive tasks while more than five remain, then single tasks; within a block in
/// task order, then the blocks in order. A worker sums a block's tasks where it computed them,
/// so only one gradient per block crosses to another core, and the single tasks at the end
/// keep the workers' finishing times within one task of each other. The blocks are added in
/// order while the others still run: the worker that finishes a block adds every finished
/// block the sum has reached, so when the last one finishes, little is left to add. After the
/// first call with a given shape the engine does not allocate (with threads, a task goes to
/// whichever worker is free, so "shape" means every task's: a worker's workspace grows to the
/// largest task it meets, and meta-batches of equal-sized tasks never grow it again).

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/parallel/thread_pool.hpp>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn {

namespace detail {
/// Whether a workspace type reports the bytes it holds (`std::size_t bytes() const`).
template <class W, class = void>
struct has_bytes : std::false_type {};
template <class W>
struct has_bytes<W, std::void_t<decltype(std::declval<const W&>().bytes())>> : std::true_type {};

/// The fixed summation blocks of a meta-batch of `count` tasks: four consecutive tasks per
/// block while more than five remain, then one task per block (25 tasks: 5 blocks of 4, then
/// 5 single tasks).
struct TaskBlocks {
  explicit TaskBlocks(Index count) : count_(count), full_(count > 5 ? (count - 5 + 3) / 4 : 0) {}
  Index size() const { return full_ + (count_ - 4 * full_); }
  Index begin(Index b) const { return b < full_ ? 4 * b : 4 * full_ + (b - full_); }
  Index end(Index b) const { return b < full_ ? 4 * b + 4 : begin(b) + 1; }

 private:
  Index count_, full_;
};
}  // namespace detail

/// How the engines of several processes share a meta-batch (distributed/mpi.hpp implements it
/// with MPI; nothing in the core headers depends on that). Every process holds every task of
/// the meta-batch; process r computes the sums of the fixed blocks [first[r], first[r + 1]) (a
/// contiguous share, balanced by tasks); `reduce` adds all blocks in block order — process r
/// continues the sum process r − 1 passes on — exactly as one process adds them, so the
/// result is bit-identical for any number of processes and threads.
template <class S>
class BlockExchange {
 public:
  virtual ~BlockExchange() = default;
  /// This process's rank r and the number of processes R.
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Called by every process after its blocks, with how they failed ("i: " for
  /// `invalid_argument`, "n: " for `numerical_error`, then the message; "" when they did not);
  /// returns on every process the failure of the lowest-ranked process that failed, or "".
  virtual std::string agree(const std::string& failure) = 0;
  /// Makes `sum` on every process ((0 + B_0) + B_1) + … over every block's column B_b (its
  /// meta-gradient sum, then its loss sum), in block order; this process holds the columns
  /// first[rank()] … first[rank() + 1] − 1 of `blocks` (`first` has size() + 1 entries).
  virtual void reduce(ConstMatrixRef<S> blocks, const Index* first, VectorRef<S> sum) = 0;
};

/// The meta-batch engine of an algorithm `A`, which provides
///   - `using Scalar` (float or double), `using Task`, `using Workspace` (default-constructible
///     scratch memory of one worker);
///   - `Index parameter_count() const`, the length of the meta-parameters (and of the gradient);
///   - `void check_task(const char* where, const Task&, Index t) const`, throwing
///     `invalid_argument` for a task it cannot use;
///   - `Scalar task_meta_gradient(ConstVectorRef<Scalar> meta, const Task&, Workspace&,
///     VectorRef<Scalar> grad) const`: the task's meta-loss, with its meta-gradient assigned to
///     `grad`. It is called concurrently on different workspaces, so it must not change the
///     algorithm. The engine has checked `meta` for size and finiteness before the first
///     task, so the algorithm may hand it to its model with a `FiniteThetaKey`.
/// The engine owns the workers' workspaces and the pool; the algorithm owns the engine.
template <class A>
class MetaBatchEngine {
 public:
  using Scalar = typename A::Scalar;        ///< float or double
  using Workspace = typename A::Workspace;  ///< one worker's scratch memory

  /// An engine of `threads` workers (≥ 1) for meta-gradients of `parameters` entries, for the
  /// algorithm called `name` in messages ("Maml", …).
  MetaBatchEngine(const char* name, int threads, Index parameters)
      : name_(name), where_(std::string(name) + "::meta_loss_and_gradient"),
        workers_(static_cast<std::size_t>(threads)) {
    if (threads < 1) detail::fail(name, "threads must be >= 1, got ", threads);
    if (threads > 1) {
      pool_ = std::make_unique<parallel::ThreadPool>(threads);
      adding_ = std::make_unique<Adding>();
    }
    sum_.resize(parameters);
    block_.resize(parameters);
    for (auto& w : workers_) w.grad.resize(parameters);
  }

  /// Number of workers.
  int threads() const { return static_cast<int>(workers_.size()); }
  /// Shares every later meta-batch with other processes through `exchange` (not owned; null:
  /// this process alone).
  void set_exchange(BlockExchange<Scalar>* exchange) { exchange_ = exchange; }
  /// Worker w's workspace (w < threads()); worker 0 is the calling thread's.
  Workspace& workspace(int w) { return workers_[static_cast<std::size_t>(w)].ws; }

  /// Mean meta-loss over `tasks` (size() and operator[] giving A::Task), its meta-gradient
  /// assigned to `grad`. Checks every task first; on any error throws with `grad` unchanged.
  template <class Tasks>
  Scalar meta_loss_and_gradient(const A& a, ConstVectorRef<Scalar> meta, const Tasks& tasks, VectorRef<Scalar> grad) {
    const Index count = check_tasks(a, meta, tasks, grad);
    const detail::TaskBlocks blocks(count);
    if (exchange_) return shared(a, meta, tasks, count, grad);
    if (!pool_ || count == 1) {
      Scalar loss = 0;
      sum_.setZero();
      for (Index b = 0; b < blocks.size(); ++b) {
        loss += block_sum(a, workers_[0], meta, tasks, blocks, b, block_);
        sum_ += block_;
      }
      return mean(count, loss, grad);
    }
    start_slots(blocks.size());
    pool_->run(blocks.size(), [&](Index b, int worker) { threaded_block(a, meta, tasks, blocks, b, worker); });
    return average(count, grad);
  }

  /// The same, with the tasks drawn as they are needed: `fill(t)` writes task t into
  /// `tasks[t]`, on the calling thread in task order, before any other use of the task; with
  /// threads the other workers start on the tasks already drawn. The result is that of
  /// filling every task and then calling the overload above, for any thread count. If `fill`
  /// throws or a drawn task is refused, the exception comes out after the running tasks
  /// finish, and `grad` is unchanged.
  template <class Tasks, class Fill>
  Scalar meta_loss_and_gradient(const A& a, ConstVectorRef<Scalar> meta, Tasks& tasks, VectorRef<Scalar> grad,
                                Fill&& fill) {
    const auto count = static_cast<Index>(tasks.size());
    if (!pool_ || count <= 1 || exchange_) {  // (shared: every process draws every task, in order)
      for (Index t = 0; t < count; ++t) fill(t);
      return meta_loss_and_gradient(a, meta, static_cast<const Tasks&>(tasks), grad);
    }
    check_call(a, meta, grad);
    const detail::TaskBlocks blocks(count);
    start_slots(blocks.size());
    auto produce = [&](Index b) {  // the tasks of block b
      for (Index t = blocks.begin(b); t < blocks.end(b); ++t) {
        fill(t);
        a.check_task(where(), tasks[static_cast<std::size_t>(t)], t);
      }
    };
    pool_->run_fed(blocks.size(), produce, [&](Index b, int worker) { threaded_block(a, meta, tasks, blocks, b, worker); });
    return average(count, grad);
  }

  /// Calls f(i, workspace) for every i in [0, count), spread over the workers (each call on
  /// one worker's workspace; any order): the parallel half of evaluation, whose results the
  /// caller writes to slots of its own. Exceptions come out after every item ran.
  template <class F>
  void for_each(Index count, F&& f) {
    if (!pool_) {
      for (Index i = 0; i < count; ++i) f(i, workers_[0].ws);
      return;
    }
    pool_->run(count, [&](Index i, int worker) { f(i, workers_[static_cast<std::size_t>(worker)].ws); });
  }

  /// Bytes held by the engine's own buffers (the workspaces' are the algorithm's to count).
  std::size_t bytes() const {
    std::size_t total = sizeof(Scalar) * static_cast<std::size_t>(sum_.size() + block_.size() + task_grads_.size() +
                                                                  task_losses_.size() + shared_.size() +
                                                                  reduced_.size());
    for (const auto& w : workers_) total += sizeof(Scalar) * static_cast<std::size_t>(w.grad.size());
    return total;
  }
  /// Every worker's workspace, for the algorithm's `bytes()` (and, non-const, for state an
  /// algorithm gathers per worker, between meta-steps).
  template <class F>
  void for_each_workspace(F&& f) const {
    for (const auto& w : workers_) f(w.ws);
  }
  template <class F>
  void for_each_workspace(F&& f) {
    for (auto& w : workers_) f(w.ws);
  }

 private:
  struct alignas(128) Worker {  // own cache lines: workers write their workspaces concurrently
    Workspace ws{};
    Vector<Scalar> grad;  // the current task's meta-gradient
  };

  const char* where() const { return where_.c_str(); }

  void check_call(const A& a, const ConstVectorRef<Scalar>& meta, const VectorRef<Scalar>& grad) const {
    detail::check_size(where(), "theta", meta.size(), a.parameter_count());
    detail::check_size(where(), "grad", grad.size(), a.parameter_count());
    if (grad.data() == meta.data()) detail::fail(where(), "grad must not be the same vector as theta");
    detail::check_finite(where(), "theta", meta);  // once per meta-step, not per task (FiniteThetaKey)
  }

  template <class Tasks>
  Index check_tasks(const A& a, const ConstVectorRef<Scalar>& meta, const Tasks& tasks,
                    const VectorRef<Scalar>& grad) const {
    check_call(a, meta, grad);
    const auto count = static_cast<Index>(tasks.size());
    if (count == 0) detail::fail(where(), "the meta-batch has no tasks");
    for (Index t = 0; t < count; ++t) a.check_task(where(), tasks[static_cast<std::size_t>(t)], t);
    return count;
  }

  // Task t's meta-loss, its meta-gradient into wk.grad; model and inner-loop errors are labelled
  // with the task.
  template <class Task>
  Scalar task(const A& a, Worker& wk, ConstVectorRef<Scalar> meta, const Task& t, Index index) {
    return detail::for_task(name_, index, [&] { return a.task_meta_gradient(meta, t, wk.ws, wk.grad); });
  }

  // The meta-batch shared with other processes: this process's blocks into their slots, an
  // agreement on failure (so that no process waits for one that threw), then the exchange's sum
  // of all blocks in block order, as the one-thread path adds them.
  template <class Tasks>
  Scalar shared(const A& a, ConstVectorRef<Scalar> meta, const Tasks& tasks, Index count, VectorRef<Scalar> grad) {
    const detail::TaskBlocks blocks(count);
    const Index p = sum_.size(), n = blocks.size();
    if (shared_.rows() != p + 1 || shared_.cols() < n) shared_.resize(p + 1, n);
    share(blocks, count);
    const Index first = first_[static_cast<std::size_t>(exchange_->rank())];
    const Index last = first_[static_cast<std::size_t>(exchange_->rank()) + 1];
    std::string failure;
    try {
      auto run = [&](Index b, Worker& wk) {
        shared_(p, b) = block_sum(a, wk, meta, tasks, blocks, b, shared_.col(b).head(p));
      };
      if (!pool_) {
        for (Index b = first; b < last; ++b) run(b, workers_[0]);
      } else {
        pool_->run(last - first, [&](Index i, int worker) { run(first + i, workers_[static_cast<std::size_t>(worker)]); });
      }
    } catch (const invalid_argument& e) {
      failure = std::string("i: ") + e.what();
    } catch (const numerical_error& e) {
      failure = std::string("n: ") + e.what();
    } catch (const std::exception& e) {
      failure = std::string("i: metalearn: ") + name_ + ": " + e.what();
    }
    failure = exchange_->agree(failure);
    if (!failure.empty()) {
      if (failure.compare(0, 3, "n: ") == 0) throw numerical_error(failure.substr(3));
      throw invalid_argument(failure.substr(3));
    }
    if (reduced_.size() != p + 1) reduced_.resize(p + 1);
    exchange_->reduce(shared_.leftCols(n), first_.data(), reduced_);
    sum_ = reduced_.head(p);
    return mean(count, reduced_[p], grad);
  }

  // first_[r]: the first block of process r, r = 0 … R (first_[R] = the number of blocks); each
  // boundary the block start nearest to count · r / R, so the processes' tasks differ by at most
  // a block's.
  void share(const detail::TaskBlocks& blocks, Index count) {
    const int ranks = exchange_->size();
    const Index n = blocks.size();
    first_.resize(static_cast<std::size_t>(ranks) + 1);  // (allocates only when R grows)
    Index b = 0;
    first_[0] = 0;
    for (int r = 1; r < ranks; ++r) {
      const double target = static_cast<double>(count) * r / ranks;
      auto start = [&](Index x) { return x < n ? blocks.begin(x) : count; };
      auto distance = [&](Index x) { return std::abs(static_cast<double>(start(x)) - target); };
      while (b < n && distance(b + 1) < distance(b)) ++b;
      first_[static_cast<std::size_t>(r)] = b;
    }
    first_[static_cast<std::size_t>(ranks)] = n;
  }

  // The threaded paths' slots for `blocks` blocks, none finished, none added.
  void start_slots(Index blocks) {
    const Index p = sum_.size();
    if (task_grads_.rows() != p || task_grads_.cols() < blocks) task_grads_.resize(p, blocks);
    if (task_losses_.size() < blocks) task_losses_.resize(blocks);
    Adding& s = *adding_;
    if (static_cast<Index>(s.finished.size()) < blocks)
      s.finished = std::vector<std::atomic<bool>>(static_cast<std::size_t>(blocks));
    for (Index b = 0; b < blocks; ++b) s.finished[static_cast<std::size_t>(b)].store(false, std::memory_order_relaxed);
    s.blocks = blocks;
    s.added = 0;
    s.loss = 0;
    sum_.setZero();
  }

  // Block b on worker wk: the sum of its tasks' meta-gradients, in task order, into `dst`;
  // returns the sum of their losses. The one-thread and the threaded paths both sum blocks
  // here, which makes their results bit-identical.
  template <class Tasks, class Dst>
  Scalar block_sum(const A& a, Worker& wk, ConstVectorRef<Scalar> meta, const Tasks& tasks,
                   const detail::TaskBlocks& blocks, Index b, Dst&& dst) {
    Scalar loss = 0;
    for (Index t = blocks.begin(b); t < blocks.end(b); ++t) {
      // Each task's meta-gradient goes to the worker's own (aligned) vector, never straight to
      // `dst`: Eigen's loops split at the destination's alignment, and scalar and vector code
      // may round differently (FMA contraction), so a destination whose alignment depends on
      // the block or the thread count would change the bits.
      loss += task(a, wk, meta, tasks[static_cast<std::size_t>(t)], t);
      if (t == blocks.begin(b)) dst = wk.grad;
      else dst += wk.grad;
    }
    return loss;
  }

  // Block b on a worker of the pool, into the block's own slots; then the finished blocks
  // the sum has reached are added.
  template <class Tasks>
  void threaded_block(const A& a, ConstVectorRef<Scalar> meta, const Tasks& tasks, const detail::TaskBlocks& blocks,
                      Index b, int worker) {
    Worker& wk = workers_[static_cast<std::size_t>(worker)];
    task_losses_[b] = block_sum(a, wk, meta, tasks, blocks, b, task_grads_.col(b));
    adding_->finished[static_cast<std::size_t>(b)].store(true);
    add_finished_blocks();
  }

  // Adds the finished blocks from `added` on to sum_ and the loss, in block order (so the
  // result is bit-identical for any thread count), on whichever worker raises the `busy` flag;
  // a worker that finds it raised leaves its block to the holder. No block is left behind:
  // the holder re-checks the next block after it lowers the flag, and in the single order of
  // the seq_cst operations either that check comes after the block's `finished` store (and
  // sees it), or the block's worker tries the flag after the lowering — then it gets the flag,
  // or a session that starts after the lowering sees the block. (Both pairs, the `finished`
  // store before the flag exchange and the lowering before the re-check, need seq_cst: a
  // store followed by a load of another variable.) Nothing in a session throws.
  void add_finished_blocks() noexcept {
    Adding& s = *adding_;
    for (;;) {
      if (s.busy.exchange(true)) return;
      Index b = s.added;
      for (; b < s.blocks && s.finished[static_cast<std::size_t>(b)].load(); ++b) {
        s.loss += task_losses_[b];
        sum_ += task_grads_.col(b);
      }
      s.added = b;
      s.busy.store(false);
      if (b == s.blocks || !s.finished[static_cast<std::size_t>(b)].load()) return;
    }
  }

  // The sum of the threaded paths (every block is added once the pool returns) divided by the
  // number of tasks into `grad`; returns the mean loss.
  Scalar average(Index count, VectorRef<Scalar> grad) {
    if (adding_->added != adding_->blocks)  // cannot happen (see add_finished_blocks); one comparison
      throw metalearn::logic_error(detail::concat("metalearn: ", name_, ": internal error: ", adding_->added,
                                                  " of ", adding_->blocks, " blocks were added to the meta-gradient"));
    return mean(count, adding_->loss, grad);
  }

  // grad = sum_ / count; returns loss / count.
  Scalar mean(Index count, Scalar loss, VectorRef<Scalar> grad) {
    const Scalar inv = Scalar(1) / static_cast<Scalar>(count);
    grad = sum_ * inv;
    return loss * inv;
  }

  const char* name_;   // the algorithm's name (a string literal)
  std::string where_;  // "<name>::meta_loss_and_gradient"
  std::vector<Worker> workers_;
  std::unique_ptr<parallel::ThreadPool> pool_;
  Vector<Scalar> sum_;
  Vector<Scalar> block_;        // one thread: the sum over the current block's tasks
  Matrix<Scalar> task_grads_;   // threads: one column per block, its gradient sum
  Vector<Scalar> task_losses_;  // threads: one entry per block, its loss sum
  Matrix<Scalar> shared_;       // with an exchange: per block, its gradient sum and its loss sum
  Vector<Scalar> reduced_;      // with an exchange: the sum over all blocks, then the loss
  std::vector<Index> first_;    // with an exchange: each process's first block
  struct Adding {  // threads: the blocks' progress into sum_ (behind a pointer: the engine stays movable)
    std::vector<std::atomic<bool>> finished;        // block b is in its slots
    Index blocks = 0;                               // blocks of the current call
    Index added = 0;                                // blocks added to sum_ (changed under `busy`)
    Scalar loss = 0;                                // their losses' sum (changed under `busy`)
    alignas(64) std::atomic<bool> busy{false};      // a worker is adding blocks (own cache line)
  };
  std::unique_ptr<Adding> adding_;
  BlockExchange<Scalar>* exchange_ = nullptr;  // other processes' share of the meta-batch (not owned)
};

}  // namespace metalearn
