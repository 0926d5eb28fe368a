#pragma once
/// @file
/// @brief gzip-compressed IDX files (Debian's dataset-fashion-mnist ships them so) through
/// zlib. The only header of metalearn that needs zlib: link it (`-lz`; in CMake the target
/// `metalearn::zlib`, or ZLIB::ZLIB). Programs that read only plain IDX files include
/// io/idx.hpp alone and need no zlib.

#include <metalearn/core/error.hpp>
#include <metalearn/io/atomic_file.hpp>
#include <metalearn/io/idx.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

namespace metalearn::io {

/// Largest decompressed size `gunzip` produces by default (4 GiB): a guard against
/// decompression bombs; the IDX files of MNIST are 47 MB.
inline constexpr std::size_t gunzip_default_limit = std::size_t{1} << 32;

/// The decompressed bytes of a gzip stream (one or more members, as gzip(1) writes and
/// reads them). Throws `file_error` naming `source` when the stream is corrupt (zlib's
/// reason), truncated, followed by bytes that are not gzip, or larger than `limit`.
inline std::vector<unsigned char> gunzip(const unsigned char* data, std::size_t size,
                                         const std::string& source = "<memory>",
                                         std::size_t limit = gunzip_default_limit,
                                         const char* where = "io::gunzip") {
  using metalearn::detail::fail_file;
  if (!is_gzip(data, size)) fail_file(where, "'", source, "' is not gzip-compressed (no 1f 8b magic)");
  std::vector<unsigned char> out;
  // The last four bytes hold the size of the last member mod 2³²: a hint for the first
  // allocation only, bounded by deflate's largest ratio (1032:1) and the limit; the loop below
  // grows the buffer as the data arrives.
  const std::size_t hint = size >= 4 ? (std::size_t{data[size - 4]} | (std::size_t{data[size - 3]} << 8) |
                                        (std::size_t{data[size - 2]} << 16) | (std::size_t{data[size - 1]} << 24))
                                     : 0;
  out.resize(std::min({std::max<std::size_t>(hint, 1024), 1032 * size, limit}) + 1);
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) fail_file(where, "'", source, "': zlib could not start");
  struct End {
    z_stream& z;
    ~End() { inflateEnd(&z); }
  } end{z};
  std::size_t in_pos = 0, out_pos = 0;
  for (;;) {
    if (out_pos == out.size()) {
      if (out.size() > limit) fail_file(where, "'", source, "' decompresses to more than ", limit, " bytes");
      out.resize(std::min(out.size() * 2, limit + 1));
    }
    const std::size_t in_chunk = std::min<std::size_t>(size - in_pos, 1U << 30);
    const std::size_t out_chunk = std::min<std::size_t>(out.size() - out_pos, 1U << 30);
    z.next_in = const_cast<Bytef*>(data + in_pos);
    z.avail_in = static_cast<uInt>(in_chunk);
    z.next_out = out.data() + out_pos;
    z.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&z, Z_NO_FLUSH);
    in_pos += in_chunk - z.avail_in;
    out_pos += out_chunk - z.avail_out;
    if (out_pos > limit) fail_file(where, "'", source, "' decompresses to more than ", limit, " bytes");
    if (rc == Z_STREAM_END) {
      if (in_pos == size) break;
      if (!is_gzip(data + in_pos, size - in_pos))
        fail_file(where, "'", source, "': ", size - in_pos, " bytes after the end of the gzip stream (offset ",
                        in_pos, ") are not another gzip member");
      if (inflateReset(&z) != Z_OK) fail_file(where, "'", source, "': zlib could not restart");
      continue;
    }
    if (rc == Z_OK || rc == Z_BUF_ERROR) {
      if (in_pos == size && z.avail_out != 0)  // all input used, room left, and the stream goes on
        fail_file(where, "'", source, "': truncated: the gzip stream ends early (", size,
                        " compressed bytes, ", out_pos, " decompressed)");
      continue;  // the output was full: it grows above
    }
    fail_file(where, "'", source, "': corrupt gzip stream at compressed offset ", in_pos, ": ",
                    z.msg ? z.msg : "zlib error", " (zlib code ", rc, ")");
  }
  out.resize(out_pos);
  return out;
}

/// Reads an IDX file that is gzip-compressed (".gz", detected by its magic, not its name) or
/// plain. Throws `file_error` naming the file: its gzip errors (`gunzip`) or its IDX
/// errors (`decode_idx`).
inline IdxArray read_idx_gz(const std::string& path, std::size_t limit = gunzip_default_limit) {
  constexpr const char* where = "io::read_idx_gz";
  const std::vector<unsigned char> file = read_file(path, where);
  if (!is_gzip(file.data(), file.size())) return decode_idx(file.data(), file.size(), path, where);
  const std::vector<unsigned char> bytes = gunzip(file.data(), file.size(), path, limit, where);
  return decode_idx(bytes.data(), bytes.size(), path, where);
}

}  // namespace metalearn::io
