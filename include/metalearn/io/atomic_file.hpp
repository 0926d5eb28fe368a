#pragma once
/// @file
/// @brief Replacing a file atomically and durably, and reading a whole file (POSIX).
///
/// `write_file_atomically` writes the bytes to a new temporary file in the target's directory,
/// flushes and fsyncs it, renames it over the target and fsyncs the directory. rename(2)
/// replaces the directory entry atomically, so a process killed at any instant (or a machine
/// that loses power, given the fsyncs) leaves either the old file or the new one at the
/// path, never a mixture or a truncated file. A temporary file (the target's name with a
/// leading dot and a ".tmp.PID.N" suffix) can be left beside the target by a crash; it is
/// never read.

#include <metalearn/core/error.hpp>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace metalearn::io {

namespace detail {

inline std::string errno_text(int error) { return std::strerror(error); }

/// Directory part of `path` ("." when there is none) and the file name.
inline void split_path(const std::string& path, std::string& dir, std::string& name) {
  const std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    dir = ".";
    name = path;
  } else {
    dir = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
}

/// Closes a descriptor on scope exit unless released.
struct FileDescriptor {
  int fd = -1;
  FileDescriptor() = default;
  explicit FileDescriptor(int f) : fd(f) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

}  // namespace detail

/// Replaces the file at `path` by `size` bytes, atomically and durably (see the file comment).
/// On error throws `checkpoint_error` (naming `where`, the file and the system's reason) and
/// leaves the file at `path` as it was; the temporary file is removed.
inline void write_file_atomically(const std::string& path, const void* data, std::size_t size,
                                  const char* where = "io::write_file_atomically") {
  using metalearn::detail::fail_checkpoint;
  if (path.empty() || path.back() == '/') metalearn::detail::fail(where, "'", path, "' is not a file path");
  std::string dir, name;
  detail::split_path(path, dir, name);
  static std::atomic<std::uint64_t> counter{0};
  std::string tmp;
  detail::FileDescriptor out;
  for (int attempt = 0; out.fd < 0; ++attempt) {
    tmp = (dir == "/" ? std::string("/") : dir + "/") + "." + name + ".tmp." + std::to_string(::getpid()) + "." +
          std::to_string(counter.fetch_add(1));
    out.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (out.fd < 0 && (errno != EEXIST || attempt >= 100))
      fail_checkpoint(where, "cannot create the temporary file '", tmp, "' to write '", path,
                      "': ", detail::errno_text(errno));
  }
  auto abandon = [&](const char* what, int error) {
    if (out.fd >= 0) ::close(out.release());
    ::unlink(tmp.c_str());
    fail_checkpoint(where, "cannot write '", path, "' (", what, " '", tmp, "'): ", detail::errno_text(error),
                    "; the file is unchanged");
  };
  const auto* p = static_cast<const unsigned char*>(data);
  std::size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(out.fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("writing", errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(out.fd) != 0) abandon("flushing", errno);
  if (::close(out.release()) != 0) abandon("closing", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon("renaming", errno);
  // The rename is done: the new file is in place. Make the directory entry durable.
  detail::FileDescriptor d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0 || ::fsync(d.fd) != 0)
    fail_checkpoint(where, "wrote '", path, "' but cannot flush its directory '", dir, "': ",
                    detail::errno_text(errno), " (the new file may not survive a power loss)");
}

/// The bytes of the regular file at `path`. Throws `checkpoint_error` if it cannot be read.
inline std::vector<unsigned char> read_file(const std::string& path, const char* where = "io::read_file") {
  using metalearn::detail::fail_checkpoint;
  detail::FileDescriptor in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) fail_checkpoint(where, "cannot open '", path, "': ", detail::errno_text(errno));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) fail_checkpoint(where, "cannot stat '", path, "': ", detail::errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail_checkpoint(where, "'", path, "' is not a regular file");
  std::vector<unsigned char> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(in.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_checkpoint(where, "cannot read '", path, "': ", detail::errno_text(errno));
    }
    if (n == 0) break;  // the file shrank while being read: what was read is checked by the caller
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return bytes;
}

}  // namespace metalearn::io
