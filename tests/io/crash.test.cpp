// Crash safety of checkpoint writes: a child process writes checkpoints in a loop and is
// killed with SIGKILL at a random instant, 200 times; after every kill the file on disk must
// load and be exactly one of the versions written, never older than the one seen before.
#include <metalearn/io/checkpoint.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace io = metalearn::io;
using metalearn::Vector;

namespace {

constexpr metalearn::Index kParameters = 8192;  // 64 KiB of θ: a write takes long enough to be hit

io::TrainingCheckpoint<double> version(std::int64_t v) {
  io::TrainingCheckpoint<double> c;
  c.model = "crash-test model";
  c.metadata = std::to_string(v);
  c.theta = Vector<double>::Constant(kParameters, static_cast<double>(v));
  c.optimizer.kind = io::OptimizerKind::sgd;
  c.optimizer.steps = v;
  c.optimizer.buffers = {Vector<double>::Constant(kParameters, static_cast<double>(-v))};
  c.iteration = v;
  c.skipped = 0;
  c.sampler = metalearn::sampler_state(metalearn::Rng(static_cast<std::uint64_t>(v)));
  return c;
}

// The version number held by a checkpoint, after checking that the file is entirely that version.
std::int64_t identify(const io::TrainingCheckpoint<double>& c) {
  const std::int64_t v = c.iteration;
  const auto expected = version(v);
  REQUIRE(c.model == expected.model);
  REQUIRE(c.metadata == expected.metadata);
  REQUIRE(c.theta == expected.theta);
  REQUIRE(c.optimizer.steps == v);
  REQUIRE(c.optimizer.buffers.size() == 1);
  REQUIRE(c.optimizer.buffers[0] == expected.optimizer.buffers[0]);
  REQUIRE(c.sampler.words == expected.sampler.words);
  return v;
}

}  // namespace

TEST_CASE("crash: SIGKILL at random instants while writing checkpoints never leaves a bad file", "[io][crash]") {
  mlt::TempDir dir;
  const std::string path = dir.file("model.ckpt");
  // How long one write takes here (fsync times vary a lot between file systems and under
  // sanitizers): kills are spread over about three writes, so that some land before the first
  // rename and some after one or more.
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) io::write_checkpoint(path, version(0));
  const auto write_us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count() / 5;
  const std::uint64_t window_us = static_cast<std::uint64_t>(std::max<long long>(300, 3 * write_us));
  metalearn::Rng rng(2024);
  constexpr int kills = 200;
  std::int64_t last = 0;
  int advanced = 0, stale_temporaries = 0;
  for (int k = 1; k <= kills; ++k) {
    const std::int64_t base = static_cast<std::int64_t>(k) * 1000000;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      for (std::int64_t v = base;; ++v) {  // until killed
        try {
          io::write_checkpoint(path, version(v));
        } catch (...) {
          ::_exit(3);
        }
      }
    }
    // Kill at a random instant in the first few writes: before the first rename, between
    // renames, inside write or fsync.
    std::this_thread::sleep_for(std::chrono::microseconds(rng.uniform_index(window_us)));
    REQUIRE(::kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));  // it was killed, it did not fail on its own
    REQUIRE(WTERMSIG(status) == SIGKILL);

    INFO("kill " << k);
    io::TrainingCheckpoint<double> c;
    REQUIRE_NOTHROW(c = io::read_checkpoint<double>(path));
    const std::int64_t v = identify(c);
    REQUIRE(v >= last);                          // never goes back
    REQUIRE((v == last || v >= base));           // the old version or one this child wrote
    if (v != last) ++advanced;
    last = v;
    for (const auto& name : dir.entries()) {     // a killed writer may leave its temporary file
      if (name == "model.ckpt") continue;
      REQUIRE(name.rfind(".model.ckpt.tmp.", 0) == 0);
      ++stale_temporaries;
      std::filesystem::remove(dir.path() / name);
    }
  }
  INFO("one write takes " << write_us << " us; " << advanced << " kills after at least one completed write, " << stale_temporaries
                << " kills inside a write (temporary file left)");
  CHECK(advanced > 0);            // the children did write new versions
  CHECK(stale_temporaries > 0);   // and kills did land in the middle of writes
  CHECK(io::read_checkpoint<double>(path).iteration == last);
}
