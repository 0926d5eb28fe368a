// libFuzzer target: the IDX reader (io/idx.hpp) and the gzip layer in front of it
// (io/idx_gzip.hpp). Properties checked on every input:
//   - decoding either succeeds or throws metalearn::file_error (anything else escapes and is
//     reported by libFuzzer as a crash; sanitizer reports end the run too);
//   - a decoded array is consistent (its bytes are its element count times the element size)
//     and re-encodes to exactly the input bytes (the format is canonical);
//   - an input that starts like gzip is inflated with a 16 MiB limit and the result decoded
//     the same way, or refused with file_error.
#include <metalearn/io/idx_gzip.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

namespace io = metalearn::io;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_idx: property violated: %s\n", what);
  std::abort();
}

void check_decode(const unsigned char* data, std::size_t size) {
  io::IdxArray a;
  try {
    a = io::decode_idx(data, size, "fuzz");
  } catch (const metalearn::file_error&) {
    return;
  }
  std::size_t count = 1;
  for (std::uint32_t d : a.dims) count *= d;
  if (a.bytes.size() != count * io::idx_element_size(a.type)) violated("bytes do not match the sizes");
  if (a.size() != count) violated("size() does not match the sizes");
  for (std::size_t i = 0; i < a.size() && i < 64; ++i) (void)a.value(i);
  if (io::encode_idx(a) != std::vector<unsigned char>(data, data + size)) violated("re-encoding differs from the input");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_decode(data, size);
  if (io::is_gzip(data, size)) {
    std::vector<unsigned char> inflated;
    try {
      inflated = io::gunzip(data, size, "fuzz", std::size_t{1} << 24);
    } catch (const metalearn::file_error&) {
      return 0;
    }
    check_decode(inflated.data(), inflated.size());
  }
  return 0;
}
