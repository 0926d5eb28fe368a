#pragma once
// The deep-learning half of the seed document on real images: the softmax classifier
// y = softmax(Wx + b) of its section 5.1, exactly as written there (zero initialisation, plain
// SGD at 0.5, 1000 steps of 100 images), the same model trained to convergence, and an MLP —
// on Fashion-MNIST (Debian's dataset-fashion-mnist, or any directory of the four MNIST-style
// files, gzipped or not). A library of small pieces that examples/fashion_mnist.cpp puts
// together and the tests call directly: flags, data loading, the runs, the report.
#include "common.hpp"

#include <metalearn/data/dataset.hpp>
#include <metalearn/data/minibatch.hpp>
#include <metalearn/io/idx_gzip.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/optim/schedule.hpp>
#include <metalearn/optim/sgd.hpp>
#include <metalearn/train/evaluate.hpp>
#include <metalearn/train/supervised.hpp>
#include <metalearn/version.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fashion {

using metalearn::Index;
using metalearn::Vector;
using examples::UsageError;

/// Every flag of the example.
struct Config {
  std::string data = "/usr/share/datasets/fashion-mnist";  // the four files, .gz or not
  std::vector<std::string> runs{"seed", "softmax", "mlp"};  // which runs, in this order
  std::uint64_t seed = 1;           // initialisation and batch order
  long seed_steps = 1000;           // the seed program: SGD steps of 100 images at 0.5
  int softmax_epochs = 30;          // the converged softmax regression
  double softmax_lr = 0.5;          //   plain SGD, batches of 100, lr decayed linearly to 0
  int mlp_epochs = 20;              // the MLP: epochs of Adam
  double mlp_lr = 1e-3;             //   its learning rate
  std::string mlp_schedule = "cosine";  //   constant, or cosine-annealed to 0 over the run
  int mlp_batch = 128;              //   its batch size
  std::vector<Index> mlp_hidden{256, 128};  // its hidden widths (ReLU)
  long train_limit = 0;             // use only the first N training images (0: all 60 000)
  long test_limit = 0;              // evaluate on the first N test images (0: all 10 000)
  std::string report;               // JSON report file
  std::string plot;                 // SVG figure file
  bool quiet = false;               // no progress output
};

inline std::string usage() {
  return R"(fashion_mnist: softmax regression and an MLP on Fashion-MNIST (the seed document's section 5.1)

usage: fashion_mnist [flags]
  --data DIR          directory of train-images-idx3-ubyte, train-labels-idx1-ubyte,
                      t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each plain or .gz
                      (default /usr/share/datasets/fashion-mnist: apt-get install
                      dataset-fashion-mnist); original MNIST files work the same way
  --runs LIST         comma-separated: seed, softmax, mlp         (default seed,softmax,mlp)
                        seed     784 -> 10 softmax regression, W = 0 and b = 0, plain SGD at
                                 0.5, --seed-steps batches of 100 (the seed's program)
                        softmax  the same model to convergence: SGD, batches of 100,
                                 --softmax-lr decayed linearly to 0 over --softmax-epochs
                        mlp      784-W-W-10 ReLU (--mlp-hidden), He-uniform weights, Adam at
                                 --mlp-lr, batches of --mlp-batch, --mlp-epochs epochs
  --seed N            initialisation and batch order                 (default 1)
  --seed-steps N      steps of the seed program                      (default 1000)
  --softmax-epochs N                                                 (default 30)
  --softmax-lr X                                                     (default 0.5)
  --mlp-epochs N                                                     (default 20)
  --mlp-lr X                                                         (default 0.001)
  --mlp-schedule S    constant, or cosine (annealed to 0 over the run)  (default cosine)
  --mlp-batch N                                                      (default 128)
  --mlp-hidden W,W    hidden widths                                  (default 256,128)
  --train-limit N     train on the first N images only (0: all)      (default 0)
  --test-limit N      evaluate on the first N test images (0: all)   (default 0)
  --report FILE       write a JSON report (settings, per-epoch curves, accuracies,
                      confusion matrices, timings)
  --plot FILE         write an SVG figure: training loss and test accuracy per epoch
  --quiet             no progress output
  --help              this text
Pixels are scaled to [0, 1]; nothing else is done to the images. Test accuracy is on the
10 000 test images, which are never used for training or any setting.
)";
}

/// Parses the flags (argv[0] excluded). Throws UsageError on anything unknown or malformed.
/// Returns false when --help was given.
inline bool parse(const std::vector<std::string>& args, Config& c) {
  using examples::parse_integer;
  using examples::parse_real;
  return examples::parse_flags(args, c.quiet, [&c](const std::string& flag, const std::string& v) {
    if (flag == "--data") c.data = v;
    else if (flag == "--runs") {
      c.runs.clear();
      std::stringstream list(v);
      for (std::string r; std::getline(list, r, ',');) {
        if (r != "seed" && r != "softmax" && r != "mlp")
          throw UsageError("--runs takes seed, softmax and mlp, got '" + r + "'");
        c.runs.push_back(r);
      }
      if (c.runs.empty()) throw UsageError("--runs needs at least one run");
    } else if (flag == "--seed") c.seed = static_cast<std::uint64_t>(parse_integer(flag, v, 0, 1L << 62));
    else if (flag == "--seed-steps") c.seed_steps = parse_integer(flag, v, 1, 100000000L);
    else if (flag == "--softmax-epochs") c.softmax_epochs = static_cast<int>(parse_integer(flag, v, 1, 100000));
    else if (flag == "--softmax-lr") c.softmax_lr = parse_real(flag, v);
    else if (flag == "--mlp-epochs") c.mlp_epochs = static_cast<int>(parse_integer(flag, v, 1, 100000));
    else if (flag == "--mlp-lr") c.mlp_lr = parse_real(flag, v);
    else if (flag == "--mlp-schedule") {
      if (v != "constant" && v != "cosine") throw UsageError("--mlp-schedule takes constant or cosine, got '" + v + "'");
      c.mlp_schedule = v;
    } else if (flag == "--mlp-batch") c.mlp_batch = static_cast<int>(parse_integer(flag, v, 1, 60000));
    else if (flag == "--mlp-hidden") c.mlp_hidden = examples::parse_widths<Index>(flag, v, "256,128");
    else if (flag == "--train-limit") c.train_limit = parse_integer(flag, v, 0, 100000000L);
    else if (flag == "--test-limit") c.test_limit = parse_integer(flag, v, 0, 100000000L);
    else if (flag == "--report") c.report = v;
    else if (flag == "--plot") c.plot = v;
    else throw UsageError("unknown flag '" + flag + "' (see --help)");
  });
}

/// The data files are not there: the message names what is missing and how to get it (exit 2).
struct DataMissing : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The path of `name` in `dir`, as name.gz or name; throws DataMissing when neither exists.
inline std::string find_file(const std::string& dir, const std::string& name) {
  for (const std::string& candidate : {dir + "/" + name + ".gz", dir + "/" + name})
    if (std::FILE* f = std::fopen(candidate.c_str(), "rb")) {
      std::fclose(f);
      return candidate;
    }
  throw DataMissing("fashion_mnist: no " + name + "[.gz] in '" + dir +
                    "'. Install Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist, into "
                    "/usr/share/datasets/fashion-mnist) or pass --data DIR, a directory holding "
                    "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
                    "t10k-labels-idx1-ubyte, plain or gzipped");
}

/// The training and test sets, pixels scaled to [0, 1]. Throws DataMissing (files absent) or
/// metalearn::file_error (a truncated or corrupt file, named).
struct Data {
  metalearn::data::LabelledDataset<float> train, test;
  std::string train_images, test_images;  // the files read
};

inline Data load(const Config& c) {
  namespace io = metalearn::io;
  const auto split = [&](const char* prefix, long limit, std::string& images_path) {
    images_path = find_file(c.data, std::string(prefix) + "-images-idx3-ubyte");
    const std::string labels_path = find_file(c.data, std::string(prefix) + "-labels-idx1-ubyte");
    auto ds = metalearn::data::from_idx<float>(io::read_idx_gz(images_path), io::read_idx_gz(labels_path), 10,
                                               images_path, labels_path);
    if (limit > 0 && limit < ds.size()) {
      std::vector<Index> first(static_cast<std::size_t>(limit));
      for (Index j = 0; j < limit; ++j) first[static_cast<std::size_t>(j)] = j;
      ds = metalearn::data::subset(ds, first);
    }
    return ds;
  };
  Data d;
  d.train = split("train", c.train_limit, d.train_images);
  d.test = split("t10k", c.test_limit, d.test_images);
  return d;
}

/// One run: its settings, per-epoch curves, and the final scores.
struct Run {
  std::string name;                 // seed, softmax, mlp
  std::string model;                // nn::Objective::describe()
  std::string settings;             // every setting, one line
  double anchor = 0;                // the published accuracy it is put beside
  std::string anchor_source;        //   and where it comes from
  std::vector<double> epoch;        // x of the curves (epochs, fractional for the seed run)
  std::vector<double> train_loss;   // mean training loss over the epoch's batches
  std::vector<double> test_loss;    // mean test loss after the epoch
  std::vector<double> test_accuracy;
  double accuracy = 0, loss = 0;    // final, on the test set
  Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic> confusion;
  long steps = 0;
  double train_seconds = 0;         // training steps only (evaluation excluded)
  double eval_seconds = 0;
  double examples_per_second = 0;
};

using Progress = std::function<void(const std::string& run, const metalearn::StepProgress&)>;

namespace detail {

using Classifier = metalearn::nn::Objective<metalearn::nn::Mlp<float>, metalearn::nn::SoftmaxCrossEntropy>;

// Trains θ of `model` for `steps` steps of `optimizer` on batches of `batch` training images
// in a seeded order, and evaluates on the test set every `eval_every` steps and at the end:
// the curves and the final scores go into `run`. Evaluation is not counted as training time.
template <class Optimizer>
void train(Run& run, const Classifier& model, Vector<float>& theta, Optimizer& optimizer, const Data& d, Index batch,
           long steps, long eval_every, std::uint64_t seed, const Progress& progress) {
  run.model = model.describe();
  metalearn::data::MiniBatches<float> batches(d.train, {batch}, seed, /*stream=*/1);
  metalearn::SupervisedTrainer trainer(model, optimizer, batches);
  metalearn::ClassifierEvaluator evaluator(model, d.test, model.output_size(), 1000);
  double loss_sum = 0;
  long in_window = 0, done = 0;
  const auto evaluate = [&] {
    const auto t0 = std::chrono::steady_clock::now();
    const auto& r = evaluator.evaluate(theta);
    run.eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    run.epoch.push_back(static_cast<double>(done * batch) / static_cast<double>(d.train.size()));
    run.train_loss.push_back(in_window ? loss_sum / static_cast<double>(in_window) : r.loss);
    run.test_loss.push_back(r.loss);
    run.test_accuracy.push_back(r.accuracy);
    loss_sum = 0;
    in_window = 0;
    return r;
  };
  evaluate();  // before training
  while (done < steps) {
    const long chunk = std::min(eval_every, steps - done);
    const auto t0 = std::chrono::steady_clock::now();
    trainer.run(theta, chunk, [&](const metalearn::StepProgress& p) {
      loss_sum += p.loss;
      ++in_window;
      if (!progress) return;
      metalearn::StepProgress whole = p;  // the ETA of the run, not of this chunk
      const double seconds = run.train_seconds + p.elapsed_seconds;
      const long taken = done + static_cast<long>(in_window);
      whole.eta_seconds = seconds / static_cast<double>(taken) * static_cast<double>(steps - taken);
      progress(run.name, whole);
    });
    run.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    done += chunk;
    evaluate();
  }
  const auto& r = evaluator.evaluate(theta);
  run.accuracy = r.accuracy;
  run.loss = r.loss;
  run.confusion = r.confusion;
  run.steps = steps;
  run.examples_per_second = static_cast<double>(steps * batch) / run.train_seconds;
}

inline Classifier softmax_regression() {
  return Classifier(metalearn::nn::Mlp<float>({784, 10}, metalearn::nn::Identity{}, metalearn::nn::Identity{}),
                    metalearn::nn::SoftmaxCrossEntropy{});
}

}  // namespace detail

/// The seed document's program: 784 → 10 softmax regression, W and b zero, cross-entropy,
/// plain SGD at 0.5, `seed_steps` steps of 100 images (the test set scored every 100 steps).
inline Run run_seed(const Config& c, const Data& d, const Progress& progress = {}) {
  Run run;
  run.name = "seed";
  run.anchor = 0.79;
  run.anchor_source = "the same program in PyTorch (bench/compare/fashion_torch.py --seed-program)";
  const auto model = detail::softmax_regression();
  Vector<float> theta = Vector<float>::Zero(model.parameter_count());  // W = 0, b = 0
  metalearn::optim::Sgd<float> sgd(theta.size(), {0.5});
  run.settings = "784-10 softmax regression, W = b = 0, SGD lr 0.5 (no momentum), batch 100, " +
                 std::to_string(c.seed_steps) + " steps";
  detail::train(run, model, theta, sgd, d, 100, c.seed_steps, 100, c.seed, progress);
  return run;
}

/// The same model trained to convergence: SGD on batches of 100 with the rate decayed
/// linearly from `softmax_lr` to 0 over `softmax_epochs` epochs, from W = b = 0.
inline Run run_softmax(const Config& c, const Data& d, const Progress& progress = {}) {
  Run run;
  run.name = "softmax";
  run.anchor = 0.84;
  run.anchor_source = "logistic regression in the dataset's scikit-learn benchmark (its README)";
  const auto model = detail::softmax_regression();
  Vector<float> theta = Vector<float>::Zero(model.parameter_count());
  metalearn::optim::Sgd<float> sgd(theta.size(), {c.softmax_lr});
  const long per_epoch = (d.train.size() + 99) / 100, steps = per_epoch * c.softmax_epochs;
  metalearn::optim::Scheduled scheduled(sgd, metalearn::optim::LinearSchedule{c.softmax_lr, 0, steps});
  std::ostringstream s;
  s << "784-10 softmax regression, W = b = 0, SGD batch 100, lr " << c.softmax_lr << " decayed linearly to 0, "
    << c.softmax_epochs << " epochs";
  run.settings = s.str();
  detail::train(run, model, theta, scheduled, d, 100, steps, per_epoch, c.seed, progress);
  return run;
}

/// An MLP: 784 - hidden… - 10, ReLU, He-uniform weights (biases 0), Adam, `mlp_epochs` epochs.
inline Run run_mlp(const Config& c, const Data& d, const Progress& progress = {}) {
  Run run;
  run.name = "mlp";
  run.anchor = 0.8833;
  run.anchor_source = "\"MLP 256-128-100\" in the dataset's README benchmark table";
  std::vector<Index> widths{784};
  widths.insert(widths.end(), c.mlp_hidden.begin(), c.mlp_hidden.end());
  widths.push_back(10);
  const detail::Classifier model(metalearn::nn::Mlp<float>(widths, metalearn::nn::Relu{}),
                                 metalearn::nn::SoftmaxCrossEntropy{}, metalearn::nn::HeUniform{});
  metalearn::Rng rng(c.seed);
  Vector<float> theta(model.parameter_count());
  model.initialize(theta, rng);
  metalearn::optim::Adam<float> adam(theta.size(), {c.mlp_lr});
  const long per_epoch = (d.train.size() + c.mlp_batch - 1) / c.mlp_batch, steps = per_epoch * c.mlp_epochs;
  std::ostringstream s;
  s << model.describe() << ", He-uniform, Adam lr " << c.mlp_lr
    << (c.mlp_schedule == "cosine" ? " cosine-annealed to 0" : "") << " (betas 0.9, 0.999), batch " << c.mlp_batch
    << ", " << c.mlp_epochs << " epochs";
  run.settings = s.str();
  if (c.mlp_schedule == "cosine") {
    metalearn::optim::Scheduled scheduled(adam, metalearn::optim::CosineSchedule{c.mlp_lr, 0, steps});
    detail::train(run, model, theta, scheduled, d, c.mlp_batch, steps, per_epoch, c.seed, progress);
  } else {
    detail::train(run, model, theta, adam, d, c.mlp_batch, steps, per_epoch, c.seed, progress);
  }
  return run;
}

/// The runs of `c.runs`, in order.
inline std::vector<Run> run_all(const Config& c, const Data& d, const Progress& progress = {}) {
  std::vector<Run> runs;
  for (const std::string& r : c.runs)
    runs.push_back(r == "seed" ? run_seed(c, d, progress) : r == "softmax" ? run_softmax(c, d, progress)
                                                                             : run_mlp(c, d, progress));
  return runs;
}

/// The results table: each run's test accuracy beside its anchor, with its settings and time.
inline std::string table(const std::vector<Run>& runs) {
  std::ostringstream out;
  out << "Fashion-MNIST test accuracy (10 000 images)\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %9s %9s %10s %12s  %s\n", "run", "accuracy", "anchor", "train s",
                "examples/s", "settings");
  out << line;
  for (const Run& r : runs) {
    std::snprintf(line, sizeof line, "%-8s %9.4f %9.4f %10.1f %12.0f  %s\n", r.name.c_str(), r.accuracy, r.anchor,
                  r.train_seconds, r.examples_per_second, r.settings.c_str());
    out << line;
    out << "         anchor: " << r.anchor_source << "\n";
  }
  return out.str();
}

/// The JSON report: every setting, per-epoch curves, final scores, confusion matrices, timings.
inline std::string to_json(const Config& c, const Data& d, const std::vector<Run>& runs) {
  namespace json = examples::json;
  std::ostringstream out;
  out << "{\n  \"config\": {\"data\": " << json::string(c.data)
      << ", \"runs\": " << json::list(c.runs, json::string) << ", \"seed\": " << c.seed
      << ", \"seed_steps\": " << c.seed_steps << ", \"softmax_epochs\": " << c.softmax_epochs
      << ", \"softmax_lr\": " << json::number(c.softmax_lr) << ", \"mlp_epochs\": " << c.mlp_epochs
      << ", \"mlp_lr\": " << json::number(c.mlp_lr) << ", \"mlp_batch\": " << c.mlp_batch
      << ", \"mlp_hidden\": " << json::list(c.mlp_hidden, [](Index w) { return std::to_string(w); })
      << ", \"train_limit\": " << c.train_limit << ", \"test_limit\": " << c.test_limit << "},\n"
      << "  \"metalearn_version\": " << json::string(metalearn::version_string) << ",\n"
      << "  \"train_images\": " << json::string(d.train_images) << ", \"train_size\": " << d.train.size()
      << ", \"test_images\": " << json::string(d.test_images) << ", \"test_size\": " << d.test.size() << ",\n"
      << "  \"runs\": [";
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const Run& r = runs[k];
    std::vector<std::string> rows;
    for (Index i = 0; i < r.confusion.rows(); ++i) {
      std::vector<long> row;
      for (Index j = 0; j < r.confusion.cols(); ++j) row.push_back(static_cast<long>(r.confusion(i, j)));
      rows.push_back(json::list(row, [](long v) { return std::to_string(v); }));
    }
    out << (k ? ",\n    " : "\n    ") << "{\"name\": " << json::string(r.name) << ", \"model\": " << json::string(r.model)
        << ", \"settings\": " << json::string(r.settings) << ", \"accuracy\": " << json::number(r.accuracy)
        << ", \"loss\": " << json::number(r.loss) << ", \"anchor\": " << json::number(r.anchor)
        << ", \"anchor_source\": " << json::string(r.anchor_source) << ", \"steps\": " << r.steps
        << ", \"train_seconds\": " << json::number(r.train_seconds) << ", \"eval_seconds\": "
        << json::number(r.eval_seconds) << ", \"examples_per_second\": " << json::number(r.examples_per_second)
        << ",\n     \"epoch\": " << json::numbers(r.epoch) << ",\n     \"train_loss\": " << json::numbers(r.train_loss)
        << ",\n     \"test_loss\": " << json::numbers(r.test_loss)
        << ",\n     \"test_accuracy\": " << json::numbers(r.test_accuracy)
        << ",\n     \"confusion\": " << json::list(rows, [](const std::string& s) { return s; }) << "}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

/// An SVG figure: training loss (left) and test accuracy (right) against epochs, per run, with
/// each run's anchor as a dashed line.
inline std::string to_svg(const std::vector<Run>& runs) {
  namespace svg = examples::svg;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  svg::Panel loss{"training loss (cross-entropy)", "epoch", "loss", {}, {}, true, false};
  svg::Panel acc{"test accuracy (after the first evaluation)", "epoch", "accuracy", {}, {}, false, true};
  for (std::size_t k = 0; k < runs.size(); ++k) {
    const Run& r = runs[k];
    const std::string color = colors[k % 4];
    loss.series.push_back({r.name, color, r.epoch, r.train_loss, "", r.epoch.size() < 40});
    // without the untrained point (accuracy 0.1), so that the trained range fills the panel
    const auto tail = [](const std::vector<double>& v) { return std::vector<double>(v.begin() + 1, v.end()); };
    acc.series.push_back({r.name, color, tail(r.epoch), tail(r.test_accuracy), "", r.epoch.size() < 40});
    std::ostringstream label;
    label << r.name << " anchor " << r.anchor;
    acc.references.push_back({r.anchor, label.str()});
  }
  return svg::charts({loss, acc});
}

}  // namespace fashion
