// The IDX reader (io/idx.hpp) on files the tests write themselves: MNIST's layout (u8 images,
// u8 labels), every element type, and every bad-file case of the format.
#include <metalearn/io/idx.hpp>

#include <catch.hpp>
#include <temp_dir.hpp>
#include <test_support.hpp>

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace io = metalearn::io;
using io::IdxArray;
using io::IdxType;

namespace {

// An MNIST-style pair: n images of rows × cols bytes (pixel (i, r, c) = (7i + 3r + c) mod 256)
// and n labels (i mod 10).
IdxArray images(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  IdxArray a{IdxType::u8, {n, rows, cols}, {}};
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t r = 0; r < rows; ++r)
      for (std::uint32_t c = 0; c < cols; ++c) a.bytes.push_back(static_cast<unsigned char>((7 * i + 3 * r + c) % 256));
  return a;
}
IdxArray labels(std::uint32_t n) {
  IdxArray a{IdxType::u8, {n}, {}};
  for (std::uint32_t i = 0; i < n; ++i) a.bytes.push_back(static_cast<unsigned char>(i % 10));
  return a;
}

// Runs f, which must throw file_error with a message containing every one of `parts`.
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

std::vector<unsigned char> header(unsigned char type, std::vector<std::uint32_t> dims) {
  std::vector<unsigned char> b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

}  // namespace

TEST_CASE("IDX: an MNIST-style image and label file written by the test reads back exactly", "[io][idx]") {
  mlt::TempDir dir;
  const IdxArray im = images(5, 28, 28), lb = labels(5);
  io::write_idx(dir.file("train-images-idx3-ubyte"), im);
  io::write_idx(dir.file("train-labels-idx1-ubyte"), lb);
  const IdxArray a = io::read_idx(dir.file("train-images-idx3-ubyte"));
  const IdxArray b = io::read_idx(dir.file("train-labels-idx1-ubyte"));
  CHECK(a.type == IdxType::u8);
  CHECK(a.dims == std::vector<std::uint32_t>{5, 28, 28});
  CHECK(a.items() == 5);
  CHECK(a.item_size() == 784);
  CHECK(a.bytes == im.bytes);
  CHECK(a.value(784 * 2 + 28 * 3 + 4) == (7 * 2 + 3 * 3 + 4) % 256);
  CHECK(b.dims == std::vector<std::uint32_t>{5});
  CHECK(b.item_size() == 1);
  CHECK(b.value(3) == 3);
  // the file is byte for byte the documented layout: magic 00 00 08 03, then 5, 28, 28 big-endian
  const auto bytes = io::read_file(dir.file("train-images-idx3-ubyte"));
  REQUIRE(bytes.size() == 16 + 5 * 784);
  CHECK(std::vector<unsigned char>(bytes.begin(), bytes.begin() + 16) ==
        std::vector<unsigned char>{0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28});
}

TEST_CASE("IDX: every element type decodes its big-endian values exactly", "[io][idx]") {
  {
    const auto b = header(0x09, {3});
    std::vector<unsigned char> f = b;
    f.insert(f.end(), {0x80, 0x7f, 0xff});
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.value(0) == -128);
    CHECK(a.value(1) == 127);
    CHECK(a.value(2) == -1);
  }
  {
    std::vector<unsigned char> f = header(0x0B, {2});
    f.insert(f.end(), {0x80, 0x00, 0x12, 0x34});
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.value(0) == -32768);
    CHECK(a.value(1) == 0x1234);
  }
  {
    std::vector<unsigned char> f = header(0x0C, {2});
    f.insert(f.end(), {0xff, 0xff, 0xff, 0xfe, 0x7f, 0xff, 0xff, 0xff});
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.value(0) == -2);
    CHECK(a.value(1) == 2147483647.0);
  }
  {
    std::vector<unsigned char> f = header(0x0D, {2});
    f.insert(f.end(), {0x3f, 0xc0, 0x00, 0x00, 0xc1, 0x20, 0x00, 0x00});  // 1.5f, -10.0f
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.value(0) == 1.5);
    CHECK(a.value(1) == -10.0);
  }
  {
    std::vector<unsigned char> f = header(0x0E, {1, 1});  // 2 dimensions, one element
    f.insert(f.end(), {0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18});  // π
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.value(0) == 3.141592653589793);
    CHECK(a.dims.size() == 2);
  }
  {  // any number of dimensions: 2 × 1 × 3 × 1 u8
    std::vector<unsigned char> f = header(0x08, {2, 1, 3, 1});
    f.insert(f.end(), {1, 2, 3, 4, 5, 6});
    const IdxArray a = io::decode_idx(f.data(), f.size());
    CHECK(a.items() == 2);
    CHECK(a.item_size() == 3);
    CHECK(a.value(5) == 6);
  }
}

TEST_CASE("IDX: bad files are refused with the file, the field and the problem named", "[io][idx][bad-input]") {
  mlt::TempDir dir;
  const std::string path = dir.file("bad.idx");
  const auto write = [&](const std::vector<unsigned char>& b) { io::write_file_atomically(path, b.data(), b.size()); };
  const auto read = [&] { io::read_idx(path); };

  write({0x00, 0x01, 0x08, 0x01, 0, 0, 0, 0});
  expect_file_error(read, {path, "not an IDX file", "bytes 0-1 are 0 1"});
  write({0x00, 0x00, 0x0A, 0x01, 0, 0, 0, 0});
  expect_file_error(read, {path, "unknown IDX element type 0x0A", "offset 2"});
  write({0x00, 0x00, 0x08, 0x00});
  expect_file_error(read, {path, "0 dimensions"});
  write({0x00, 0x00, 0x08});
  expect_file_error(read, {path, "truncated", "3 bytes"});
  write({0x00, 0x00, 0x08, 0x03, 0, 0, 0, 5, 0, 0});
  expect_file_error(read, {path, "truncated inside the header", "3 dimensions need 16 bytes", "has 10"});
  write({0x1f, 0x8b, 0x08, 0x00});
  expect_file_error(read, {path, "gzip-compressed", "read_idx_gz"});
  write({});
  expect_file_error(read, {path, "truncated", "0 bytes"});
  expect_file_error([&] { io::read_idx(dir.file("missing-idx3-ubyte")); }, {"missing-idx3-ubyte", "cannot open"});

  // every truncation of a good file, and one trailing byte
  const std::vector<unsigned char> good = io::encode_idx(images(3, 4, 5));
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK_THROWS_AS(io::decode_idx(good.data(), n, path), metalearn::file_error);
  }
  std::vector<unsigned char> longer = good;
  longer.push_back(0);
  expect_file_error([&] { io::decode_idx(longer.data(), longer.size(), path); },
                    {path, "trailing bytes", "the sizes 3 x 4 x 5", "call for 60 bytes", "has 61"});
  std::vector<unsigned char> shorter(good.begin(), good.end() - 1);
  expect_file_error([&] { io::decode_idx(shorter.data(), shorter.size(), path); },
                    {path, "truncated", "call for 60 bytes", "has 59"});
}

TEST_CASE("IDX: sizes that call for more than the file holds are refused before anything is allocated",
          "[io][idx][bad-input]") {
  // 0xffffffff × 0xffffffff × 0xffffffff f64 elements: the product overflows 64 bits; the
  // reader bounds it by the 8 bytes present and names the dimension where it ran out
  std::vector<unsigned char> f = header(0x0E, {0xffffffffU, 0xffffffffU, 0xffffffffU});
  f.insert(f.end(), 8, 0);
  expect_file_error([&] { io::decode_idx(f.data(), f.size(), "huge.idx"); },
                    {"huge.idx", "truncated", "the sizes 4294967295 x 4294967295 x 4294967295 (offsets 4 to 15)",
                     "call for about 6.3", "the file has 8"});
  // a zero size makes an empty array: legal, and it holds no bytes
  std::vector<unsigned char> e = header(0x08, {0, 28, 28});
  const IdxArray a = io::decode_idx(e.data(), e.size());
  CHECK(a.items() == 0);
  CHECK(a.bytes.empty());
}

TEST_CASE("IDX: encode_idx refuses inconsistent arrays", "[io][idx][bad-input]") {
  IdxArray a{IdxType::i16, {2, 2}, std::vector<unsigned char>(7)};
  CHECK_THROWS_AS(io::encode_idx(a), metalearn::invalid_argument);
  a.bytes.resize(8);
  CHECK(io::encode_idx(a).size() == 4 + 8 + 8);
  a.dims.clear();
  CHECK_THROWS_AS(io::encode_idx(a), metalearn::invalid_argument);
}
