#pragma once
// Few-shot classification on Omniglot (Lake et al. 2015) with MAML's non-convolutional network
// (Finn et al. 2017, Table 1 "MAML, no conv", appendix A.1), beside two baselines on the same
// test episodes. A library of small pieces that examples/few_shot.cpp puts together and the
// tests call directly: flags, data loading (the converted IDX files, or the official zips
// converted on first use), the runs, the report and the figure.
#include "common.hpp"

#include <metalearn/core/statistics.hpp>
#include <metalearn/data/dataset.hpp>
#include <metalearn/data/minibatch.hpp>
#include <metalearn/io/idx_gzip.hpp>
#include <metalearn/meta/few_shot.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/schedule.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/tasks/episodes.hpp>
#include <metalearn/train/supervised.hpp>
#include <metalearn/version.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace few_shot {

using metalearn::Index;
using metalearn::Matrix;
using metalearn::Vector;
using examples::UsageError;

/// Every flag of the example.
struct Config {
  std::string data = "omniglot";      // the converted files, or the two official zips
  std::string cache;                  // where zips are converted to (default: $XDG_CACHE_HOME/metalearn/omniglot)
  Index ways = 5, shots = 1;          // N-way K-shot
  Index queries = 0;                  // query examples per class (0: K, as the paper)
  Index query_count() const { return queries > 0 ? queries : shots; }
  Index train_shots = 0;              // support examples per class in meta-training (0: K)
  Index train_shot_count() const { return train_shots > 0 ? train_shots : shots; }
  examples::Algorithm algorithm = examples::Algorithm::maml;  // maml, meta-sgd, maml++ or anil
  int order = 2;                      // 1: first order, 2: exact second order
  long iterations = 60000;            // meta-iterations
  Index meta_batch = 32;              // tasks per meta-iteration
  double inner_lr = 0.4;              // α, training and test (Meta-SGD, MAML++: the rates' start)
  double inner_lr_max = 0;            // Meta-SGD: > 0 draws each initial rate from [inner_lr, inner_lr_max]
  long first_order_iterations = 0;    // MAML++: derivative-order annealing
  long multi_step_iterations = 0;     // MAML++: multi-step loss annealing
  long inner_batch = 0;               // Reptile: support examples per inner step (0: all)
  long eval_inner_batch = -1;         // Reptile at test (-1: --inner-batch if the support set holds it, else all)
  bool inner_adam = false;            // Reptile: Adam (β₁ = 0) in the inner loop instead of SGD
  double lambda = 1.0;                // iMAML: the proximal term's strength
  int cg_iterations = 5;              // iMAML: conjugate-gradient iterations
  int inner_steps = 1;                // K during meta-training
  int eval_steps = 3;                 // inner steps at test time (the headline number)
  double meta_lr = 1e-3;              // the meta-optimizer's rate
  bool meta_sgd = false;              // the meta-optimizer: plain SGD (Reptile's ε) instead of Adam
  bool cosine = false;                // the rate annealed to 0 by a cosine over the iterations (MAML++'s CA)
  bool linear = false;                // the rate annealed linearly to 0 over the iterations (Reptile's ε)
  std::vector<Index> hidden{256, 128, 64, 64};
  bool layer_norm = false;            // LayerNorm on every hidden layer (--norm layer)
  Index train_classes = 1200;         // characters for meta-training (the rest are test classes)
  std::uint64_t split_seed = 1;       // the character split
  std::uint64_t seed = 1;             // initialisation and episodes
  int seeds = 1;                      // runs with seeds seed, seed + 1, …
  int threads = 1;
  long eval_episodes = 600;           // test episodes per run
  long monitor_every = 2000;          // meta-iterations between monitoring points
  long monitor_episodes = 100;        // test episodes at each monitoring point (not used for selection)
  std::vector<std::string> baselines{"ncm", "pretrain"};
  int pretrain_epochs = 5;            // the "pretrain + fine-tune" baseline
  int finetune_steps = 100;           //   Adam steps of the new head on the support set
  double finetune_lr = 0.01;
  std::string report, plot;
  bool quiet = false;

  /// The inner-loop flags of the chosen algorithm.
  examples::InnerLoopFlags inner_loop() const {
    examples::InnerLoopFlags f;
    f.algorithm = algorithm;
    f.order = order;
    f.inner_steps = inner_steps;
    f.inner_lr = inner_lr;
    f.inner_lr_max = inner_lr_max;
    f.first_order_iterations = first_order_iterations;
    f.multi_step_iterations = multi_step_iterations;
    f.inner_batch = inner_batch;
    f.inner_adam = inner_adam;
    f.lambda = lambda;
    f.cg_iterations = cg_iterations;
    f.threads = threads;
    return f;
  }
};

inline std::string usage() {
  return R"(few_shot: MAML on Omniglot N-way K-shot episodes, with MAML's non-convolutional network
(784-256-128-64-64-N, ReLU), beside nearest-class-mean and pretrain-and-fine-tune baselines.

  --data DIR            the converted Omniglot files (scripts/omniglot_to_idx.py), or a folder
                        with the official images_background.zip and images_evaluation.zip
                        (github.com/brendenlake/omniglot, folder python/), converted on first use
                        (needs python3-pil) into --cache  [omniglot]
  --cache DIR           where the zips are converted to  [$XDG_CACHE_HOME/metalearn/omniglot]
  --ways N --shots K    episodes  [5, 1]
  --queries Q           query examples per class  [K, as the paper]
  --train-shots K       support examples per class in meta-training episodes (Reptile's
                        authors train on 10)  [K]
  --algorithm A         maml, meta-sgd (learned per-parameter rates), maml++ (learned
                        per-step, per-layer rates; annealing below), anil (adapts the
                        output layer only), reptile or imaml  [maml]
  --order 1|2           first order or exact second order  [2]
  --iterations N        meta-iterations  [60000]
  --meta-batch B        tasks per meta-iteration  [32]
  --inner-lr A          inner learning rate on the mean loss, training and test (the MAML
                        paper's code differentiates N times the mean: its 0.4 is 0.4·N here)  [0.4]
  --inner-lr-max A      Meta-SGD: each initial rate drawn from [--inner-lr, A]  [constant]
  --first-order-iterations N  MAML++: first order for N meta-iterations  [0]
  --multi-step-iterations N   MAML++: annealed multi-step loss for N meta-iterations  [0]
  --inner-batch N       Reptile: support examples per inner step  [all]
  --eval-inner-batch N  Reptile at test time (the authors' --eval-batch)  [--inner-batch if the
                        test support set holds that many, else all]
  --inner-optimizer sgd|adam  Reptile: the per-task optimizer (Adam with beta1 = 0)  [sgd]
  --lambda L --cg-iterations M   iMAML: the proximal strength and CG iterations  [1, 5]
  --inner-steps S       inner steps in meta-training  [1]
  --eval-steps S        inner steps at test time  [3]
  --meta-optimizer adam|sgd   the meta-optimizer (sgd: Reptile's outer step)  [adam]
  --meta-lr L           its learning rate  [0.001]
  --meta-lr-schedule constant|cosine|linear   the rate annealed from --meta-lr to 0 over the
                        iterations by a cosine (MAML++) or linearly (Reptile)  [constant]
  --hidden W,W,...      hidden widths  [256,128,64,64]
  --norm none|layer     layer normalisation (per example, learned gain and shift, eps 1e-5)
                        of every hidden layer before its ReLU  [none]
  --train-classes N     characters for meta-training; the rest are for testing  [1200]
  --split-seed S        the character split  [1]
  --seed S --seeds N    N runs with seeds S, S+1, ...  [1, 1]
  --threads T           threads for the meta-batch  [1]
  --eval-episodes N     test episodes per run  [600]
  --monitor-every N     meta-iterations between monitoring points (test accuracy on
                        --monitor-episodes episodes; monitoring only, never selection)  [2000]
  --monitor-episodes N  [100]
  --baselines LIST      ncm, pretrain, or none  [ncm,pretrain]
  --pretrain-epochs N   [5]
  --finetune-steps N    [100]
  --finetune-lr L       [0.01]
  --report FILE         JSON report (settings, accuracies with 95% intervals, timings)
  --plot FILE           SVG figure (meta-training, accuracy against test-time inner steps)
  --quiet               no progress output
)";
}

inline bool parse(const std::vector<std::string>& args, Config& c) {
  using examples::parse_integer;
  using examples::parse_real;
  const bool run = examples::parse_flags(args, c.quiet, [&c](const std::string& flag, const std::string& v) {
    if (flag == "--data") c.data = v;
    else if (flag == "--cache") c.cache = v;
    else if (flag == "--ways") c.ways = parse_integer(flag, v, 2, 10000);
    else if (flag == "--shots") c.shots = parse_integer(flag, v, 1, 10000);
    else if (flag == "--queries") c.queries = parse_integer(flag, v, 1, 10000);
    else if (flag == "--train-shots") c.train_shots = parse_integer(flag, v, 1, 10000);
    else if (flag == "--order") c.order = static_cast<int>(parse_integer(flag, v, 1, 2));
    else if (flag == "--algorithm") c.algorithm = examples::parse_algorithm(flag, v);
    else if (flag == "--inner-lr-max") c.inner_lr_max = parse_real(flag, v);
    else if (flag == "--first-order-iterations") c.first_order_iterations = parse_integer(flag, v, 0, 1000000000L);
    else if (flag == "--multi-step-iterations") c.multi_step_iterations = parse_integer(flag, v, 0, 1000000000L);
    else if (flag == "--inner-batch") c.inner_batch = parse_integer(flag, v, 1, 1000000L);
    else if (flag == "--eval-inner-batch") c.eval_inner_batch = parse_integer(flag, v, 1, 1000000L);
    else if (flag == "--inner-optimizer") {
      if (v != "sgd" && v != "adam") throw UsageError("--inner-optimizer takes sgd or adam, got '" + v + "'");
      c.inner_adam = v == "adam";
    } else if (flag == "--lambda") c.lambda = parse_real(flag, v);
    else if (flag == "--cg-iterations") c.cg_iterations = static_cast<int>(parse_integer(flag, v, 1, 100000));
    else if (flag == "--iterations") c.iterations = parse_integer(flag, v, 0, 100000000L);
    else if (flag == "--meta-batch") c.meta_batch = parse_integer(flag, v, 1, 100000);
    else if (flag == "--inner-lr") c.inner_lr = parse_real(flag, v);
    else if (flag == "--inner-steps") c.inner_steps = static_cast<int>(parse_integer(flag, v, 1, 1000));
    else if (flag == "--eval-steps") c.eval_steps = static_cast<int>(parse_integer(flag, v, 0, 1000));
    else if (flag == "--meta-lr") c.meta_lr = parse_real(flag, v);
    else if (flag == "--meta-lr-schedule") {
      if (v != "constant" && v != "cosine" && v != "linear")
        throw UsageError("--meta-lr-schedule takes constant, cosine or linear, got '" + v + "'");
      c.cosine = v == "cosine";
      c.linear = v == "linear";
    } else if (flag == "--meta-optimizer") {
      if (v != "adam" && v != "sgd") throw UsageError("--meta-optimizer takes adam or sgd, got '" + v + "'");
      c.meta_sgd = v == "sgd";
    }
    else if (flag == "--hidden") c.hidden = examples::parse_widths<Index>(flag, v, "256,128");
    else if (flag == "--norm") {
      if (v != "none" && v != "layer") throw UsageError("--norm takes none or layer, got '" + v + "'");
      c.layer_norm = v == "layer";
    }
    else if (flag == "--train-classes") c.train_classes = parse_integer(flag, v, 1, 100000);
    else if (flag == "--split-seed") c.split_seed = static_cast<std::uint64_t>(parse_integer(flag, v, 0, 1L << 62));
    else if (flag == "--seed") c.seed = static_cast<std::uint64_t>(parse_integer(flag, v, 0, 1L << 62));
    else if (flag == "--seeds") c.seeds = static_cast<int>(parse_integer(flag, v, 1, 1000));
    else if (flag == "--threads") c.threads = static_cast<int>(parse_integer(flag, v, 1, 256));
    else if (flag == "--eval-episodes") c.eval_episodes = parse_integer(flag, v, 2, 10000000L);
    else if (flag == "--monitor-every") c.monitor_every = parse_integer(flag, v, 0, 100000000L);
    else if (flag == "--monitor-episodes") c.monitor_episodes = parse_integer(flag, v, 2, 10000000L);
    else if (flag == "--baselines") {
      c.baselines.clear();
      std::stringstream list(v);
      for (std::string b; std::getline(list, b, ',');) {
        if (b == "none") continue;
        if (b != "ncm" && b != "pretrain") throw UsageError("--baselines takes ncm, pretrain or none, got '" + b + "'");
        c.baselines.push_back(b);
      }
    } else if (flag == "--pretrain-epochs") c.pretrain_epochs = static_cast<int>(parse_integer(flag, v, 1, 10000));
    else if (flag == "--finetune-steps") c.finetune_steps = static_cast<int>(parse_integer(flag, v, 1, 100000));
    else if (flag == "--finetune-lr") c.finetune_lr = parse_real(flag, v);
    else if (flag == "--report") c.report = v;
    else if (flag == "--plot") c.plot = v;
    else throw UsageError("unknown flag '" + flag + "' (see --help)");
  });
  if (c.inner_lr_max > 0 && c.algorithm != examples::Algorithm::meta_sgd)
    throw UsageError("--inner-lr-max is Meta-SGD's (--algorithm meta-sgd)");
  if (c.inner_lr_max > 0 && c.inner_lr_max < c.inner_lr)
    throw UsageError("--inner-lr-max must be >= --inner-lr (the range of the initial rates)");
  if ((c.first_order_iterations > 0 || c.multi_step_iterations > 0) && c.algorithm != examples::Algorithm::maml_pp)
    throw UsageError("--first-order-iterations and --multi-step-iterations are MAML++'s (--algorithm maml++)");
  if (c.algorithm == examples::Algorithm::cavia)
    throw UsageError("--algorithm cavia is the sine example's; few_shot offers maml, meta-sgd, maml++, anil, reptile "
                     "and imaml");
  if ((c.inner_batch > 0 || c.eval_inner_batch > 0 || c.inner_adam) && c.algorithm != examples::Algorithm::reptile)
    throw UsageError("--inner-batch, --eval-inner-batch and --inner-optimizer are Reptile's (--algorithm reptile)");
  if (c.inner_batch > c.ways * c.train_shot_count())
    throw UsageError("--inner-batch (" + std::to_string(c.inner_batch) + ") is larger than a training support set (" +
                     std::to_string(c.ways * c.train_shot_count()) + " examples)");
  if (c.eval_inner_batch > c.ways * c.shots)
    throw UsageError("--eval-inner-batch (" + std::to_string(c.eval_inner_batch) + ") is larger than a test support set (" +
                     std::to_string(c.ways * c.shots) + " examples)");
  if ((c.lambda != 1.0 || c.cg_iterations != 5) && c.algorithm != examples::Algorithm::imaml)
    throw UsageError("--lambda and --cg-iterations are iMAML's (--algorithm imaml)");
  return run;
}

/// The data is not there: the message names what is missing and how to get it (exit 2).
struct DataMissing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
inline bool exists(const std::string& path) {
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
    return true;
  }
  return false;
}
// name.gz or name in dir; empty when neither exists
inline std::string find(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name + ".gz", dir + "/" + name})
    if (exists(candidate)) return candidate;
  return {};
}
inline std::string default_cache() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string base = xdg && *xdg ? xdg : std::string(home && *home ? home : "/tmp") + "/.cache";
  return base + "/metalearn/omniglot";
}
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}
}  // namespace detail

/// One character of the index.
struct Character {
  std::string set, alphabet, folder;  // background or evaluation; names of the official layout
};

/// All of Omniglot: drawings as columns (pixels in [0, 1], ink 1), labels = characters.
struct Omniglot {
  metalearn::data::LabelledDataset<float> drawings;
  metalearn::Labels alphabets;            // per drawing
  std::vector<Character> characters;      // per character
  std::string directory;                  // where the converted files were read
  double load_seconds = 0;
};

/// The converted files in `dir`, or (when `dir` holds the official zips) those made from them
/// in `cache` by scripts/omniglot_to_idx.py. Throws DataMissing (nothing there, or no
/// converter) or metalearn::file_error (a truncated or corrupt file, named).
inline Omniglot load(const std::string& dir, std::string cache, const std::string& source_dir) {
  namespace io = metalearn::io;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string images_name = "omniglot-images-idx3-ubyte";
  std::string from = dir;
  if (detail::find(dir, images_name).empty()) {
    const bool zips = detail::exists(dir + "/images_background.zip") && detail::exists(dir + "/images_evaluation.zip");
    if (!zips)
      throw DataMissing("few_shot: no Omniglot in '" + dir + "': expected the converted files (" + images_name +
                        "[.gz], from scripts/omniglot_to_idx.py) or the official images_background.zip and "
                        "images_evaluation.zip from https://github.com/brendenlake/omniglot (folder python/). "
                        "Download those two files into a folder and pass --data FOLDER");
    if (cache.empty()) cache = detail::default_cache();
    if (detail::find(cache, images_name).empty()) {
      const std::string script = source_dir + "/scripts/omniglot_to_idx.py";
      if (!detail::exists(script)) throw DataMissing("few_shot: cannot convert the zips: no " + script);
      const std::string command = "/usr/bin/python3 " + detail::shell_quote(script) + " --data " +
                                  detail::shell_quote(dir) + " --out " + detail::shell_quote(cache);
      std::fprintf(stderr, "converting Omniglot: %s\n", command.c_str());
      if (std::system(command.c_str()) != 0)
        throw DataMissing("few_shot: converting the zips failed (" + command +
                          "); it needs Debian's python3-pil (apt-get install python3-pil)");
    }
    from = cache;
  }
  Omniglot o;
  o.directory = from;
  const std::string images = detail::find(from, images_name);
  const std::string characters = detail::find(from, "omniglot-characters-idx1-short");
  const std::string alphabets = detail::find(from, "omniglot-alphabets-idx1-ubyte");
  const std::string index = from + "/omniglot-index.tsv";
  if (characters.empty() || alphabets.empty() || !detail::exists(index))
    throw DataMissing("few_shot: '" + from + "' has " + images_name +
                      " but not all of omniglot-characters-idx1-short, omniglot-alphabets-idx1-ubyte and "
                      "omniglot-index.tsv: convert again with scripts/omniglot_to_idx.py");
  std::ifstream in(index);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::string number;
    Character c;
    std::getline(fields, number, '\t');
    std::getline(fields, c.set, '\t');
    std::getline(fields, c.alphabet, '\t');
    std::getline(fields, c.folder, '\t');
    if (!fields || number != std::to_string(o.characters.size()))
      throw metalearn::file_error("few_shot: '" + index + "': line " + std::to_string(o.characters.size() + 2) +
                                  " is not 'character<TAB>set<TAB>alphabet<TAB>folder<TAB>first<TAB>count' for "
                                  "character " + std::to_string(o.characters.size()));
    o.characters.push_back(c);
  }
  if (o.characters.empty()) throw metalearn::file_error("few_shot: '" + index + "' lists no characters");
  const auto classes = static_cast<int>(o.characters.size());
  o.drawings = metalearn::data::from_idx<float>(io::read_idx_gz(images), io::read_idx_gz(characters), classes, images,
                                                characters);
  const io::IdxArray groups = io::read_idx_gz(alphabets);
  if (groups.dims.size() != 1 || groups.items() != static_cast<std::size_t>(o.drawings.size()))
    throw metalearn::file_error("few_shot: '" + alphabets + "' holds " + std::to_string(groups.items()) +
                                " alphabet indices, expected one per drawing (" + std::to_string(o.drawings.size()) + ")");
  o.alphabets.resize(o.drawings.size());
  for (Index j = 0; j < o.drawings.size(); ++j) o.alphabets[j] = static_cast<int>(groups.value(static_cast<std::size_t>(j)));
  o.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

/// The standard split (the MAML paper's, after Vinyals et al. 2016): `train_classes`
/// characters drawn at random (seeded) for meta-training, the rest for testing; every
/// character with its four rotations as four classes.
struct Split {
  metalearn::tasks::ClassPool<float> train, test;
  std::vector<int> train_characters, test_characters;
};

inline Split split(const Omniglot& o, Index train_classes, std::uint64_t seed) {
  const auto parts = metalearn::tasks::split_classes(o.drawings.classes, {train_classes}, seed);
  if (parts[1].empty()) throw UsageError("--train-classes leaves no test characters");
  const metalearn::tasks::PoolOptions rotated{4, 0};  // square images of any side
  return {metalearn::tasks::ClassPool<float>(o.drawings, parts[0], rotated),
          metalearn::tasks::ClassPool<float>(o.drawings, parts[1], rotated), parts[0], parts[1]};
}

using Classifier = metalearn::nn::Objective<metalearn::nn::Mlp<float>, metalearn::nn::SoftmaxCrossEntropy>;
using Sampler = metalearn::tasks::EpisodeSampler<float>;

/// ReLU layers over `widths`, the last with activation `last`; with `norm`, LayerNorm on the
/// first `normalized` layers.
inline metalearn::nn::Mlp<float> relu_layers(const std::vector<Index>& widths, metalearn::nn::Activation last, bool norm,
                                              std::size_t normalized) {
  std::vector<metalearn::nn::Activation> acts(widths.size() - 1, metalearn::nn::Relu{});
  acts.back() = last;
  std::vector<std::optional<metalearn::nn::LayerNorm>> norms(widths.size() - 1);
  for (std::size_t l = 0; norm && l < normalized; ++l) norms[l] = metalearn::nn::LayerNorm{};
  return metalearn::nn::Mlp<float>(widths, std::move(acts), std::move(norms));
}

/// inputs (784) - hidden… - outputs, ReLU (LayerNorm before each hidden ReLU with `norm`),
/// He-uniform weights, biases 0, softmax cross-entropy.
inline Classifier network(const std::vector<Index>& hidden, Index outputs, Index inputs = 784, bool norm = false) {
  std::vector<Index> widths{inputs};
  widths.insert(widths.end(), hidden.begin(), hidden.end());
  widths.push_back(outputs);
  return Classifier(relu_layers(widths, metalearn::nn::Identity{}, norm, hidden.size()),
                    metalearn::nn::SoftmaxCrossEntropy{}, metalearn::nn::HeUniform{});
}

/// The test episodes of one run: drawn once from the test classes (stream 2 of the seed) and
/// shared by MAML and the baselines.
inline std::vector<Sampler::Task> test_episodes(const Config& c, const metalearn::tasks::ClassPool<float>& pool,
                                                std::uint64_t seed, long count, std::uint64_t stream = 2) {
  Sampler sampler(pool, {c.ways, c.shots, c.query_count()}, seed, stream);
  std::vector<Sampler::Task> tasks(static_cast<std::size_t>(count));
  for (auto& t : tasks) sampler.sample(t);
  return tasks;
}

/// Accuracy of one method on a run's test episodes: per episode, and mean ± 95 %.
struct Score {
  std::vector<double> episodes;
  metalearn::MeanInterval interval;
};
inline Score score(std::vector<double> per_episode) {
  Score s;
  s.interval = metalearn::mean_interval(per_episode);
  s.episodes = std::move(per_episode);
  return s;
}

/// One seed's results.
struct Run {
  std::uint64_t seed = 0;
  std::string model, algorithm;                // describe() of the network and of MAML
  std::vector<double> curve_iteration, curve_loss;  // mean meta-loss per window of iterations
  std::vector<double> monitor_iteration, monitor_accuracy;  // test accuracy after eval_steps, monitoring
  std::vector<int> steps;                      // test-time inner steps evaluated
  std::vector<Score> by_steps;                 // MAML's accuracy after each
  Score maml;                                  // after eval_steps
  Score ncm, pretrain;                         // baselines (empty when not run)
  double train_seconds = 0, eval_seconds = 0, pretrain_seconds = 0;
  double ms_per_iteration = 0;
  long skipped = 0;
};

using Progress = std::function<void(const std::string& what, long done, long total, double loss, double seconds)>;

/// Nearest class mean on raw pixels: each query drawing gets the label of the closest support mean.
inline Score nearest_class_mean(const std::vector<Sampler::Task>& episodes, Index ways) {
  std::vector<double> acc;
  Matrix<float> means;
  for (const auto& e : episodes) {
    means.setZero(e.support.inputs.rows(), ways);
    Vector<float> counts = Vector<float>::Zero(ways);
    for (Index j = 0; j < e.support.size(); ++j) {
      means.col(e.support.targets[j]) += e.support.inputs.col(j);
      counts[e.support.targets[j]] += 1;
    }
    for (Index k = 0; k < ways; ++k) means.col(k) /= counts[k];
    Index correct = 0;
    for (Index j = 0; j < e.query.size(); ++j) {
      Index best = 0;
      (means.colwise() - e.query.inputs.col(j)).colwise().squaredNorm().minCoeff(&best);
      correct += best == e.query.targets[j];
    }
    acc.push_back(static_cast<double>(correct) / static_cast<double>(e.query.size()));
  }
  return score(std::move(acc));
}

/// "Pretrain, then fine-tune a new head": the same body trained as one classifier of all
/// training classes (rotations included) with Adam, then for each episode a fresh N-way
/// softmax head (zero weights) trained by Adam on the support set's frozen features.
inline Score pretrain_finetune(const Config& c, const metalearn::tasks::ClassPool<float>& train,
                               const std::vector<Sampler::Task>& episodes, std::uint64_t seed, double& seconds,
                               const Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  metalearn::data::LabelledDataset<float> all;
  all.classes = static_cast<int>(train.classes());
  all.features.resize(train.feature_count(), train.total_examples());
  all.labels.resize(train.total_examples());
  Index n = 0;
  for (Index k = 0; k < train.classes(); ++k)
    for (Index i = 0; i < train.examples(k); ++i, ++n) {
      train.copy_example(k, i, all.features.col(n));
      all.labels[n] = static_cast<int>(k);
    }
  const Classifier wide = network(c.hidden, train.classes(), train.feature_count(), c.layer_norm);
  metalearn::Rng rng(seed, 3);
  Vector<float> theta(wide.parameter_count());
  wide.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size(), {1e-3});
  const Index batch = 256;
  metalearn::data::MiniBatches<float> batches(all, {batch}, seed, 4);
  metalearn::SupervisedTrainer trainer(wide, adam, batches);
  const long steps = static_cast<long>((all.size() + batch - 1) / batch) * c.pretrain_epochs;
  trainer.run(theta, steps, [&](const metalearn::StepProgress& p) {
    if (progress && p.iteration % 50 == 0) progress("pretrain", static_cast<long>(p.iteration), steps, p.loss, p.elapsed_seconds);
  });
  // the body: every layer but the last, its ReLU kept; θ's layers come first to last
  std::vector<Index> body_widths{train.feature_count()};
  body_widths.insert(body_widths.end(), c.hidden.begin(), c.hidden.end());
  const metalearn::nn::Mlp<float> body = relu_layers(body_widths, metalearn::nn::Relu{}, c.layer_norm, c.hidden.size());
  const Index body_p = body.parameter_count();
  const Classifier head(metalearn::nn::Mlp<float>({c.hidden.back(), c.ways}, metalearn::nn::Identity{}),
                        metalearn::nn::SoftmaxCrossEntropy{});
  Classifier::Workspace hws;
  metalearn::nn::Mlp<float>::Workspace bws;
  Matrix<float> support_features, query_features, out;
  Vector<float> w(head.parameter_count()), grad(head.parameter_count());
  std::vector<double> acc;
  metalearn::ClassificationBatch<float> fb;
  for (const auto& e : episodes) {
    support_features = body.forward(theta.head(body_p), e.support.inputs, bws);
    query_features = body.forward(theta.head(body_p), e.query.inputs, bws);
    fb.inputs = support_features;
    fb.targets = e.support.targets;
    w.setZero();
    metalearn::optim::Adam<float> a(w.size(), {static_cast<float>(c.finetune_lr)});
    for (int s = 0; s < c.finetune_steps; ++s) {
      head.loss_and_gradient(w, fb, grad, hws);
      a.step(w, grad);
    }
    out.resize(c.ways, e.query.size());
    head.predict(w, query_features, out, hws);
    acc.push_back(static_cast<double>(metalearn::count_correct(out, e.query.targets)) /
                  static_cast<double>(e.query.size()));
  }
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return score(std::move(acc));
}

/// One seed: meta-train, evaluate on the test episodes after 0 … eval_steps (and a few more)
/// inner steps, and the baselines on the same episodes.
inline Run run_seed(const Config& c, const Split& s, std::uint64_t seed, const Progress& progress = {});

namespace detail {
// The algorithm that adapts at test time: the trained one, except Reptile with its test inner batch.
template <class Algorithm>
Algorithm& at_test(Algorithm& trained, const Config&, std::optional<Algorithm>&) {
  return trained;
}
template <class Model>
metalearn::Reptile<Model>& at_test(metalearn::Reptile<Model>& trained, const Config& c,
                                   std::optional<metalearn::Reptile<Model>>& keep) {
  const Index support = c.ways * c.shots, batch = trained.options().inner_batch;
  const Index wanted = c.eval_inner_batch > 0 ? static_cast<Index>(c.eval_inner_batch) : batch <= support ? batch : 0;
  if (wanted == batch) return trained;
  metalearn::ReptileOptions o = trained.options();
  o.inner_batch = wanted;
  return keep.emplace(trained.model(), o);
}

// The meta-learning part of run_seed with the chosen algorithm.
template <class Algorithm>
void meta_learn(const Config& c, const Split& s, Algorithm& algorithm, const std::vector<Sampler::Task>& episodes,
                Run& run, const Progress& progress) {
  const std::uint64_t seed = run.seed;
  run.algorithm = algorithm.describe();
  metalearn::Rng rng(seed);
  Vector<float> theta(algorithm.parameter_count());  // θ, then the algorithm's learned rates
  algorithm.initialize(theta, rng);
  Sampler sampler(s.train, {c.ways, c.train_shot_count(), c.query_count()}, seed, 1);
  metalearn::TrainerOptions to;
  to.meta_batch = c.meta_batch;
  const auto monitor_tasks = test_episodes(c, s.test, seed, c.monitor_episodes, 5);
  std::optional<Algorithm> test_copy;
  metalearn::FewShotEvaluator<Algorithm> evaluator(at_test(algorithm, c, test_copy), c.ways);
  const auto monitor = [&](long done) {
    const auto& a = evaluator.evaluate(theta, monitor_tasks, {c.eval_steps});
    run.monitor_iteration.push_back(static_cast<double>(done));
    run.monitor_accuracy.push_back(a.col(0).mean());
  };
  const long window = std::max(1L, c.iterations / 200);
  double sum = 0;
  long in_window = 0, done = 0;
  double monitor_seconds = 0;
  const auto train = [&](auto& trainer) {
    if (c.monitor_every > 0) monitor(0);
    while (done < c.iterations) {
      const long chunk = c.monitor_every > 0 ? std::min(c.monitor_every, c.iterations - done) : c.iterations - done;
      const auto t0 = std::chrono::steady_clock::now();
      trainer.run(theta, chunk, [&](const metalearn::Progress& p) {
        sum += p.meta_loss;
        if (++in_window == window) {
          run.curve_iteration.push_back(static_cast<double>(p.iteration));
          run.curve_loss.push_back(sum / static_cast<double>(window));
          sum = 0;
          in_window = 0;
        }
        if (progress && p.iteration % 100 == 0)
          progress("meta-train", static_cast<long>(p.iteration), c.iterations, p.meta_loss,
                   run.train_seconds + p.elapsed_seconds);
      });
      run.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      done += chunk;
      const auto m0 = std::chrono::steady_clock::now();
      if (c.monitor_every > 0) monitor(done);
      monitor_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - m0).count();
    }
    run.skipped = static_cast<long>(trainer.skipped());
  };
  // the meta-optimizer, its rate constant or annealed from meta_lr to 0 over the run
  const auto with_schedule = [&](auto& optimizer) {
    const std::int64_t length = std::max<std::int64_t>(1, c.iterations);
    if (c.cosine) {  // MAML++'s annealing
      metalearn::optim::Scheduled scheduled(optimizer, metalearn::optim::CosineSchedule{c.meta_lr, 0.0, length});
      metalearn::MetaTrainer trainer(algorithm, scheduled, sampler, to);
      train(trainer);
    } else if (c.linear) {  // Reptile's ε
      metalearn::optim::Scheduled scheduled(optimizer, metalearn::optim::LinearSchedule{c.meta_lr, 0.0, length});
      metalearn::MetaTrainer trainer(algorithm, scheduled, sampler, to);
      train(trainer);
    } else {
      metalearn::MetaTrainer trainer(algorithm, optimizer, sampler, to);
      train(trainer);
    }
  };
  if (c.meta_sgd) {
    metalearn::optim::Sgd<float> sgd(theta.size(), {c.meta_lr});
    with_schedule(sgd);
  } else {
    metalearn::optim::Adam<float> adam(theta.size(), {static_cast<float>(c.meta_lr)});
    with_schedule(adam);
  }
  run.ms_per_iteration = c.iterations > 0 ? 1e3 * run.train_seconds / static_cast<double>(c.iterations) : 0;
  // the test episodes
  const auto t0 = std::chrono::steady_clock::now();
  run.steps.clear();
  for (int k = 0; k <= std::max(c.eval_steps, 1); ++k) run.steps.push_back(k);
  const auto& a = evaluator.evaluate(theta, episodes, run.steps);
  for (Index j = 0; j < a.cols(); ++j) {
    std::vector<double> col(a.col(j).data(), a.col(j).data() + a.rows());
    run.by_steps.push_back(score(col));
    if (run.steps[static_cast<std::size_t>(j)] == c.eval_steps) run.maml = run.by_steps.back();
  }
  run.eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() + monitor_seconds;
}
}  // namespace detail

inline Run run_seed(const Config& c, const Split& s, std::uint64_t seed, const Progress& progress) {
  Run run;
  run.seed = seed;
  const Classifier model = network(c.hidden, c.ways, s.train.feature_count(), c.layer_norm);
  run.model = model.describe();
  const auto episodes = test_episodes(c, s.test, seed, c.eval_episodes);  // shared by every method
  examples::with_algorithm(c.inner_loop(), model,
                           [&](auto& algorithm) { detail::meta_learn(c, s, algorithm, episodes, run, progress); });
  for (const auto& b : c.baselines) {
    if (b == "ncm") run.ncm = nearest_class_mean(episodes, c.ways);
    if (b == "pretrain") run.pretrain = pretrain_finetune(c, s.train, episodes, seed, run.pretrain_seconds, progress);
  }
  return run;
}

/// The paper's number for this configuration (Table 1, "MAML, no conv"), or 0 when it has none.
inline double paper_anchor(const Config& c) {
  if (c.ways == 5 && c.shots == 1) return 0.897;
  if (c.ways == 5 && c.shots == 5) return 0.975;
  return 0;
}
inline double paper_anchor_ci(const Config& c) {
  if (c.ways == 5 && c.shots == 1) return 0.011;
  if (c.ways == 5 && c.shots == 5) return 0.006;
  return 0;
}

inline std::string settings(const Config& c) {
  std::ostringstream s;
  s << c.ways << "-way " << c.shots << "-shot, " << c.query_count() << " queries per class; "
    << (c.train_shot_count() != c.shots ? "meta-trained on " + std::to_string(c.train_shot_count()) + "-shot episodes; "
                                        : std::string())
    << examples::algorithm_label(c.algorithm)
    << (c.algorithm == examples::Algorithm::reptile || c.algorithm == examples::Algorithm::imaml
            ? std::string()  // (no derivative order: Reptile's step and iMAML's implicit gradient)
            : " order " + std::to_string(c.order))
    << ", inner lr " << c.inner_lr << " on the mean loss (" << c.inner_lr / static_cast<double>(c.ways)
    << " in the paper's units, whose loss is N times the mean)"
    << (c.algorithm == examples::Algorithm::meta_sgd || c.algorithm == examples::Algorithm::maml_pp
            ? " as every learned rate's start"
            : "")
    << (c.inner_lr_max > 0 ? ", drawn up to " + metalearn::detail::shortest(c.inner_lr_max) : std::string())
    << (c.algorithm == examples::Algorithm::maml_pp
            ? ", first order for " + std::to_string(c.first_order_iterations) +
                  " iterations, multi-step loss annealed over " + std::to_string(c.multi_step_iterations)
            : std::string())
    << (c.algorithm == examples::Algorithm::anil ? ", only the output layer adapted" : "")
    << (c.algorithm == examples::Algorithm::reptile
            ? std::string(", inner optimizer ") + (c.inner_adam ? "Adam (beta1 0)" : "SGD") + " on " +
                  (c.inner_batch > 0 ? std::to_string(c.inner_batch) + " support examples per step" : "the support set") +
                  (c.eval_inner_batch > 0 ? " (" + std::to_string(c.eval_inner_batch) + " at test)" : std::string())
            : std::string())
    << (c.algorithm == examples::Algorithm::imaml
            ? ", lambda " + metalearn::detail::shortest(c.lambda) + ", " + std::to_string(c.cg_iterations) +
                  " CG iterations"
            : std::string())
    << ", " << c.inner_steps
    << " inner step(s) in training, "
    << c.eval_steps << " at test; meta-batch " << c.meta_batch << ", " << c.iterations << " meta-iterations, "
    << (c.meta_sgd ? "SGD " : "Adam ") << c.meta_lr
    << (c.cosine ? " annealed to 0 by a cosine" : c.linear ? " annealed linearly to 0" : "")
    << "; network 784";
  for (Index w : c.hidden) s << "-" << w;
  s << "-" << c.ways << " ReLU, He-uniform, "
    << (c.layer_norm ? "layer normalisation (eps 1e-5, gain 1, shift 0 at start) before every hidden ReLU"
                     : "no normalisation")
    << "; characters: " << c.train_classes
    << " for training (split seed " << c.split_seed << "), the rest for testing, x4 rotations; images 28x28 "
    << "(Lanczos, scripts/omniglot_to_idx.py); " << c.eval_episodes << " test episodes (seed stream 2), the same for "
    << "every method; monitoring every " << c.monitor_every << " iterations on " << c.monitor_episodes
    << " other test episodes (not used to select anything: the last θ is scored); pretrain baseline: the same body "
    << "with a head over all training classes, Adam 0.001, batch 256, " << c.pretrain_epochs
    << " epochs, then per episode a zero-initialised head trained by Adam " << c.finetune_lr << " for "
    << c.finetune_steps << " steps on the frozen support features; seeds " << c.seed << " to "
    << c.seed + static_cast<std::uint64_t>(c.seeds) - 1 << "; threads " << c.threads;
  return s.str();
}

inline std::string percent(const metalearn::MeanInterval& m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f ± %.2f %%", 100 * m.mean, 100 * m.half_width);
  return buf;
}

/// The results table (Markdown).
inline std::string table(const Config& c, const std::vector<Run>& runs) {
  std::ostringstream t;
  t << "| method | " << c.ways << "-way " << c.shots << "-shot accuracy (" << c.eval_episodes
    << " test episodes, mean ± 95 %) |\n|---|---|\n";
  for (const Run& r : runs) {
    t << "| metalearn " << examples::algorithm_label(c.algorithm) << ", seed " << r.seed << ", " << c.eval_steps
      << " steps | " << percent(r.maml.interval) << " |\n";
    if (!r.ncm.episodes.empty()) t << "| nearest class mean (raw pixels), seed " << r.seed << " | " << percent(r.ncm.interval) << " |\n";
    if (!r.pretrain.episodes.empty())
      t << "| pretrain + fine-tune head, seed " << r.seed << " | " << percent(r.pretrain.interval) << " |\n";
  }
  if (runs.size() >= 2) {
    std::vector<double> means;
    for (const Run& r : runs) means.push_back(r.maml.interval.mean);
    t << "| metalearn " << examples::algorithm_label(c.algorithm) << ", mean over " << runs.size()
      << " seeds (± 95 % over seeds) | "
      << percent(metalearn::mean_interval(means)) << " |\n";
  }
  const double anchor = paper_anchor(c);
  if (anchor > 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.1f ± %.1f %%", 100 * anchor, 100 * paper_anchor_ci(c));
    t << "| MAML paper, Table 1, \"MAML, no conv\" | " << buf << " |\n";
  } else {
    t << "| MAML paper | (no number for this network) |\n";
  }
  if (c.ways == 5 && c.shots == 1) t << "| learn2learn, fully connected Omniglot model (its README) | 88.9 % |\n";
  // the algorithm's own papers report convolutional networks only: beside, not against
  const bool five = c.ways == 5, one = c.shots == 1;
  if (c.algorithm == examples::Algorithm::meta_sgd && five && (one || c.shots == 5))
    t << "| Meta-SGD paper, 4-layer CNN (not this network) | " << (one ? "99.53" : "99.93") << " % |\n";
  if (c.algorithm == examples::Algorithm::maml_pp && five && (one || c.shots == 5))
    t << "| MAML++ paper, 4-layer CNN (not this network) | " << (one ? "99.47" : "99.93") << " % |\n";
  if (c.algorithm == examples::Algorithm::anil && c.ways == 20 && (one || c.shots == 5))
    t << "| ANIL paper, 4-layer CNN (not this network) | " << (one ? "96.2" : "98.0") << " % |\n";
  return t.str();
}

inline std::string json_score(const Score& s) {
  using examples::json::number;
  if (s.episodes.empty()) return "null";
  return "{\"mean\": " + number(s.interval.mean) + ", \"ci95\": " + number(s.interval.half_width) +
         ", \"stddev\": " + number(s.interval.stddev) + ", \"episodes\": " + std::to_string(s.interval.count) + "}";
}

inline std::string to_json(const Config& c, const Omniglot& o, const std::vector<Run>& runs) {
  namespace json = examples::json;
  std::ostringstream j;
  j << "{\n  \"example\": \"few_shot\",\n  \"metalearn_version\": " << json::string(metalearn::version_string)
    << ",\n  \"settings\": " << json::string(settings(c)) << ",\n  \"config\": {\"ways\": " << c.ways
    << ", \"shots\": " << c.shots << ", \"queries\": " << c.query_count()
    << ", \"train_shots\": " << c.train_shot_count() << ", \"order\": " << c.order
    << ", \"iterations\": " << c.iterations << ", \"meta_batch\": " << c.meta_batch
    << ", \"inner_lr\": " << json::number(c.inner_lr) << ", \"inner_steps\": " << c.inner_steps
    << ", \"eval_steps\": " << c.eval_steps << ", \"meta_lr\": " << json::number(c.meta_lr)
    << ", \"meta_optimizer\": " << json::string(c.meta_sgd ? "sgd" : "adam")
    << ", \"meta_lr_schedule\": " << json::string(c.cosine ? "cosine" : c.linear ? "linear" : "constant")
    << ", \"algorithm\": " << json::string(examples::algorithm_key(c.algorithm))
    << ", \"inner_lr_max\": " << json::number(c.inner_lr_max)
    << ", \"first_order_iterations\": " << c.first_order_iterations
    << ", \"multi_step_iterations\": " << c.multi_step_iterations << ", \"inner_batch\": " << c.inner_batch
    << ", \"eval_inner_batch\": " << c.eval_inner_batch
    << ", \"inner_optimizer\": " << json::string(c.inner_adam ? "adam" : "sgd")
    << ", \"lambda\": " << json::number(c.lambda) << ", \"cg_iterations\": " << c.cg_iterations
    << ", \"hidden\": " << json::list(c.hidden, [](Index w) { return std::to_string(w); })
    << ", \"layer_norm\": " << (c.layer_norm ? "true" : "false")
    << ", \"train_classes\": " << c.train_classes << ", \"split_seed\": " << c.split_seed
    << ", \"threads\": " << c.threads << ", \"eval_episodes\": " << c.eval_episodes
    << ", \"pretrain_epochs\": " << c.pretrain_epochs << ", \"finetune_steps\": " << c.finetune_steps
    << ", \"finetune_lr\": " << json::number(c.finetune_lr) << "},\n  \"data\": {\"directory\": "
    << json::string(o.directory) << ", \"drawings\": " << o.drawings.size() << ", \"characters\": "
    << o.drawings.classes << "},\n  \"anchor\": {\"source\": \"Finn et al. 2017, Table 1, MAML no conv\", \"accuracy\": "
    << json::number(paper_anchor(c)) << ", \"ci95\": " << json::number(paper_anchor_ci(c)) << "},\n  \"runs\": [";
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const Run& r = runs[k];
    j << (k ? "," : "") << "\n    {\"seed\": " << r.seed << ", \"algorithm\": " << json::string(r.algorithm)
      << ", \"maml\": " << json_score(r.maml) << ", \"nearest_class_mean\": " << json_score(r.ncm)
      << ", \"pretrain_finetune\": " << json_score(r.pretrain) << ",\n     \"by_steps\": [";
    for (std::size_t s = 0; s < r.steps.size(); ++s)
      j << (s ? ", " : "") << "{\"steps\": " << r.steps[s] << ", \"accuracy\": " << json_score(r.by_steps[s]) << "}";
    j << "],\n     \"train_seconds\": " << json::number(r.train_seconds)
      << ", \"ms_per_iteration\": " << json::number(r.ms_per_iteration)
      << ", \"eval_seconds\": " << json::number(r.eval_seconds)
      << ", \"pretrain_seconds\": " << json::number(r.pretrain_seconds) << ", \"skipped_updates\": " << r.skipped
      << ",\n     \"curve\": {\"iteration\": " << json::numbers(r.curve_iteration)
      << ", \"meta_loss\": " << json::numbers(r.curve_loss) << "},\n     \"monitor\": {\"iteration\": "
      << json::numbers(r.monitor_iteration) << ", \"test_accuracy\": " << json::numbers(r.monitor_accuracy) << "}}";
  }
  j << "\n  ]\n}\n";
  return j.str();
}

inline std::string to_svg(const Config& c, const std::vector<Run>& runs) {
  namespace svg = examples::svg;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  svg::Panel loss{"meta-training: query loss after the inner step(s)", "meta-iteration", "loss", {}, {}, true, false};
  svg::Panel mon{"monitoring: test accuracy after " + std::to_string(c.eval_steps) + " steps", "meta-iteration",
                 "accuracy", {}, {}, false, true};
  svg::Panel steps{"test accuracy against inner steps at test time", "inner steps", "accuracy", {}, {}, false, true};
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const Run& r = runs[k];
    const std::string color = colors[k % 4], label = "seed " + std::to_string(r.seed);
    loss.series.push_back({label, color, r.curve_iteration, r.curve_loss, "", false});
    mon.series.push_back({label, color, r.monitor_iteration, r.monitor_accuracy, "", true});
    std::vector<double> x, y;
    for (std::size_t s = 0; s < r.steps.size(); ++s) {
      x.push_back(r.steps[s]);
      y.push_back(r.by_steps[s].interval.mean);
    }
    steps.series.push_back({label, color, x, y, "", true});
  }
  if (paper_anchor(c) > 0) {
    char label[48];
    std::snprintf(label, sizeof label, "MAML paper %.1f %%", 100 * paper_anchor(c));
    mon.references.push_back({paper_anchor(c), label});
    steps.references.push_back({paper_anchor(c), label});
  }
  return svg::charts({loss, mon, steps});
}

}  // namespace few_shot
