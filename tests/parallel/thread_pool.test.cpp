// parallel::ThreadPool on its own: every item runs once, the first ones on the documented
// workers; run_fed's items see what was produced for them; exceptions from
// items and from the producer come out after the running items finish; the pool is reusable.
#include <metalearn/parallel/thread_pool.hpp>

#include <atomic>
#include <catch.hpp>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using metalearn::Index;
using metalearn::parallel::ThreadPool;

namespace {

// Per item: how often it ran, and on which worker.
struct Record {
  explicit Record(Index count) : runs(static_cast<std::size_t>(count)), worker(static_cast<std::size_t>(count)) {
    for (auto& r : runs) r.store(0);
    for (auto& w : worker) w.store(-1);
  }
  void ran(Index i, int w) {
    runs[static_cast<std::size_t>(i)].fetch_add(1);
    worker[static_cast<std::size_t>(i)].store(w);
  }
  int runs_of(Index i) const { return runs[static_cast<std::size_t>(i)].load(); }
  int worker_of(Index i) const { return worker[static_cast<std::size_t>(i)].load(); }
  std::vector<std::atomic<int>> runs, worker;
};

}  // namespace

TEST_CASE("thread pool: run calls every item once, worker w first with item w", "[parallel][threads]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    REQUIRE(pool.size() == threads);
    for (Index count : {0, 1, 2, 3, 7, 100}) {
      CAPTURE(threads, count);
      Record rec(count);
      auto f = [&](Index i, int w) { rec.ran(i, w); };
      pool.run(count, f);
      for (Index i = 0; i < count; ++i) {
        CHECK(rec.runs_of(i) == 1);
        CHECK(rec.worker_of(i) >= 0);
        CHECK(rec.worker_of(i) < threads);
      }
      if (count >= threads)  // the documented first items: every worker takes part
        for (int w = 0; w < threads; ++w) CHECK(rec.worker_of(w) == w);
    }
  }
}

TEST_CASE("thread pool: run and run_fed take lambda temporaries and const callables", "[parallel][threads]") {
  ThreadPool pool(2);
  std::atomic<int> sum{0};
  pool.run(10, [&](Index i, int) { sum += static_cast<int>(i); });  // a temporary
  CHECK(sum == 45);
  const auto add = [&](Index i, int) { sum += static_cast<int>(i); };  // a const lvalue
  pool.run(10, add);
  CHECK(sum == 90);
  std::vector<int> made(5, 0);
  pool.run_fed(5, [&](Index i) { made[static_cast<std::size_t>(i)] = 1; },
               [&](Index i, int) { sum += made[static_cast<std::size_t>(i)]; });
  CHECK(sum == 95);
}

TEST_CASE("thread pool: while one worker is held up, the others take the remaining items", "[parallel][threads]") {
  ThreadPool pool(2);
  for (bool fed : {false, true}) {
    CAPTURE(fed);
    const Index count = 10;
    Record rec(count);
    const Index slow = fed ? count - 1 : 0;  // the caller's first item
    auto f = [&](Index i, int w) {
      rec.ran(i, w);
      if (i == slow) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    };
    auto produce = [](Index) {};
    if (fed) pool.run_fed(count, produce, f);
    else pool.run(count, f);
    CHECK(rec.worker_of(slow) == 0);
    for (Index i = 0; i < count; ++i)
      if (i != slow) CHECK(rec.worker_of(i) == 1);
  }
}

TEST_CASE("thread pool: run_fed produces in order on the caller, and each item sees its product",
          "[parallel][threads]") {
  const auto caller = std::this_thread::get_id();
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int repeat = 0; repeat < 20; ++repeat) {
      for (Index count : {1, 2, 3, 4, 9, 64}) {
        CAPTURE(threads, count, repeat);
        std::vector<Index> product(static_cast<std::size_t>(count), -1);  // plain data, written by produce
        std::vector<Index> seen(static_cast<std::size_t>(count), -2);
        Index next = 0;
        bool in_order = true, on_caller = true;
        auto produce = [&](Index i) {
          in_order = in_order && i == next++;
          on_caller = on_caller && std::this_thread::get_id() == caller;
          product[static_cast<std::size_t>(i)] = 1000 + i;
        };
        Record rec(count);
        auto f = [&](Index i, int w) {
          seen[static_cast<std::size_t>(i)] = product[static_cast<std::size_t>(i)];
          rec.ran(i, w);
        };
        pool.run_fed(count, produce, f);
        CHECK(next == count);
        CHECK(in_order);
        CHECK(on_caller);
        for (Index i = 0; i < count; ++i) {
          CHECK(rec.runs_of(i) == 1);
          CHECK(seen[static_cast<std::size_t>(i)] == 1000 + i);
        }
        // The documented first items: worker w >= 1 starts with item w - 1, the caller with
        // the last item (so every worker takes part once count >= size()).
        if (threads > 1 && count >= threads) {
          for (int w = 1; w < threads; ++w) CHECK(rec.worker_of(w - 1) == w);
          CHECK(rec.worker_of(count - 1) == 0);
        }
      }
    }
  }
}

TEST_CASE("thread pool: an item that throws comes out after the other items ran, the pool stays usable",
          "[parallel][threads]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (bool fed : {false, true}) {
      CAPTURE(threads, fed);
      const Index count = 10;
      Record rec(count);
      auto f = [&](Index i, int w) {
        rec.ran(i, w);
        if (i == 3 || i == 6) throw std::runtime_error("item " + std::to_string(i));
      };
      auto produce = [](Index) {};
      try {
        if (fed) pool.run_fed(count, produce, f);
        else pool.run(count, f);
        FAIL("no exception");
      } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        CHECK((what == "item 3" || what == "item 6"));
      }
      for (Index i = 0; i < count; ++i) CHECK(rec.runs_of(i) == 1);
      Record again(count);
      auto g = [&](Index i, int w) { again.ran(i, w); };
      pool.run(count, g);
      for (Index i = 0; i < count; ++i) CHECK(again.runs_of(i) == 1);
    }
  }
}

TEST_CASE("thread pool: when produce throws at item i, the items before i run and none from i on",
          "[parallel][threads]") {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (Index fail_at : {0, 1, 2, 5, 9}) {
      CAPTURE(threads, fail_at);
      const Index count = 10;
      Index produced = 0;
      auto produce = [&](Index i) {
        if (i == fail_at) throw std::runtime_error("produce " + std::to_string(i));
        ++produced;
      };
      Record rec(count);
      auto f = [&](Index i, int w) { rec.ran(i, w); };
      try {
        pool.run_fed(count, produce, f);
        FAIL("no exception");
      } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "produce " + std::to_string(fail_at));
      }
      CHECK(produced == fail_at);
      for (Index i = 0; i < count; ++i) CHECK(rec.runs_of(i) == (i < fail_at ? 1 : 0));
    }
  }
}

TEST_CASE("thread pool: workers that went to sleep wake for the next job, and the pool joins them",
          "[parallel][threads]") {
  ThreadPool pool(3, /*spin_microseconds=*/0);  // workers sleep as soon as a job is done
  std::atomic<long> total{0};
  auto f = [&](Index i, int) { total.fetch_add(i); };
  for (int job = 0; job < 200; ++job) {
    pool.run(5, f);
    if (job % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // surely asleep
  }
  CHECK(total.load() == 200L * (0 + 1 + 2 + 3 + 4));
}
