#pragma once
/// @file
/// @brief A fixed pool of threads for running the independent items of a batch (internal to
/// the meta-learners, usable on its own).
///
/// Threads are created once; `run` hands them work without allocating (the job is a function
/// pointer and a context pointer) and returns when every item is done. The calling thread
/// works too, as worker 0. Items are dealt round-robin (worker w runs items w, w + size(), …),
/// so every worker is used as soon as there are size() items and each item always runs on
/// the same worker; callers that need results independent of the thread count write each
/// item's result to its own slot and combine the slots in a fixed order afterwards.

#include <metalearn/core/error.hpp>
#include <metalearn/core/types.hpp>

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
  /// A pool of `threads` workers (≥ 1); starts threads − 1 threads.
  explicit ThreadPool(int threads) : size_(threads) {
    if (threads < 1) detail::fail("parallel::ThreadPool", "threads must be >= 1, got ", threads);
    threads_.reserve(static_cast<std::size_t>(threads - 1));
    for (int id = 1; id < threads; ++id) threads_.emplace_back([this, id] { loop(id); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& t : threads_) t.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Number of workers, the caller included.
  int size() const { return size_; }

  /// Calls f(item, worker) for every item in [0, count), spread over the workers; returns
  /// when all are done. If calls throw, the first exception is rethrown after all finish.
  /// Not reentrant: one `run` at a time per pool.
  template <class F>
  void run(Index count, F& f) {
    if (count <= 0) return;
    if (size_ == 1 || count == 1) {
      for (Index i = 0; i < count; ++i) f(i, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &trampoline<F>;
      context_ = &f;
      count_ = count;
      busy_ = size_ - 1;
      error_ = nullptr;
      ++generation_;
    }
    start_.notify_all();
    work(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  template <class F>
  static void trampoline(void* context, Index item, int worker) {
    (*static_cast<F*>(context))(item, worker);
  }

  void work(int worker) {
    for (Index i = worker; i < count_; i += size_) {
      try {
        job_(context_, i, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
  }

  void loop(int id) {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        start_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work(id);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  int size_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
  void (*job_)(void*, Index, int) = nullptr;
  void* context_ = nullptr;
  Index count_ = 0;
  int busy_ = 0;
  std::exception_ptr error_;
};

}  // namespace metalearn::parallel
