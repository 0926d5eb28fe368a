// A user model that forgets `loss_and_gradient`, passed to an entry point that checks the model
// contract. tests/compile_fail/run compiles this file twice:
//   - as is: the compile must FAIL with metalearn's own static_assert naming the missing member;
//   - with -DMETALEARN_CONTROL_HAS_LOSS_AND_GRADIENT (the same model, complete): it must compile,
//     and the program must pass its gradient check, so that the failure above has no other cause.
#include <metalearn/check/derivatives.hpp>
#include <metalearn/core/random.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

// Least squares on a line: L(θ) = Σ_j (θ₀ + θ₁ x_j − y_j)² / (2n).
struct Points {
  metalearn::Vector<double> x, y;
  metalearn::Index size() const { return x.size(); }
};

struct LineModel {
  using Scalar = double;
  using Batch = Points;
  struct Workspace {};

  metalearn::Index parameter_count() const { return 2; }

  void initialize(metalearn::VectorRef<double> theta, metalearn::Rng& rng) const {
    for (metalearn::Index i = 0; i < theta.size(); ++i) theta[i] = rng.normal();
  }

  double loss(metalearn::ConstVectorRef<double> theta, const Batch& batch, Workspace&) const {
    const auto r = (theta[0] + theta[1] * batch.x.array() - batch.y.array()).matrix();
    return r.squaredNorm() / (2.0 * static_cast<double>(batch.size()));
  }

#ifdef METALEARN_CONTROL_HAS_LOSS_AND_GRADIENT
  double loss_and_gradient(metalearn::ConstVectorRef<double> theta, const Batch& batch,
                           metalearn::VectorRef<double> grad, Workspace&) const {
    const metalearn::Vector<double> r = (theta[0] + theta[1] * batch.x.array() - batch.y.array()).matrix();
    const double n = static_cast<double>(batch.size());
    grad[0] = r.sum() / n;
    grad[1] = r.dot(batch.x) / n;
    return r.squaredNorm() / (2.0 * n);
  }
#endif
};

}  // namespace

int main() {
  const LineModel model;
  metalearn::Rng rng(7);
  metalearn::Vector<double> theta(model.parameter_count());
  model.initialize(theta, rng);
  Points batch{metalearn::Vector<double>(16), metalearn::Vector<double>(16)};
  for (metalearn::Index j = 0; j < batch.size(); ++j) {
    batch.x[j] = rng.uniform(-1.0, 1.0);
    batch.y[j] = 0.5 - 2.0 * batch.x[j] + 0.1 * rng.normal();
  }
  const auto result = metalearn::check::gradient(model, theta, batch);  // checks the contract
  std::printf("%s\n", result.report().c_str());
  // MAML checks the same contract (first order: the model has no Hessian-vector product)
  metalearn::MamlOptions options;
  options.order = metalearn::Order::first;
  metalearn::Maml maml(model, options);
  const std::vector<metalearn::Task<Points>> tasks{{batch, batch}};
  metalearn::Vector<double> meta_gradient(model.parameter_count());
  const double meta_loss = maml.meta_loss_and_gradient(theta, tasks, meta_gradient);
  std::printf("meta-loss %g\n", meta_loss);
  return result && std::isfinite(meta_loss) ? 0 : 1;
}
