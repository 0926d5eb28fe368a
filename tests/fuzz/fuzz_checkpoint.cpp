// libFuzzer target: the checkpoint and weights decoders, and restoring into a training run.
// Properties checked on every input:
//   - decoding either succeeds or throws metalearn::checkpoint_error (anything else escapes
//     and is reported by libFuzzer as a crash; sanitizer reports end the run too);
//   - a successful decode re-encodes to exactly the input bytes (the format is canonical), or
//     for a version 1 input to a current file with the same contents;
//   - restoring a decoded checkpoint either succeeds or throws checkpoint_error with the
//     destination objects unchanged.
// Each input is tried as is and "resealed" (size field and CRC-32C recomputed), so that the
// fuzzer also explores the field parser behind the checksum.
#include <metalearn/io/checkpoint.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

namespace io = metalearn::io;

[[noreturn]] void violated(const char* what) {
  std::fprintf(stderr, "fuzz_checkpoint: property violated: %s\n", what);
  std::abort();
}

struct Counters {
  metalearn::Index i = 5, s = 1;
  metalearn::Index iteration() const { return i; }
  metalearn::Index skipped() const { return s; }
  void restore(metalearn::Index iteration, metalearn::Index skipped) {
    i = iteration;
    s = skipped;
  }
};

template <class S, class Opt>
void try_restore(const io::TrainingCheckpoint<S>& c, metalearn::Index parameters) {
  metalearn::Vector<S> theta = metalearn::Vector<S>::Constant(parameters, S(0.5));
  Opt opt(parameters);
  metalearn::Rng rng(1);
  Counters counters;
  const metalearn::Rng rng0 = rng;
  try {
    io::restore_checkpoint(c, c.model, theta, opt, counters, rng);
  } catch (const metalearn::checkpoint_error&) {
    if (!(theta.array() == S(0.5)).all() || opt.steps() != 0 || rng != rng0 || counters.i != 5 || counters.s != 1)
      violated("a failed restore changed the destination");
    return;
  }
  if (std::memcmp(theta.data(), c.theta.data(), sizeof(S) * static_cast<std::size_t>(parameters)) != 0 ||
      counters.i != c.iteration || metalearn::sampler_state(rng).words != c.sampler.words)
    violated("restore is incomplete");
}

// A file of the current version re-encodes to its own bytes; an older one (version 1) to a
// current file that decodes to the same contents.
bool current_version(const std::vector<unsigned char>& b) {
  return b.size() >= 12 && b[8] == io::checkpoint_format_version && b[9] == 0 && b[10] == 0 && b[11] == 0;
}

template <class S>
bool same(const io::TrainingCheckpoint<S>& a, const io::TrainingCheckpoint<S>& b) {
  bool buffers = a.optimizer.buffers.size() == b.optimizer.buffers.size();
  for (std::size_t i = 0; buffers && i < a.optimizer.buffers.size(); ++i)
    buffers = a.optimizer.buffers[i] == b.optimizer.buffers[i];
  return buffers && a.model == b.model && a.metadata == b.metadata && a.theta == b.theta &&
         a.optimizer.kind == b.optimizer.kind && a.optimizer.steps == b.optimizer.steps && a.iteration == b.iteration &&
         a.skipped == b.skipped && a.sampler.kind == b.sampler.kind && a.sampler.words == b.sampler.words;
}

template <class S>
void try_decode(const std::vector<unsigned char>& b) {
  try {
    const auto c = io::decode_training<S>(b.data(), b.size(), "fuzz");
    const auto again = io::encode(c);
    if (current_version(b) ? again != b : !same(io::decode_training<S>(again.data(), again.size(), "fuzz"), c))
      violated("a decoded checkpoint does not re-encode to the same bytes (or, from version 1, the same contents)");
    try_restore<S, metalearn::optim::Adam<S>>(c, c.theta.size());
    try_restore<S, metalearn::optim::Sgd<S>>(c, c.theta.size());
    try_restore<S, metalearn::optim::Adam<S>>(c, 3);
  } catch (const metalearn::checkpoint_error&) {
  }
  try {
    const auto w = io::decode_weights<S>(b.data(), b.size(), "fuzz");
    const auto again = io::encode(w);
    const auto back = io::decode_weights<S>(again.data(), again.size(), "fuzz");
    if (current_version(b) ? again != b : !(back.model == w.model && back.metadata == w.metadata && back.theta == w.theta))
      violated("decoded weights do not re-encode to the same bytes (or, from version 1, the same contents)");
  } catch (const metalearn::checkpoint_error&) {
  }
}

void reseal(std::vector<unsigned char>& b) {
  const std::uint64_t size = b.size();
  for (int i = 0; i < 8; ++i) b[24 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(size >> (8 * i));
  const std::uint32_t crc = io::crc32c(b.data(), b.size() - 4);
  for (int i = 0; i < 4; ++i) b[b.size() - 4 + static_cast<std::size_t>(i)] = static_cast<unsigned char>(crc >> (8 * i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<unsigned char> bytes(data, data + size);
  try_decode<float>(bytes);
  try_decode<double>(bytes);
  if (bytes.size() >= 36) {
    reseal(bytes);
    try_decode<float>(bytes);
    try_decode<double>(bytes);
  }
  return 0;
}
