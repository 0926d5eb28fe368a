// The Fashion-MNIST example's code path: flags, finding and loading the files (plain or gz,
// missing, corrupt), short runs that must learn, the report and the figure. The runs on the
// real data need Debian's dataset-fashion-mnist and are skipped, with a message, without it.
#include <fashion_mnist.hpp>

#include <catch.hpp>
#include <json.hpp>
#include <temp_dir.hpp>

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <sys/wait.h>

namespace io = metalearn::io;

namespace {

const char* const kDebian = "/usr/share/datasets/fashion-mnist";

bool debian_data_present() {
  std::FILE* f = std::fopen((std::string(kDebian) + "/train-images-idx3-ubyte.gz").c_str(), "rb");
  if (f) std::fclose(f);
  return f != nullptr;
}

// A tiny MNIST-style data set in `dir`: n images of 28 × 28 in two classes (a bright left or
// right half), labels 0 and 1; the training images gzipped, the test images plain.
void write_tiny(const mlt::TempDir& dir, std::uint32_t n) {
  const auto images = [&](std::uint32_t count) {
    io::IdxArray a{io::IdxType::u8, {count, 28, 28}, {}};
    for (std::uint32_t i = 0; i < count; ++i)
      for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) a.bytes.push_back(static_cast<unsigned char>((c < 14) == (i % 2 == 0) ? 200 : 10));
    return a;
  };
  const auto labels = [&](std::uint32_t count) {
    io::IdxArray a{io::IdxType::u8, {count}, {}};
    for (std::uint32_t i = 0; i < count; ++i) a.bytes.push_back(static_cast<unsigned char>(i % 2));
    return a;
  };
  const auto gz = [&](const std::string& path, const io::IdxArray& a) {
    const auto plain = io::encode_idx(a);
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, plain.data(), static_cast<unsigned>(plain.size())) == static_cast<int>(plain.size()));
    REQUIRE(gzclose(f) == Z_OK);
  };
  gz(dir.file("train-images-idx3-ubyte.gz"), images(n));
  gz(dir.file("train-labels-idx1-ubyte.gz"), labels(n));
  io::write_idx(dir.file("t10k-images-idx3-ubyte"), images(n / 2));
  io::write_idx(dir.file("t10k-labels-idx1-ubyte"), labels(n / 2));
}

int exit_status(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("fashion example: flags", "[example][fashion]") {
  fashion::Config c;
  CHECK(fashion::parse({"--runs", "mlp,seed", "--mlp-hidden", "64,32", "--mlp-schedule", "constant"}, c));
  CHECK(c.runs == std::vector<std::string>{"mlp", "seed"});
  CHECK(c.mlp_hidden == std::vector<metalearn::Index>{64, 32});
  CHECK(c.mlp_schedule == "constant");
  CHECK_FALSE(fashion::parse({"--help"}, c));
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--runs", "cnn"}, {"--mlp-lr", "-1"}, {"--mlp-epochs", "0"}, {"--data"}, {"--bogus", "1"},
        {"--mlp-schedule", "step"}}) {
    fashion::Config e;
    CHECK_THROWS_AS(fashion::parse(bad, e), fashion::UsageError);
  }
}

TEST_CASE("fashion example: files found plain or gzipped, missing and corrupt files named", "[example][fashion]") {
  mlt::TempDir dir;
  write_tiny(dir, 200);
  fashion::Config c;
  c.data = dir.path().string();
  const fashion::Data d = fashion::load(c);
  CHECK(d.train.size() == 200);
  CHECK(d.test.size() == 100);
  CHECK(d.train_images == dir.file("train-images-idx3-ubyte.gz"));
  CHECK(d.test_images == dir.file("t10k-images-idx3-ubyte"));
  CHECK(d.train.features(0, 0) == Catch::Approx(200.0 / 255));

  // missing: the message names the file, the Debian package and the flag
  mlt::TempDir empty;
  c.data = empty.path().string();
  try {
    fashion::load(c);
    FAIL("no DataMissing");
  } catch (const fashion::DataMissing& e) {
    CHECK_THAT(std::string(e.what()), mlt::contains("no train-images-idx3-ubyte[.gz]"));
    CHECK_THAT(std::string(e.what()), mlt::contains("apt-get install dataset-fashion-mnist"));
    CHECK_THAT(std::string(e.what()), mlt::contains("--data DIR"));
  }
  // truncated: the reader's message, naming the file
  const auto bytes = io::read_file(dir.file("t10k-images-idx3-ubyte"));
  io::write_file_atomically(dir.file("t10k-images-idx3-ubyte"), bytes.data(), bytes.size() - 100);
  c.data = dir.path().string();
  CHECK_THROWS_WITH(fashion::load(c), mlt::contains("t10k-images-idx3-ubyte': truncated"));
  // corrupt gzip: named too
  auto gz = io::read_file(dir.file("train-labels-idx1-ubyte.gz"));
  gz[gz.size() / 2] ^= 0xff;
  io::write_file_atomically(dir.file("train-labels-idx1-ubyte.gz"), gz.data(), gz.size());
  CHECK_THROWS_AS(fashion::load(c), metalearn::file_error);
}

TEST_CASE("fashion example: short runs on a tiny data set learn, and the report and figure are written",
          "[example][fashion]") {
  mlt::TempDir dir;
  write_tiny(dir, 400);
  fashion::Config c;
  c.data = dir.path().string();
  c.seed_steps = 30;
  c.softmax_epochs = 2;
  c.mlp_epochs = 2;
  c.mlp_hidden = {16};
  c.mlp_batch = 50;
  const fashion::Data d = fashion::load(c);
  const auto runs = fashion::run_all(c, d);
  REQUIRE(runs.size() == 3);
  for (const auto& r : runs) {
    INFO(r.name << ": " << r.accuracy);
    CHECK(r.accuracy > 0.95);  // two halves of the picture: trivially separable
    CHECK(r.test_accuracy.size() == r.epoch.size());
    CHECK(r.confusion.sum() == 200);
    CHECK(r.train_seconds > 0);
  }
  CHECK(runs[0].steps == 30);
  CHECK(runs[2].steps == 2 * 8);  // 400 / 50 batches per epoch
  const auto json = mlt::json::parse(fashion::to_json(c, d, runs));
  REQUIRE(json["runs"].a.size() == 3);
  CHECK(json["runs"][2]["confusion"].a.size() == 10);
  CHECK(json["runs"][2]["test_accuracy"].a.size() == 3);  // before training and after each epoch
  CHECK(json["config"]["mlp_batch"].n == 50);
  const std::string svg = fashion::to_svg(runs);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK_THAT(svg, mlt::contains("test accuracy"));
}

TEST_CASE("fashion example: the seed's program and an MLP on Fashion-MNIST (short runs)", "[example][fashion][data]") {
  if (!debian_data_present()) {
    WARN("skipped: " << kDebian << " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  fashion::Config c;
  c.runs = {"seed", "mlp"};
  c.seed_steps = 300;
  c.mlp_epochs = 1;
  c.mlp_hidden = {64};
  c.train_limit = 10000;
  c.test_limit = 2000;
  const auto runs = fashion::run_all(c, fashion::load(c));
  INFO("seed program " << runs[0].accuracy << ", MLP " << runs[1].accuracy);
  CHECK(runs[0].accuracy > 0.6);  // chance is 0.1
  CHECK(runs[1].accuracy > 0.7);
}

#ifdef METALEARN_FASHION_BINARY
TEST_CASE("fashion example: exit status 2 with a message for missing data and bad flags", "[example][fashion]") {
  const std::string bin = METALEARN_FASHION_BINARY;
  CHECK(exit_status(bin + " --data /nonexistent-metalearn-dir --quiet 2>/dev/null") == 2);
  CHECK(exit_status(bin + " --runs cnn 2>/dev/null") == 2);
  CHECK(exit_status(bin + " --help >/dev/null") == 0);
  mlt::TempDir dir;
  write_tiny(dir, 100);
  std::ofstream(dir.file("t10k-labels-idx1-ubyte"), std::ios::binary | std::ios::trunc) << "garbage";
  CHECK(exit_status(bin + " --data " + dir.path().string() + " --quiet >/dev/null 2>&1") == 1);
}
#endif
