#pragma once
/// @file
/// @brief The IDX file format of MNIST and Fashion-MNIST: reading (plain files; gzip through
/// io/idx_gzip.hpp), checking and writing arrays of any element type and dimension count.
///
/// **Format** (LeCun et al., http://yann.lecun.com/exdb/mnist/): all integers big-endian.
///
/// | offset  | size | field                                                        |
/// |---------|------|--------------------------------------------------------------|
/// | 0       | 2    | 0x00 0x00                                                    |
/// | 2       | 1    | element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 |
/// | 3       | 1    | number of dimensions d (≥ 1)                                 |
/// | 4       | 4·d  | the sizes, u32 each (dimension 0 first: the number of items) |
/// | 4 + 4·d | …    | the elements in row-major order (the last dimension fastest) |
///
/// MNIST's images are u8, d = 3 (n × 28 × 28); its labels u8, d = 1 (n).
///
/// **Checks.** `decode_idx` throws `metalearn::file_error`
/// naming the source, the field and its offset: a file shorter than its header, the two zero
/// bytes (a gzip file is named as such), an unknown type code, zero dimensions, and a size
/// product that does not match the bytes that follow (truncated, or trailing bytes). The
/// element count is checked against the bytes present before anything is allocated.

#include <metalearn/core/error.hpp>
#include <metalearn/io/atomic_file.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace metalearn::io {

/// Element types of the IDX format (the third byte of a file).
enum class IdxType : std::uint8_t {
  u8 = 0x08,   ///< unsigned byte
  i8 = 0x09,   ///< signed byte
  i16 = 0x0B,  ///< 16-bit signed integer
  i32 = 0x0C,  ///< 32-bit signed integer
  f32 = 0x0D,  ///< IEEE-754 binary32
  f64 = 0x0E   ///< IEEE-754 binary64
};

/// Bytes per element of `type`.
inline std::size_t idx_element_size(IdxType type) {
  switch (type) {
    case IdxType::u8:
    case IdxType::i8: return 1;
    case IdxType::i16: return 2;
    case IdxType::i32:
    case IdxType::f32: return 4;
    case IdxType::f64: return 8;
  }
  return 0;
}

/// "u8", "i16", …: a type's name for messages.
inline const char* idx_type_name(IdxType type) {
  switch (type) {
    case IdxType::u8: return "u8";
    case IdxType::i8: return "i8";
    case IdxType::i16: return "i16";
    case IdxType::i32: return "i32";
    case IdxType::f32: return "f32";
    case IdxType::f64: return "f64";
  }
  return "unknown";
}

/// An IDX array: its element type, its dimensions and its elements (big-endian, as stored).
struct IdxArray {
  IdxType type = IdxType::u8;        ///< element type
  std::vector<std::uint32_t> dims;   ///< sizes, dimension 0 first (the number of items)
  std::vector<unsigned char> bytes;  ///< the elements as stored: row-major, big-endian

  /// Number of elements (the product of the sizes).
  std::size_t size() const { return bytes.size() / idx_element_size(type); }
  /// Number of items (dimension 0).
  std::size_t items() const { return dims.empty() ? 0 : dims[0]; }
  /// Elements per item (the product of the sizes after the first; 1 for a 1-D array).
  std::size_t item_size() const {
    std::size_t n = 1;
    for (std::size_t d = 1; d < dims.size(); ++d) n *= dims[d];
    return n;
  }
  /// Element i (row-major) as a double; exact for every type but f64's, which it is.
  double value(std::size_t i) const {
    const unsigned char* p = bytes.data() + i * idx_element_size(type);
    switch (type) {
      case IdxType::u8: return p[0];
      case IdxType::i8: return static_cast<signed char>(p[0]);
      case IdxType::i16: return static_cast<std::int16_t>(static_cast<std::uint16_t>((p[0] << 8) | p[1]));
      case IdxType::i32: return static_cast<std::int32_t>(big_endian32(p));
      case IdxType::f32: {
        const std::uint32_t b = big_endian32(p);
        float f;
        std::memcpy(&f, &b, 4);
        return f;
      }
      case IdxType::f64: {
        const std::uint64_t b = (std::uint64_t{big_endian32(p)} << 32) | big_endian32(p + 4);
        double d;
        std::memcpy(&d, &b, 8);
        return d;
      }
    }
    return 0;
  }

  /// The big-endian u32 at p.
  static std::uint32_t big_endian32(const unsigned char* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
  }
};

/// True when the bytes start like a gzip stream (1f 8b).
inline bool is_gzip(const unsigned char* data, std::size_t size) {
  return size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

/// Decodes an IDX array from memory (see the file comment for the checks). `source` names the
/// data in messages (a file name). Throws `file_error`.
inline IdxArray decode_idx(const unsigned char* data, std::size_t size, const std::string& source = "<memory>",
                           const char* where = "io::decode_idx") {
  using metalearn::detail::fail_file;
  if (is_gzip(data, size))
    fail_file(where, "'", source, "' is gzip-compressed; read it with io::read_idx_gz "
                    "(<metalearn/io/idx_gzip.hpp>, links zlib) or gunzip it first");
  if (size < 4) fail_file(where, "'", source, "': truncated: ", size, " bytes, shorter than the 4-byte IDX magic");
  if (data[0] != 0 || data[1] != 0)
    fail_file(where, "'", source, "': not an IDX file (bytes 0-1 are ", int{data[0]}, " ", int{data[1]},
                    ", expected 0 0)");
  const std::uint8_t code = data[2];
  IdxArray a;
  a.type = static_cast<IdxType>(code);
  if (idx_element_size(a.type) == 0) {
    const char hex[] = "0123456789ABCDEF";
    const char text[3] = {hex[code >> 4], hex[code & 15], 0};
    fail_file(where, "'", source, "': unknown IDX element type 0x", text,
                    " at offset 2 (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)");
  }
  const std::size_t d = data[3];
  if (d == 0) fail_file(where, "'", source, "': the IDX header declares 0 dimensions (offset 3)");
  const std::size_t header = 4 + 4 * d;
  if (size < header)
    fail_file(where, "'", source, "': truncated inside the header: ", d, " dimensions need ", header,
                    " bytes, the file has ", size);
  const std::size_t available = size - header;
  const std::size_t esize = idx_element_size(a.type);
  // The element count, formed only while its byte count fits a size_t (so it never
  // overflows); `claimed` is the count in floating point, for the message when it does not.
  std::vector<std::uint32_t> dims(d);
  std::size_t count = 1;
  bool fits = true, zero = false;
  double claimed = 1;
  std::string sizes;
  for (std::size_t k = 0; k < d; ++k) {
    dims[k] = IdxArray::big_endian32(data + 4 + 4 * k);
    sizes += (k ? " x " : "") + std::to_string(dims[k]);
    claimed *= dims[k];
    zero = zero || dims[k] == 0;
    if (fits && dims[k] != 0 && count > std::numeric_limits<std::size_t>::max() / esize / dims[k]) fits = false;
    if (fits) count *= dims[k];
  }
  if (zero) count = 0, fits = true;
  if (!fits || count * esize != available) {
    std::ostringstream needed;
    if (fits) needed << count * esize;
    else needed << "about " << claimed * static_cast<double>(esize);
    fail_file(where, "'", source, "': ", fits && count * esize < available ? "trailing bytes" : "truncated",
              ": the sizes ", sizes, " (offsets 4 to ", header - 1, ") call for ", needed.str(), " bytes of ",
              idx_type_name(a.type), " elements after the ", header, "-byte header, the file has ", available);
  }
  a.dims = std::move(dims);
  a.bytes.assign(data + header, data + size);
  return a;
}

/// Reads a plain (uncompressed) IDX file. Throws `file_error` naming the file.
inline IdxArray read_idx(const std::string& path) {
  constexpr const char* where = "io::read_idx";
  const std::vector<unsigned char> bytes = read_file(path, where);
  return decode_idx(bytes.data(), bytes.size(), path, where);
}

/// The bytes of an IDX file holding `a`. Throws `invalid_argument` if `a` is inconsistent.
inline std::vector<unsigned char> encode_idx(const IdxArray& a) {
  constexpr const char* where = "io::encode_idx";
  if (idx_element_size(a.type) == 0) metalearn::detail::fail(where, "unknown element type");
  if (a.dims.empty() || a.dims.size() > 255)
    metalearn::detail::fail(where, "an IDX array has 1 to 255 dimensions, got ", a.dims.size());
  std::size_t count = 1;
  for (std::uint32_t n : a.dims) count *= n;
  if (count * idx_element_size(a.type) != a.bytes.size())
    metalearn::detail::fail(where, "the sizes call for ", count * idx_element_size(a.type), " bytes, the array has ",
                            a.bytes.size());
  std::vector<unsigned char> out{0, 0, static_cast<unsigned char>(a.type), static_cast<unsigned char>(a.dims.size())};
  for (std::uint32_t n : a.dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(n >> shift));
  out.insert(out.end(), a.bytes.begin(), a.bytes.end());
  return out;
}

/// Writes `a` to `path` as a plain IDX file, atomically (see `write_file_atomically`).
inline void write_idx(const std::string& path, const IdxArray& a) {
  const std::vector<unsigned char> bytes = encode_idx(a);
  write_file_atomically(path, bytes.data(), bytes.size(), "io::write_idx");
}

}  // namespace metalearn::io
