#pragma once
// The sine-regression experiment of the MAML paper (Finn et al. 2017, §5.1), as a library of
// small pieces that examples/sine_regression.cpp puts together and the tests call directly:
// flags, meta-training, the "pretrained on all tasks" baseline, evaluation, and the report
// (table, JSON, SVG figure).
#include "common.hpp"

#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>
#include <metalearn/version.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sine {

using metalearn::Index;
using metalearn::Vector;

/// Every flag of the example, with the paper's setting as default (α as the paper's code, see README).
struct Config {
  long iterations = 70000;        // meta-iterations (and baseline iterations)
  examples::Algorithm algorithm = examples::Algorithm::maml;  // maml, meta-sgd, maml++ or anil
  std::string protocol = "maml";  // the task distribution and anchors: "maml" (MAML paper) or "meta-sgd"
  int order = 2;                  // 1: first-order MAML, 2: exact second order
  int inner_steps = 1;            // inner gradient steps during meta-training
  double inner_lr = 0.001;        // α: the paper's code (its text says 0.01; see README)
  double inner_lr_max = 0;        // Meta-SGD: > 0 draws each initial α from [inner_lr, inner_lr_max]
  long first_order_iterations = 0;  // MAML++: first order for this many iterations
  long multi_step_iterations = 0;   // MAML++: the annealed multi-step loss for this many iterations
  long inner_batch = 0;             // Reptile: support points per inner step (0: all)
  bool inner_adam = false;          // Reptile: Adam (beta1 = 0) in the inner loop instead of SGD
  double lambda = 1.0;              // iMAML: the proximal term's strength
  int cg_iterations = 5;            // iMAML: conjugate-gradient iterations
  double inner_clip = 0;            // iMAML: clip each entry of the inner direction (0: off)
  long context = 5;                 // CAVIA: context parameters appended to the inputs
  double task_clip = 10;            // CAVIA: clamp of each task's meta-gradient (0: off)
  bool context_from_support = false;  // CAVIA: each task's context starts at W_s s + b_s
  double meta_lr = 0.001;         // Adam's learning rate
  int meta_batch = 25;            // tasks per meta-iteration
  int shots = 10;                 // K support (and query) points per training task
  std::vector<Index> hidden{40, 40};  // hidden widths
  int threads = 1;                // workers for the tasks of a meta-batch
  std::uint64_t seed = 1;         // initialisation and training tasks
  int eval_tasks = 600;           // test tasks
  std::string init = "glorot_uniform";  // weight initialisation
  std::string report;             // JSON report file
  std::string plot;               // SVG figure file
  std::string save;               // checkpoint file written at the end (and every save_every iterations)
  long save_every = 0;            // 0: only at the end
  std::string resume;             // checkpoint file to continue meta-training from
  bool quiet = false;             // no progress output

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
    f.inner_clip = inner_clip;
    f.context = context;
    f.task_clip = task_clip;
    f.context_from_support = context_from_support;
    f.summary_size = 2;  // [x; y]
    f.threads = threads;
    return f;
  }
};

using examples::UsageError;

inline std::string usage() {
  return R"(sine_regression: MAML on sinusoid regression (Finn et al. 2017, section 5.1)

usage: sine_regression [flags]
  --iterations N     meta-iterations, and baseline iterations  (default 70000)
  --algorithm A      maml, meta-sgd, maml++, anil, reptile, imaml or cavia (default maml)
  --protocol P       maml: the MAML paper's tasks y = A sin(x - phi), A in [0.1, 5],
                     phi in [0, pi], and its numbers beside ours; meta-sgd: Meta-SGD's
                     y = A sin(w x + b), w in [0.8, 1.2], b in [0, pi], and its Table 1
                     (train with --shots 5: MSE after one step at K = 5, 10, 20)
                                                                 (default maml)
  --order {1,2}      1: first order, 2: exact second order       (default 2)
  --inner-steps N    inner gradient steps in meta-training       (default 1)
  --inner-lr X       inner learning rate alpha (Meta-SGD, MAML++: every learned rate's
                     start)                                      (default 0.001, as the
                     paper's code; its text says 0.01, which lets a few test tasks
                     diverge under repeated steps: README explains)
  --inner-lr-max X   Meta-SGD: draw each initial rate from [--inner-lr, X] (the paper:
                     0.005, 0.1)                                 (default: constant)
  --first-order-iterations N   MAML++: first order for N meta-iterations, then
                     --order                                     (default 0)
  --multi-step-iterations N    MAML++: the multi-step loss, its weights annealed
                     towards the last step, for N meta-iterations (default 0)
  --inner-batch N    Reptile: support points per inner step     (default: all)
  --inner-optimizer sgd|adam   Reptile: the per-task optimizer (Adam with beta1 = 0,
                     as the authors' code)                      (default sgd)
  --lambda X         iMAML: the proximal term's strength        (default 1)
  --cg-iterations N  iMAML: conjugate-gradient iterations       (default 5)
  --inner-clip X     iMAML: clip each entry of the inner step's direction to [-X, X]
                     (the solution it converges to is unchanged) (default: off)
  --context N        CAVIA: context parameters appended to the inputs, adapted by the
                     inner loop from 0 (the authors: 5; use --inner-lr 1) (default 5)
  --task-clip X      CAVIA: clamp each task's meta-gradient to [-X, X], 0: off (default 10)
  --context-start zero|support   CAVIA: each task's context starts at 0 (the authors'),
                     or at W_s s + b_s with s the mean of the support points' [x; y]
                     and W_s, b_s meta-learned (the seed's phi_t = W x_t + b) (default zero)
  --meta-lr X        Adam learning rate                          (default 0.001)
  --meta-batch N     tasks per meta-iteration                    (default 25)
  --shots K          support and query points per training task  (default 10)
  --hidden W,W,...   hidden layer widths                         (default 40,40)
  --threads N        threads for the tasks of a meta-batch       (default 1)
  --seed N           seed of initialisation and training tasks   (default 1)
  --eval-tasks N     test tasks for the evaluation               (default 600)
  --init NAME        glorot_uniform, he_uniform or truncated_normal (sigma 0.01, as the
                     paper's code)                               (default glorot_uniform)
  --report FILE      write a JSON report
  --plot FILE        write an SVG figure like the paper's Figure 2
  --save FILE        write a meta-training checkpoint at the end (atomically: a crash
                     leaves the previous checkpoint)
  --save-every N     also write it every N meta-iterations (needs --save)
  --resume FILE      continue meta-training from a checkpoint up to --iterations; the
                     training flags must be those the checkpoint was written with
  --quiet            no progress output
  --help             this text
Evaluation: for K in {5, 10, 20}, adapt on K points with the training rates and report the
MSE on 100 evenly spaced points in [-5, 5] after 0, 1, 5 and 10 steps (mean and 95% CI).
Under each row: the median MSE, and how many test tasks ended worse than before adaptation
(a higher or non-finite MSE) after 1, 5 and 10 steps.
)";
}

namespace detail {
using examples::parse_integer;
using examples::parse_real;
}  // namespace detail

/// Parses the flags (argv[0] excluded). Throws UsageError on anything unknown or malformed.
/// Returns false when --help was given (the caller prints usage() and exits 0).
inline bool parse(const std::vector<std::string>& args, Config& c) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") return false;
    if (flag == "--quiet") {
      c.quiet = true;
      continue;
    }
    if (flag.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + flag + "' (flags start with --)");
    if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
    const std::string& v = args[++i];
    if (flag == "--iterations") c.iterations = detail::parse_integer(flag, v, 0, 1000000000L);
    else if (flag == "--algorithm") c.algorithm = examples::parse_algorithm(flag, v);
    else if (flag == "--protocol") {
      if (v != "maml" && v != "meta-sgd") throw UsageError("--protocol expects maml or meta-sgd, got '" + v + "'");
      c.protocol = v;
    } else if (flag == "--inner-lr-max") c.inner_lr_max = detail::parse_real(flag, v);
    else if (flag == "--first-order-iterations") c.first_order_iterations = detail::parse_integer(flag, v, 0, 1000000000L);
    else if (flag == "--multi-step-iterations") c.multi_step_iterations = detail::parse_integer(flag, v, 0, 1000000000L);
    else if (flag == "--inner-batch") c.inner_batch = detail::parse_integer(flag, v, 1, 1000000L);
    else if (flag == "--inner-optimizer") {
      if (v != "sgd" && v != "adam") throw UsageError("--inner-optimizer expects sgd or adam, got '" + v + "'");
      c.inner_adam = v == "adam";
    } else if (flag == "--lambda") c.lambda = detail::parse_real(flag, v);
    else if (flag == "--cg-iterations") c.cg_iterations = static_cast<int>(detail::parse_integer(flag, v, 1, 100000));
    else if (flag == "--inner-clip") c.inner_clip = detail::parse_real(flag, v);
    else if (flag == "--context") c.context = detail::parse_integer(flag, v, 1, 100000);
    else if (flag == "--task-clip") c.task_clip = detail::parse_real(flag, v);
    else if (flag == "--context-start") {
      if (v != "zero" && v != "support") throw UsageError("--context-start expects zero or support, got '" + v + "'");
      c.context_from_support = v == "support";
    }
    else if (flag == "--order") c.order = static_cast<int>(detail::parse_integer(flag, v, 1, 2));
    else if (flag == "--inner-steps") c.inner_steps = static_cast<int>(detail::parse_integer(flag, v, 1, 1000));
    else if (flag == "--inner-lr") c.inner_lr = detail::parse_real(flag, v);
    else if (flag == "--meta-lr") c.meta_lr = detail::parse_real(flag, v);
    else if (flag == "--meta-batch") c.meta_batch = static_cast<int>(detail::parse_integer(flag, v, 1, 100000));
    else if (flag == "--shots") c.shots = static_cast<int>(detail::parse_integer(flag, v, 1, 100000));
    else if (flag == "--threads") c.threads = static_cast<int>(detail::parse_integer(flag, v, 1, 256));
    else if (flag == "--seed") c.seed = static_cast<std::uint64_t>(detail::parse_integer(flag, v, 0, std::numeric_limits<long>::max()));
    else if (flag == "--eval-tasks") c.eval_tasks = static_cast<int>(detail::parse_integer(flag, v, 1, 10000000));
    else if (flag == "--report") c.report = v;
    else if (flag == "--plot") c.plot = v;
    else if (flag == "--save" || flag == "--resume") {
      if (v.empty()) throw UsageError(flag + " expects a file name");
      (flag == "--save" ? c.save : c.resume) = v;
    } else if (flag == "--save-every") c.save_every = detail::parse_integer(flag, v, 1, 1000000000L);
    else if (flag == "--init") {
      if (v != "glorot_uniform" && v != "he_uniform" && v != "truncated_normal")
        throw UsageError("--init expects glorot_uniform, he_uniform or truncated_normal, got '" + v + "'");
      c.init = v;
    } else if (flag == "--hidden") {
      c.hidden.clear();
      std::stringstream in(v);
      std::string item;
      while (std::getline(in, item, ',')) c.hidden.push_back(detail::parse_integer("--hidden", item, 1, 100000));
      if (c.hidden.empty() || v.back() == ',') throw UsageError("--hidden expects widths like 40,40, got '" + v + "'");
    } else {
      throw UsageError("unknown flag '" + flag + "' (see --help)");
    }
  }
  if (c.save_every > 0 && c.save.empty()) throw UsageError("--save-every needs --save FILE");
  if (c.inner_lr_max > 0 && c.algorithm != examples::Algorithm::meta_sgd)
    throw UsageError("--inner-lr-max is Meta-SGD's (--algorithm meta-sgd)");
  if (c.inner_lr_max > 0 && c.inner_lr_max < c.inner_lr)
    throw UsageError("--inner-lr-max must be >= --inner-lr (the range of the initial rates)");
  if ((c.first_order_iterations > 0 || c.multi_step_iterations > 0) && c.algorithm != examples::Algorithm::maml_pp)
    throw UsageError("--first-order-iterations and --multi-step-iterations are MAML++'s (--algorithm maml++)");
  if ((c.inner_batch > 0 || c.inner_adam) && c.algorithm != examples::Algorithm::reptile)
    throw UsageError("--inner-batch and --inner-optimizer are Reptile's (--algorithm reptile)");
  if (c.inner_batch > c.shots) throw UsageError("--inner-batch must be <= --shots");
  if ((c.lambda != 1.0 || c.cg_iterations != 5 || c.inner_clip != 0) && c.algorithm != examples::Algorithm::imaml)
    throw UsageError("--lambda, --cg-iterations and --inner-clip are iMAML's (--algorithm imaml)");
  if (!(c.inner_clip >= 0)) throw UsageError("--inner-clip must be >= 0");
  if ((c.context != 5 || c.task_clip != 10 || c.context_from_support) && c.algorithm != examples::Algorithm::cavia)
    throw UsageError("--context, --task-clip and --context-start are CAVIA's (--algorithm cavia)");
  if (!(c.task_clip >= 0)) throw UsageError("--task-clip must be >= 0");
  return true;
}

/// The flags that determine meta-training, as stored in a checkpoint's metadata: a resumed run
/// must use the same ones (the network's shape is checked through the model description).
inline std::string training_signature(const Config& c) {
  std::ostringstream out;
  out << std::setprecision(17) << "--order " << c.order << "\n--inner-steps " << c.inner_steps << "\n--inner-lr "
      << c.inner_lr << "\n--meta-lr " << c.meta_lr << "\n--meta-batch " << c.meta_batch << "\n--shots " << c.shots
      << "\n--seed " << c.seed << "\n--init " << c.init;
  // the newer flags only when they differ from their defaults, so that a MAML checkpoint of an
  // earlier version still resumes
  if (c.algorithm != examples::Algorithm::maml) out << "\n--algorithm " << examples::algorithm_key(c.algorithm);
  if (c.protocol != "maml") out << "\n--protocol " << c.protocol;
  if (c.inner_lr_max > 0) out << "\n--inner-lr-max " << c.inner_lr_max;
  if (c.first_order_iterations > 0) out << "\n--first-order-iterations " << c.first_order_iterations;
  if (c.multi_step_iterations > 0) out << "\n--multi-step-iterations " << c.multi_step_iterations;
  if (c.inner_batch > 0) out << "\n--inner-batch " << c.inner_batch;
  if (c.inner_adam) out << "\n--inner-optimizer adam";
  if (c.algorithm == examples::Algorithm::imaml)
    out << "\n--lambda " << c.lambda << "\n--cg-iterations " << c.cg_iterations << "\n--inner-clip " << c.inner_clip;
  if (c.algorithm == examples::Algorithm::cavia) out << "\n--context " << c.context << "\n--task-clip " << c.task_clip;
  if (c.context_from_support) out << "\n--context-start support";
  return out.str();
}

/// Throws `metalearn::checkpoint_error` naming every flag whose value differs between the
/// checkpoint's signature and this run's.
inline void check_signature(const std::string& saved, const std::string& current, const std::string& file) {
  if (saved == current) return;
  auto lines = [](const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  const auto a = lines(saved), b = lines(current);
  std::string diff;
  for (const auto& line : b) {
    const std::string flag = line.substr(0, line.find(' '));
    std::string was = "(absent)";
    for (const auto& old : a)
      if (old.substr(0, old.find(' ')) == flag) was = old.substr(old.find(' ') + 1);
    if (flag + " " + was != line) diff += (diff.empty() ? "" : ", ") + flag + " " + was + " (this run: " + line.substr(line.find(' ') + 1) + ")";
  }
  if (diff.empty()) diff = "unrecognised metadata";
  throw metalearn::checkpoint_error("metalearn: sine_regression: '" + file +
                                    "' was written with other training flags: " + diff);
}

/// MSE after 0, 1, 5 and 10 steps for one method and K: mean and 95% CI over the test tasks.
struct EvalRow {
  std::string method;  // the algorithm's key ("maml", "meta-sgd", "maml++", "anil") or "pretrained"
  int shots = 0;
  std::vector<int> steps{0, 1, 5, 10};
  std::vector<double> mse;
  std::vector<double> ci95;
  std::vector<double> median;
  std::vector<int> worse;  // test tasks whose MSE is above its value before adaptation, or not finite
};

/// One panel of the figure: a test task, its K points, and predictions on a grid.
struct Panel {
  std::string method;
  int shots = 0;
  std::vector<double> x, truth, before, after1, after10;  // on the grid
  std::vector<double> support_x, support_y;
};

/// Everything the run measured.
struct Report {
  Config config;
  std::string algorithm;             // the meta-learned model's algorithm and options (describe())
  double train_seconds = 0;          // meta-training
  double iterations_per_second = 0;  // of meta-training
  double baseline_seconds = 0;       // pretrained baseline training
  double eval_seconds = 0;
  double final_meta_loss = 0;        // mean meta-loss of the last 1000 iterations (of this run)
  long resumed_from = 0;             // iteration of the --resume checkpoint (0: from scratch)
  long checkpoints_written = 0;      // by --save and --save-every
  std::vector<EvalRow> eval;
  std::vector<Panel> panels;
};

/// Progress of meta-training, one line per call (the caller decides how often).
using ProgressSink = std::function<void(long iteration, long total, double mean_loss, double elapsed)>;

namespace detail {

template <class Obj>
struct Experiment {
  using S = float;
  using Sampler = metalearn::tasks::SineTasks<S>;
  using Task = typename Sampler::Task;
  using Batch = typename Obj::Batch;

  const Config& config;
  Obj objective;

  static constexpr std::uint64_t kEvalSeed = 20170309;  // fixed: every run is evaluated on the same tasks

  typename Sampler::Options sampler_options(int shots) const {
    typename Sampler::Options o;
    o.support = shots;
    o.query = shots;
    if (config.protocol == "meta-sgd") {  // y = A sin(ωx + b) = A sin(ωx − φ) with φ = −b ∈ [−π, 0]
      o.frequency_min = 0.8;
      o.frequency_max = 1.2;
      o.phase_min = -o.phase_max;
      o.phase_max = 0.0;
    }
    return o;
  }

  // Meta-training with `algorithm`: returns its meta-parameters (θ, then any learned rates);
  // fills the timing fields of the report.
  template <class Algorithm>
  Vector<S> meta_train(Algorithm& algorithm, Report& report, const ProgressSink& progress) {
    metalearn::Rng rng(config.seed);
    Vector<S> theta(algorithm.parameter_count());
    algorithm.initialize(theta, rng);
    metalearn::optim::Adam<S> adam(theta.size(), {config.meta_lr});
    Sampler sampler(config.seed, sampler_options(config.shots), /*stream=*/1);
    metalearn::TrainerOptions to;
    to.meta_batch = config.meta_batch;
    metalearn::MetaTrainer trainer(algorithm, adam, sampler, to);
    const std::string model = algorithm.describe();  // the network and every option of the algorithm
    report.algorithm = model;
    const std::string signature = training_signature(config);
    if (!config.resume.empty()) {  // all or nothing: θ, Adam, the counters and the task stream
      const auto checkpoint = metalearn::io::read_checkpoint<S>(config.resume);
      check_signature(checkpoint.metadata, signature, config.resume);
      if (checkpoint.iteration > config.iterations)
        throw metalearn::checkpoint_error("metalearn: sine_regression: '" + config.resume + "' is at iteration " +
                                          std::to_string(checkpoint.iteration) + ", beyond --iterations " +
                                          std::to_string(config.iterations));
      metalearn::io::restore_checkpoint(checkpoint, model, theta, adam, trainer, sampler.rng(), config.resume);
      report.resumed_from = static_cast<long>(checkpoint.iteration);
    }
    auto save = [&] {
      metalearn::io::save_checkpoint<S>(config.save, model, theta, adam, trainer, sampler.rng(), signature);
      ++report.checkpoints_written;
    };
    std::vector<double> window(1000, 0.0);
    double window_sum = 0;
    long filled = 0;
    const long remaining = config.iterations - static_cast<long>(trainer.iteration());
    trainer.run(theta, remaining, [&](const metalearn::Progress& p) {
      if (config.save_every > 0 && p.iteration % config.save_every == 0 && p.iteration < config.iterations) save();
      const std::size_t slot = static_cast<std::size_t>((p.iteration - 1) % 1000);
      window_sum += p.meta_loss - window[slot];
      window[slot] = p.meta_loss;
      filled = std::min<long>(filled + 1, 1000);
      if (progress) progress(p.iteration, config.iterations, window_sum / static_cast<double>(filled), p.elapsed_seconds);
      report.train_seconds = p.elapsed_seconds;
    });
    if (!config.save.empty()) save();
    report.iterations_per_second =
        report.train_seconds > 0 ? static_cast<double>(remaining) / report.train_seconds : 0.0;
    report.final_meta_loss = filled > 0 ? window_sum / static_cast<double>(filled) : 0.0;
    return theta;
  }

  // The baseline: the same network and initialisation trained by plain regression on the
  // support points of a meta-batch of tasks per iteration, for as many iterations.
  Vector<S> pretrain(Report& report) {
    const auto start = std::chrono::steady_clock::now();
    metalearn::Rng rng(config.seed);
    Vector<S> theta(objective.parameter_count());
    objective.initialize(theta, rng);
    metalearn::optim::Adam<S> adam(theta.size(), {config.meta_lr});
    Sampler sampler(config.seed, sampler_options(config.shots), /*stream=*/2);
    const Index points = static_cast<Index>(config.meta_batch) * config.shots;
    Batch batch{metalearn::Matrix<S>(1, points), metalearn::Matrix<S>(1, points)};
    Batch task_points;
    typename Obj::Workspace ws;
    Vector<S> grad(theta.size());
    for (long i = 0; i < config.iterations; ++i) {
      for (int t = 0; t < config.meta_batch; ++t) {
        sampler.sample_points(sampler.sample_sinusoid(), config.shots, task_points);
        batch.inputs.middleCols(static_cast<Index>(t) * config.shots, config.shots) = task_points.inputs;
        batch.targets.middleCols(static_cast<Index>(t) * config.shots, config.shots) = task_points.targets;
      }
      objective.loss_and_gradient(theta, batch, grad, ws);
      adam.step(theta, grad);
    }
    report.baseline_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return theta;
  }

  // Adapts each test task on K points with `algorithm` from its meta-parameters `meta` and
  // records the MSE on the grid after 0, 1, 5, 10 steps; the first test task of K = 5 and of
  // K = 10 become the figure's panels.
  template <class Algorithm>
  void evaluate(const std::string& method, const Vector<S>& meta, Algorithm& algorithm, Report& report) {
    const auto& model = algorithm.model();  // the objective, or CAVIA's objective with a context
    typename std::decay_t<decltype(model)>::Workspace ws;
    Vector<S> fast(model.parameter_count());
    metalearn::Matrix<S> prediction(1, 100);
    for (int shots : {5, 10, 20}) {
      Sampler sampler(kEvalSeed, sampler_options(shots), static_cast<std::uint64_t>(shots));
      EvalRow row;
      row.method = method;
      row.shots = shots;
      std::vector<std::vector<double>> mse(row.steps.size());
      Task task;
      for (int t = 0; t < config.eval_tasks; ++t) {
        const auto sinusoid = sampler.sample(task);
        const Batch grid = sampler.grid(sinusoid, 100);
        Panel panel;
        const bool draw = t == 0 && shots != 20;
        for (std::size_t s = 0; s < row.steps.size(); ++s) {
          const int done = row.steps[s];
          try {
            algorithm.adapt(meta, task.support, fast, done);  // from the start: rates may differ by step
          } catch (const metalearn::numerical_error&) {  // the steps diverged: an infinite MSE, counted as worse
            mse[s].push_back(std::numeric_limits<double>::infinity());
            continue;
          }
          mse[s].push_back(static_cast<double>(metalearn::evaluate_loss(model, fast, grid, ws)));
          if (draw && (done == 0 || done == 1 || done == 10)) {
            model.predict(fast, grid.inputs, prediction, ws);
            std::vector<double> values(prediction.data(), prediction.data() + prediction.size());
            (done == 0 ? panel.before : done == 1 ? panel.after1 : panel.after10) = values;
          }
        }
        if (draw) {
          panel.method = method;
          panel.shots = shots;
          for (Index j = 0; j < grid.size(); ++j) {
            panel.x.push_back(grid.inputs(0, j));
            panel.truth.push_back(grid.targets(0, j));
          }
          for (Index j = 0; j < task.support.size(); ++j) {
            panel.support_x.push_back(task.support.inputs(0, j));
            panel.support_y.push_back(task.support.targets(0, j));
          }
          report.panels.push_back(std::move(panel));
        }
      }
      for (const auto& values : mse) {
        int worse = 0;
        for (std::size_t t = 0; t < values.size(); ++t) worse += !(values[t] <= mse[0][t]);
        row.worse.push_back(worse);
        std::vector<double> sorted = values;
        std::sort(sorted.begin(), sorted.end(), [](double a, double b) { return a < b || (a == a && b != b); });  // NaN last
        const std::size_t mid = sorted.size() / 2;
        row.median.push_back(sorted.size() % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]));
        double mean = 0, var = 0;
        for (double v : values) mean += v;
        mean /= static_cast<double>(values.size());
        for (double v : values) var += (v - mean) * (v - mean);
        const double sd = values.size() > 1 ? std::sqrt(var / static_cast<double>(values.size() - 1)) : 0.0;
        row.mse.push_back(mean);
        row.ci95.push_back(1.96 * sd / std::sqrt(static_cast<double>(values.size())));
      }
      report.eval.push_back(std::move(row));
    }
  }
};

inline metalearn::nn::Initializer initializer(const std::string& name) {
  if (name == "he_uniform") return metalearn::nn::HeUniform{};
  if (name == "truncated_normal") return metalearn::nn::TruncatedNormal{0.01};
  return metalearn::nn::GlorotUniform{};
}

/// The pretrained baseline's fine-tuning rate beside CAVIA (the MAML paper's α; CAVIA's own
/// rate, 1 by the authors, is the context's and would make plain gradient steps diverge).
inline constexpr double kCaviaBaselineLr = 0.01;

template <class Net>
Report run_with(const Config& config, Net net, const ProgressSink& progress) {
  using Obj = metalearn::nn::Objective<Net, metalearn::nn::MeanSquaredError>;
  Experiment<Obj> experiment{config, Obj(std::move(net), {}, initializer(config.init))};
  Report report;
  report.config = config;
  double eval_seconds = 0;
  examples::with_algorithm(config.inner_loop(), experiment.objective, [&](auto& algorithm) {
    const Vector<float> meta = experiment.meta_train(algorithm, report, progress);
    const auto start = std::chrono::steady_clock::now();
    experiment.evaluate(examples::algorithm_key(config.algorithm), meta, algorithm, report);
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  // the baseline is fine-tuned by plain gradient steps of the same α (MAML's adaptation)
  const Vector<float> pretrained = experiment.pretrain(report);
  examples::InnerLoopFlags plain = config.inner_loop();
  plain.algorithm = examples::Algorithm::maml;
  if (config.algorithm == examples::Algorithm::cavia) plain.inner_lr = kCaviaBaselineLr;  // CAVIA's α is the context's
  examples::with_algorithm(plain, experiment.objective, [&](auto& maml) {
    const auto start = std::chrono::steady_clock::now();
    experiment.evaluate("pretrained", pretrained, maml, report);
    eval_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  report.eval_seconds = eval_seconds;
  return report;
}

}  // namespace detail

/// Runs the whole experiment. The paper's 1-40-40-1 network is compiled with fixed sizes;
/// other widths use the run-time network.
inline Report run(const Config& config, const ProgressSink& progress = {}) {
  using namespace metalearn::nn;
  if (config.hidden == std::vector<Index>{40, 40})
    return detail::run_with(config, Mlp<float, Dense<1, 40, Relu>, Dense<40, 40, Relu>, Dense<40, 1>>(), progress);
  std::vector<Index> widths{1};
  widths.insert(widths.end(), config.hidden.begin(), config.hidden.end());
  widths.push_back(1);
  return detail::run_with(config, Mlp<float>(widths, Relu{}), progress);
}

/// The MAML paper's K = 5 numbers (sinusoid regression), after 1, 5 and 10 steps.
struct PaperRow {
  const char* method;
  double mse[3];
};
inline constexpr PaperRow kPaper[] = {{"maml", {0.67, 0.38, 0.35}}, {"pretrained", {2.41, 2.23, 2.19}}};

/// The Meta-SGD paper's Table 1 (its sine protocol, trained 5-shot): MSE after one step at
/// K = 5, 10, 20.
inline constexpr PaperRow kMetaSgdPaper[] = {{"meta-sgd", {0.90, 0.63, 0.50}}, {"maml", {1.13, 0.85, 0.71}}};

/// "MAML", "Meta-SGD", … or "pretrained" for a row's method.
inline const char* method_label(const std::string& method) {
  if (method == "pretrained") return "pretrained";
  for (examples::Algorithm a : {examples::Algorithm::maml, examples::Algorithm::meta_sgd, examples::Algorithm::maml_pp,
                                examples::Algorithm::anil, examples::Algorithm::reptile, examples::Algorithm::imaml,
                                examples::Algorithm::cavia})
    if (method == examples::algorithm_key(a)) return examples::algorithm_label(a);
  return "?";
}

/// The evaluation laid out like the paper's table, with the published numbers of the protocol.
inline std::string table(const Report& r) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(3);
  out << "MSE on 100 points in [-5, 5] after k gradient steps (alpha = " << r.config.inner_lr
      << (r.config.algorithm == examples::Algorithm::meta_sgd || r.config.algorithm == examples::Algorithm::maml_pp
              ? " for the baseline; the learned rates for " + std::string(examples::algorithm_label(r.config.algorithm))
          : r.config.algorithm == examples::Algorithm::reptile
              ? std::string(r.config.inner_adam ? " for the baseline; Reptile's inner Adam" : "")
          : r.config.algorithm == examples::Algorithm::cavia
              ? std::string(" for CAVIA's context") +
                    (r.config.context_from_support ? " (starting at W_s s + b_s, s the support's mean [x; y])" : "") +
                    "; " + metalearn::detail::shortest(detail::kCaviaBaselineLr) + " for the baseline"
          : r.config.algorithm == examples::Algorithm::imaml
              ? " for the baseline; iMAML's steps descend L + (lambda/2)|phi - theta|^2, lambda = " +
                    metalearn::detail::shortest(r.config.lambda)
              : "")
      << "), " << r.config.eval_tasks << " test tasks, mean +- 95% CI\n";
  out << "method           K   k = 0            k = 1            k = 5            k = 10\n";
  const bool meta_sgd = r.config.protocol == "meta-sgd";
  for (int shots : {5, 10, 20}) {
    for (const auto& row : r.eval) {
      if (row.shots != shots) continue;
      out << std::left << std::setw(14) << method_label(row.method) << std::right << std::setw(4) << shots;
      for (std::size_t s = 0; s < row.mse.size(); ++s)
        out << "   " << std::setw(6) << row.mse[s] << " +- " << std::setw(5) << row.ci95[s];
      out << "\n";
      out << "  median          ";
      for (std::size_t s = 0; s < row.median.size(); ++s) out << "   " << std::setw(6) << row.median[s] << "         ";
      out << "worse than k = 0: ";
      for (std::size_t s = 1; s < row.worse.size(); ++s) out << (s > 1 ? " / " : "") << row.worse[s];
      out << " tasks\n";
      if (!meta_sgd && shots == 5) {
        for (const auto& p : kPaper)
          if ((row.method == "pretrained") == (std::string(p.method) == "pretrained"))
            out << "  (MAML paper, " << (row.method == "pretrained" ? "pretrained" : "MAML") << ") 5      -    "
                << std::setw(10) << p.mse[0] << "       " << std::setw(10) << p.mse[1] << "       " << std::setw(10)
                << p.mse[2] << "\n";
      }
      if (meta_sgd && row.method != "pretrained") {
        const int col = shots == 5 ? 0 : shots == 10 ? 1 : 2;
        for (const auto& p : kMetaSgdPaper)
          out << "  (Meta-SGD paper, " << method_label(p.method) << ") " << std::setw(2) << shots << "  -    "
              << std::setw(10) << p.mse[col] << "\n";
      }
    }
  }
  return out.str();
}

namespace detail {
using examples::json::list;
using examples::json::number;
using examples::json::string;
}  // namespace detail

/// The JSON report: config (every flag), timings, and the evaluation rows.
inline std::string to_json(const Report& r) {
  using detail::number;
  using detail::string;
  const Config& c = r.config;
  std::ostringstream out;
  out << "{\n  \"config\": {"
      << "\"iterations\": " << c.iterations << ", \"algorithm\": " << string(examples::algorithm_key(c.algorithm))
      << ", \"protocol\": " << string(c.protocol) << ", \"order\": " << c.order << ", \"inner_steps\": " << c.inner_steps
      << ", \"inner_lr\": " << number(c.inner_lr) << ", \"inner_lr_max\": " << number(c.inner_lr_max)
      << ", \"first_order_iterations\": " << c.first_order_iterations
      << ", \"multi_step_iterations\": " << c.multi_step_iterations << ", \"inner_batch\": " << c.inner_batch
      << ", \"inner_optimizer\": " << string(c.inner_adam ? "adam" : "sgd") << ", \"lambda\": " << number(c.lambda)
      << ", \"cg_iterations\": " << c.cg_iterations << ", \"inner_clip\": " << number(c.inner_clip)
      << ", \"context\": " << c.context << ", \"task_clip\": " << number(c.task_clip)
      << ", \"context_start\": " << string(c.context_from_support ? "support" : "zero")
      << ", \"meta_lr\": " << number(c.meta_lr)
      << ", \"meta_batch\": " << c.meta_batch << ", \"shots\": " << c.shots
      << ", \"hidden\": " << detail::list(c.hidden, [](Index w) { return std::to_string(w); })
      << ", \"threads\": " << c.threads << ", \"seed\": " << c.seed << ", \"eval_tasks\": " << c.eval_tasks
      << ", \"init\": " << string(c.init) << ", \"report\": " << string(c.report) << ", \"plot\": " << string(c.plot)
      << ", \"save\": " << string(c.save) << ", \"save_every\": " << c.save_every << ", \"resume\": " << string(c.resume)
      << ", \"quiet\": " << (c.quiet ? "true" : "false") << "},\n"
      << "  \"metalearn_version\": " << string(metalearn::version_string) << ",\n"
      << "  \"algorithm\": " << string(r.algorithm) << ",\n"
      << "  \"train_seconds\": " << number(r.train_seconds) << ",\n"
      << "  \"iterations_per_second\": " << number(r.iterations_per_second) << ",\n"
      << "  \"baseline_seconds\": " << number(r.baseline_seconds) << ",\n"
      << "  \"eval_seconds\": " << number(r.eval_seconds) << ",\n"
      << "  \"final_meta_loss\": " << number(r.final_meta_loss) << ",\n"
      << "  \"resumed_from\": " << r.resumed_from << ",\n"
      << "  \"checkpoints_written\": " << r.checkpoints_written << ",\n"
      << "  \"eval\": [";
  for (std::size_t i = 0; i < r.eval.size(); ++i) {
    const EvalRow& e = r.eval[i];
    out << (i ? ",\n    " : "\n    ") << "{\"method\": " << string(e.method) << ", \"shots\": " << e.shots
        << ", \"steps\": " << detail::list(e.steps, [](int s) { return std::to_string(s); })
        << ", \"mse\": " << detail::list(e.mse, number) << ", \"ci95\": " << detail::list(e.ci95, number)
        << ", \"median\": " << detail::list(e.median, number)
        << ", \"worse\": " << detail::list(e.worse, [](int d) { return std::to_string(d); }) << "}";
  }
  out << "\n  ]\n}\n";
  return out.str();
}

namespace detail {
using examples::svg::tick;
}  // namespace detail

/// An SVG figure like the paper's Figure 2: the meta-learned model and the pretrained baseline (rows) at
/// K = 5 and K = 10 (columns); the true function, the K points, and the predictions before
/// adaptation and after 1 and 10 gradient steps.
inline std::string to_svg(const Report& r) {
  const double pw = 460, ph = 320, ml = 52, mr = 16, mt = 34, mb = 44;  // panel size and margins
  const int cols = 2, rows = 2;
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << cols * pw << "\" height=\"" << rows * ph + 50
      << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  struct Style {
    const char* label;
    const char* color;
    const char* dash;
    double width;
  };
  const Style truth{"ground truth", "#d62728", "", 2.2}, before{"pre-update", "#2ca02c", "2,4", 1.8},
      one{"1 grad step", "#7fbf7f", "8,4", 1.8}, ten{"10 grad steps", "#1a5e1a", "8,4", 2.0};
  for (const Panel& p : r.panels) {
    const int col = p.shots == 5 ? 0 : 1, row = p.method == "pretrained" ? 1 : 0;
    const double ox = col * pw, oy = row * ph;
    double lo = 0, hi = 0;
    for (const auto* v : {&p.truth, &p.before, &p.after1, &p.after10, &p.support_y})
      for (double y : *v) {
        lo = std::min(lo, y);
        hi = std::max(hi, y);
      }
    const double span = std::max(1.0, std::ceil(std::max(std::abs(lo), std::abs(hi))));  // symmetric, whole units
    auto X = [&](double x) { return ox + ml + (x + 5.0) / 10.0 * (pw - ml - mr); };
    auto Y = [&](double y) { return oy + mt + (span - y) / (2 * span) * (ph - mt - mb); };
    out << "<text x=\"" << ox + pw / 2 << "\" y=\"" << oy + 20 << "\" text-anchor=\"middle\" font-size=\"14\">"
        << method_label(p.method) << ", K = " << p.shots << "</text>\n";
    out << "<rect x=\"" << X(-5) << "\" y=\"" << Y(span) << "\" width=\"" << X(5) - X(-5) << "\" height=\""
        << Y(-span) - Y(span) << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (int t = -5; t <= 5; ++t)
      out << "<line x1=\"" << X(t) << "\" y1=\"" << Y(-span) << "\" x2=\"" << X(t) << "\" y2=\"" << Y(-span) + 5
          << "\" stroke=\"#444\"/><text x=\"" << X(t) << "\" y=\"" << Y(-span) + 18
          << "\" text-anchor=\"middle\">" << t << "</text>\n";
    const double step = span <= 2 ? 0.5 : span <= 4 ? 1 : 2;
    for (double t = -std::floor(span / step) * step; t <= span + 1e-9; t += step)
      out << "<line x1=\"" << X(-5) - 5 << "\" y1=\"" << Y(t) << "\" x2=\"" << X(-5) << "\" y2=\"" << Y(t)
          << "\" stroke=\"#444\"/><text x=\"" << X(-5) - 8 << "\" y=\"" << Y(t) + 4 << "\" text-anchor=\"end\">"
          << detail::tick(t) << "</text>\n";
    out << "<text x=\"" << (X(-5) + X(5)) / 2 << "\" y=\"" << oy + ph - 6 << "\" text-anchor=\"middle\">x</text>\n";
    auto curve = [&](const std::vector<double>& y, const Style& s) {
      out << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"" << s.width << "\"";
      if (*s.dash) out << " stroke-dasharray=\"" << s.dash << "\"";
      out << " points=\"";
      for (std::size_t i = 0; i < y.size(); ++i) out << X(p.x[i]) << "," << Y(std::clamp(y[i], -span, span)) << " ";
      out << "\"/>\n";
    };
    curve(p.truth, truth);
    curve(p.before, before);
    curve(p.after1, one);
    curve(p.after10, ten);
    for (std::size_t i = 0; i < p.support_x.size(); ++i) {
      const double cx = X(p.support_x[i]), cy = Y(p.support_y[i]);
      out << "<path d=\"M" << cx << "," << cy - 6 << " L" << cx - 5.5 << "," << cy + 4 << " L" << cx + 5.5 << ","
          << cy + 4 << " Z\" fill=\"#7b3294\"/>\n";
    }
  }
  // legend
  const double ly = rows * ph + 18;
  double lx = 24;
  for (const Style* s : {&truth, &before, &one, &ten}) {
    out << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 34 << "\" y2=\"" << ly << "\" stroke=\""
        << s->color << "\" stroke-width=\"" << s->width << "\"";
    if (*s->dash) out << " stroke-dasharray=\"" << s->dash << "\"";
    out << "/><text x=\"" << lx + 40 << "\" y=\"" << ly + 4 << "\">" << s->label << "</text>\n";
    lx += 172;
  }
  out << "<path d=\"M" << lx + 10 << "," << ly - 6 << " L" << lx + 4.5 << "," << ly + 4 << " L" << lx + 15.5 << ","
      << ly + 4 << " Z\" fill=\"#7b3294\"/><text x=\"" << lx + 24 << "\" y=\"" << ly + 4
      << "\">points used for gradient</text>\n";
  out << "</svg>\n";
  return out.str();
}

}  // namespace sine
