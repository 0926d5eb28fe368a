#pragma once
/// @file
/// @brief Replacing a file atomically and durably, and reading a whole file, on POSIX systems
/// and on Windows (the only header of metalearn that talks to the operating system).
///
/// `write_file_atomically` writes the bytes to a new temporary file in the target's directory,
/// flushes it to the device, and renames it over the target; on POSIX it then flushes the
/// directory too (on Windows the rename is issued write-through). The rename replaces the
/// directory entry atomically, so a process killed at any instant (or a machine that loses
/// power, given the flushes) leaves either the old file or the new one at the path, never a
/// mixture or a truncated file. A temporary file (the target's name with a leading dot and a
/// ".tmp.PID.N" suffix) can be left beside the target by a crash; it is never read. Paths are
/// UTF-8 on both systems.
///
/// The system headers (<fcntl.h> and <unistd.h>, or <windows.h> with NOMINMAX) come with this
/// header, which is why the umbrella header metalearn.hpp does not include io/.

#include <metalearn/core/error.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if defined(_WIN32)
#ifndef NOMINMAX
#define NOMINMAX
#define METALEARN_DEFINED_NOMINMAX
#endif
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#define METALEARN_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#ifdef METALEARN_DEFINED_NOMINMAX
#undef NOMINMAX
#undef METALEARN_DEFINED_NOMINMAX
#endif
#ifdef METALEARN_DEFINED_WIN32_LEAN_AND_MEAN
#undef WIN32_LEAN_AND_MEAN
#undef METALEARN_DEFINED_WIN32_LEAN_AND_MEAN
#endif
#else
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace metalearn::io {

namespace detail {

/// Directory part of `path` ("." when there is none) and the file name.
inline void split_path(const std::string& path, std::string& dir, std::string& name) {
#if defined(_WIN32)
  const std::size_t slash = path.find_last_of("/\\");
#else
  const std::size_t slash = path.find_last_of('/');
#endif
  if (slash == std::string::npos) {
    dir = ".";
    name = path;
  } else {
    dir = slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
}

/// The path of the n-th temporary file for `path` (in its directory).
inline std::string temporary_path(const std::string& dir, const std::string& name, std::uint64_t pid,
                                  std::uint64_t n) {
  const bool root = dir == "/" || dir == "\\";
  return (root ? dir : dir + "/") + "." + name + ".tmp." + std::to_string(pid) + "." + std::to_string(n);
}

#if defined(_WIN32)
/// The system's text for a GetLastError() code.
inline std::string error_text(DWORD error) {
  char buffer[512];
  const DWORD n = ::FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr, error, 0,
                                   buffer, sizeof buffer, nullptr);
  std::string text(buffer, n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == '.')) text.pop_back();
  return text + " (error " + std::to_string(error) + ")";
}

/// UTF-8 to UTF-16 for the wide Windows API (an empty result for invalid UTF-8).
inline std::wstring widen(const std::string& s) {
  if (s.empty()) return {};
  const int n = ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), nullptr, 0);
  if (n <= 0) return {};
  std::wstring w(static_cast<std::size_t>(n), L'\0');
  ::MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

/// Closes a handle on scope exit unless released.
struct FileHandle {
  HANDLE h = INVALID_HANDLE_VALUE;
  FileHandle() = default;
  explicit FileHandle(HANDLE handle) : h(handle) {}
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  ~FileHandle() {
    if (h != INVALID_HANDLE_VALUE) ::CloseHandle(h);
  }
  HANDLE release() {
    const HANDLE r = h;
    h = INVALID_HANDLE_VALUE;
    return r;
  }
};
#else
inline std::string error_text(int error) { return std::strerror(error); }

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
#endif

}  // namespace detail

/// Replaces the file at `path` by `size` bytes, atomically and durably (see the file comment).
/// On error throws `checkpoint_error` (naming `where`, the file and the system's reason) and
/// leaves the file at `path` as it was; the temporary file is removed.
inline void write_file_atomically(const std::string& path, const void* data, std::size_t size,
                                  const char* where = "io::write_file_atomically") {
  using metalearn::detail::fail_file;
  if (path.empty() || path.back() == '/' || path.back() == '\\')
    metalearn::detail::fail(where, "'", path, "' is not a file path");
  std::string dir, name;
  detail::split_path(path, dir, name);
  static std::atomic<std::uint64_t> counter{0};
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::string tmp;
#if defined(_WIN32)
  const std::wstring wide_path = detail::widen(path);
  if (wide_path.empty()) metalearn::detail::fail(where, "'", path, "' is not a valid UTF-8 path");
  std::wstring wide_tmp;
  detail::FileHandle out;
  for (int attempt = 0; out.h == INVALID_HANDLE_VALUE; ++attempt) {
    tmp = detail::temporary_path(dir, name, ::GetCurrentProcessId(), counter.fetch_add(1));
    wide_tmp = detail::widen(tmp);
    out.h = ::CreateFileW(wide_tmp.c_str(), GENERIC_WRITE, 0, nullptr, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, nullptr);
    const DWORD error = ::GetLastError();
    if (out.h == INVALID_HANDLE_VALUE && (error != ERROR_FILE_EXISTS || attempt >= 100))
      fail_file(where, "cannot create the temporary file '", tmp, "' to write '", path,
                      "': ", detail::error_text(error));
  }
  auto abandon = [&](const char* what, DWORD error) {
    if (out.h != INVALID_HANDLE_VALUE) ::CloseHandle(out.release());
    ::DeleteFileW(wide_tmp.c_str());
    fail_file(where, "cannot write '", path, "' (", what, " '", tmp, "'): ", detail::error_text(error),
                    "; the file is unchanged");
  };
  std::size_t left = size;
  while (left > 0) {
    const DWORD chunk = static_cast<DWORD>(left < (1U << 30) ? left : (1U << 30));
    DWORD written = 0;
    if (!::WriteFile(out.h, bytes, chunk, &written, nullptr)) abandon("writing", ::GetLastError());
    bytes += written;
    left -= written;
  }
  if (!::FlushFileBuffers(out.h)) abandon("flushing", ::GetLastError());
  if (!::CloseHandle(out.release())) abandon("closing", ::GetLastError());
  if (!::MoveFileExW(wide_tmp.c_str(), wide_path.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    abandon("renaming", ::GetLastError());
#else
  detail::FileDescriptor out;
  for (int attempt = 0; out.fd < 0; ++attempt) {
    tmp = detail::temporary_path(dir, name, static_cast<std::uint64_t>(::getpid()), counter.fetch_add(1));
    out.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (out.fd < 0 && (errno != EEXIST || attempt >= 100))
      fail_file(where, "cannot create the temporary file '", tmp, "' to write '", path,
                      "': ", detail::error_text(errno));
  }
  auto abandon = [&](const char* what, int error) {
    if (out.fd >= 0) ::close(out.release());
    ::unlink(tmp.c_str());
    fail_file(where, "cannot write '", path, "' (", what, " '", tmp, "'): ", detail::error_text(error),
                    "; the file is unchanged");
  };
  std::size_t left = size;
  while (left > 0) {
    const ssize_t n = ::write(out.fd, bytes, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon("writing", errno);
    }
    bytes += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(out.fd) != 0) abandon("flushing", errno);
  if (::close(out.release()) != 0) abandon("closing", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) abandon("renaming", errno);
  // The rename is done: the new file is in place. Make the directory entry durable.
  detail::FileDescriptor d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0 || ::fsync(d.fd) != 0)
    fail_file(where, "wrote '", path, "' but cannot flush its directory '", dir, "': ",
                    detail::error_text(errno), " (the new file may not survive a power loss)");
#endif
}

/// The bytes of the regular file at `path`. Throws `checkpoint_error` if it cannot be read.
inline std::vector<unsigned char> read_file(const std::string& path, const char* where = "io::read_file") {
  using metalearn::detail::fail_file;
  std::vector<unsigned char> bytes;
#if defined(_WIN32)
  const std::wstring wide = detail::widen(path);
  if (wide.empty()) fail_file(where, "'", path, "' is not a valid UTF-8 path");
  const DWORD attributes = ::GetFileAttributesW(wide.c_str());
  if (attributes != INVALID_FILE_ATTRIBUTES && (attributes & FILE_ATTRIBUTE_DIRECTORY) != 0)
    fail_file(where, "'", path, "' is not a regular file");
  detail::FileHandle in(::CreateFileW(wide.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                                      FILE_ATTRIBUTE_NORMAL, nullptr));
  if (in.h == INVALID_HANDLE_VALUE)
    fail_file(where, "cannot open '", path, "': ", detail::error_text(::GetLastError()));
  LARGE_INTEGER length;
  if (!::GetFileSizeEx(in.h, &length))
    fail_file(where, "cannot stat '", path, "': ", detail::error_text(::GetLastError()));
  bytes.resize(static_cast<std::size_t>(length.QuadPart));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const std::size_t left = bytes.size() - got;
    const DWORD chunk = static_cast<DWORD>(left < (1U << 30) ? left : (1U << 30));
    DWORD n = 0;
    if (!::ReadFile(in.h, bytes.data() + got, chunk, &n, nullptr))
      fail_file(where, "cannot read '", path, "': ", detail::error_text(::GetLastError()));
    if (n == 0) break;  // the file shrank while being read: what was read is checked by the caller
    got += n;
  }
#else
  detail::FileDescriptor in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) fail_file(where, "cannot open '", path, "': ", detail::error_text(errno));
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) fail_file(where, "cannot stat '", path, "': ", detail::error_text(errno));
  if (!S_ISREG(st.st_mode)) fail_file(where, "'", path, "' is not a regular file");
  bytes.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(in.fd, bytes.data() + got, bytes.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_file(where, "cannot read '", path, "': ", detail::error_text(errno));
    }
    if (n == 0) break;  // the file shrank while being read: what was read is checked by the caller
    got += static_cast<std::size_t>(n);
  }
#endif
  bytes.resize(got);
  return bytes;
}

}  // namespace metalearn::io
