// gzip-compressed IDX files (io/idx_gzip.hpp, zlib): round trips, every corruption case, and
// Debian's Fashion-MNIST files when the dataset-fashion-mnist package is installed.
#include <metalearn/io/idx_gzip.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <zlib.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace io = metalearn::io;

namespace {

// gzip(1)'s format, written with zlib's deflate (window bits 15 + 16: a gzip wrapper).
std::vector<unsigned char> gzip(const std::vector<unsigned char>& data, int level = 6) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<unsigned char> out(deflateBound(&z, static_cast<uLong>(data.size())) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// n 28 × 28 images like MNIST's: mostly black, a random bright stroke in each (compressible).
io::IdxArray sample(std::uint32_t n) {
  io::IdxArray a{io::IdxType::u8, {n, 28, 28}, std::vector<unsigned char>(std::size_t{n} * 784, 0)};
  metalearn::Rng rng(n);
  for (std::uint32_t i = 0; i < n; ++i)
    for (int p = 0; p < 60; ++p)
      a.bytes[i * 784 + 300 + rng.uniform_index(200)] = static_cast<unsigned char>(128 + rng.uniform_index(128));
  return a;
}

template <class F>
void expect_file_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const metalearn::file_error& e) {
    for (const auto& p : parts) CHECK_THAT(std::string(e.what()), mlt::contains(p));
    return;
  }
  FAIL("no file_error was thrown");
}

}  // namespace

TEST_CASE("IDX gzip: .gz and plain files read alike, detected by magic, not by name", "[io][idx][gzip]") {
  mlt::TempDir dir;
  const io::IdxArray a = sample(7);
  const std::vector<unsigned char> plain = io::encode_idx(a), packed = gzip(plain);
  REQUIRE(packed.size() < plain.size());
  io::write_file_atomically(dir.file("images.gz"), packed.data(), packed.size());
  io::write_file_atomically(dir.file("images"), plain.data(), plain.size());
  io::write_file_atomically(dir.file("compressed-without-suffix"), packed.data(), packed.size());
  for (const char* name : {"images.gz", "images", "compressed-without-suffix"}) {
    CAPTURE(name);
    const io::IdxArray b = io::read_idx_gz(dir.file(name));
    CHECK(b.dims == a.dims);
    CHECK(b.bytes == a.bytes);
  }
  // two gzip members one after the other (as `cat a.gz b.gz` makes) are one stream
  const std::vector<unsigned char> half1(plain.begin(), plain.begin() + 1000), half2(plain.begin() + 1000, plain.end());
  std::vector<unsigned char> two = gzip(half1, 1);
  const std::vector<unsigned char> second = gzip(half2, 9);
  two.insert(two.end(), second.begin(), second.end());
  CHECK(io::gunzip(two.data(), two.size()) == plain);
}

TEST_CASE("IDX gzip: corrupt, truncated and padded streams are refused naming the file", "[io][idx][gzip][bad-input]") {
  const std::vector<unsigned char> plain = io::encode_idx(sample(3)), packed = gzip(plain);
  // every truncation of the compressed stream
  for (std::size_t n = 2; n < packed.size(); n += 7) {
    CAPTURE(n);
    CHECK_THROWS_AS(io::gunzip(packed.data(), n, "cut.gz"), metalearn::file_error);
  }
  expect_file_error([&] { io::gunzip(packed.data(), packed.size() - 3, "cut.gz"); }, {"cut.gz", "truncated"});
  // a flipped byte in the deflate data or the CRC-32 trailer
  for (std::size_t at : {std::size_t{20}, packed.size() / 2, packed.size() - 6}) {
    CAPTURE(at);
    std::vector<unsigned char> bad = packed;
    bad[at] ^= 0x5a;
    CHECK_THROWS_AS(io::gunzip(bad.data(), bad.size(), "flipped.gz"), metalearn::file_error);
  }
  std::vector<unsigned char> crc = packed;
  crc[crc.size() - 8] ^= 1;  // the stored CRC-32
  expect_file_error([&] { io::gunzip(crc.data(), crc.size(), "crc.gz"); }, {"crc.gz", "corrupt gzip stream"});
  std::vector<unsigned char> padded = packed;
  padded.insert(padded.end(), {'j', 'u', 'n', 'k'});
  expect_file_error([&] { io::gunzip(padded.data(), padded.size(), "padded.gz"); },
                    {"padded.gz", "4 bytes after the end of the gzip stream", "not another gzip member"});
  expect_file_error([&] { io::gunzip(plain.data(), plain.size(), "plain"); }, {"plain", "not gzip-compressed"});
  // the limit: decompressing beyond it stops there
  expect_file_error([&] { io::gunzip(packed.data(), packed.size(), "big.gz", 1000); },
                    {"big.gz", "more than 1000 bytes"});
  // a good gzip stream of a bad IDX file: the IDX error, naming the file
  mlt::TempDir dir;
  std::vector<unsigned char> idx = plain;
  idx.pop_back();
  const std::vector<unsigned char> packed_bad = gzip(idx);
  io::write_file_atomically(dir.file("short.gz"), packed_bad.data(), packed_bad.size());
  expect_file_error([&] { io::read_idx_gz(dir.file("short.gz")); }, {"short.gz", "truncated", "has 2351"});
}

TEST_CASE("IDX gzip: Debian's Fashion-MNIST files (package dataset-fashion-mnist)", "[io][idx][gzip][data]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (std::FILE* f = std::fopen((dir + "t10k-labels-idx1-ubyte.gz").c_str(), "rb")) {
    std::fclose(f);
  } else {
    WARN("skipped: " << dir << " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
  const io::IdxArray images = io::read_idx_gz(dir + "t10k-images-idx3-ubyte.gz");
  const io::IdxArray labels = io::read_idx_gz(dir + "t10k-labels-idx1-ubyte.gz");
  CHECK(images.type == io::IdxType::u8);
  CHECK(images.dims == std::vector<std::uint32_t>{10000, 28, 28});
  CHECK(labels.dims == std::vector<std::uint32_t>{10000});
  std::array<int, 10> counts{};
  for (std::size_t i = 0; i < labels.items(); ++i) ++counts[static_cast<std::size_t>(labels.value(i))];
  for (int c : counts) CHECK(c == 1000);  // the test set is balanced: 1000 images per class
}
