#pragma once
/// @file
/// @brief Checkpoints of meta-training (θ, optimizer state, trainer counters, the task
/// sampler's state, the model's shape) and files of one task's adapted weights: a
/// documented binary format with a CRC-32C, written atomically, loaded all-or-nothing.
///
/// **Format, version 2** (docs/checkpoint-format.md has the same with examples). All integers
/// are little-endian; scalars are IEEE-754 binary32 (float) or binary64 (double), stored as
/// their bit patterns in little-endian order, so a file reproduces θ bit for bit.
///
/// | offset | size | field                                                              |
/// |--------|------|--------------------------------------------------------------------|
/// | 0      | 8    | magic `89 4D 4C 43 4B 0D 0A 1A` (0x89, "MLCK", CR, LF, Ctrl-Z)      |
/// | 8      | 4    | u32 format version = 2 (version 1 files are read too)              |
/// | 12     | 4    | u32 kind: 1 training checkpoint, 2 adapted weights                 |
/// | 16     | 4    | u32 scalar: 1 float (binary32), 2 double (binary64)                |
/// | 20     | 4    | u32 flags, 0 (reserved)                                            |
/// | 24     | 8    | u64 size of the whole file in bytes, checksum included             |
/// | 32     | …    | body (below)                                                       |
/// | size−4 | 4    | u32 CRC-32C of bytes [0, size − 4)                                 |
///
/// A string is a u32 byte count (≤ 1 MiB) then the bytes (UTF-8, no terminator); a vector is
/// a u64 entry count then the entries. Body of a training checkpoint (kind 1):
///   string model description · string metadata · vector θ (P entries) ·
///   u32 optimizer kind (0 none, 1 Adam, 2 SGD) · u32 buffer count B (Adam 2: m, v; SGD 1:
///   velocity; none 0) · i64 optimizer step count · B vectors of P entries ·
///   i64 trainer iteration · i64 skipped updates · string sampler kind · u64 word count W
///   (4 ≤ W ≤ 2²⁰) · W × u64 sampler state, the first four its RNG state (xoshiro256**).
/// Version 1 ended instead with the 4 × u64 RNG state alone, read as a sampler of kind "rng".
/// Body of adapted weights (kind 2, the same in both versions): string model description ·
/// string metadata · vector θ.
///
/// **Loading** checks, in order, and throws `metalearn::checkpoint_error` naming the file and
/// the first problem: the length against the minimum, the magic, the version, the kind, the
/// scalar type, the flags, the recorded size against the file's (truncation), the checksum,
/// then every field with its count bounded by the bytes that remain (nothing is allocated
/// from a count before that check), θ finite, no trailing bytes, and finally the model description,
/// the parameter count, the optimizer kind and sizes, the counters and the sampler's kind and
/// state against the objects it is loaded into. Everything is decoded into temporaries first; the
/// destination objects are written only when every check has passed.
///
/// **Saving** validates its arguments (throwing `invalid_argument` with nothing written),
/// then replaces the file with `write_file_atomically`: a crash at any instant leaves the old
/// or the new checkpoint.
///
/// The model description is a string the caller passes: `nn::Objective::describe()` for
/// metalearn's networks, or any text that identifies the shape of a user model. A checkpoint
/// loads only into a model with the identical description and parameter count.
///
/// Typical use with `MetaTrainer` (the scalar type is the optimizer's, or given explicitly as
/// in `save_checkpoint<float>(…)`):
/// @code
/// namespace io = metalearn::io;
/// io::save_checkpoint("run.ckpt", maml.describe(), theta, adam, trainer, sampler.rng());
/// // later, in a fresh process, with objects built the same way:
/// io::load_checkpoint("run.ckpt", maml.describe(), theta, adam, trainer, sampler.rng());
/// trainer.run(theta, remaining);  // continues bit for bit
/// @endcode
///
/// Optimizers take part through three overloads found by argument-dependent lookup:
/// `optimizer_state(opt)`, `check_optimizer_state(opt, state, where)` (throws
/// `checkpoint_error` unless `restore_optimizer_state` would succeed) and
/// `restore_optimizer_state(opt, state)` (must not throw after a successful check). They are
/// provided here for `optim::Adam` and `optim::Sgd`; write the same three for your own.
/// Task samplers take part the same way (tasks/sampler_state.hpp): a bare `Rng` (pass
/// `SineTasks::rng()`) and `tasks::EpisodeSampler` (pass the sampler) have them.

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/core/types.hpp>
#include <metalearn/io/atomic_file.hpp>
#include <metalearn/io/crc32c.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/sampler_state.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::io {

/// Version of the format this build writes and reads.
inline constexpr std::uint32_t checkpoint_format_version = 2;
/// Oldest version this build reads.
inline constexpr std::uint32_t checkpoint_oldest_version = 1;
/// Most words a sampler's state may hold.
inline constexpr std::uint64_t checkpoint_max_sampler_words = 1U << 20;
/// Longest model description or metadata string a file may hold (bytes).
inline constexpr std::uint32_t checkpoint_max_string = 1U << 20;

/// What a file holds (u32 at offset 12).
enum class FileKind : std::uint32_t {
  training = 1,  ///< a training checkpoint
  weights = 2    ///< one set of (adapted) weights
};

/// Which optimizer a checkpoint's optimizer state belongs to. Codes 256 to 65535 are free
/// for user-defined optimizers (with up to 64 buffers).
enum class OptimizerKind : std::uint32_t {
  none = 0,  ///< no optimizer state
  adam = 1,  ///< `optim::Adam`: buffers m, v
  sgd = 2    ///< `optim::Sgd`: buffer velocity
};

/// Largest number of buffers of a user-defined optimizer's state.
inline constexpr std::uint32_t checkpoint_max_buffers = 64;

/// An optimizer's state as stored in a checkpoint.
template <class Scalar>
struct OptimizerState {
  using scalar_type = Scalar;                ///< float or double
  OptimizerKind kind = OptimizerKind::none;  ///< which optimizer
  std::int64_t steps = 0;                    ///< steps taken (≥ 0)
  std::vector<Vector<Scalar>> buffers;       ///< its vectors, each of the parameter count
};

/// Everything a training checkpoint holds.
template <class Scalar>
struct TrainingCheckpoint {
  std::string model;                ///< the model's description (e.g. `Objective::describe()`)
  std::string metadata;             ///< free-form text of the caller (e.g. the training configuration)
  Vector<Scalar> theta;             ///< meta-parameters θ
  OptimizerState<Scalar> optimizer; ///< the meta-optimizer's state
  std::int64_t iteration = 0;       ///< meta-iterations completed
  std::int64_t skipped = 0;         ///< updates skipped (non-finite meta-gradients)
  SamplerState sampler{"rng", {}};  ///< the task sampler's kind and state (`sampler_state(s)`)

  /// Where θ is restored to (`restore_checkpoint`).
  using Ref = VectorRef<Scalar>;
};

/// One set of weights, e.g. a task's adapted (fast) weights.
template <class Scalar>
struct WeightsFile {
  std::string model;     ///< the model's description
  std::string metadata;  ///< free-form text of the caller
  Vector<Scalar> theta;  ///< the weights
};

// ---------------------------------------------------------------------------------------------
// Optimizer state: Adam and SGD.

/// Adam's state: steps, first and second moment.
template <class Scalar>
OptimizerState<Scalar> optimizer_state(const optim::Adam<Scalar>& adam) {
  return {OptimizerKind::adam, adam.steps(), {adam.first_moment(), adam.second_moment()}};
}

namespace detail {
template <class Scalar>
void check_state_shape(const OptimizerState<Scalar>& s, OptimizerKind kind, const char* name, std::size_t buffers,
                       Index parameters, const char* where) {
  using metalearn::detail::fail_file;
  static constexpr const char* kinds[] = {"none", "Adam", "SGD"};
  const auto k = static_cast<std::uint32_t>(s.kind);
  if (s.kind != kind)
    fail_file(where, "the checkpoint holds the state of optimizer '", k < 3 ? kinds[k] : "unknown",
                    "', expected ", name);
  if (s.buffers.size() != buffers)
    fail_file(where, name, " state has ", s.buffers.size(), " buffers, expected ", buffers);
  if (s.steps < 0) fail_file(where, name, " step count is ", s.steps, ", expected >= 0");
  for (std::size_t b = 0; b < buffers; ++b) {
    if (s.buffers[b].size() != parameters)
      fail_file(where, name, " buffer ", b, " has ", s.buffers[b].size(), " entries, the optimizer has ",
                      parameters, " parameters");
    if (!metalearn::detail::all_finite(s.buffers[b]))
      fail_file(where, name, " buffer ", b, " holds non-finite values");
  }
}
}  // namespace detail

/// Throws `checkpoint_error` unless `state` can be restored into `adam`.
template <class Scalar>
void check_optimizer_state(const optim::Adam<Scalar>& adam, const OptimizerState<Scalar>& state, const char* where) {
  detail::check_state_shape(state, OptimizerKind::adam, "Adam", 2, adam.parameter_count(), where);
  if ((state.buffers[1].array() < Scalar(0)).any())
    metalearn::detail::fail_file(where, "Adam's second moment has negative entries");
}

/// Restores Adam's state (after `check_optimizer_state`).
template <class Scalar>
void restore_optimizer_state(optim::Adam<Scalar>& adam, const OptimizerState<Scalar>& state) {
  adam.restore(state.buffers[0], state.buffers[1], state.steps);
}

/// SGD's state: steps and velocity.
template <class Scalar>
OptimizerState<Scalar> optimizer_state(const optim::Sgd<Scalar>& sgd) {
  return {OptimizerKind::sgd, sgd.steps(), {sgd.velocity()}};
}

/// Throws `checkpoint_error` unless `state` can be restored into `sgd`.
template <class Scalar>
void check_optimizer_state(const optim::Sgd<Scalar>& sgd, const OptimizerState<Scalar>& state, const char* where) {
  detail::check_state_shape(state, OptimizerKind::sgd, "SGD", 1, sgd.parameter_count(), where);
}

/// Restores SGD's state (after `check_optimizer_state`).
template <class Scalar>
void restore_optimizer_state(optim::Sgd<Scalar>& sgd, const OptimizerState<Scalar>& state) {
  sgd.restore(state.buffers[0], state.steps);
}

namespace detail {
/// The scalar type of an optimizer's checkpoint state (`optimizer_state(opt)`, found by
/// argument-dependent lookup for user optimizers).
template <class Optimizer>
using optimizer_scalar_t = typename decltype(optimizer_state(std::declval<const Optimizer&>()))::scalar_type;
/// `Scalar` when given explicitly (`save_checkpoint<float>(…)`), else the optimizer's.
template <class Scalar, class Optimizer>
struct checkpoint_scalar {
  using type = Scalar;
};
template <class Optimizer>
struct checkpoint_scalar<void, Optimizer> {
  using type = optimizer_scalar_t<Optimizer>;
};
template <class Scalar, class Optimizer>
using checkpoint_scalar_t = typename checkpoint_scalar<Scalar, Optimizer>::type;
}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Encoding and decoding.

namespace detail {

inline constexpr unsigned char kMagic[8] = {0x89, 'M', 'L', 'C', 'K', '\r', '\n', 0x1A};
inline constexpr std::size_t kHeaderSize = 32;
inline constexpr std::size_t kMinimumSize = kHeaderSize + 4;

template <class Scalar>
constexpr std::uint32_t scalar_code() {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "metalearn::io: checkpoints hold float or double");
  return std::is_same_v<Scalar, float> ? 1U : 2U;
}
inline const char* scalar_name(std::uint32_t code) {
  return code == 1 ? "float (binary32)" : code == 2 ? "double (binary64)" : "unknown";
}

/// Little-endian writer.
class Writer {
 public:
  std::vector<unsigned char> bytes;

  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void string(const std::string& s) {
    u32(static_cast<std::uint32_t>(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  template <class Scalar>
  void vector(const ConstVectorRef<Scalar>& v) {
    u64(static_cast<std::uint64_t>(v.size()));
    for (Index i = 0; i < v.size(); ++i) {
      const Scalar x = v[i];
      if constexpr (std::is_same_v<Scalar, float>) {
        std::uint32_t b;
        std::memcpy(&b, &x, 4);
        u32(b);
      } else {
        std::uint64_t b;
        std::memcpy(&b, &x, 8);
        u64(b);
      }
    }
  }
  void header(FileKind kind, std::uint32_t scalar) {
    bytes.insert(bytes.end(), kMagic, kMagic + 8);
    u32(checkpoint_format_version);
    u32(static_cast<std::uint32_t>(kind));
    u32(scalar);
    u32(0);  // flags
    u64(0);  // size, patched by finish()
  }
  /// Patches the size and appends the checksum.
  std::vector<unsigned char> finish() {
    const std::uint64_t size = bytes.size() + 4;
    for (int i = 0; i < 8; ++i) bytes[24 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(size >> (8 * i));
    u32(crc32c(bytes.data(), bytes.size()));
    return std::move(bytes);
  }
};

/// Little-endian reader over [pos, end) that never reads or allocates past the end.
class Reader {
 public:
  Reader(const unsigned char* data, std::size_t end, std::size_t pos, const char* where, const std::string& source)
      : data_(data), end_(end), pos_(pos), where_(where), source_(source) {}

  std::size_t remaining() const { return end_ - pos_; }
  std::size_t position() const { return pos_; }
  std::uint32_t version = checkpoint_format_version;  ///< the file's format version (open_body)

  std::uint32_t u32(const char* what) {
    need(4, what);
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{data_[pos_ + static_cast<std::size_t>(i)]} << (8 * i);
    pos_ += 4;
    return v;
  }
  std::uint64_t u64(const char* what) {
    need(8, what);
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{data_[pos_ + static_cast<std::size_t>(i)]} << (8 * i);
    pos_ += 8;
    return v;
  }
  std::int64_t i64(const char* what) { return static_cast<std::int64_t>(u64(what)); }
  std::string string(const char* what) {
    const std::uint32_t n = u32(what);
    if (n > checkpoint_max_string) fail(what, " is ", n, " bytes long, more than the limit of ", checkpoint_max_string);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  template <class Scalar>
  Vector<Scalar> vector(const char* what) {
    const std::uint64_t n = u64(what);
    if (n > remaining() / sizeof(Scalar))  // bounded by the file before anything is allocated
      fail(what, " claims ", n, " entries, but only ", remaining(), " bytes remain");
    Vector<Scalar> v(static_cast<Index>(n));
    for (Index i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<Scalar, float>) {
        const std::uint32_t b = u32(what);
        std::memcpy(&v[i], &b, 4);
      } else {
        const std::uint64_t b = u64(what);
        std::memcpy(&v[i], &b, 8);
      }
    }
    return v;
  }

  template <class... Args>
  [[noreturn]] void fail(Args&&... details) const {
    metalearn::detail::fail_file(where_, "'", source_, "': ", std::forward<Args>(details)...);
  }

 private:
  void need(std::uint64_t n, const char* what) const {
    if (n > remaining()) fail("the payload ends inside ", what, " (corrupt file)");
  }

  const unsigned char* data_;
  std::size_t end_;
  std::size_t pos_;
  const char* where_;
  const std::string& source_;
};

/// Checks the header, the size and the checksum; returns a reader over the body.
template <class Scalar>
Reader open_body(const unsigned char* data, std::size_t size, FileKind kind, const char* where,
                 const std::string& source) {
  Reader header(data, size, 0, where, source);
  if (size < kMinimumSize)
    header.fail("truncated: ", size, " bytes, shorter than the smallest possible file (", kMinimumSize, " bytes)");
  if (std::memcmp(data, kMagic, 8) != 0) header.fail("not a metalearn checkpoint (bad magic number)");
  Reader r(data, kHeaderSize, 8, where, source);
  const std::uint32_t version = r.u32("version");
  if (version < checkpoint_oldest_version || version > checkpoint_format_version)
    r.fail("format version ", version, ", this build reads versions ", checkpoint_oldest_version, " to ",
           checkpoint_format_version);
  const std::uint32_t k = r.u32("kind");
  if (k != static_cast<std::uint32_t>(kind))
    r.fail("holds ", k == 1 ? "a training checkpoint" : k == 2 ? "adapted weights" : "an unknown kind of file",
           " (kind ", k, "), expected ", kind == FileKind::training ? "a training checkpoint" : "adapted weights",
           " (kind ", static_cast<std::uint32_t>(kind), ")");
  const std::uint32_t scalar = r.u32("scalar type");
  if (scalar != scalar_code<Scalar>())
    r.fail("scalar type ", scalar_name(scalar), " (code ", scalar, "), expected ", scalar_name(scalar_code<Scalar>()));
  const std::uint32_t flags = r.u32("flags");
  if (flags != 0) r.fail("flags are ", flags, ", expected 0 in format version ", version);
  const std::uint64_t recorded = r.u64("size");
  if (recorded > size)
    r.fail("truncated: the header records ", recorded, " bytes, the file has ", size);
  if (recorded < size) r.fail("the header records ", recorded, " bytes, but the file has ", size, " (trailing bytes)");
  std::uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= std::uint32_t{data[size - 4 + static_cast<std::size_t>(i)]} << (8 * i);
  const std::uint32_t actual = crc32c(data, size - 4);
  if (stored != actual) r.fail("checksum mismatch (stored CRC-32C ", stored, ", computed ", actual, "): corrupt file");
  Reader body(data, size - 4, kHeaderSize, where, source);
  body.version = version;
  return body;
}

inline void finish_body(const Reader& r) {
  if (r.remaining() != 0) r.fail(r.remaining(), " unexpected bytes after the payload");
}

inline void check_counters(std::int64_t iteration, std::int64_t skipped, const char* where, const std::string& source) {
  if (iteration < 0 || skipped < 0 || skipped > iteration)
    metalearn::detail::fail_file(where, "'", source, "': trainer counters must satisfy 0 <= skipped <= iteration, got ",
                                       skipped, " and ", iteration);
}

/// Buffers of an optimizer kind; -1 for a user-defined kind (any count up to the limit);
/// -2 for a code that is neither.
inline int expected_buffers(std::uint32_t kind) {
  if (kind <= 2) return kind == 1 ? 2 : kind == 2 ? 1 : 0;
  return kind >= 256 && kind <= 65535 ? -1 : -2;
}

}  // namespace detail

/// The bytes of a training checkpoint (format above). Throws `invalid_argument` if the
/// checkpoint is inconsistent (sizes, counters, strings too long, an all-zero RNG state) or
/// holds non-finite θ or optimizer state: a diverged run never replaces a good checkpoint.
template <class Scalar>
std::vector<unsigned char> encode(const TrainingCheckpoint<Scalar>& c) {
  constexpr const char* where = "io::encode";
  using metalearn::detail::fail;
  if (c.model.size() > checkpoint_max_string || c.metadata.size() > checkpoint_max_string)
    fail(where, "the model description and the metadata must be at most ", checkpoint_max_string, " bytes");
  if (c.theta.size() == 0) fail(where, "theta is empty");
  if (!metalearn::detail::all_finite(c.theta))  // a diverged run must not overwrite the last good checkpoint
    fail(where, "theta holds non-finite values; refusing to save them");
  for (std::size_t b = 0; b < c.optimizer.buffers.size(); ++b) {
    if (c.optimizer.buffers[b].size() != c.theta.size())
      fail(where, "optimizer buffer ", b, " has ", c.optimizer.buffers[b].size(), " entries, expected ", c.theta.size(),
           " (the parameter count)");
    if (!metalearn::detail::all_finite(c.optimizer.buffers[b]))
      fail(where, "optimizer buffer ", b, " holds non-finite values");
  }
  if (c.optimizer.steps < 0) fail(where, "optimizer step count must be >= 0, got ", c.optimizer.steps);
  const int buffers = detail::expected_buffers(static_cast<std::uint32_t>(c.optimizer.kind));
  if (buffers == -2) fail(where, "unknown optimizer kind ", static_cast<std::uint32_t>(c.optimizer.kind));
  if (buffers >= 0 ? c.optimizer.buffers.size() != static_cast<std::size_t>(buffers)
                   : c.optimizer.buffers.size() > checkpoint_max_buffers)
    fail(where, "the optimizer state has ", c.optimizer.buffers.size(), " buffers, which its kind does not allow");
  if (c.iteration < 0 || c.skipped < 0 || c.skipped > c.iteration)
    fail(where, "trainer counters must satisfy 0 <= skipped <= iteration, got ", c.skipped, " and ", c.iteration);
  if (c.sampler.kind.size() > checkpoint_max_string)
    fail(where, "the sampler kind must be at most ", checkpoint_max_string, " bytes");
  if (c.sampler.words.size() < 4 || c.sampler.words.size() > checkpoint_max_sampler_words)
    fail(where, "the sampler state must have 4 to ", checkpoint_max_sampler_words, " words, got ",
         c.sampler.words.size());
  if (!metalearn::detail::rng_words_valid(c.sampler.words))
    fail(where, "the sampler's RNG state is all zero (invalid)");
  detail::Writer w;
  w.header(FileKind::training, detail::scalar_code<Scalar>());
  w.string(c.model);
  w.string(c.metadata);
  w.vector<Scalar>(c.theta);
  w.u32(static_cast<std::uint32_t>(c.optimizer.kind));
  w.u32(static_cast<std::uint32_t>(c.optimizer.buffers.size()));
  w.i64(c.optimizer.steps);
  for (const auto& b : c.optimizer.buffers) w.vector<Scalar>(b);
  w.i64(c.iteration);
  w.i64(c.skipped);
  w.string(c.sampler.kind);
  w.u64(c.sampler.words.size());
  for (std::uint64_t word : c.sampler.words) w.u64(word);
  return w.finish();
}

/// Decodes a training checkpoint from memory, checking everything that does not depend on
/// the objects it will be loaded into. `source` names the data in messages (a file name).
/// Throws `checkpoint_error`.
template <class Scalar>
TrainingCheckpoint<Scalar> decode_training(const unsigned char* data, std::size_t size,
                                           const std::string& source = "<memory>",
                                           const char* where = "io::decode_training") {
  detail::Reader r = detail::open_body<Scalar>(data, size, FileKind::training, where, source);
  TrainingCheckpoint<Scalar> c;
  c.model = r.string("the model description");
  c.metadata = r.string("the metadata");
  c.theta = r.template vector<Scalar>("theta");
  if (c.theta.size() == 0) r.fail("theta is empty");
  if (!metalearn::detail::all_finite(c.theta)) r.fail("theta holds non-finite values");
  const std::uint32_t kind = r.u32("the optimizer kind");
  const int expected = detail::expected_buffers(kind);
  if (expected == -2) r.fail("unknown optimizer kind ", kind);
  c.optimizer.kind = static_cast<OptimizerKind>(kind);
  const std::uint32_t buffers = r.u32("the optimizer buffer count");
  if (expected >= 0 && buffers != static_cast<std::uint32_t>(expected))
    r.fail("the optimizer has ", buffers, " buffers, expected ", expected, " for its kind");
  if (expected < 0 && buffers > checkpoint_max_buffers)
    r.fail("the optimizer has ", buffers, " buffers, more than the limit of ", checkpoint_max_buffers);
  c.optimizer.steps = r.i64("the optimizer step count");
  if (c.optimizer.steps < 0) r.fail("the optimizer step count is ", c.optimizer.steps, ", expected >= 0");
  for (std::uint32_t b = 0; b < buffers; ++b) {
    c.optimizer.buffers.push_back(r.template vector<Scalar>("an optimizer buffer"));
    if (c.optimizer.buffers.back().size() != c.theta.size())
      r.fail("optimizer buffer ", b, " has ", c.optimizer.buffers.back().size(), " entries, theta has ",
             c.theta.size());
    if (!metalearn::detail::all_finite(c.optimizer.buffers.back()))
      r.fail("optimizer buffer ", b, " holds non-finite values");
  }
  c.iteration = r.i64("the trainer iteration");
  c.skipped = r.i64("the skipped count");
  detail::check_counters(c.iteration, c.skipped, where, source);
  if (r.version == 1) {
    c.sampler.kind = "rng";
    c.sampler.words.resize(4);
  } else {
    c.sampler.kind = r.string("the sampler kind");
    const std::uint64_t words = r.u64("the sampler's word count");
    if (words < 4 || words > checkpoint_max_sampler_words || words > r.remaining() / 8)
      r.fail("the sampler's state claims ", words, " words, expected 4 to ", checkpoint_max_sampler_words,
             " within the ", r.remaining(), " bytes that remain");
    c.sampler.words.resize(static_cast<std::size_t>(words));
  }
  for (auto& word : c.sampler.words) word = r.u64("the sampler's state");
  if (!metalearn::detail::rng_words_valid(c.sampler.words)) r.fail("the sampler's RNG state is all zero (invalid)");
  detail::finish_body(r);
  return c;
}

/// The bytes of a weights file.
template <class Scalar>
std::vector<unsigned char> encode(const WeightsFile<Scalar>& f) {
  constexpr const char* where = "io::encode";
  if (f.model.size() > checkpoint_max_string || f.metadata.size() > checkpoint_max_string)
    metalearn::detail::fail(where, "the model description and the metadata must be at most ", checkpoint_max_string,
                            " bytes");
  if (f.theta.size() == 0) metalearn::detail::fail(where, "the weights are empty");
  if (!metalearn::detail::all_finite(f.theta))
    metalearn::detail::fail(where, "the weights hold non-finite values; refusing to save them");
  detail::Writer w;
  w.header(FileKind::weights, detail::scalar_code<Scalar>());
  w.string(f.model);
  w.string(f.metadata);
  w.vector<Scalar>(f.theta);
  return w.finish();
}

/// Decodes a weights file from memory. Throws `checkpoint_error`.
template <class Scalar>
WeightsFile<Scalar> decode_weights(const unsigned char* data, std::size_t size, const std::string& source = "<memory>",
                                   const char* where = "io::decode_weights") {
  detail::Reader r = detail::open_body<Scalar>(data, size, FileKind::weights, where, source);
  WeightsFile<Scalar> f;
  f.model = r.string("the model description");
  f.metadata = r.string("the metadata");
  f.theta = r.template vector<Scalar>("the weights");
  if (f.theta.size() == 0) r.fail("the weights are empty");
  if (!metalearn::detail::all_finite(f.theta)) r.fail("the weights hold non-finite values");
  detail::finish_body(r);
  return f;
}

// ---------------------------------------------------------------------------------------------
// Files.

/// Reads and decodes the training checkpoint at `path` (see `decode_training`).
template <class Scalar>
TrainingCheckpoint<Scalar> read_checkpoint(const std::string& path) {
  constexpr const char* where = "io::read_checkpoint";
  const std::vector<unsigned char> bytes = read_file(path, where);
  return decode_training<Scalar>(bytes.data(), bytes.size(), path, where);
}

/// Writes `checkpoint` to `path` atomically (see `write_file_atomically`).
template <class Scalar>
void write_checkpoint(const std::string& path, const TrainingCheckpoint<Scalar>& checkpoint) {
  const std::vector<unsigned char> bytes = encode(checkpoint);
  write_file_atomically(path, bytes.data(), bytes.size(), "io::write_checkpoint");
}

/// Saves the state of meta-training to `path`, atomically.
/// @param path        the checkpoint file (replaced atomically)
/// @param model       the model's description (`Objective::describe()`, or your own text)
/// @param theta       θ
/// @param optimizer   the meta-optimizer (`optim::Adam`, `optim::Sgd`, or a type with the
///                    overloads of the file comment)
/// @param trainer     anything with `iteration()` and `skipped()` (`MetaTrainer`)
/// @param sampler     the task sampler: its engine (`SineTasks::rng()`), a
///                    `tasks::EpisodeSampler`, or a type with the overloads of
///                    tasks/sampler_state.hpp
/// @param metadata    free-form text stored beside (e.g. the training configuration)
/// Throws `invalid_argument` on inconsistent arguments (nothing is written) and
/// `checkpoint_error` if the file cannot be written (the old file is kept).
template <class Scalar = void, class Optimizer, class Trainer, class Sampler>
void save_checkpoint(const std::string& path, const std::string& model,
                     ConstVectorRef<detail::checkpoint_scalar_t<Scalar, Optimizer>> theta, const Optimizer& optimizer,
                     const Trainer& trainer, const Sampler& sampler, const std::string& metadata = {}) {
  TrainingCheckpoint<detail::checkpoint_scalar_t<Scalar, Optimizer>> c;
  c.model = model;
  c.metadata = metadata;
  c.theta = theta;
  c.optimizer = optimizer_state(optimizer);
  c.iteration = static_cast<std::int64_t>(trainer.iteration());
  c.skipped = static_cast<std::int64_t>(trainer.skipped());
  c.sampler = sampler_state(sampler);
  const std::vector<unsigned char> bytes = encode(c);
  write_file_atomically(path, bytes.data(), bytes.size(), "io::save_checkpoint");
}

/// Restores a decoded checkpoint into the objects of a training run, all or nothing: checks
/// the model description, the parameter count and the optimizer state first (throwing
/// `checkpoint_error` naming the mismatch, with every object unchanged), then writes θ, the
/// optimizer, the trainer's counters (`restore(iteration, skipped)`) and the sampler.
/// `source` names the checkpoint in messages.
template <class Scalar, class Optimizer, class Trainer, class Sampler>
void restore_checkpoint(const TrainingCheckpoint<Scalar>& c, const std::string& model,
                        typename TrainingCheckpoint<Scalar>::Ref theta,
                        Optimizer& optimizer, Trainer& trainer, Sampler& sampler,
                        const std::string& source = "<memory>", const char* where = "io::restore_checkpoint") {
  using metalearn::detail::fail_file;
  if (c.model != model)
    fail_file(where, "'", source, "' is a checkpoint of model '", c.model, "', expected '", model, "'");
  if (c.theta.size() != theta.size())
    fail_file(where, "'", source, "': theta has ", c.theta.size(), " parameters, the model has ", theta.size());
  const std::string context = metalearn::detail::concat(where, ": '", source, "'");
  check_optimizer_state(optimizer, c.optimizer, context.c_str());
  detail::check_counters(c.iteration, c.skipped, where, source);
  check_sampler_state(sampler, c.sampler, context.c_str());
  // Commit: nothing below throws after the checks above.
  theta = c.theta;
  restore_optimizer_state(optimizer, c.optimizer);
  trainer.restore(static_cast<Index>(c.iteration), static_cast<Index>(c.skipped));
  restore_sampler_state(sampler, c.sampler);
}

/// Loads the checkpoint at `path` into the objects of a training run (`read_checkpoint`, then
/// `restore_checkpoint`). Returns the checkpoint's metadata. On any error throws
/// `checkpoint_error` and every object is unchanged.
template <class Scalar = void, class Optimizer, class Trainer, class Sampler>
std::string load_checkpoint(const std::string& path, const std::string& model,
                            VectorRef<detail::checkpoint_scalar_t<Scalar, Optimizer>> theta, Optimizer& optimizer,
                            Trainer& trainer, Sampler& sampler) {
  using S = detail::checkpoint_scalar_t<Scalar, Optimizer>;
  constexpr const char* where = "io::load_checkpoint";
  const std::vector<unsigned char> bytes = read_file(path, where);
  const TrainingCheckpoint<S> c = decode_training<S>(bytes.data(), bytes.size(), path, where);
  restore_checkpoint(c, model, theta, optimizer, trainer, sampler, path, where);
  return c.metadata;
}

/// Saves one set of weights (e.g. a task's adapted weights, from `Maml::adapt`) to `path`,
/// atomically, with the model's description and free-form metadata.
template <class Scalar>
void save_weights(const std::string& path, const std::string& model, ConstVectorRef<Scalar> theta,
                  const std::string& metadata = {}) {
  const std::vector<unsigned char> bytes = encode(WeightsFile<Scalar>{model, metadata, theta});
  write_file_atomically(path, bytes.data(), bytes.size(), "io::save_weights");
}

/// Saves float weights (the scalar type deduced; see the template above).
inline void save_weights(const std::string& path, const std::string& model, ConstVectorRef<float> theta,
                         const std::string& metadata = {}) {
  save_weights<float>(path, model, theta, metadata);
}
/// Saves double weights (the scalar type deduced; see the template above).
inline void save_weights(const std::string& path, const std::string& model, ConstVectorRef<double> theta,
                         const std::string& metadata = {}) {
  save_weights<double>(path, model, theta, metadata);
}

/// Reads a weights file (any model).
template <class Scalar>
WeightsFile<Scalar> read_weights(const std::string& path) {
  constexpr const char* where = "io::read_weights";
  const std::vector<unsigned char> bytes = read_file(path, where);
  return decode_weights<Scalar>(bytes.data(), bytes.size(), path, where);
}

/// Loads a weights file into `theta`, which must be of the model described by `model`.
/// Returns the file's metadata. On any error throws `checkpoint_error`, `theta` unchanged.
template <class Scalar>
std::string load_weights(const std::string& path, const std::string& model, VectorRef<Scalar> theta) {
  constexpr const char* where = "io::load_weights";
  const std::vector<unsigned char> bytes = read_file(path, where);
  WeightsFile<Scalar> f = decode_weights<Scalar>(bytes.data(), bytes.size(), path, where);
  if (f.model != model)
    metalearn::detail::fail_file(where, "'", path, "' holds weights of model '", f.model, "', expected '", model,
                                       "'");
  if (f.theta.size() != theta.size())
    metalearn::detail::fail_file(where, "'", path, "' holds ", f.theta.size(), " weights, the model has ",
                                       theta.size());
  theta = f.theta;
  return std::move(f.metadata);
}

/// Loads float weights (the scalar type deduced; see the template above).
inline std::string load_weights(const std::string& path, const std::string& model, VectorRef<float> theta) {
  return load_weights<float>(path, model, theta);
}
/// Loads double weights (the scalar type deduced; see the template above).
inline std::string load_weights(const std::string& path, const std::string& model, VectorRef<double> theta) {
  return load_weights<double>(path, model, theta);
}

}  // namespace metalearn::io
