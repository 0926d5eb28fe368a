// Must-fail compile check (tests/compile_fail/run): a program cannot call a model's keyed
// loss_and_gradient, which skips the model's finiteness check of θ. Only the library's
// algorithms, which check θ once per meta-step and each inner iterate as they make it, hold the
// FiniteThetaKey; a program's θ (here with a NaN) always goes through the checked pass.
// -DMETALEARN_CONTROL: the same program with the checked pass, which compiles.
#include <metalearn/nn/loss.hpp>
#include <metalearn/nn/mlp.hpp>
#include <metalearn/nn/objective.hpp>

#include <limits>

int main() {
  namespace nn = metalearn::nn;
  nn::Objective model(nn::Mlp<double>({2, 3, 1}, nn::Tanh{}), nn::MeanSquaredError{});
  metalearn::Vector<double> theta = metalearn::Vector<double>::Zero(model.parameter_count()), grad(theta.size());
  theta[0] = std::numeric_limits<double>::quiet_NaN();
  metalearn::RegressionBatch<double> batch{metalearn::Matrix<double>::Ones(2, 4), metalearn::Matrix<double>::Zero(1, 4)};
  decltype(model)::Workspace ws;
  try {
#ifdef METALEARN_CONTROL
    model.loss_and_gradient(theta, batch, grad, ws);
#else
    model.loss_and_gradient(theta, batch, grad, ws, metalearn::FiniteThetaKey{});
#endif
  } catch (const metalearn::invalid_argument&) {
    return 0;  // the checked pass refuses the NaN
  }
  return 1;
}
