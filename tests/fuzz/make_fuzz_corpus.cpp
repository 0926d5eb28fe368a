// Writes the seed corpus of the fuzz targets into <dir>/checkpoint, <dir>/api and <dir>/idx:
// valid checkpoints and weights files of small models (float and double, Adam, SGD, no
// optimizer, a user-defined optimizer kind), and damaged ones (truncated, a flipped bit,
// another version, another kind); for the API target, a few deterministic random inputs;
// for the IDX target, small IDX files of each element type, damaged ones, and (built with
// zlib, METALEARN_CORPUS_GZIP) their gzip-compressed forms.
// checkpoint/v1-*.ckpt are version 1 files written by an earlier build and kept (never
// regenerated) to prove that old checkpoints still load.
//   make_fuzz_corpus tests/fuzz/corpus
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/io/idx.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#ifdef METALEARN_CORPUS_GZIP
#include <zlib.h>
#endif

namespace io = metalearn::io;
namespace nn = metalearn::nn;

namespace {

void write(const std::string& path, const std::vector<unsigned char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

template <class S>
io::TrainingCheckpoint<S> checkpoint(const std::vector<metalearn::Index>& widths, io::OptimizerKind kind,
                                     std::uint64_t seed) {
  const auto obj = nn::Objective(nn::Mlp<S>(widths, nn::Tanh{}), nn::MeanSquaredError{});
  metalearn::Rng rng(seed);
  io::TrainingCheckpoint<S> c;
  c.model = obj.describe();
  c.metadata = "seed=" + std::to_string(seed);
  c.theta.resize(obj.parameter_count());
  obj.initialize(c.theta, rng);
  c.optimizer.kind = kind;
  c.optimizer.steps = static_cast<std::int64_t>(seed);
  const int buffers = kind == io::OptimizerKind::adam ? 2 : kind == io::OptimizerKind::sgd ? 1
                      : kind == io::OptimizerKind::none ? 0 : 3;
  for (int b = 0; b < buffers; ++b) c.optimizer.buffers.push_back(c.theta.cwiseAbs() * S(0.01));
  c.iteration = static_cast<std::int64_t>(seed) * 10;
  c.skipped = 1;
  c.sampler = metalearn::sampler_state(rng);
  return c;
}

#ifdef METALEARN_CORPUS_GZIP
std::vector<unsigned char> gzip(const std::vector<unsigned char>& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::vector<unsigned char> out(deflateBound(&z, static_cast<uLong>(data.size())) + 64);
  z.next_in = const_cast<Bytef*>(data.data());
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus <corpus-dir>\n");
    return 2;
  }
  const std::string ck = std::string(argv[1]) + "/checkpoint/", api = std::string(argv[1]) + "/api/";
  const auto f_adam = io::encode(checkpoint<float>({1, 3, 1}, io::OptimizerKind::adam, 1));
  const auto d_sgd = io::encode(checkpoint<double>({2, 2, 1}, io::OptimizerKind::sgd, 2));
  const auto none = checkpoint<float>({1, 1}, io::OptimizerKind::none, 3);
  const auto f_none = io::encode(none);
  const auto d_user = io::encode(checkpoint<double>({1, 2, 1}, static_cast<io::OptimizerKind>(300), 4));
  const auto f_weights = io::encode(io::WeightsFile<float>{"1-3(tanh)-1(identity) mse", "user 7",
                                                           checkpoint<float>({1, 3, 1}, io::OptimizerKind::none, 5).theta});
  write(ck + "valid-float-adam.ckpt", f_adam);
  write(ck + "valid-double-sgd.ckpt", d_sgd);
  write(ck + "valid-float-none.ckpt", f_none);
  write(ck + "valid-double-user-optimizer.ckpt", d_user);
  write(ck + "valid-float-weights.bin", f_weights);
  auto episodes = checkpoint<float>({4, 3, 2}, io::OptimizerKind::adam, 6);  // a sampler with more than an engine
  episodes.sampler = {"tasks::EpisodeSampler(2-way 1-shot, 1 queries; classes 8 (2 x 4 rotations), examples 16, "
                      "features 4)",
                      {1, 2, 3, 4, 99}};
  write(ck + "valid-float-episodes.ckpt", io::encode(episodes));
  write(ck + "truncated-half.ckpt", std::vector<unsigned char>(f_adam.begin(), f_adam.begin() + f_adam.size() / 2));
  write(ck + "truncated-header.ckpt", std::vector<unsigned char>(d_sgd.begin(), d_sgd.begin() + 20));
  auto flipped = d_sgd;
  flipped[flipped.size() / 3] ^= 0x20;
  write(ck + "corrupt-bitflip.ckpt", flipped);
  auto version = f_adam;
  version[8] = 9;
  write(ck + "wrong-version.ckpt", version);
  auto huge = f_none;  // θ's count claims 2^40 entries
  huge[32 + 4 + none.model.size() + 4 + none.metadata.size() + 5] = 1;
  write(ck + "corrupt-count.ckpt", huge);

  metalearn::Rng rng(2024);
  for (int i = 0; i < 6; ++i) {
    std::vector<unsigned char> bytes(64 + 32 * static_cast<std::size_t>(i));
    for (auto& b : bytes) b = static_cast<unsigned char>(rng());
    write(api + "random-" + std::to_string(i), bytes);
  }
  const std::string idx = std::string(argv[1]) + "/idx/";
  const auto idx_file = [&](io::IdxType type, std::vector<std::uint32_t> dims) {
    io::IdxArray a{type, std::move(dims), {}};
    std::size_t count = 1;
    for (std::uint32_t d : a.dims) count *= d;
    a.bytes.resize(count * io::idx_element_size(type));
    for (auto& b : a.bytes) b = static_cast<unsigned char>(rng());
    return io::encode_idx(a);
  };
  const auto images = idx_file(io::IdxType::u8, {3, 4, 4});
  write(idx + "u8-images", images);
  write(idx + "u8-labels", idx_file(io::IdxType::u8, {5}));
  write(idx + "i16-matrix", idx_file(io::IdxType::i16, {2, 3}));
  write(idx + "i32-vector", idx_file(io::IdxType::i32, {3}));
  write(idx + "f32-tensor", idx_file(io::IdxType::f32, {2, 1, 2, 1}));
  write(idx + "f64-scalar", idx_file(io::IdxType::f64, {1}));
  write(idx + "truncated", std::vector<unsigned char>(images.begin(), images.end() - 5));
  auto big = images;  // dimension 0 claims 2^24 items
  big[5] = 1;
  write(idx + "count-too-large", big);
#ifdef METALEARN_CORPUS_GZIP
  write(idx + "u8-images.gz", gzip(images));
  write(idx + "f64-scalar.gz", gzip(idx_file(io::IdxType::f64, {1})));
#endif
  std::printf("wrote the seed corpus to %s\n", argv[1]);
  return 0;
}
