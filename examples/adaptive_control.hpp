#pragma once
// Adaptation inside a control loop (the seed's robot control): GrBAL (Nagabandi, Clavera et
// al., ICLR 2019) on a torque-limited pendulum and a cart-pole whose physics change between and
// within episodes. A dynamics model f_θ(s, a) → Δs is meta-trained by MAML on windows of M + K
// consecutive transitions (one inner step on the first M, loss on the next K); at every control
// step the controller resets to θ*, adapts on the last M transitions and plans by model-
// predictive control (random shooting or the cross-entropy method) with all candidates rolled
// through the network at once. Beside it: the same network trained on all data ("MB") and that
// network adapted online ("MB+DE"). A library of pieces that examples/adaptive_control.cpp puts
// together and the tests call directly: simulators, data collection, training, the planner,
// the evaluations, the report and the figure.
#include "common.hpp"

#include <metalearn/core/statistics.hpp>
#include <metalearn/data/standardizer.hpp>
#include <metalearn/data/transition_window.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/online.hpp>
#include <metalearn/nn/init.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/version.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

namespace control {

using metalearn::Index;
using metalearn::Matrix;
using metalearn::Vector;
using S = float;  // the model's scalar; the simulation runs in double

constexpr double kPi = 3.14159265358979323846;

/// Physics of one task: the system's mass and length (scales of the nominal ones) and the gain
/// of its motor (the fraction of the commanded torque or force it delivers).
struct Physics {
  double mass = 1, length = 1, gain = 1;
};

/// A range of physics, each drawn uniformly; the motor's sign too (a motor wired the wrong way
/// round: the "crippled joint" whose actuator flips sign) when `either_sign`.
struct PhysicsRange {
  double mass_lo, mass_hi, length_lo, length_hi, gain_lo, gain_hi;
  bool either_sign;
  Physics draw(metalearn::Rng& rng) const {
    Physics p;
    p.mass = rng.uniform(mass_lo, mass_hi);
    p.length = rng.uniform(length_lo, length_hi);
    p.gain = rng.uniform(gain_lo, gain_hi);
    if (either_sign && rng.uniform() < 0.5) p.gain = -p.gain;
    return p;
  }
};

/// Angle wrapped to (−π, π].
inline double wrap(double a) { return std::remainder(a, 2 * kPi); }

/// One classical RK4 step of ẋ = f(x) over h.
template <class State, class F>
State rk4(const State& x, double h, F&& f) {
  const State k1 = f(x);
  const State k2 = f(State(x + 0.5 * h * k1));
  const State k3 = f(State(x + 0.5 * h * k2));
  const State k4 = f(State(x + h * k3));
  return x + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
}

/// A point mass m on a massless rod of length l, θ measured from upright (0 up, π hanging):
///   θ̈ = (g/l) sin θ + gain · u / (m l²),   u ∈ [−u_max, u_max]
/// (the ALPaCA authors' pendulum ranges: m, l ∈ [0.5, 1.5]; dt = 0.05). State (θ, ω); the
/// model reads (cos θ, sin θ, ω, u) and predicts Δ(θ, ω).
struct Pendulum {
  static constexpr int state_size = 2, feature_size = 3, action_size = 1;
  static constexpr const char* name = "pendulum";
  static constexpr double g = 9.81, dt = 0.05, max_action = 20.0;
  static constexpr int substeps = 2;  // RK4 steps per control step
  static constexpr int episode_steps = 300;
  /// Planning horizon (1 s): with 0.5 s random shooting stalls half-way up on the heavy
  /// pendulums even with the true physics (a torque-limited swing-up must pump).
  static constexpr int horizon = 20;
  using State = Eigen::Matrix<double, 2, 1>;

  static State derivative(const State& x, double u, const Physics& p) {
    const double ml2 = p.mass * p.length * p.length;
    return State(x[1], g / p.length * std::sin(x[0]) + p.gain * u / ml2);
  }
  /// Mechanical energy (u = 0): ½ m l² ω² + m g l cos θ.
  static double energy(const State& x, const Physics& p) {
    return 0.5 * p.mass * p.length * p.length * x[1] * x[1] + p.mass * g * p.length * std::cos(x[0]);
  }
  static State step(const State& x, double u, const Physics& p) {
    u = std::clamp(u, -max_action, max_action);
    State y = x;
    for (int i = 0; i < substeps; ++i) y = rk4(y, dt / substeps, [&](const State& s) { return derivative(s, u, p); });
    return y;
  }
  /// Episodes start hanging down, nearly at rest.
  static State initial(metalearn::Rng& rng) { return State(kPi + rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1)); }
  /// Data collection starts anywhere, so that the data covers the upright region too.
  static State explore_initial(metalearn::Rng& rng) { return State(rng.uniform(-kPi, kPi), rng.uniform(-3, 3)); }
  /// Features of states (columns): cos θ, sin θ, ω.
  template <class States, class Out>
  static void features(const States& x, Out&& f) {
    f.row(0) = x.row(0).array().cos().matrix();
    f.row(1) = x.row(0).array().sin().matrix();
    f.row(2) = x.row(1);
  }
  /// Stage cost of states after an action: 2(1 − cos θ) + 0.01 ω² + 0.001 u² (≈ θ² near
  /// upright; the small weight of ω lets the planner pump energy into a swing).
  template <class States, class Actions, class Costs>
  static void add_cost(const States& x, const Actions& u, Costs&& c) {
    c.array() += 2 * (1 - x.row(0).array().cos()).transpose() + S(0.01) * x.row(1).array().square().transpose() +
                 S(0.001) * u.array().square().transpose();
  }
  /// The angle shown and judged (θ).
  static double angle(const State& x) { return x[0]; }
  /// Upright (|θ| < π/3).
  static bool good(const State& x) { return std::abs(wrap(x[0])) < kPi / 3; }
  /// Success: upright for every one of the last 100 steps.
  static bool success(const std::vector<char>& good_steps) {
    return std::all_of(good_steps.end() - 100, good_steps.end(), [](char b) { return b != 0; });
  }
  static constexpr const char* success_rule = "swing up and hold: |theta| < pi/3 for each of the last 100 of 300 steps";
  /// The mid-episode change: the mass doubles.
  static Physics changed(Physics p) {
    p.mass *= 2;
    return p;
  }
  static constexpr const char* change_rule = "the mass doubles";
  /// Nominal scales: mass 1 kg, length 1 m, u_max 20 N m.
  static constexpr const char* physics_rule = "point mass m kg on a rod of l m, torque gain * u, |u| <= 20 N m";
};

/// Barto, Sutton and Anderson's cart-pole (the equations of OpenAI Gym's CartPole: a uniform
/// pole of half-length l and mass m_p on a cart of mass 1 kg, no friction), θ from upright:
///   ẍ_t = (F + m_p l θ̇² sin θ) / M,   θ̈ = (g sin θ − cos θ ẍ_t) / (l (4/3 − m_p cos² θ / M)),
///   ẍ = ẍ_t − m_p l θ̈ cos θ / M,   M = 1 + m_p,   F = gain · u, |u| ≤ 10 N;
/// m_p = 0.1 · mass, l = 0.5 · length; dt = 0.02. State (x, ẋ, θ, θ̇); the model reads
/// (x, ẋ, cos θ, sin θ, θ̇, u) and predicts Δ(x, ẋ, θ, θ̇).
struct CartPole {
  static constexpr int state_size = 4, feature_size = 5, action_size = 1;
  static constexpr const char* name = "cartpole";
  static constexpr double g = 9.81, dt = 0.02, max_action = 10.0, cart_mass = 1.0;
  static constexpr int substeps = 1;
  static constexpr int episode_steps = 200;
  static constexpr int horizon = 10;  ///< planning horizon (0.2 s)
  using State = Eigen::Matrix<double, 4, 1>;

  static State derivative(const State& s, double u, const Physics& p) {
    const double mp = 0.1 * p.mass, l = 0.5 * p.length, total = cart_mass + mp;
    const double sin = std::sin(s[2]), cos = std::cos(s[2]);
    const double temp = (p.gain * u + mp * l * s[3] * s[3] * sin) / total;
    const double theta_acc = (g * sin - cos * temp) / (l * (4.0 / 3.0 - mp * cos * cos / total));
    const double x_acc = temp - mp * l * theta_acc * cos / total;
    return State(s[1], x_acc, s[3], theta_acc);
  }
  /// Energy (u = 0): ½ M ẋ² + m_p l ẋ θ̇ cos θ + (2/3) m_p l² θ̇² + m_p g l cos θ.
  static double energy(const State& s, const Physics& p) {
    const double mp = 0.1 * p.mass, l = 0.5 * p.length, total = cart_mass + mp;
    return 0.5 * total * s[1] * s[1] + mp * l * s[1] * s[3] * std::cos(s[2]) +
           (2.0 / 3.0) * mp * l * l * s[3] * s[3] + mp * g * l * std::cos(s[2]);
  }
  static State step(const State& x, double u, const Physics& p) {
    u = std::clamp(u, -max_action, max_action);
    return rk4(x, dt, [&](const State& s) { return derivative(s, u, p); });
  }
  /// Episodes start near upright at rest (each entry uniform in ±0.05, as Gym's).
  static State initial(metalearn::Rng& rng) {
    return State(rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05),
                 rng.uniform(-0.05, 0.05));
  }
  /// Data collection starts near upright, a little wider.
  static State explore_initial(metalearn::Rng& rng) {
    return State(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(-0.5, 0.5));
  }
  template <class States, class Out>
  static void features(const States& x, Out&& f) {
    f.row(0) = x.row(0);
    f.row(1) = x.row(1);
    f.row(2) = x.row(2).array().cos().matrix();
    f.row(3) = x.row(2).array().sin().matrix();
    f.row(4) = x.row(3);
  }
  /// Stage cost: 2(1 − cos θ) + 0.01 x² + 0.01 θ̇² + 1e-4 u².
  template <class States, class Actions, class Costs>
  static void add_cost(const States& x, const Actions& u, Costs&& c) {
    c.array() += 2 * (1 - x.row(2).array().cos()).transpose() + S(0.01) * x.row(0).array().square().transpose() +
                 S(0.01) * x.row(3).array().square().transpose() + S(1e-4) * u.array().square().transpose();
  }
  /// The angle shown and judged (θ).
  static double angle(const State& x) { return x[2]; }
  /// Balanced: |θ| < 12° and |x| < 2.4 m.
  static bool good(const State& x) { return std::abs(wrap(x[2])) < 12 * kPi / 180 && std::abs(x[0]) < 2.4; }
  /// Success: balanced in at least 195 of the 200 steps.
  static bool success(const std::vector<char>& good_steps) {
    return std::count(good_steps.begin(), good_steps.end(), 1) >= 195;
  }
  static constexpr const char* success_rule = "balance: |theta| < 12 deg and |x| < 2.4 m in >= 195 of 200 steps";
  /// The mid-episode change: the motor loses half of its gain.
  static Physics changed(Physics p) {
    p.gain *= 0.5;
    return p;
  }
  static constexpr const char* change_rule = "the motor loses half of its gain";
  static constexpr const char* physics_rule =
      "pole mass 0.1 * mass kg, half-length 0.5 * length m, cart 1 kg, force gain * u, |u| <= 10 N";
};

/// Settings of one run (every one printed and written to the report).
struct Config {
  std::string system = "both";  // pendulum, cartpole or both
  long seed = 1;
  int seeds = 3;
  // data
  int trajectories = 500;      // physics draws for the first (random) collection
  int trajectory_length = 100; // steps per trajectory
  int hold = 3;                // the random policy holds each action this many steps
  int rounds = 2;              // MPC collection rounds after the random data (each method its own)
  int round_episodes = 20;     // episodes per collection round
  // the model and meta-training
  std::vector<Index> hidden{64, 64};
  int window = 16;         // M: transitions adapted on
  int query = 16;          // K: transitions the adapted model is scored on
  double inner_lr = 0.02;  // α
  int inner_steps = 2;
  int meta_batch = 10;
  long iterations = 50000;  // meta-iterations (MB: as many Adam steps on batches of meta_batch · (M + K))
  double meta_lr = 1e-3;
  // control
  int episodes = 100;
  int horizon = 0;  // 0: the system's (pendulum 20, cart-pole 10)
  int candidates = 500;
  std::string planner = "rs";  // rs (random shooting) or cem
  int cem_iterations = 3;
  double cem_elite = 0.1;
  // prediction evaluation
  int eval_trajectories = 50;
  bool quiet = false;
  std::string report, plot;
  std::string save;  // prefix: <save>-<system>.weights holds GrBAL's θ* and its standardisers (first seed)
};

inline std::string usage() {
  return R"(adaptive_control: a meta-learned dynamics model that adapts at every control step (GrBAL)

  --system NAME       pendulum, cartpole or both                      (default both)
  --seed N            first seed                                       (default 1)
  --seeds N           seeds (each: data, training, evaluation)         (default 3)
  --trajectories N    random-policy trajectories, one physics each     (default 500)
  --length N          steps per trajectory                             (default 100)
  --rounds N          MPC data-collection rounds after them            (default 2)
  --round-episodes N  episodes per round                               (default 20)
  --hidden W,W        hidden widths (ReLU)                             (default 64,64)
  --window M          transitions adapted on                           (default 16)
  --query K           transitions scored after them                    (default 16)
  --inner-lr X        alpha of the inner SGD steps                     (default 0.02)
  --inner-steps N     inner steps                                      (default 2)
  --meta-batch N      windows per meta-batch                           (default 10)
  --iterations N      meta-iterations (MB: as many Adam steps)         (default 50000)
  --meta-lr X         Adam learning rate                               (default 0.001)
  --episodes N        control episodes per method and seed             (default 100)
  --horizon N         planning horizon         (default: pendulum 20, cart-pole 10)
  --candidates N      action sequences per plan (per CEM iteration)    (default 500)
  --planner rs|cem    random shooting or the cross-entropy method      (default rs)
  --save PREFIX       write PREFIX-<system>.weights: GrBAL's theta* (first seed) with
                      its input and target standardisers in the file's metadata
  --report FILE       JSON report
  --plot FILE         SVG: one episode of each method
  --quiet             no progress
)";
}

/// Parses the flags; returns false for --help.
inline bool parse(const std::vector<std::string>& args, Config& c) {
  using examples::parse_integer;
  using examples::UsageError;
  const bool go = examples::parse_flags(args, c.quiet, [&](const std::string& f, const std::string& v) {
    if (f == "--system") {
      if (v != "pendulum" && v != "cartpole" && v != "both")
        throw UsageError("--system expects pendulum, cartpole or both, got '" + v + "'");
      c.system = v;
    } else if (f == "--seed") c.seed = parse_integer(f, v, 0, 1L << 40);
    else if (f == "--seeds") c.seeds = static_cast<int>(parse_integer(f, v, 1, 100));
    else if (f == "--trajectories") c.trajectories = static_cast<int>(parse_integer(f, v, 1, 1000000));
    else if (f == "--length") c.trajectory_length = static_cast<int>(parse_integer(f, v, 2, 1000000));
    else if (f == "--rounds") c.rounds = static_cast<int>(parse_integer(f, v, 0, 100));
    else if (f == "--round-episodes") c.round_episodes = static_cast<int>(parse_integer(f, v, 1, 100000));
    else if (f == "--hidden") c.hidden = examples::parse_widths<Index>(f, v, "64,64");
    else if (f == "--window") c.window = static_cast<int>(parse_integer(f, v, 1, 100000));
    else if (f == "--query") c.query = static_cast<int>(parse_integer(f, v, 1, 100000));
    else if (f == "--inner-lr") c.inner_lr = examples::parse_real(f, v);
    else if (f == "--inner-steps") c.inner_steps = static_cast<int>(parse_integer(f, v, 1, 100));
    else if (f == "--meta-batch") c.meta_batch = static_cast<int>(parse_integer(f, v, 1, 100000));
    else if (f == "--iterations") c.iterations = parse_integer(f, v, 1, 1L << 40);
    else if (f == "--meta-lr") c.meta_lr = examples::parse_real(f, v);
    else if (f == "--episodes") c.episodes = static_cast<int>(parse_integer(f, v, 1, 1000000));
    else if (f == "--horizon") c.horizon = static_cast<int>(parse_integer(f, v, 1, 10000));
    else if (f == "--candidates") c.candidates = static_cast<int>(parse_integer(f, v, 1, 10000000));
    else if (f == "--planner") {
      if (v != "rs" && v != "cem") throw UsageError("--planner expects rs or cem, got '" + v + "'");
      c.planner = v;
    } else if (f == "--report") c.report = v;
    else if (f == "--save") c.save = v;
    else if (f == "--plot") c.plot = v;
    else throw UsageError("unknown flag " + f);
  });
  if (!go) return false;
  if (c.trajectory_length < c.window + c.query)
    throw UsageError("--length (" + std::to_string(c.trajectory_length) + ") must be >= --window + --query (" +
                     std::to_string(c.window + c.query) + ")");
  return true;
}

/// Physics of meta-training and of the held-out evaluation. The held-out motors are weaker than
/// any in training (the "crippled joint" of the GrBAL paper): adaptation has to extrapolate.
inline constexpr PhysicsRange kTrainPhysics{0.5, 1.5, 0.5, 1.5, 0.5, 1.0, true};
inline constexpr PhysicsRange kHeldOutPhysics{0.5, 1.5, 0.5, 1.5, 0.25, 0.5, true};

/// A trajectory's model data: inputs (features and action, normalised) and targets (the state
/// change, normalised), one transition per column.
struct Trajectory {
  Matrix<S> inputs, targets;
};

/// The model: an MLP on normalised (features, action) predicting the normalised state change.
using Net = metalearn::nn::Mlp<S>;
using Obj = metalearn::nn::Objective<Net, metalearn::nn::MeanSquaredError>;
using MamlS = metalearn::Maml<Obj>;

template <class System>
Obj make_objective(const std::vector<Index>& hidden) {
  std::vector<Index> widths{System::feature_size + System::action_size};
  widths.insert(widths.end(), hidden.begin(), hidden.end());
  widths.push_back(System::state_size);
  return Obj(Net(widths, metalearn::nn::Relu{}), {}, metalearn::nn::HeUniform{});
}

/// Raw transitions of one trajectory (before normalisation): x = (features, action), y = Δs.
struct RawTrajectory {
  Eigen::MatrixXd x, y;
};

/// dst = src entry by entry (small fixed-size sources into the library's dynamic vectors: GCC 12
/// sees the dynamic loop's 512-bit packet path on them and warns about bounds it never reaches).
template <class Dst, class Src>
void put(Dst& dst, const Src& src) {
  for (Index i = 0; i < src.size(); ++i) dst[i] = static_cast<typename Dst::Scalar>(src[i]);
}

/// The model input of a state and an action.
template <class System>
using Input = Eigen::Matrix<double, System::feature_size + 1, 1>;

template <class System>
Input<System> model_input(const typename System::State& s, double u) {
  Input<System> x;
  System::features(s, x.template head<System::feature_size>());
  x[System::feature_size] = std::clamp(u, -System::max_action, System::max_action);
  return x;
}

/// A trajectory under `physics` from a random start with a random policy that holds each action
/// for `hold` steps (uniform in the bounds). Throws metalearn::numerical_error on a non-finite state.
template <class System>
RawTrajectory random_trajectory(const Physics& physics, int length, int hold, metalearn::Rng& rng) {
  RawTrajectory t{Eigen::MatrixXd(System::feature_size + 1, length), Eigen::MatrixXd(System::state_size, length)};
  typename System::State s = System::explore_initial(rng);
  double u = 0;
  for (int i = 0; i < length; ++i) {
    if (i % hold == 0) u = rng.uniform(-System::max_action, System::max_action);
    const typename System::State next = System::step(s, u, physics);
    if (!next.allFinite()) throw metalearn::numerical_error("adaptive_control: the simulation diverged");
    t.x.col(i).template head<System::feature_size + 1>() = model_input<System>(s, u);
    t.y.col(i).template head<System::state_size>() = next - s;
    s = next;
  }
  return t;
}

/// Normalises raw trajectories into the model's float data.
inline std::vector<Trajectory> normalise(const std::vector<RawTrajectory>& raw, const metalearn::data::Standardizer<S>& in,
                                         const metalearn::data::Standardizer<S>& out) {
  std::vector<Trajectory> result;
  for (const RawTrajectory& r : raw) {
    Trajectory t{r.x.cast<S>(), r.y.cast<S>()};
    in.normalize(t.inputs, t.inputs);
    out.normalize(t.targets, t.targets);
    result.push_back(std::move(t));
  }
  return result;
}

/// Meta-trains θ by MAML (order 2, `inner_steps` SGD steps of α, Adam): each task a window of
/// M + K consecutive transitions of one trajectory, support the first M, query the next K.
inline Vector<S> meta_train(MamlS& maml, const std::vector<Trajectory>& data, const Config& c, Vector<S> theta,
                            std::uint64_t seed, long iterations) {
  metalearn::Rng rng(seed);
  metalearn::optim::Adam<S> adam(theta.size(), {c.meta_lr});
  std::vector<MamlS::Task> tasks(static_cast<std::size_t>(c.meta_batch));
  Vector<S> grad(theta.size());
  const Index m = c.window, k = c.query;
  for (long it = 0; it < iterations; ++it) {
    for (auto& task : tasks) {
      const Trajectory& t = data[rng.uniform_index(data.size())];
      const Index start = static_cast<Index>(rng.uniform_index(static_cast<std::uint64_t>(t.inputs.cols() - m - k + 1)));
      task.support.inputs = t.inputs.middleCols(start, m);
      task.support.targets = t.targets.middleCols(start, m);
      task.query.inputs = t.inputs.middleCols(start + m, k);
      task.query.targets = t.targets.middleCols(start + m, k);
    }
    maml.meta_loss_and_gradient(theta, tasks, grad);
    adam.step(theta, grad);
  }
  return theta;
}

/// Trains θ on all transitions (the "MB" baseline): Adam on random batches of
/// meta_batch · (M + K) transitions, as many steps as meta-iterations.
inline Vector<S> train_plain(const Obj& obj, const std::vector<Trajectory>& data, const Config& c, Vector<S> theta,
                             std::uint64_t seed, long iterations) {
  metalearn::Rng rng(seed);
  metalearn::optim::Adam<S> adam(theta.size(), {c.meta_lr});
  const Index n = static_cast<Index>(c.meta_batch) * (c.window + c.query);
  Obj::Batch batch{Matrix<S>(data.front().inputs.rows(), n), Matrix<S>(data.front().targets.rows(), n)};
  Obj::Workspace ws;
  Vector<S> grad(theta.size());
  for (long it = 0; it < iterations; ++it) {
    for (Index j = 0; j < n; ++j) {
      const Trajectory& t = data[rng.uniform_index(data.size())];
      const auto col = static_cast<Index>(rng.uniform_index(static_cast<std::uint64_t>(t.inputs.cols())));
      batch.inputs.col(j) = t.inputs.col(col);
      batch.targets.col(j) = t.targets.col(col);
    }
    obj.loss_and_gradient(theta, batch, grad, ws);
    adam.step(theta, grad);
  }
  return theta;
}

/// Model-predictive control with a learned dynamics model: `candidates` action sequences of
/// `horizon` steps rolled through the network at once (one predict of inputs × candidates per
/// step), their summed stage costs compared, the first action of the best returned. Random
/// shooting draws the sequences uniformly in the bounds; the cross-entropy method refits a
/// Gaussian per step to the best `elite` fraction over `iterations` rounds, warm-started from
/// the previous plan shifted by one step. Every buffer is allocated by the constructor; `plan`
/// does not touch the heap.
template <class System>
class Planner {
  static_assert(System::action_size == 1, "the planner handles one action per step");

 public:
  struct Options {
    int horizon = 10, candidates = 500;
    double action_low = -System::max_action, action_high = System::max_action;  // the bounds of u
    bool cem = false;
    int cem_iterations = 3;
    double cem_elite = 0.1;
  };

  Planner(const Obj& model, const metalearn::data::Standardizer<S>& in, const metalearn::data::Standardizer<S>& out,
          Options o, std::uint64_t seed)
      : model_(model), in_(in), out_(out), o_(o), rng_(seed) {
    constexpr const char* where = "control::Planner";
    if (o.horizon < 1) metalearn::detail::fail(where, "the horizon must be >= 1, got ", o.horizon);
    if (o.candidates < 1) metalearn::detail::fail(where, "the candidate count must be >= 1, got ", o.candidates);
    if (o.cem && (o.cem_iterations < 1 || !(o.cem_elite > 0 && o.cem_elite <= 1)))
      metalearn::detail::fail(where, "CEM needs iterations >= 1 and an elite fraction in (0, 1], got ",
                              o.cem_iterations, " and ", o.cem_elite);
    if (!std::isfinite(o.action_low) || !std::isfinite(o.action_high) || !(o.action_low < o.action_high))
      metalearn::detail::fail(where, "the action bounds must be finite with low < high, got [", o.action_low, ", ",
                              o.action_high, "]");
    if (in.size() != System::feature_size + 1 || out.size() != System::state_size)
      metalearn::detail::fail(where, "the standardisers have ", in.size(), " and ", out.size(), " entries, expected ",
                              System::feature_size + 1, " and ", System::state_size);
    const Index n = o.candidates, h = o.horizon;
    actions_.resize(h, n);
    states_.resize(System::state_size, n);
    inputs_.setZero(System::feature_size + 1, n);
    outputs_.resize(System::state_size, n);
    costs_.resize(n);
    mean_ = Vector<S>::Constant(h, static_cast<S>((o.action_low + o.action_high) / 2));
    stddev_.resize(h);
    elite_count_ = std::max<Index>(1, static_cast<Index>(std::lround(o.cem_elite * static_cast<double>(n))));
    order_.resize(static_cast<std::size_t>(n));
    // warm up the workspace for this batch size
    Vector<S> theta = Vector<S>::Zero(model.parameter_count());
    model_.predict(theta, inputs_, outputs_, ws_);
  }

  /// The first action of the best sequence from `state` under the model with weights `theta`.
  /// Throws metalearn::numerical_error for a non-finite state (a diverging system: never plan on it).
  double plan(metalearn::ConstVectorRef<S> theta, const typename System::State& state) {
    if (!state.allFinite())
      throw metalearn::numerical_error("control::Planner: the state is not finite (the system diverged); not planning on it");
    const S lo = static_cast<S>(o_.action_low), hi = static_cast<S>(o_.action_high);
    if (!o_.cem) {
      for (Index j = 0; j < actions_.size(); ++j) actions_.data()[j] = static_cast<S>(rng_.uniform(lo, hi));
      rollout(theta, state);
      Index best = 0;
      costs_.minCoeff(&best);
      return static_cast<double>(actions_(0, best));
    }
    // CEM: shift the last plan's mean by one step; restart the spread
    const Index h = o_.horizon;
    for (Index i = 0; i + 1 < h; ++i) mean_[i] = mean_[i + 1];
    mean_[h - 1] = (lo + hi) / 2;
    stddev_.setConstant((hi - lo) / 4);
    for (int it = 0; it < o_.cem_iterations; ++it) {
      for (Index j = 0; j < actions_.cols(); ++j)
        for (Index i = 0; i < h; ++i)
          actions_(i, j) = std::clamp(static_cast<S>(mean_[i] + stddev_[i] * static_cast<S>(rng_.normal())), lo, hi);
      rollout(theta, state);
      std::iota(order_.begin(), order_.end(), Index{0});
      std::partial_sort(order_.begin(), order_.begin() + elite_count_, order_.end(),
                        [&](Index a, Index b) { return costs_[a] < costs_[b]; });
      for (Index i = 0; i < h; ++i) {
        double sum = 0, sq = 0;
        for (Index e = 0; e < elite_count_; ++e) {
          const double a = actions_(i, order_[static_cast<std::size_t>(e)]);
          sum += a;
          sq += a * a;
        }
        const double mu = sum / static_cast<double>(elite_count_);
        mean_[i] = static_cast<S>(mu);
        stddev_[i] = static_cast<S>(std::sqrt(std::max(sq / static_cast<double>(elite_count_) - mu * mu, 1e-6)));
      }
    }
    return static_cast<double>(mean_[0]);
  }

  /// The same with the true physics in place of the model (the reference: what the planner
  /// achieves with a perfect model). Random shooting only.
  double plan_true(const Physics& physics, const typename System::State& state) {
    if (!state.allFinite())
      throw metalearn::numerical_error("control::Planner: the state is not finite (the system diverged); not planning on it");
    const S lo = static_cast<S>(o_.action_low), hi = static_cast<S>(o_.action_high);
    for (Index j = 0; j < actions_.size(); ++j) actions_.data()[j] = static_cast<S>(rng_.uniform(lo, hi));
    costs_.setZero();
    for (Index j = 0; j < actions_.cols(); ++j) {
      typename System::State x = state;
      for (Index i = 0; i < o_.horizon; ++i) {
        x = System::step(x, static_cast<double>(actions_(i, j)), physics);
        System::add_cost(x.template cast<S>(), actions_.block(i, j, 1, 1), costs_.segment(j, 1));
      }
    }
    Index best = 0;
    costs_.minCoeff(&best);
    return static_cast<double>(actions_(0, best));
  }

  /// Forgets the CEM plan (a new episode).
  void reset() { mean_.setConstant(static_cast<S>((o_.action_low + o_.action_high) / 2)); }

 private:
  // costs_ = Σ_h stage cost of each candidate's predicted states
  void rollout(metalearn::ConstVectorRef<S> theta, const typename System::State& state) {
    states_.template topRows<System::state_size>().colwise() = state.template cast<S>();
    costs_.setZero();
    for (Index i = 0; i < o_.horizon; ++i) {
      System::features(states_, inputs_.topRows(System::feature_size));
      inputs_.row(System::feature_size) = actions_.row(i);
      in_.normalize(inputs_, inputs_);
      model_.predict(theta, inputs_, outputs_, ws_);
      // a candidate far outside the data may be predicted to fly off (even to overflow): bound
      // its change to kMaxChange standard deviations of the data's, NaN to the bound, so that
      // every rollout stays finite and such a candidate merely costs much
      outputs_ = outputs_.unaryExpr([](S v) { return v >= -kMaxChange ? std::min(v, kMaxChange) : kMaxChange; });
      out_.denormalize(outputs_, outputs_);
      states_ += outputs_;  // s' = s + Δs
      System::add_cost(states_, actions_.row(i), costs_);
    }
  }

  static constexpr S kMaxChange = 10;
  Obj model_;
  metalearn::data::Standardizer<S> in_, out_;
  Options o_;
  metalearn::Rng rng_;
  Matrix<S> actions_, states_, inputs_, outputs_;
  Vector<S> costs_, mean_, stddev_;
  Index elite_count_ = 1;
  std::vector<Index> order_;
  Obj::Workspace ws_;
};

/// One method's controller: its weights, whether it adapts, the adapter and the planner.
struct Method {
  std::string name;     // "GrBAL", "MB", "MB+DE"
  Vector<S> theta;      // θ* (GrBAL) or the plain model's θ (MB, MB+DE)
  bool adapts = false;  // adapts online on the last M transitions
  bool oracle = false;  // plans on the true physics (the reference row)
};

/// One control episode's record.
struct Episode {
  bool success = false, changed = false;
  std::vector<double> angle, action, error;  // per step: the controlled angle, the action, the
                                             // model's one-step prediction error (normalised MSE)
  std::vector<double> adapt_us, plan_us;
  Trajectory transitions;  // the standardised transitions, when collecting data
};

/// The held-out episode settings shared by every method: physics, the start, the change.
struct EpisodeSpec {
  Physics physics;
  bool change = false;
  std::uint64_t seed = 0;
};

/// Runs one episode with a method: at every step adapt (on the last M transitions, fewer at the
/// start) and plan; records timings. `collect`: adds exploration noise to the actions and keeps
/// the transitions for training. Throws metalearn::numerical_error if the simulation diverges.
template <class System>
Episode run_episode(const Method& method, const MamlS& maml, const metalearn::data::Standardizer<S>& in,
                    const metalearn::data::Standardizer<S>& out, const Config& c, const EpisodeSpec& spec,
                    bool collect = false) {
  using State = typename System::State;
  metalearn::Rng rng(spec.seed);
  State s = System::initial(rng);
  typename Planner<System>::Options po;
  po.horizon = c.horizon > 0 ? c.horizon : System::horizon;
  po.candidates = c.candidates;
  po.cem = c.planner == "cem";
  Planner<System> planner(maml.model(), in, out, po, spec.seed ^ 0x9E3779B97F4A7C15ULL);
  metalearn::data::TransitionWindow<S> window(System::feature_size + 1, System::state_size, c.window);
  metalearn::OnlineAdapter<MamlS> adapter(maml, method.theta, c.window, c.inner_steps);
  Vector<S> fast = method.theta;
  Vector<S> x(System::feature_size + 1), y(System::state_size), prediction(System::state_size);
  Obj::Workspace ws;
  Episode e;
  e.changed = spec.change;
  if (collect) e.transitions = {Matrix<S>(x.size(), System::episode_steps), Matrix<S>(y.size(), System::episode_steps)};
  std::vector<char> good;
  Physics physics = spec.physics;
  for (int step = 0; step < System::episode_steps; ++step) {
    if (spec.change && step == System::episode_steps / 2) physics = System::changed(physics);
    const auto t0 = std::chrono::steady_clock::now();
    if (method.adapts && window.size() > 0) adapter.adapt_available(window, fast);
    const auto t1 = std::chrono::steady_clock::now();
    double u = method.oracle ? planner.plan_true(physics, s) : planner.plan(fast, s);
    const auto t2 = std::chrono::steady_clock::now();
    if (collect) u += rng.normal(0, 0.1 * System::max_action);  // exploration
    u = std::clamp(u, -System::max_action, System::max_action);
    e.adapt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    e.plan_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
    const State next = System::step(s, u, physics);
    if (!next.allFinite()) throw metalearn::numerical_error("adaptive_control: the simulation diverged");
    put(x, model_input<System>(s, u));
    in.normalize(x, x);
    put(y, typename System::State(next - s));
    out.normalize(y, y);
    maml.model().predict(fast, x, prediction, ws);
    e.error.push_back(static_cast<double>((prediction - y).squaredNorm()) / System::state_size);
    window.push(x, y);
    if (collect) {
      e.transitions.inputs.col(step) = x;
      e.transitions.targets.col(step) = y;
    }
    e.angle.push_back(wrap(System::angle(next)));
    e.action.push_back(u);
    good.push_back(System::good(next) ? 1 : 0);
    s = next;
  }
  e.success = System::success(good);
  return e;
}

/// MSE of one-step predictions on the K transitions after each window of M, before and after
/// adapting on the window (normalised targets), over the held-out trajectories.
struct PredictionRow {
  std::string method;
  double before = 0, after = 0;
};

inline PredictionRow prediction_error(const std::string& name, const MamlS& maml, const Vector<S>& theta, bool adapts,
                                      const std::vector<Trajectory>& data, const Config& c) {
  metalearn::OnlineAdapter<MamlS> adapter(maml, theta, c.window, c.inner_steps);
  Vector<S> fast(theta.size());
  Obj::Workspace ws;
  MamlS::Batch support, query;
  double before = 0, after = 0;
  long count = 0;
  const Index m = c.window, k = c.query;
  for (const Trajectory& t : data)
    for (Index start = 0; start + m + k <= t.inputs.cols(); start += k) {
      support.inputs = t.inputs.middleCols(start, m);
      support.targets = t.targets.middleCols(start, m);
      query.inputs = t.inputs.middleCols(start + m, k);
      query.targets = t.targets.middleCols(start + m, k);
      before += static_cast<double>(maml.model().loss(theta, query, ws));
      if (adapts) {
        adapter.adapt(support, fast);
        after += static_cast<double>(maml.model().loss(fast, query, ws));
      }
      ++count;
    }
  PredictionRow r{name, before / static_cast<double>(count), 0};
  r.after = adapts ? after / static_cast<double>(count) : r.before;
  return r;
}

/// Latency percentiles of per-step timings.
struct Latency {
  double adapt_median = 0, adapt_p99 = 0, plan_median = 0, plan_p99 = 0, step_median = 0, step_p99 = 0;
  long steps = 0;
};

/// The q-quantile of `v`: its entry at floor(q · n) in sorted order; 0 for no values.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  const auto i = static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size()) - 1,
                                                           std::floor(q * static_cast<double>(v.size()))));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return v[i];
}

/// One method's control results on one system, one seed.
struct ControlRow {
  std::string method;
  int successes = 0, episodes = 0, changed_successes = 0, changed_episodes = 0;
  Latency latency;
};

/// The results of one system and seed.
struct SeedResult {
  long seed = 0;
  std::vector<PredictionRow> prediction;
  std::vector<ControlRow> control;
  std::vector<Episode> shown;  // one episode per method (the first with a change), for the figure
  double train_seconds = 0, collect_seconds = 0;
  Index transitions = 0;
};

/// Everything of one system.
struct SystemResult {
  std::string system, physics, success_rule, change_rule, network;
  Index parameters = 0;
  int horizon = 0;  // the planning horizon used
  std::vector<SeedResult> seeds;
};

/// The held-out control episodes of a seed: physics from the held-out range, every other one
/// with the mid-episode change.
inline std::vector<EpisodeSpec> held_out_episodes(int count, std::uint64_t seed) {
  metalearn::Rng rng(seed);
  std::vector<EpisodeSpec> specs(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    specs[static_cast<std::size_t>(i)].physics = kHeldOutPhysics.draw(rng);
    specs[static_cast<std::size_t>(i)].change = i % 2 == 1;
    specs[static_cast<std::size_t>(i)].seed = rng();
  }
  return specs;
}

/// The metadata of a saved model: the standardisers of its inputs and targets, one per line
/// ("inputs mean …; scale …", "targets mean …; scale …"), which `read_standardisers` reads back.
inline std::string weights_metadata(const metalearn::data::Standardizer<S>& in,
                                    const metalearn::data::Standardizer<S>& out) {
  return "inputs " + in.encode() + "\ntargets " + out.encode();
}

/// The input and target standardisers of `weights_metadata`'s text; throws
/// metalearn::invalid_argument when a line is missing or malformed.
inline std::pair<metalearn::data::Standardizer<S>, metalearn::data::Standardizer<S>> read_standardisers(
    const std::string& metadata) {
  const std::size_t nl = metadata.find('\n');
  if (metadata.rfind("inputs ", 0) != 0 || nl == std::string::npos || metadata.compare(nl + 1, 8, "targets ") != 0)
    throw metalearn::invalid_argument("adaptive_control: the weights' metadata has no \"inputs …\" and \"targets …\" lines");
  return {metalearn::data::Standardizer<S>::decode(metadata.substr(7, nl - 7)),
          metalearn::data::Standardizer<S>::decode(metadata.substr(nl + 9))};
}

/// Data, training, evaluation of one system for one seed. `log` receives progress lines.
template <class System>
SeedResult run_seed(const Config& c, long seed, const std::function<void(const std::string&)>& log) {
  using Clock = std::chrono::steady_clock;
  SeedResult r;
  r.seed = seed;
  const auto seconds = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };
  auto t0 = Clock::now();
  // 1. random-policy data under training physics
  metalearn::Rng rng(static_cast<std::uint64_t>(seed) * 1000003ULL + 17);
  std::vector<RawTrajectory> raw;
  for (int i = 0; i < c.trajectories; ++i)
    raw.push_back(random_trajectory<System>(kTrainPhysics.draw(rng), c.trajectory_length, c.hold, rng));
  Eigen::MatrixXd all_x(System::feature_size + 1, 0), all_y(System::state_size, 0);
  {
    Index n = 0;
    for (const auto& t : raw) n += t.x.cols();
    all_x.resize(Eigen::NoChange, n);
    all_y.resize(Eigen::NoChange, n);
    Index at = 0;
    for (const auto& t : raw) {
      all_x.middleCols(at, t.x.cols()) = t.x;
      all_y.middleCols(at, t.y.cols()) = t.y;
      at += t.x.cols();
    }
  }
  // the normalisers: statistics of the random data (kept for the whole run, saved with the model)
  const auto in = metalearn::data::Standardizer<S>::fit(all_x.cast<S>());
  const auto out = metalearn::data::Standardizer<S>::fit(all_y.cast<S>());
  r.collect_seconds += seconds(t0);

  const Obj obj = make_objective<System>(c.hidden);
  metalearn::MamlOptions mo;
  mo.inner_lr = c.inner_lr;
  mo.inner_steps = c.inner_steps;
  mo.order = metalearn::Order::second;
  MamlS maml(obj, mo);
  metalearn::Rng init(static_cast<std::uint64_t>(seed));
  Vector<S> theta0(obj.parameter_count());
  obj.initialize(theta0, init);

  std::vector<Trajectory> grbal_data = normalise(raw, in, out), plain_data = grbal_data;
  Method grbal{"GrBAL", theta0, true}, mb{"MB", theta0, false}, mbde{"MB+DE", theta0, true};
  // 2. training rounds: train on the data so far; then each method collects episodes with its
  // own MPC (plus exploration noise) under training physics, and trains again
  const long per_round = c.iterations / (c.rounds + 1);
  for (int round = 0; round <= c.rounds; ++round) {
    t0 = Clock::now();
    const long its = round == c.rounds ? c.iterations - per_round * c.rounds : per_round;
    grbal.theta = meta_train(maml, grbal_data, c, grbal.theta, static_cast<std::uint64_t>(seed) * 31 + static_cast<std::uint64_t>(round), its);
    mb.theta = train_plain(obj, plain_data, c, mb.theta, static_cast<std::uint64_t>(seed) * 37 + static_cast<std::uint64_t>(round), its);
    r.train_seconds += seconds(t0);
    if (log) log(std::string(System::name) + " seed " + std::to_string(seed) + ": training round " +
                 std::to_string(round) + " done");
    if (round == c.rounds) break;
    t0 = Clock::now();
    for (int e = 0; e < c.round_episodes; ++e) {
      EpisodeSpec spec{kTrainPhysics.draw(rng), false, rng()};
      for (int which = 0; which < 2; ++which) {
        const Method& m = which == 0 ? grbal : mb;
        Episode ep = run_episode<System>(m, maml, in, out, c, spec, /*collect=*/true);
        (which == 0 ? grbal_data : plain_data).push_back(std::move(ep.transitions));
      }
    }
    r.collect_seconds += seconds(t0);
  }
  mbde.theta = mb.theta;
  for (const auto& t : grbal_data) r.transitions += t.inputs.cols();
  if (!c.save.empty() && seed == c.seed)
    metalearn::io::save_weights(c.save + "-" + System::name + ".weights", obj.describe(), grbal.theta,
                                weights_metadata(in, out));

  // 3. prediction on held-out physics (random-policy trajectories)
  metalearn::Rng held(static_cast<std::uint64_t>(seed) * 7919 + 5);
  std::vector<RawTrajectory> held_raw;
  for (int i = 0; i < c.eval_trajectories; ++i)
    held_raw.push_back(random_trajectory<System>(kHeldOutPhysics.draw(held), c.trajectory_length, c.hold, held));
  const std::vector<Trajectory> held_data = normalise(held_raw, in, out);
  r.prediction.push_back(prediction_error("GrBAL", maml, grbal.theta, true, held_data, c));
  r.prediction.push_back(prediction_error("MB", maml, mb.theta, false, held_data, c));
  r.prediction.push_back(prediction_error("MB+DE", maml, mbde.theta, true, held_data, c));

  // 4. control on held-out physics, the same episodes for every method
  const std::vector<EpisodeSpec> specs = held_out_episodes(c.episodes, static_cast<std::uint64_t>(seed) * 104729 + 3);
  Method oracle{"true physics", mb.theta, false, true};  // θ unused for planning
  for (const Method* m : {&grbal, &mb, &mbde, &oracle}) {
    ControlRow row;
    row.method = m->name;
    std::vector<double> adapt, plan, step;
    bool shown = false;
    for (const EpisodeSpec& spec : specs) {
      Episode e = run_episode<System>(*m, maml, in, out, c, spec);
      ++row.episodes;
      row.successes += e.success ? 1 : 0;
      if (e.changed) {
        ++row.changed_episodes;
        row.changed_successes += e.success ? 1 : 0;
      }
      for (std::size_t i = 0; i < e.adapt_us.size(); ++i) {
        if (m->adapts && static_cast<int>(i) >= c.window) adapt.push_back(e.adapt_us[i]);  // full windows
        plan.push_back(e.plan_us[i]);
        step.push_back(e.adapt_us[i] + e.plan_us[i]);
      }
      if (!shown && e.changed) {
        r.shown.push_back(std::move(e));
        shown = true;
      }
    }
    row.latency = {percentile(adapt, 0.5), percentile(adapt, 0.99), percentile(plan, 0.5), percentile(plan, 0.99),
                   percentile(step, 0.5), percentile(step, 0.99), static_cast<long>(step.size())};
    r.control.push_back(row);
    if (log) log(std::string(System::name) + " seed " + std::to_string(seed) + ": " + m->name + " " +
                 std::to_string(row.successes) + "/" + std::to_string(row.episodes) + " episodes succeeded");
  }
  return r;
}

template <class System>
SystemResult run_system(const Config& c, const std::function<void(const std::string&)>& log) {
  SystemResult s;
  s.system = System::name;
  s.physics = System::physics_rule;
  s.success_rule = System::success_rule;
  s.change_rule = System::change_rule;
  const Obj obj = make_objective<System>(c.hidden);
  s.network = obj.describe();
  s.parameters = obj.parameter_count();
  s.horizon = c.horizon > 0 ? c.horizon : System::horizon;
  for (int i = 0; i < c.seeds; ++i) s.seeds.push_back(run_seed<System>(c, c.seed + i, log));
  return s;
}

/// The ALPaCA authors' MAML agent on their pendulum: prediction MSE before → after adaptation.
inline constexpr double kAlpacaBefore = 0.0346, kAlpacaAfter = 0.0168;


/// The Markdown tables of the results.
inline std::string table(const Config& c, const std::vector<SystemResult>& results) {
  std::ostringstream o;
  o << std::fixed;
  for (const SystemResult& s : results) {
    o << "\n## " << s.system << " (" << s.network << ", " << s.parameters << " parameters)\n\n";
    o << "Prediction on held-out physics: MSE of normalised one-step predictions on the K = " << c.query
      << " transitions after each window of M = " << c.window << ", before -> after adapting on the window\n\n";
    o << "| method |";
    for (const SeedResult& r : s.seeds) o << " seed " << r.seed << " |";
    o << "\n|---|";
    for (std::size_t i = 0; i < s.seeds.size(); ++i) o << "---|";
    o << "\n";
    for (std::size_t m = 0; m < 3; ++m) {
      o << "| " << s.seeds.front().prediction[m].method << " |";
      for (const SeedResult& r : s.seeds)
        o << std::setprecision(4) << " " << r.prediction[m].before << " -> " << r.prediction[m].after << " |";
      o << "\n";
    }
    if (s.system == "pendulum")
      o << "| ALPaCA authors' MAML agent, their pendulum (anchor; their data and units) | " << kAlpacaBefore
        << " -> " << kAlpacaAfter << " |\n";
    o << "\n";
    o << "Control on held-out physics (" << s.success_rule << "; every other episode: " << s.change_rule
      << " halfway), " << c.candidates << " candidates x horizon " << s.horizon << " ("
      << (c.planner == "cem" ? "CEM" : "random shooting") << ")\n\n";
    o << "| method | success (all seeds, 95 %) | with the change | per seed | adapt us median / p99 | step us median / p99 |\n";
    o << "|---|---|---|---|---|---|\n";
    for (std::size_t m = 0; m < s.seeds.front().control.size(); ++m) {
      int ok = 0, n = 0, cok = 0, cn = 0;
      std::string per;
      std::vector<double> am, ap, sm, sp;
      for (const SeedResult& r : s.seeds) {
        const ControlRow& row = r.control[m];
        ok += row.successes;
        n += row.episodes;
        cok += row.changed_successes;
        cn += row.changed_episodes;
        per += (per.empty() ? "" : " / ") + std::to_string(row.successes) + "/" + std::to_string(row.episodes);
        am.push_back(row.latency.adapt_median);
        ap.push_back(row.latency.adapt_p99);
        sm.push_back(row.latency.step_median);
        sp.push_back(row.latency.step_p99);
      }
      const ControlRow& first = s.seeds.front().control[m];
      std::vector<double> outcomes(static_cast<std::size_t>(n), 0.0);  // 1 per success
      std::fill_n(outcomes.begin(), ok, 1.0);
      o << "| " << first.method << " | " << std::setprecision(1) << 100.0 * ok / n << " ± "
        << 100.0 * (n >= 2 ? metalearn::mean_interval(outcomes).half_width : 0.0)  // one episode: no spread
        << " % | " << 100.0 * cok / std::max(cn, 1) << " % | " << per << " | ";
      if (first.method == "MB" || first.method == "true physics") o << "- | ";
      else o << std::setprecision(1) << percentile(am, 0.5) << " / " << percentile(ap, 0.5) << " | ";
      o << percentile(sm, 0.5) << " / " << percentile(sp, 0.5) << " |\n";
    }
  }
  return o.str();
}

/// The JSON report.
inline std::string to_json(const Config& c, const std::vector<SystemResult>& results) {
  using examples::json::number;
  using examples::json::string;
  std::string hidden = "[";
  for (std::size_t i = 0; i < c.hidden.size(); ++i) hidden += (i ? ", " : "") + std::to_string(c.hidden[i]);
  hidden += "]";
  std::ostringstream o;
  o << "{\n  \"example\": \"adaptive_control\",\n  \"metalearn_version\": " << string(metalearn::version_string)
    << ",\n  \"settings\": {\"seed\": " << c.seed << ", \"seeds\": " << c.seeds << ", \"trajectories\": "
    << c.trajectories << ", \"trajectory_length\": " << c.trajectory_length << ", \"hold\": " << c.hold
    << ", \"rounds\": " << c.rounds << ", \"round_episodes\": " << c.round_episodes << ", \"hidden\": "
    << hidden << ", \"window\": " << c.window
    << ", \"query\": " << c.query << ", \"inner_lr\": " << number(c.inner_lr) << ", \"inner_steps\": "
    << c.inner_steps << ", \"meta_batch\": " << c.meta_batch << ", \"iterations\": " << c.iterations
    << ", \"meta_lr\": " << number(c.meta_lr) << ", \"episodes\": " << c.episodes << ", \"horizon\": " << c.horizon
    << ", \"candidates\": " << c.candidates << ", \"planner\": " << string(c.planner)
    << ", \"eval_trajectories\": " << c.eval_trajectories << "},\n  \"anchor\": {\"alpaca_maml_pendulum_before\": "
    << kAlpacaBefore << ", \"after\": " << kAlpacaAfter << "},\n  \"systems\": [";
  for (std::size_t k = 0; k < results.size(); ++k) {
    const SystemResult& s = results[k];
    o << (k ? "," : "") << "\n    {\"system\": " << string(s.system) << ", \"physics\": " << string(s.physics)
      << ", \"success_rule\": " << string(s.success_rule) << ", \"change\": " << string(s.change_rule)
      << ", \"network\": " << string(s.network) << ", \"parameters\": " << s.parameters
      << ", \"horizon\": " << s.horizon << ", \"seeds\": [";
    for (std::size_t i = 0; i < s.seeds.size(); ++i) {
      const SeedResult& r = s.seeds[i];
      o << (i ? "," : "") << "\n      {\"seed\": " << r.seed << ", \"transitions\": " << r.transitions
        << ", \"train_seconds\": " << number(r.train_seconds) << ", \"collect_seconds\": " << number(r.collect_seconds)
        << ", \"prediction\": "
        << examples::json::list(r.prediction, [](const PredictionRow& p) {
             return "{\"method\": " + string(p.method) + ", \"before\": " + number(p.before) +
                    ", \"after\": " + number(p.after) + "}";
           })
        << ", \"control\": "
        << examples::json::list(r.control, [](const ControlRow& row) {
             const Latency& l = row.latency;
             return "{\"method\": " + string(row.method) + ", \"successes\": " + std::to_string(row.successes) +
                    ", \"episodes\": " + std::to_string(row.episodes) + ", \"changed_successes\": " +
                    std::to_string(row.changed_successes) + ", \"changed_episodes\": " +
                    std::to_string(row.changed_episodes) + ", \"adapt_us_median\": " + number(l.adapt_median) +
                    ", \"adapt_us_p99\": " + number(l.adapt_p99) + ", \"plan_us_median\": " + number(l.plan_median) +
                    ", \"plan_us_p99\": " + number(l.plan_p99) + ", \"step_us_median\": " + number(l.step_median) +
                    ", \"step_us_p99\": " + number(l.step_p99) + ", \"steps\": " + std::to_string(l.steps) + "}";
           })
        << "}";
    }
    o << "]}";
  }
  o << "\n  ]\n}\n";
  return o.str();
}

/// The figure: a row per system, one episode with the change of each method — the controlled
/// angle, the action and the model's one-step prediction error, the change marked.
inline std::string to_svg(const std::vector<SystemResult>& results) {
  using examples::svg::Panel;
  using examples::svg::Series;
  const double w = 420, h = 320;
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"};
  std::ostringstream rows;
  double y = 0;
  for (const SystemResult& s : results) {
    std::vector<Panel> panels;
    const SeedResult& r = s.seeds.front();
    Panel angle{s.system + ": angle (change at the dashed line)", "step", "angle (rad, 0 = upright)", {}, {}, false, false};
    Panel action{s.system + ": action", "step", "action (N m or N)", {}, {}, false, false};
    Panel error{s.system + ": one-step prediction error", "step", "normalised MSE", {}, {}, true, false};
    double lo = 0, hi = 0;
    for (std::size_t m = 0; m < r.shown.size(); ++m) {
      const Episode& e = r.shown[m];
      std::vector<double> x(e.angle.size());
      std::iota(x.begin(), x.end(), 1.0);
      angle.series.push_back({r.control[m].method, colors[m % 4], x, e.angle, "", false});
      action.series.push_back({r.control[m].method, colors[m % 4], x, e.action, "", false});
      std::vector<double> err = e.error;
      for (double& v : err) v = std::max(v, 1e-6);
      if (r.control[m].method != "true physics")
        error.series.push_back({r.control[m].method, colors[m % 4], x, err, "", false});
      for (double a : e.angle) lo = std::min(lo, a), hi = std::max(hi, a);
    }
    const double half = static_cast<double>(r.shown.empty() ? 100 : r.shown.front().angle.size() / 2);
    angle.series.push_back({"physics change", "#888", {half, half}, {lo, hi}, "4,3", false});
    panels.push_back(angle);
    panels.push_back(action);
    panels.push_back(error);
    const std::string row = examples::svg::charts(panels, w, h);  // nested at its row's height
    rows << "<svg y=\"" << y << "\"" << row.substr(4);
    y += h;
  }
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << 3 * w << "\" height=\"" << y << "\">\n"
      << rows.str() << "</svg>\n";
  return out.str();
}

}  // namespace control
