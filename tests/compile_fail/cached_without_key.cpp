// Must-fail compile check (tests/compile_fail/run): a program cannot call a model's cached
// Hessian-vector product, which is right only while θ and the batch are unchanged since the
// last gradient pass — an in-place update (adam.step(θ, g)) keeps θ's address, so no check at
// the call could tell. Only the library's algorithms hold the CachedPassKey.
// -DMETALEARN_CONTROL: the same program with the exact (uncached) product, which compiles.
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

int main() {
  namespace nn = metalearn::nn;
  nn::Objective model(nn::Mlp<double>({2, 3, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  metalearn::Rng rng(1);
  metalearn::Vector<double> theta(model.parameter_count()), grad(theta.size()), v(theta.size()), hv(theta.size());
  model.initialize(theta, rng);
  v.setOnes();
  metalearn::RegressionBatch<double> batch{metalearn::Matrix<double>::Ones(2, 4), metalearn::Matrix<double>::Zero(1, 4)};
  decltype(model)::Workspace ws;
  model.loss_and_gradient(theta, batch, grad, ws);
  theta -= 0.1 * grad;  // θ changes in place: a cached product would use the old pass
#ifdef METALEARN_CONTROL
  model.hessian_vector_product(theta, batch, v, hv, ws);
#else
  model.cached_hessian_vector_product(theta, batch, v, hv, ws, metalearn::CachedPassKey{});
#endif
  return hv.allFinite() ? 0 : 1;
}
