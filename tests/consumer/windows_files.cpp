// The Windows file layer of io/atomic_file.hpp, exercised on Windows (tests/consumer/run,
// check mingw: built with mingw-w64 and run under wine when it is installed): a checkpoint
// and a weights file are written, replaced and read back bit for bit, with no temporary file
// left behind; reading a missing file, a directory, and writing into a missing directory
// throw checkpoint_error naming the path. Exits non-zero on the first failure.
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/metalearn.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const char* what) {
  std::printf("  %s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

template <class F>
void expect_error(const char* what, const std::string& mention, F&& f) {
  try {
    f();
  } catch (const metalearn::checkpoint_error& e) {
    const bool named = std::string(e.what()).find(mention) != std::string::npos;
    std::printf("  %s: %s: %s\n", named ? "ok" : "FAILED (message)", what, e.what());
    if (!named) ++failures;
    return;
  }
  std::printf("  FAILED: %s: nothing was thrown\n", what);
  ++failures;
}

struct Counters {
  metalearn::Index it = 0, sk = 0;
  metalearn::Index iteration() const { return it; }
  metalearn::Index skipped() const { return sk; }
  void restore(metalearn::Index i, metalearn::Index s) { it = i, sk = s; }
};

}  // namespace

int main() {
  namespace io = metalearn::io;
  using metalearn::Vector;
  std::printf("Windows file layer:\n");
  const std::string dir = "metalearn-windows-test";
  std::remove((dir + "/run.ckpt").c_str());
  std::remove((dir + "/w.bin").c_str());
  std::system(("mkdir " + dir + " 2> NUL").c_str());

  Vector<double> theta(4), grad(4);
  theta << 1, -2, 3.5, 1e-300;
  grad << 0.25, -1, 2, 3;
  metalearn::optim::Adam<double> adam(4);
  adam.step(theta, grad);
  Counters trainer{12, 2};
  metalearn::Rng rng(99);
  const std::string path = dir + "/run.ckpt";
  io::save_checkpoint(path, "windows model", theta, adam, trainer, rng, "first");
  const Vector<double> first = theta;
  theta *= 2;
  trainer.it = 13;
  io::save_checkpoint(path, "windows model", theta, adam, trainer, rng, "second");  // replaces

  Vector<double> loaded = Vector<double>::Zero(4);
  metalearn::optim::Adam<double> adam2(4);
  Counters trainer2;
  metalearn::Rng rng2(1);
  const std::string metadata = io::load_checkpoint(path, "windows model", loaded, adam2, trainer2, rng2);
  expect(loaded == theta && metadata == "second" && trainer2.it == 13 && trainer2.sk == 2 && rng2 == rng,
         "a replaced checkpoint reads back bit for bit");
  expect(adam2.first_moment() == adam.first_moment() && adam2.second_moment() == adam.second_moment(),
         "Adam's moments read back bit for bit");

  io::save_weights(dir + "/w.bin", "windows model", first);
  Vector<double> w = Vector<double>::Zero(4);
  io::load_weights(dir + "/w.bin", "windows model", w);
  expect(w == first, "weights read back bit for bit");

  int leftovers = 0;  // no temporary file is left beside the targets
  for (std::uint64_t n = 0; n < 8; ++n) {
    const std::string tmp = io::detail::temporary_path(dir, "run.ckpt", ::GetCurrentProcessId(), n);
    if (std::FILE* f = std::fopen(tmp.c_str(), "rb")) {
      std::fclose(f);
      ++leftovers;
    }
  }
  expect(leftovers == 0, "no temporary file left");

  expect_error("reading a missing file", "missing.ckpt", [&] { io::read_checkpoint<double>(dir + "/missing.ckpt"); });
  expect_error("reading a directory", dir, [&] { io::read_checkpoint<double>(dir); });
  expect_error("writing into a missing directory", "no-such-dir",
               [&] { io::save_weights(dir + "/no-such-dir/w.bin", "windows model", first); });
  std::printf("Windows file layer: %s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
