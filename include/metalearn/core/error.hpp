#pragma once
/// @file
/// @brief Exception types thrown by metalearn and the helpers that build their messages.
///
/// Every check happens before any output is written, so when one of these is thrown the
/// caller's parameters, gradients, optimizer state and files are exactly as they were.

#include <metalearn/core/types.hpp>

#include <charconv>
#include <cstring>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace metalearn {

/// The base of every exception metalearn throws: `catch (const metalearn::error& e)` catches
/// them all. It is a mixin, not a std::exception: each concrete type also derives from the
/// standard exception it has always been (`std::invalid_argument`, `std::runtime_error`,
/// `std::logic_error`), so `catch (const std::exception&)` and the standard catches keep
/// working and no type has two std::exception bases.
class error {
 public:
  /// The message, "metalearn: <where>: <what happened>".
  virtual const char* what() const noexcept = 0;
  virtual ~error() = default;

 protected:
  error() = default;
  error(const error&) = default;
  error& operator=(const error&) = default;
};

/// Bad input to a metalearn function: a wrong shape, an empty batch, a label out of range,
/// a non-finite value, an option out of its domain. The message names what was expected
/// and what came.
class invalid_argument : public std::invalid_argument, public error {
 public:
  using std::invalid_argument::invalid_argument;
  const char* what() const noexcept override { return std::invalid_argument::what(); }
};

/// A computation produced a non-finite value where the caller asked for it to be an error
/// (for example a non-finite meta-gradient under `NonFinitePolicy::throw_error`).
class numerical_error : public std::runtime_error, public error {
 public:
  using std::runtime_error::runtime_error;
  const char* what() const noexcept override { return std::runtime_error::what(); }
};

/// A file that cannot be used — a checkpoint, a weights file, a data file (IDX): unreadable
/// or unwritable, truncated, corrupt (checksum, gzip stream), of another format version or
/// scalar type, or holding other shapes or another model than the caller expects. The message
/// names the file and what mismatched; the objects it was to be loaded into are unchanged.
class file_error : public std::runtime_error, public error {
 public:
  using std::runtime_error::runtime_error;
  const char* what() const noexcept override { return std::runtime_error::what(); }
};

/// The name `file_error` had when only checkpoints were files (the same type).
using checkpoint_error = file_error;

/// A broken internal invariant of metalearn (a bug in the library, never the caller's input).
class logic_error : public std::logic_error, public error {
 public:
  using std::logic_error::logic_error;
  const char* what() const noexcept override { return std::logic_error::what(); }
};

namespace detail {

/// Concatenates the arguments with `operator<<` into one string.
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream out;
  out.precision(9);
  (out << ... << std::forward<Args>(args));
  return out.str();
}

/// Throws `metalearn::invalid_argument` whose message is "metalearn: <where>: <details>".
template <class... Args>
[[noreturn]] void fail(const char* where, Args&&... details) {
  throw metalearn::invalid_argument(concat("metalearn: ", where, ": ", std::forward<Args>(details)...));
}

/// Throws `metalearn::file_error` whose message is "metalearn: <where>: <details>".
template <class... Args>
[[noreturn]] void fail_file(const char* where, Args&&... details) {
  throw metalearn::file_error(concat("metalearn: ", where, ": ", std::forward<Args>(details)...));
}

/// Throws unless `actual == expected`: "<what> has <actual> <unit>, expected <expected>".
inline void check_size(const char* where, const char* what, Index actual, Index expected,
                       const char* unit = "entries") {
  if (actual != expected) fail(where, what, " has ", actual, " ", unit, ", expected ", expected);
}

/// The shortest decimal text that reads back as exactly `x` (std::to_chars).
inline std::string shortest(double x) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

/// The message of a metalearn exception without its leading "metalearn: ", so that a caller
/// that adds its own context (`fail(where, "task 3: ", without_prefix(e))`) writes the
/// prefix once.
inline const char* without_prefix(const std::exception& e) {
  const char* m = e.what();
  constexpr char prefix[] = "metalearn: ";
  return std::strncmp(m, prefix, sizeof(prefix) - 1) == 0 ? m + sizeof(prefix) - 1 : m;
}

/// Returns `f()`; an `invalid_argument` or `numerical_error` it throws is rethrown as the same
/// type with "metalearn: <where>: task <task>: " before its message, so that an error inside
/// one task of a meta-batch names the task.
template <class F>
decltype(auto) for_task(const char* where, Index task, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (const metalearn::invalid_argument& e) {
    throw metalearn::invalid_argument(concat("metalearn: ", where, ": task ", task, ": ", without_prefix(e)));
  } catch (const metalearn::numerical_error& e) {
    throw metalearn::numerical_error(concat("metalearn: ", where, ": task ", task, ": ", without_prefix(e)));
  }
}

}  // namespace detail
}  // namespace metalearn
