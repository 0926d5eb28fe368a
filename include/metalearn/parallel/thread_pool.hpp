#pragma once
/// @file
/// @brief A fixed pool of threads for running the independent items of a batch (internal to
/// the meta-learners, usable on its own).
///
/// Threads are created once; `run` hands them work without allocating (the job is a function
/// pointer and a context pointer) and returns when every item is done. The calling thread
/// works too, as worker 0. Worker w starts with item w, so every worker is used as soon as
/// there are size() items; the other items go to whichever worker is free first (workers of
/// a shared machine do not run at the same speed, and a fixed deal would wait for the
/// slowest). Callers that need results independent of the thread count write each item's
/// result to its own slot and combine the slots in a fixed order.
/// `run_fed` overlaps a serial producer (e.g. drawing the tasks of a meta-batch from one
/// random stream) with the work: the caller produces the items in order while the other
/// workers take each one as soon as it is ready (the first of them item 0, which is ready
/// first), first come first served; the caller, done producing, starts with the last item.
///
/// A meta-step lasts a fraction of a millisecond, so waking a sleeping thread (tens of
/// microseconds) would eat much of the gain. Workers therefore spin on an atomic generation
/// counter for a short while after each job (`spin_microseconds`) before they sleep on a
/// condition variable; the caller spins the same way while it waits for the last item.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace metalearn::parallel {

/// A pool of `size()` workers: the caller plus size() − 1 threads.
class ThreadPool {
 public:
  /// A pool of `threads` workers (≥ 1); starts threads − 1 threads, which spin for up to
  /// `spin_microseconds` waiting for the next job before they sleep.
  explicit ThreadPool(int threads, int spin_microseconds = 200) : size_(threads), spin_(spin_microseconds) {
    if (threads < 1) detail::fail("parallel::ThreadPool", "threads must be >= 1, got ", threads);
    if (spin_microseconds < 0)
      detail::fail("parallel::ThreadPool", "spin_microseconds must be >= 0, got ", spin_microseconds);
    threads_.reserve(static_cast<std::size_t>(threads - 1));
    for (int id = 1; id < threads; ++id) threads_.emplace_back([this, id] { loop(id); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true, std::memory_order_release);
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Number of workers, the caller included.
  int size() const { return size_; }

  /// Calls f(item, worker) for every item in [0, count), spread over the workers (worker w
  /// starts with item w, then takes the next item not taken yet); returns when all are done.
  /// If calls throw, the first exception thrown (in time) is rethrown after all finish. Not
  /// reentrant: one `run` (or `run_fed`) at a time per pool.
  template <class F>
  void run(Index count, F&& f) {
    if (count <= 0) return;
    if (size_ == 1 || count == 1) {
      sequential(count, f, nullptr);
      return;
    }
    start(count, f, false);
    work(0);
    finish();
  }

  /// Like `run`, but the items are first produced on the calling thread: produce(i) for i = 0,
  /// 1, …, count − 1 in order, while the other workers already take the items produced so far.
  /// Worker w ≥ 1 starts with item w − 1 and the caller, once it has produced every item, with
  /// the last item, count − 1 (so every worker takes part in every call with count ≥ size(),
  /// per-worker state is warmed up by the first call, the first item ready is the first one
  /// taken, and the items before the last are taken in order); the other items go to whichever
  /// worker is free, so callers must not depend on which worker runs them. If produce(i)
  /// throws, the items before i still run, none from i on does, and the first exception
  /// thrown (in time; on one thread, produce's) is rethrown after the running ones finish.
  template <class P, class F>
  void run_fed(Index count, P&& produce, F&& f) {
    if (count <= 0) return;
    if (size_ == 1 || count == 1) {
      Index produced = 0;
      std::exception_ptr error;
      try {
        for (; produced < count; ++produced) produce(produced);
      } catch (...) {
        error = std::current_exception();
      }
      sequential(produced, f, error);
      return;
    }
    start(count, f, true);
    try {
      for (Index i = 0; i < count; ++i) {
        produce(i);
        ready_.store(i + 1, std::memory_order_release);  // publishes item i
      }
    } catch (...) {
      record(std::current_exception());
      aborted_.store(true, std::memory_order_release);
    }
    work(0);
    finish();
  }

 private:
  // run / run_fed on the calling thread alone: f(i, 0) for i < `ready`, every one even if some
  // throw; then the first exception (`error`, if set, counts as first) is rethrown.
  template <class F>
  static void sequential(Index ready, F& f, std::exception_ptr error) {
    for (Index i = 0; i < ready; ++i) {
      try {
        f(i, 0);
      } catch (...) {
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }

  template <class F>
  static void trampoline(void* context, Index item, int worker) {
    (*static_cast<F*>(context))(item, worker);
  }

  // Spins until pred() holds or the spin time is over; returns pred().
  template <class Pred>
  bool spin_until(Pred pred) const {
    if (pred()) return true;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_);
    for (int i = 0;; ++i) {
      if (pred()) return true;
      if ((i & 63) == 63 && std::chrono::steady_clock::now() >= until) return pred();
      std::this_thread::yield();
    }
  }

  template <class F>
  void start(Index count, F& f, bool fed) {
    job_ = &trampoline<F>;
    context_ = const_cast<void*>(static_cast<const void*>(&f));  // trampoline<F> restores F's constness
    count_ = count;
    fed_ = fed;
    error_ = nullptr;
    next_.store(fed ? size_ - 1 : size_, std::memory_order_relaxed);  // the items before are workers' first
    ready_.store(0, std::memory_order_relaxed);
    aborted_.store(false, std::memory_order_relaxed);
    busy_.store(size_ - 1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex_);  // sleepers check the generation under the lock
      generation_.fetch_add(1, std::memory_order_release);  // publishes the job
    }
    start_.notify_all();
  }

  void finish() {
    if (!spin_until([this] { return busy_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return busy_.load(std::memory_order_acquire) == 0; });
    }
    if (error_) std::rethrow_exception(error_);
  }

  void record(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = std::move(e);
  }

  void call(Index i, int worker) {
    try {
      job_(context_, i, worker);
    } catch (...) {
      record(std::current_exception());
    }
  }

  // run: worker w first takes item w, and the counter hands out the items from size() on.
  // run_fed: worker w ≥ 1 first takes item w − 1 and the caller, which produces first, the last
  // item (when count ≥ size()); the counter hands out the items in between, size() − 1 on.
  void work(int worker) {
    const bool caller_last = fed_ && count_ >= size_;
    const Index end = caller_last ? count_ - 1 : count_;  // the counter's items end here
    Index i = worker;                                      // run
    if (fed_) i = worker > 0 ? worker - 1 : end;           // run_fed (end is count_ − 1 or count_)
    if (i >= count_) return;
    do {
      if (fed_ && !wait_produced(i)) return;
      call(i, worker);
      i = next_.fetch_add(1, std::memory_order_relaxed);
    } while (i < end);
  }

  // run_fed: waits until item i is produced; false if it never will be (produce threw first).
  bool wait_produced(Index i) const {
    for (int spin = 0; ready_.load(std::memory_order_acquire) <= i; ++spin) {
      if (aborted_.load(std::memory_order_acquire))  // the abort comes after every item produced:
        return ready_.load(std::memory_order_acquire) > i;  // reading it, this load sees them all
      if ((spin & 63) == 63) std::this_thread::yield();
    }
    return true;
  }

  void loop(int id) {
    std::uint64_t seen = 0;
    for (;;) {
      auto ready = [&] {
        return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, ready);
      }
      if (stop_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      work(id);
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);  // the caller may be about to sleep
        done_.notify_one();
      }
    }
  }

  int size_;
  int spin_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> busy_{0};
  void (*job_)(void*, Index, int) = nullptr;
  void* context_ = nullptr;
  Index count_ = 0;
  bool fed_ = false;
  std::atomic<Index> next_{0};   // run_fed: the next item to take
  std::atomic<Index> ready_{0};  // run_fed: items produced so far
  std::atomic<bool> aborted_{false};
  std::exception_ptr error_;
};

}  // namespace metalearn::parallel
