// Meta-SGD, MAML++ and ANIL (meta/meta_sgd.hpp, meta/maml_plus_plus.hpp, meta/anil.hpp) on the
// shared inner loop: meta-gradients with respect to θ and to the learned rates against central
// differences of a meta-loss recomputed by a naive route (fresh vectors, the model's
// loss_and_gradient, rates expanded by hand), a linear model's closed form, MAML as the special
// case, thread counts, MAML++'s annealing, resumption from a checkpoint and bad input.
#include <metalearn/check/meta_gradient.hpp>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/meta/anil.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/maml_plus_plus.hpp>
#include <metalearn/meta/meta_sgd.hpp>
#include <metalearn/meta/trainer.hpp>
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>
#include <metalearn/optim/adam.hpp>
#include <metalearn/tasks/sine.hpp>

#include <catch.hpp>
#include <custom_models.hpp>
#include <temp_dir.hpp>
#include <sine_tasks.hpp>
#include <test_support.hpp>

#include <string>
#include <vector>

namespace check = metalearn::check;
namespace io = metalearn::io;
namespace nn = metalearn::nn;
using metalearn::Anil;
using metalearn::AnilOptions;
using metalearn::Clip;
using metalearn::Index;
using metalearn::Maml;
using metalearn::MamlOptions;
using metalearn::MamlPlusPlus;
using metalearn::MamlPlusPlusOptions;
using metalearn::Matrix;
using metalearn::MetaSgd;
using metalearn::MetaSgdOptions;
using metalearn::Order;
using metalearn::ParameterGroup;
using metalearn::Rng;
using metalearn::Vector;

namespace {

template <class S>
using Sine = metalearn::tasks::SineTasks<S>;


// The naive route: one task's inner loop θ_{k+1} = θ_k − A_k ⊙ c(m ⊙ ∇L_s(θ_k)), with the rates
// A_k and the mask m given as plain vectors; fresh vectors everywhere, nothing of the algorithms.
struct NaiveLoop {
  std::vector<Vector<double>> rates;  // A_0 … A_{K−1}
  Vector<double> mask;                // 1 adapted, 0 frozen
  Clip clip{};
  std::vector<double> weights;        // w_1 … w_K

  template <class Model>
  std::vector<Vector<double>> path(const Model& model, const Vector<double>& theta,
                                   const typename Model::Batch& support, std::vector<Vector<double>>* applied) const {
    typename Model::Workspace ws{};
    std::vector<Vector<double>> thetas{theta};
    for (const Vector<double>& a : rates) {
      Vector<double> g(theta.size());
      model.loss_and_gradient(thetas.back(), support, g, ws);
      g = g.cwiseProduct(mask);
      clip.apply(g);
      if (applied) applied->push_back(g);
      thetas.push_back(thetas.back() - a.cwiseProduct(g));
    }
    return thetas;
  }

  template <class Model, class Tasks>
  double meta_loss(const Model& model, const Vector<double>& theta, const Tasks& tasks) const {
    typename Model::Workspace ws{};
    double total = 0;
    for (const auto& t : tasks) {
      const auto thetas = path(model, theta, t.support, nullptr);
      for (std::size_t k = 1; k < thetas.size(); ++k)
        if (weights[k - 1] != 0) total += weights[k - 1] * model.loss(thetas[k], t.query, ws);
    }
    return total / static_cast<double>(tasks.size());
  }

  // First order: θ-part Σ_k w_k ∇L_q(θ_k); the rates' part per step, −c_k ⊙ Σ_{j>k} w_j ∇L_q(θ_j).
  template <class Model, class Tasks>
  std::pair<Vector<double>, std::vector<Vector<double>>> first_order(const Model& model, const Vector<double>& theta,
                                                                     const Tasks& tasks) const {
    typename Model::Workspace ws{};
    const std::size_t steps = rates.size();
    Vector<double> dtheta = Vector<double>::Zero(theta.size());
    std::vector<Vector<double>> drates(steps, Vector<double>::Zero(theta.size()));
    for (const auto& t : tasks) {
      std::vector<Vector<double>> applied;
      const auto thetas = path(model, theta, t.support, &applied);
      std::vector<Vector<double>> q(steps + 1, Vector<double>::Zero(theta.size()));
      for (std::size_t k = 1; k <= steps; ++k) {
        if (weights[k - 1] == 0) continue;
        model.loss_and_gradient(thetas[k], t.query, q[k], ws);
        q[k] *= weights[k - 1];
        dtheta += q[k];
      }
      for (std::size_t k = 0; k < steps; ++k) {
        Vector<double> later = Vector<double>::Zero(theta.size());
        for (std::size_t j = k + 1; j <= steps; ++j) later += q[j];
        drates[k] -= applied[k].cwiseProduct(later);
      }
    }
    dtheta /= static_cast<double>(tasks.size());
    for (auto& d : drates) d /= static_cast<double>(tasks.size());
    return {dtheta, drates};
  }
};

std::vector<double> final_only(int steps) {
  std::vector<double> w(static_cast<std::size_t>(steps), 0.0);
  w.back() = 1.0;
  return w;
}

// The naive loops of the three algorithms, from their meta-parameters.
template <class Model>
NaiveLoop meta_sgd_loop(const Model& model, const MetaSgdOptions& o, const Vector<double>& meta) {
  const Index p = model.parameter_count();
  NaiveLoop n;
  n.rates.assign(static_cast<std::size_t>(o.inner_steps), meta.tail(p));
  n.mask = Vector<double>::Ones(p);
  n.clip = o.inner_clip;
  n.weights = o.step_weights.empty() ? final_only(o.inner_steps) : o.step_weights;
  return n;
}

template <class Model>
NaiveLoop maml_pp_loop(const MamlPlusPlus<Model>& a, const Vector<double>& meta) {
  const Index p = a.model().parameter_count();
  const auto groups = a.model().parameter_groups();
  const int steps = a.options().inner_steps;
  NaiveLoop n;
  for (int k = 0; k < steps; ++k) {
    Vector<double> r(p);
    for (std::size_t j = 0; j < groups.size(); ++j)
      r.segment(groups[j].offset, groups[j].size)
          .setConstant(meta[p + k * static_cast<Index>(groups.size()) + static_cast<Index>(j)]);
    n.rates.push_back(r);
  }
  n.mask = Vector<double>::Ones(p);
  n.clip = a.options().inner_clip;
  n.weights = a.settings().step_weights.empty() ? final_only(steps) : a.settings().step_weights;
  return n;
}

// ANIL's last layer, from the network's own layout (not from the algorithm's group selection).
template <class Model>
NaiveLoop anil_loop(const Model& model, const AnilOptions& o) {
  const Index p = model.parameter_count();
  const auto& net = model.network();
  const Index head = net.layer_offset(net.layer_count() - 1);
  NaiveLoop n;
  n.mask = Vector<double>::Zero(p);
  n.mask.tail(p - head).setOnes();
  n.rates.assign(static_cast<std::size_t>(o.inner_steps), o.inner_lr * n.mask);
  n.clip = o.inner_clip;
  n.weights = o.step_weights.empty() ? final_only(o.inner_steps) : o.step_weights;
  return n;
}

// The algorithm's meta-gradient against central differences of the naive meta-loss, where
// `loop(meta)` gives the naive loop of meta-parameters `meta`.
template <class Algorithm, class Tasks, class Loop>
void check_second_order(Algorithm& algorithm, const Vector<double>& meta, const Tasks& tasks, Loop&& loop) {
  const Index p = algorithm.model().parameter_count();
  const auto r = check::meta_gradient(algorithm, meta, tasks, [&](const Vector<double>& shifted) {
    return loop(shifted).meta_loss(algorithm.model(), Vector<double>(shifted.head(p)), tasks);
  });
  INFO(r.report());
  CHECK(r.ok);
}

struct Shape {
  nn::Activation act;
  int steps;
  Clip clip;
};

std::vector<Shape> shapes() {
  Clip by_norm;
  by_norm.norm = 0.5;  // active: the inner gradients here have norms of 1 to 10
  Clip by_value;
  by_value.value = 0.3;
  std::vector<Shape> out;
  for (const nn::Activation& act : {nn::Activation(nn::Tanh{}), nn::Activation(nn::Relu{})})
    for (int steps : {1, 2, 3}) out.push_back({act, steps, Clip{}});
  out.push_back({nn::Tanh{}, 2, by_norm});
  out.push_back({nn::Tanh{}, 2, by_value});
  return out;
}

// A random network 1-h1-h2-1 for the shape, and θ near its initialisation.
auto random_objective(const Shape& s, Rng& rng) {
  const Index h1 = 2 + static_cast<Index>(rng.uniform_index(5)), h2 = 2 + static_cast<Index>(rng.uniform_index(5));
  return nn::Objective(nn::Mlp<double>({1, h1, h2, 1}, {s.act, s.act, nn::Identity{}}), nn::MeanSquaredError{});
}

}  // namespace

TEST_CASE("Meta-SGD: meta-gradients of theta and alpha match central differences of a naive meta-loss",
          "[family][meta_sgd][gradient]") {
  std::uint64_t seed = 100;
  for (const Shape& s : shapes()) {
    Rng rng(++seed);
    const auto obj = random_objective(s, rng);
    MetaSgdOptions o;
    o.inner_steps = s.steps;
    o.inner_clip = s.clip;
    o.initial_lr = 0.02;
    o.initial_lr_max = 0.08;
    if (s.steps == 3) o.step_weights = {0.2, 0.3, 0.5};
    MetaSgd algorithm(obj, o);
    Vector<double> meta(algorithm.parameter_count());
    algorithm.initialize(meta, rng);
    meta.head(obj.parameter_count()) += mlt::random_vector<double>(obj.parameter_count(), rng, 0.1);
    const auto tasks = mlt::sine_tasks<double>(seed, 3, 5);
    INFO(nn::activation_name(s.act) << ", " << s.steps << " steps, clip value " << s.clip.value << " norm " << s.clip.norm);
    check_second_order(algorithm, meta, tasks, [&](const Vector<double>& m) { return meta_sgd_loop(obj, o, m); });
  }
}

TEST_CASE("MAML++: meta-gradients of theta and the per-step group rates match central differences",
          "[family][maml_pp][gradient]") {
  std::uint64_t seed = 200;
  for (const Shape& s : shapes()) {
    Rng rng(++seed);
    const auto obj = random_objective(s, rng);
    MamlPlusPlusOptions o;
    o.inner_steps = s.steps;
    o.inner_clip = s.clip;
    o.initial_lr = 0.05;
    o.multi_step_iterations = 10;  // the multi-step loss, annealed: at iteration 4 weights differ per step
    MamlPlusPlus algorithm(obj, o);
    algorithm.set_iteration(4);
    Vector<double> meta(algorithm.parameter_count());
    algorithm.initialize(meta, rng);
    meta += mlt::random_vector<double>(meta.size(), rng, 0.02);  // the rates differ by group and step
    const auto tasks = mlt::sine_tasks<double>(seed, 3, 5);
    INFO(nn::activation_name(s.act) << ", " << s.steps << " steps, clip value " << s.clip.value << " norm " << s.clip.norm);
    REQUIRE(algorithm.settings().order == Order::second);
    check_second_order(algorithm, meta, tasks, [&](const Vector<double>& m) { return maml_pp_loop(algorithm, m); });
  }
}

TEST_CASE("ANIL: meta-gradients through the frozen body match central differences of a naive meta-loss",
          "[family][anil][gradient]") {
  std::uint64_t seed = 300;
  for (const Shape& s : shapes()) {
    Rng rng(++seed);
    const auto obj = random_objective(s, rng);
    AnilOptions o;
    o.inner_steps = s.steps;
    o.inner_clip = s.clip;
    o.inner_lr = 0.1;
    if (s.steps == 2) o.step_weights = {0.4, 0.6};
    Anil algorithm(obj, o);
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
    const auto tasks = mlt::sine_tasks<double>(seed, 3, 5);
    INFO(nn::activation_name(s.act) << ", " << s.steps << " steps, clip value " << s.clip.value << " norm " << s.clip.norm);
    check_second_order(algorithm, theta, tasks, [&](const Vector<double>&) { return anil_loop(obj, o); });
    // the body's meta-gradient is not zero: the exact second-order terms reach it
    Vector<double> g(theta.size());
    algorithm.meta_loss_and_gradient(theta, tasks, g);
    CHECK(g.head(obj.network().layer_offset(2)).norm() > 1e-6);
  }
}

TEST_CASE("ANIL adapts only the last layer by default, or the named groups, and the frozen ones keep theta",
          "[family][anil]") {
  const nn::Objective obj(nn::Mlp<double>({2, 5, 4, 3}, nn::Tanh{}), nn::MeanSquaredError{});
  Anil head(obj);
  REQUIRE(head.adapted().size() == 2);
  CHECK(head.adapted()[0].name == "layer 3 W");
  CHECK(head.adapted()[1].name == "layer 3 b");
  CHECK(head.describe().find("adapted [layer 3 W, layer 3 b]") != std::string::npos);
  AnilOptions o;
  o.adapted = {"layer 2 b", "layer 1 W"};
  o.inner_lr = 0.1;
  Anil named(obj, o);
  REQUIRE(named.adapted().size() == 2);
  CHECK(named.adapted()[0].name == "layer 1 W");  // in θ's order
  CHECK(named.adapted()[1].name == "layer 2 b");

  Rng rng(4);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  const auto batch = mlt::regression_batch<double>(2, 3, 6, rng);
  const Vector<double> fast = named.adapt(theta, batch, 3);
  for (const ParameterGroup& g : obj.parameter_groups()) {
    const bool adapted = g.name == "layer 1 W" || g.name == "layer 2 b";
    INFO(g.name);
    CHECK((fast.segment(g.offset, g.size) == theta.segment(g.offset, g.size)) == !adapted);
  }
}

namespace {
// A model that hides its frozen-prefix passes: ANIL then runs the ordinary passes, masked.
template <class Obj>
struct WithoutFrozenPasses {
  using Scalar = typename Obj::Scalar;
  using Batch = typename Obj::Batch;
  using Workspace = typename Obj::Workspace;
  Obj obj;
  Index parameter_count() const { return obj.parameter_count(); }
  void initialize(metalearn::VectorRef<Scalar> t, Rng& rng) const { obj.initialize(t, rng); }
  Scalar loss(metalearn::ConstVectorRef<Scalar> t, const Batch& b, Workspace& ws) const { return obj.loss(t, b, ws); }
  Scalar loss_and_gradient(metalearn::ConstVectorRef<Scalar> t, const Batch& b, metalearn::VectorRef<Scalar> g,
                           Workspace& ws) const {
    return obj.loss_and_gradient(t, b, g, ws);
  }
  void hessian_vector_product(metalearn::ConstVectorRef<Scalar> t, const Batch& b, metalearn::ConstVectorRef<Scalar> v,
                              metalearn::VectorRef<Scalar> hv, Workspace& ws) const {
    obj.hessian_vector_product(t, b, v, hv, ws);
  }
  void predict(metalearn::ConstVectorRef<Scalar> t, metalearn::ConstMatrixRef<Scalar> x, metalearn::MatrixRef<Scalar> y,
               Workspace& ws) const {
    obj.predict(t, x, y, ws);
  }
  std::vector<ParameterGroup> parameter_groups() const { return obj.parameter_groups(); }
};
}  // namespace

TEST_CASE("ANIL's frozen-prefix inner loop equals the ordinary masked one", "[family][anil][frozen]") {
  Rng rng(41);
  Clip by_norm;
  by_norm.norm = 0.5;
  for (int trial = 0; trial < 8; ++trial) {
    const bool norm = trial % 2 == 1;
    const nn::Activation act = trial % 4 < 2 ? nn::Activation(nn::Tanh{}) : nn::Activation(nn::Relu{});
    const mlt::NetSpec spec = norm ? mlt::random_norm_spec(rng, 1, 1, 4, act, nn::Identity{}, false)
                                   : mlt::random_spec(rng, 1, 1, 4, act, nn::Identity{});
    const nn::Objective obj(spec.make<double>(), nn::MeanSquaredError{});
    const WithoutFrozenPasses<decltype(obj)> plain{obj};
    const Vector<double> theta = mlt::random_theta(obj, rng, 0.2);
    const auto tasks = mlt::sine_tasks<double>(50 + static_cast<std::uint64_t>(trial), 3, 6);
    for (Order order : {Order::first, Order::second})
      for (int steps : {1, 3}) {
        AnilOptions o;
        o.order = order;
        o.inner_steps = steps;
        o.inner_lr = 0.1;
        if (trial >= 4) o.adapted = {"layer 3 W", "layer 3 b", "layer 4 W", "layer 4 b"};  // two layers
        if (trial >= 4 && norm) o.adapted = {"layer 3 W", "layer 3 b", "layer 3 gain", "layer 3 shift", "layer 4 W",
                                             "layer 4 b"};
        if (steps == 3) o.step_weights = {0.2, 0.3, 0.5};
        if (trial % 3 == 0) o.inner_clip = by_norm;
        Anil fast(obj, o);
        Anil slow(plain, o);
        INFO(spec.describe() << ", order " << static_cast<int>(order) << ", " << steps << " steps, " << fast.describe());
        REQUIRE(fast.frozen_prefix() == obj.network().layer_offset(trial >= 4 ? 2 : 3));
        REQUIRE(slow.frozen_prefix() == 0);
        Vector<double> g_fast(theta.size()), g_slow(theta.size());
        const double l_fast = fast.meta_loss_and_gradient(theta, tasks, g_fast);
        const double l_slow = slow.meta_loss_and_gradient(theta, tasks, g_slow);
        CHECK(l_fast == Catch::Approx(l_slow).epsilon(1e-13));
        CHECK(mlt::max_error(g_fast, g_slow) < 1e-12);
        Matrix<double> e_fast, e_slow;
        fast.evaluate(theta, tasks, {0, 1, 4}, e_fast);
        slow.evaluate(theta, tasks, {0, 1, 4}, e_slow);
        CHECK(mlt::max_error(e_fast.reshaped(), e_slow.reshaped()) < 1e-12);
      }
  }
}

TEST_CASE("the family's first-order meta-gradients equal the naive first-order formula, and with one step the "
          "rates' part is the exact gradient",
          "[family][gradient][first_order]") {
  Rng rng(7);
  const nn::Objective obj(nn::Mlp<double>({1, 6, 5, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  const Index p = obj.parameter_count();
  const auto tasks = mlt::sine_tasks<double>(8, 3, 5);
  for (int steps : {1, 2, 3}) {
    INFO(steps << " steps");
    MetaSgdOptions so;
    so.order = Order::first;
    so.inner_steps = steps;
    so.initial_lr = 0.02;
    so.initial_lr_max = 0.06;
    if (steps == 3) so.step_weights = {0.1, 0.3, 0.6};
    MetaSgd sgd(obj, so);
    Vector<double> meta(sgd.parameter_count());
    sgd.initialize(meta, rng);
    const NaiveLoop loop = meta_sgd_loop(obj, so, meta);
    const auto [dtheta, drates] = loop.first_order(obj, Vector<double>(meta.head(p)), tasks);
    Vector<double> reference(meta.size());
    reference.head(p) = dtheta;
    reference.tail(p).setZero();
    for (const auto& d : drates) reference.tail(p) += d;  // one α for every step
    const auto r = check::meta_gradient_against(sgd, meta, tasks, reference);
    INFO(r.report());
    CHECK(r.ok);

    MamlPlusPlusOptions po;
    po.order = Order::second;
    po.first_order_iterations = 5;  // DA: first order before iteration 5
    po.inner_steps = steps;
    po.initial_lr = 0.04;
    MamlPlusPlus pp(obj, po);
    pp.set_iteration(2);
    REQUIRE(pp.settings().order == Order::first);
    Vector<double> pmeta(pp.parameter_count());
    pp.initialize(pmeta, rng);
    pmeta.tail(pmeta.size() - p) += mlt::random_vector<double>(pmeta.size() - p, rng, 0.01);
    const NaiveLoop ploop = maml_pp_loop(pp, pmeta);
    const auto [ptheta, prates] = ploop.first_order(obj, Vector<double>(pmeta.head(p)), tasks);
    Vector<double> preference(pmeta.size());
    preference.head(p) = ptheta;
    const auto groups = obj.parameter_groups();
    for (int k = 0; k < steps; ++k)
      for (std::size_t j = 0; j < groups.size(); ++j)
        preference[p + k * static_cast<Index>(groups.size()) + static_cast<Index>(j)] =
            prates[static_cast<std::size_t>(k)].segment(groups[j].offset, groups[j].size).sum();
    const auto pr = check::meta_gradient_against(pp, pmeta, tasks, preference);
    INFO(pr.report());
    CHECK(pr.ok);

    if (steps == 1) {  // θ_1 depends on α directly only: the first-order rate gradient is exact
      Vector<double> g(meta.size());
      sgd.meta_loss_and_gradient(meta, tasks, g);
      for (Index i : {p, p + 3, p + 7, 2 * p - 1}) {
        const double h = 1e-6;
        Vector<double> up = meta, down = meta;
        up[i] += h;
        down[i] -= h;
        const double numeric = (meta_sgd_loop(obj, so, up).meta_loss(obj, Vector<double>(up.head(p)), tasks) -
                                meta_sgd_loop(obj, so, down).meta_loss(obj, Vector<double>(down.head(p)), tasks)) /
                               (2 * h);
        INFO("alpha entry " << i - p);
        CHECK(g[i] == Catch::Approx(numeric).epsilon(1e-6).margin(1e-9));
      }
    }
  }
}

TEST_CASE("Meta-SGD and MAML++: a linear model's meta-gradient equals its closed form to round-off",
          "[family][gradient]") {
  // L(θ) = ‖Φθ − y‖²/n: ∇L = Aθ − b. With D_k = diag(A_k): θ_{k+1} = (I − D_k A_s) θ_k + D_k b_s,
  // ∂ℒ/∂θ = Π_k (I − A_s D_k) ∇L_q(θ_K), ∂ℒ/∂A_k = −(A_s θ_k − b_s) ⊙ u_{k+1} with
  // u_{k+1} = (I − A_s D_{k+1}) … (I − A_s D_{K−1}) ∇L_q(θ_K).
  const custom::FourierRegression model(3);
  const Index p = model.parameter_count();
  custom::PointsSineTasks sampler(9, 8, 12);
  std::vector<custom::PointsSineTasks::Task> tasks(3);
  for (auto& t : tasks) sampler.sample(t);
  auto ab = [&](const custom::Points& b, Matrix<double>& a, Vector<double>& bb) {
    Matrix<double> phi(b.size(), p);
    custom::FourierRegression::Workspace ws;
    Matrix<double> out(1, b.size());
    for (Index i = 0; i < p; ++i) {
      Vector<double> e = Vector<double>::Zero(p);
      e[i] = 1;
      model.predict(e, b.x.transpose(), out, ws);
      phi.col(i) = out.row(0).transpose();
    }
    a = 2.0 / static_cast<double>(b.size()) * phi.transpose() * phi;
    bb = 2.0 / static_cast<double>(b.size()) * phi.transpose() * b.y;
  };
  // closed form for rates A_0…A_{K−1} (vectors): θ-part and per-step rate gradients
  auto closed = [&](const Vector<double>& theta, const std::vector<Vector<double>>& rates, Vector<double>& dtheta,
                    std::vector<Vector<double>>& drates) {
    const std::size_t steps = rates.size();
    dtheta = Vector<double>::Zero(p);
    drates.assign(steps, Vector<double>::Zero(p));
    for (const auto& t : tasks) {
      Matrix<double> as, aq;
      Vector<double> bs, bq;
      ab(t.support, as, bs);
      ab(t.query, aq, bq);
      std::vector<Vector<double>> th{theta};
      for (std::size_t k = 0; k < steps; ++k) th.push_back(th[k] - rates[k].cwiseProduct(as * th[k] - bs));
      Vector<double> u = aq * th[steps] - bq;  // ∂ℒ/∂θ_K
      for (std::size_t k = steps; k-- > 0;) {
        drates[k] -= (as * th[k] - bs).cwiseProduct(u);
        u = u - as * rates[k].cwiseProduct(u);  // (I − A_s D_k) u
      }
      dtheta += u;
    }
    dtheta /= static_cast<double>(tasks.size());
    for (auto& d : drates) d /= static_cast<double>(tasks.size());
  };
  Rng rng(1);
  for (int steps : {1, 2, 4}) {
    INFO(steps << " steps");
    MetaSgdOptions so;
    so.inner_steps = steps;
    so.initial_lr = 0.02;
    so.initial_lr_max = 0.08;
    MetaSgd sgd(model, so);
    Vector<double> meta(sgd.parameter_count());
    sgd.initialize(meta, rng);
    Vector<double> dtheta;
    std::vector<Vector<double>> drates;
    closed(meta.head(p), std::vector<Vector<double>>(static_cast<std::size_t>(steps), meta.tail(p)), dtheta, drates);
    Vector<double> expected(meta.size());
    expected.head(p) = dtheta;
    expected.tail(p).setZero();
    for (const auto& d : drates) expected.tail(p) += d;
    Vector<double> g(meta.size());
    sgd.meta_loss_and_gradient(meta, tasks, g);
    CHECK(mlt::max_error(g, expected) < 1e-12);

    MamlPlusPlusOptions po;
    po.inner_steps = steps;
    MamlPlusPlus pp(model, po);  // one group ("theta"): one rate per step
    Vector<double> pmeta(pp.parameter_count());
    pp.initialize(pmeta, rng);
    for (int k = 0; k < steps; ++k) pmeta[p + k] = 0.01 + 0.02 * k;
    std::vector<Vector<double>> prates;
    for (int k = 0; k < steps; ++k) prates.push_back(Vector<double>::Constant(p, pmeta[p + k]));
    closed(pmeta.head(p), prates, dtheta, drates);
    expected.resize(pmeta.size());
    expected.head(p) = dtheta;
    for (int k = 0; k < steps; ++k) expected[p + k] = drates[static_cast<std::size_t>(k)].sum();
    Vector<double> pg(pmeta.size());
    pp.meta_loss_and_gradient(pmeta, tasks, pg);
    CHECK(mlt::max_error(pg, expected) < 1e-12);
  }
}

TEST_CASE("MAML is the family's special case: equal rates and all groups adapted give MAML's results",
          "[family]") {
  const nn::Objective obj(nn::Mlp<double>({1, 7, 6, 1}, nn::Relu{}), nn::MeanSquaredError{});
  const Index p = obj.parameter_count();
  Rng rng(3);
  const Vector<double> theta = mlt::random_theta(obj, rng);
  const auto tasks = mlt::sine_tasks<double>(5, 4, 6);
  for (Order order : {Order::first, Order::second}) {
    INFO("order " << static_cast<int>(order));
    MamlOptions mo;
    mo.inner_lr = 0.03;
    mo.inner_steps = 2;
    mo.order = order;
    Maml maml(obj, mo);
    Vector<double> expected(p);
    const double loss = maml.meta_loss_and_gradient(theta, tasks, expected);

    MetaSgdOptions so;
    so.initial_lr = 0.03;
    so.inner_steps = 2;
    so.order = order;
    MetaSgd sgd(obj, so);
    Vector<double> meta(2 * p), g(2 * p);
    meta << theta, Vector<double>::Constant(p, 0.03);
    CHECK(sgd.meta_loss_and_gradient(meta, tasks, g) == Catch::Approx(loss).epsilon(1e-12));
    CHECK(mlt::max_error(g.head(p), expected) < 1e-12);

    MamlPlusPlusOptions po;
    po.initial_lr = 0.03;
    po.inner_steps = 2;
    po.order = order;
    MamlPlusPlus pp(obj, po);
    Vector<double> pmeta(pp.parameter_count()), pg(pp.parameter_count());
    pmeta << theta, Vector<double>::Constant(pp.parameter_count() - p, 0.03);
    CHECK(pp.meta_loss_and_gradient(pmeta, tasks, pg) == Catch::Approx(loss).epsilon(1e-12));
    CHECK(mlt::max_error(pg.head(p), expected) < 1e-12);

    AnilOptions ao;
    ao.inner_lr = 0.03;
    ao.inner_steps = 2;
    ao.order = order;
    for (const ParameterGroup& x : obj.parameter_groups()) ao.adapted.push_back(x.name);
    Anil anil(obj, ao);
    Vector<double> ag(p);
    CHECK(anil.meta_loss_and_gradient(theta, tasks, ag) == Catch::Approx(loss).epsilon(1e-12));
    CHECK(mlt::max_error(ag, expected) < 1e-12);
  }
}

TEST_CASE("the family's meta-gradients and evaluations are bit-identical on 1, 2 and 3 threads",
          "[family][threads]") {
  const nn::Objective obj(nn::Mlp<float>({1, 40, 40, 1}, nn::Relu{}), nn::MeanSquaredError{});
  const auto tasks = mlt::sine_tasks<float>(17, 25, 10);
  auto run = [&](auto make) {
    std::vector<Vector<float>> grads;
    std::vector<Matrix<float>> losses;
    for (int threads : {1, 2, 3}) {
      auto algorithm = make(threads);
      Rng rng(5);
      Vector<float> meta(algorithm.parameter_count()), g(algorithm.parameter_count());
      algorithm.initialize(meta, rng);
      algorithm.meta_loss_and_gradient(meta, tasks, g);
      grads.push_back(g);
      Matrix<float> l;
      algorithm.evaluate(meta, tasks, {0, 1, 3}, l);
      losses.push_back(l);
    }
    CHECK(grads[1] == grads[0]);
    CHECK(grads[2] == grads[0]);
    CHECK(losses[1] == losses[0]);
    CHECK(losses[2] == losses[0]);
  };
  run([&](int threads) {
    MetaSgdOptions o;
    o.initial_lr = 0.005;
    o.initial_lr_max = 0.02;
    o.inner_steps = 2;
    o.threads = threads;
    return MetaSgd(obj, o);
  });
  run([&](int threads) {
    MamlPlusPlusOptions o;
    o.initial_lr = 0.01;
    o.inner_steps = 3;
    o.multi_step_iterations = 100;
    o.threads = threads;
    return MamlPlusPlus(obj, o);
  });
  run([&](int threads) {
    AnilOptions o;
    o.inner_lr = 0.05;
    o.inner_steps = 2;
    o.threads = threads;
    return Anil(obj, o);
  });
}

TEST_CASE("MAML++: the multi-step loss weights and the derivative order follow the meta-iteration",
          "[family][maml_pp]") {
  std::vector<double> w;
  metalearn::multi_step_loss_weights(5, 0, 100, w);
  CHECK(w == std::vector<double>(5, 0.2));
  metalearn::multi_step_loss_weights(5, 50, 100, w);  // d = 1/(5·100) = 0.002
  for (int k = 0; k < 4; ++k) CHECK(w[static_cast<std::size_t>(k)] == Catch::Approx(0.1));  // 0.2 − 50·0.002
  CHECK(w[4] == Catch::Approx(0.6));                                                         // 0.2 + 50·4·0.002
  metalearn::multi_step_loss_weights(5, 100, 100, w);
  for (int k = 0; k < 4; ++k) CHECK(w[static_cast<std::size_t>(k)] == Catch::Approx(0.006));  // the floor 0.03/5
  CHECK(w[4] == Catch::Approx(0.976));                                                         // 1 − 4·0.006

  const nn::Objective obj(nn::Mlp<float>({1, 8, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  MamlPlusPlusOptions o;
  o.first_order_iterations = 3;
  o.multi_step_iterations = 100;
  MamlPlusPlus pp(obj, o);
  CHECK(pp.settings().order == Order::first);
  CHECK(pp.settings().step_weights == std::vector<double>(5, 0.2));
  pp.set_iteration(3);
  CHECK(pp.settings().order == Order::second);
  pp.set_iteration(100);
  CHECK(pp.settings().step_weights.empty());  // only the final step's loss from then on

  // MetaTrainer tells the algorithm the iteration before each meta-step
  Sine<float> sampler(1);
  metalearn::optim::Adam<float> adam(pp.parameter_count());
  metalearn::TrainerOptions to;
  to.meta_batch = 2;
  metalearn::MetaTrainer trainer(pp, adam, sampler, to);
  Rng rng(2);
  Vector<float> meta(pp.parameter_count());
  pp.initialize(meta, rng);
  trainer.run(meta, 4);
  CHECK(pp.iteration() == 3);  // the fourth meta-step was iteration 3
}

TEST_CASE("the family resumes from a checkpoint bit for bit, learned rates and annealing included",
          "[family][resume]") {
  using Obj = nn::Objective<nn::Mlp<float>, nn::MeanSquaredError>;
  const Obj obj(nn::Mlp<float>({1, 10, 10, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto check_resume = [&](auto make) {
    constexpr Index n = 5, m = 5;
    mlt::TempDir dir;
    const std::string path = dir.file("family.ckpt");
    metalearn::TrainerOptions to;
    to.meta_batch = 4;
    auto setup = [&](auto& algorithm, Vector<float>& meta, std::uint64_t seed) {
      Rng rng(seed);
      meta.resize(algorithm.parameter_count());
      algorithm.initialize(meta, rng);
    };
    auto straight_algorithm = make();
    Vector<float> straight;
    setup(straight_algorithm, straight, 1);
    metalearn::optim::Adam<float> adam1(straight.size(), {0.003});
    Sine<float> sampler1(3);
    metalearn::MetaTrainer t1(straight_algorithm, adam1, sampler1, to);
    t1.run(straight, n + m);

    auto first_algorithm = make();
    Vector<float> first;
    setup(first_algorithm, first, 1);
    metalearn::optim::Adam<float> adam2(first.size(), {0.003});
    Sine<float> sampler2(3);
    metalearn::MetaTrainer t2(first_algorithm, adam2, sampler2, to);
    t2.run(first, n);
    io::save_checkpoint(path, first_algorithm.describe(), first, adam2, t2, sampler2.rng());

    auto resumed_algorithm = make();
    Vector<float> resumed;
    setup(resumed_algorithm, resumed, 99);
    metalearn::optim::Adam<float> adam3(resumed.size(), {0.003});
    Sine<float> sampler3(77);
    metalearn::MetaTrainer t3(resumed_algorithm, adam3, sampler3, to);
    io::load_checkpoint(path, resumed_algorithm.describe(), resumed, adam3, t3, sampler3.rng());
    t3.run(resumed, m);
    CHECK(resumed == straight);  // θ and the learned rates, bit for bit
  };
  check_resume([&] {
    MetaSgdOptions o;
    o.initial_lr = 0.005;
    o.initial_lr_max = 0.02;
    return MetaSgd(obj, o);
  });
  check_resume([&] {
    MamlPlusPlusOptions o;
    o.initial_lr = 0.02;
    o.inner_steps = 2;
    o.first_order_iterations = 3;  // the switch to second order and the weights' annealing
    o.multi_step_iterations = 8;   // both happen after the checkpoint
    return MamlPlusPlus(obj, o);
  });
  check_resume([&] {
    AnilOptions o;
    o.inner_lr = 0.1;
    return Anil(obj, o);
  });
}

namespace {
// A linear model whose groups are given (to test the validation of parameter_groups).
struct GroupedLinear : custom::FourierRegression {
  std::vector<ParameterGroup> groups;
  explicit GroupedLinear(std::vector<ParameterGroup> g) : custom::FourierRegression(1), groups(std::move(g)) {}
  std::vector<ParameterGroup> parameter_groups() const { return groups; }
};
}  // namespace

TEST_CASE("the family refuses bad options and groups, naming them, and a checkpoint of another algorithm",
          "[family][bad_input]") {
  const nn::Objective obj(nn::Mlp<double>({1, 4, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const metalearn::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no exception)");
  };
  auto sgd = [&](double lr, double lr_max) {
    MetaSgdOptions o;
    o.initial_lr = lr;
    o.initial_lr_max = lr_max;
    return message([&] { MetaSgd a(obj, o); });
  };
  CHECK_THAT(sgd(0, 0), mlt::contains("MetaSgd: initial_lr must be finite and > 0, got 0"));
  CHECK_THAT(sgd(-0.1, 0), mlt::contains("initial_lr must be finite and > 0, got -0.1"));
  CHECK_THAT(sgd(std::nan(""), 0), mlt::contains("initial_lr must be finite and > 0, got nan"));
  CHECK_THAT(sgd(0.1, std::numeric_limits<double>::infinity()), mlt::contains("initial_lr_max must be finite"));
  CHECK_THAT(sgd(0.1, 0.05), mlt::contains("initial_lr_max (0.05) is below initial_lr (0.1)"));

  auto pp = [&](auto set) {
    MamlPlusPlusOptions o;
    set(o);
    return message([&] { MamlPlusPlus a(obj, o); });
  };
  CHECK_THAT(pp([](auto& o) { o.initial_lr = 0; }), mlt::contains("MamlPlusPlus: initial_lr must be finite and > 0"));
  CHECK_THAT(pp([](auto& o) { o.inner_steps = 0; }), mlt::contains("inner_steps must be >= 1"));
  CHECK_THAT(pp([](auto& o) { o.first_order_iterations = -1; }),
             mlt::contains("first_order_iterations must be >= 0, got -1"));
  CHECK_THAT(pp([](auto& o) { o.multi_step_iterations = -5; }),
             mlt::contains("multi_step_iterations must be >= 0, got -5"));
  MamlPlusPlus good(obj);
  CHECK_THAT(message([&] { good.set_iteration(-1); }), mlt::contains("the iteration must be >= 0, got -1"));
  CHECK(good.iteration() == 0);

  auto anil = [&](std::vector<std::string> names) {
    AnilOptions o;
    o.adapted = std::move(names);
    return message([&] { Anil a(obj, o); });
  };
  CHECK_THAT(anil({"layer 9 W"}), mlt::contains("Anil: no parameter group is named 'layer 9 W'; the model's groups "
                                                  "are 'layer 1 W', 'layer 1 b', 'layer 2 W', 'layer 2 b'"));
  CHECK_THAT(anil({""}), mlt::contains("no parameter group is named ''"));
  CHECK_THAT(anil({"layer 2 b", "layer 2 b"}), mlt::contains("the group 'layer 2 b' is named twice"));
  AnilOptions zero;
  zero.inner_lr = 0;
  CHECK_THAT(message([&] { Anil a(obj, zero); }), mlt::contains("Anil: inner_lr must be finite and > 0"));

  // groups that overlap, leave a gap or run past θ (the model's parameter_groups) are refused
  const Index p = custom::FourierRegression(1).parameter_count();
  REQUIRE(p == 3);
  CHECK_THAT(message([&] { MamlPlusPlus a(GroupedLinear({{"a", 0, 2}, {"b", 1, 2}})); }),
             mlt::contains("group 1 ('b') starts at 1, expected 2 (it overlaps the previous group)"));
  CHECK_THAT(message([&] { Anil a(GroupedLinear({{"a", 0, 1}, {"b", 2, 1}})); }),
             mlt::contains("group 1 ('b') starts at 2, expected 1 (a gap before it)"));
  CHECK_THAT(message([&] { MamlPlusPlus a(GroupedLinear({{"a", 0, 2}, {"b", 2, 2}})); }),
             mlt::contains("the groups end at 4, θ has 3 entries"));

  // a checkpoint of one algorithm does not load into another; nothing is changed
  mlt::TempDir dir;
  const std::string path = dir.file("sgd.ckpt");
  MetaSgd saved(obj);
  Vector<double> meta(saved.parameter_count());
  Rng rng(1);
  saved.initialize(meta, rng);
  metalearn::optim::Adam<double> adam(meta.size());
  Sine<double> sampler(1);
  metalearn::TrainerOptions to;
  metalearn::MetaTrainer trainer(saved, adam, sampler, to);
  io::save_checkpoint(path, saved.describe(), meta, adam, trainer, sampler.rng());
  MamlPlusPlusOptions po;
  po.inner_steps = 1;
  MamlPlusPlus other(obj, po);  // one group per W and b of 2 layers: 4 rates, while Meta-SGD has P
  Vector<double> other_meta(other.parameter_count());
  other.initialize(other_meta, rng);
  const Vector<double> before = other_meta;
  metalearn::optim::Adam<double> other_adam(other_meta.size());
  metalearn::MetaTrainer other_trainer(other, other_adam, sampler, to);
  try {
    io::load_checkpoint(path, other.describe(), other_meta, other_adam, other_trainer, sampler.rng());
    FAIL("loaded a Meta-SGD checkpoint into MAML++");
  } catch (const metalearn::checkpoint_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, mlt::contains("MetaSgd(order 2"));
    CHECK_THAT(what, mlt::contains("MamlPlusPlus(order 2"));
  }
  CHECK(other_meta == before);
  CHECK(other_adam.steps() == 0);
}
