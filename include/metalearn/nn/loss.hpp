#pragma once
/// @file
/// @brief Losses on network outputs Y (outputs × n): value, gradient ∂L/∂Y and the
/// Hessian-vector product ∇²_Y L · R for a direction R of the outputs.
///
/// Every loss is a mean over the batch, so that a learning rate means the same thing for
/// any batch size. Each loss provides
///   - `target_type<S>`, the type of the targets in a batch;
///   - `check_outputs(where, outputs)`, called once when an objective is built;
///   - `check_targets(where, outputs, n, targets)`, called before anything is written;
///   - `value`, `value_and_gradient` (assigns G = ∂L/∂Y), `hessian_vector_product`
///     (assigns RG = ∇²_Y L · R).

#include <metalearn/core/error.hpp>
#include <metalearn/core/finite.hpp>
#include <metalearn/core/types.hpp>

#include <cmath>

namespace metalearn::nn {

/// Mean squared error over all entries: L = Σ (y − t)² / (d n), with d outputs and n examples
/// (PyTorch's `MSELoss()`).  ∂L/∂Y = 2 (Y − T) / (d n);  ∇²_Y L · R = 2 R / (d n).
struct MeanSquaredError {
  static constexpr const char* name = "mse";
  template <class S>
  using target_type = Matrix<S>;

  void check_outputs(const char*, Index) const {}

  template <class S>
  void check_targets(const char* where, Index outputs, Index n, const Matrix<S>& t) const {
    if (t.rows() != outputs || t.cols() != n)
      metalearn::detail::fail(where, "targets are ", t.rows(), " x ", t.cols(), ", expected ", outputs, " x ", n,
                   " (outputs x examples)");
    metalearn::detail::check_finite(where, "targets", t);
  }

  template <class S>
  S value(const ConstMatrixRef<S>& y, const Matrix<S>& t) const {
    return (y - t).squaredNorm() / static_cast<S>(y.size());
  }

  template <class S>
  S value_and_gradient(const ConstMatrixRef<S>& y, const Matrix<S>& t, MatrixRef<S> g) const {
    const S scale = S(2) / static_cast<S>(y.size());
    g = y - t;                                // Y − T
    const S loss = g.squaredNorm() / static_cast<S>(y.size());
    g *= scale;                               // ∂L/∂Y = 2 (Y − T) / (d n)
    return loss;
  }

  template <class S>
  void hessian_vector_product(const ConstMatrixRef<S>& y, const Matrix<S>&, const ConstMatrixRef<S>& r,
                              MatrixRef<S> rg) const {
    rg = (S(2) / static_cast<S>(y.size())) * r;  // ∇²L · R = 2 R / (d n)
  }
};

/// Softmax cross-entropy over integer labels, mean over examples:
/// L = Σ_j [lse(y_j) − y_{t_j j}] / n with lse the log-sum-exp (computed stably).
///   ∂L/∂y_j = (p_j − e_{t_j}) / n,  p_j = softmax(y_j)
///   ∇²_{y_j} L · r_j = (p_j ⊙ r_j − p_j (p_jᵀ r_j)) / n
/// The network's last layer should be linear (`Identity`): Y are logits.
struct SoftmaxCrossEntropy {
  static constexpr const char* name = "softmax_cross_entropy";
  template <class S>
  using target_type = Labels;

  void check_outputs(const char* where, Index outputs) const {
    if (outputs < 2) metalearn::detail::fail(where, "softmax cross-entropy needs at least 2 outputs (classes), got ", outputs);
  }

  template <class S>
  void check_targets(const char* where, Index outputs, Index n, const Labels& t) const {
    if (t.size() != n) metalearn::detail::fail(where, "labels has ", t.size(), " entries, expected ", n, " (one per example)");
    for (Index j = 0; j < n; ++j)
      if (t(j) < 0 || t(j) >= outputs)
        metalearn::detail::fail(where, "label ", j, " is ", t(j), ", expected a class in [0, ", outputs - 1, "]");
  }

  template <class S>
  S value(const ConstMatrixRef<S>& y, const Labels& t) const {
    S total = 0;
    for (Index j = 0; j < y.cols(); ++j) total += log_sum_exp<S>(y.col(j)) - y(t(j), j);
    return total / static_cast<S>(y.cols());
  }

  template <class S>
  S value_and_gradient(const ConstMatrixRef<S>& y, const Labels& t, MatrixRef<S> g) const {
    const S inv_n = S(1) / static_cast<S>(y.cols());
    S total = 0;
    for (Index j = 0; j < y.cols(); ++j) {
      const S lse = log_sum_exp<S>(y.col(j));
      total += lse - y(t(j), j);
      g.col(j).array() = (y.col(j).array() - lse).exp() * inv_n;  // p_j / n
      g(t(j), j) -= inv_n;                                        //   − e_t / n
    }
    return total * inv_n;
  }

  template <class S>
  void hessian_vector_product(const ConstMatrixRef<S>& y, const Labels&, const ConstMatrixRef<S>& r,
                              MatrixRef<S> rg) const {
    const S inv_n = S(1) / static_cast<S>(y.cols());
    for (Index j = 0; j < y.cols(); ++j) {
      const S lse = log_sum_exp<S>(y.col(j));
      auto p = rg.col(j).array();
      p = (y.col(j).array() - lse).exp();                   // p = softmax(y_j), stored in place
      const S ptr = (p * r.col(j).array()).sum();           // pᵀ r
      p = p * (r.col(j).array() - ptr) * inv_n;             // (p ⊙ r − p pᵀr) / n
    }
  }

 private:
  template <class S, class Col>
  static S log_sum_exp(const Col& y) {
    const S m = y.maxCoeff();
    return m + std::log((y.array() - m).exp().sum());
  }
};

/// Binary cross-entropy on logits, mean over all entries, targets in [0, 1]:
/// L = Σ [max(y, 0) − y t + log(1 + e^−|y|)] / (d n)   (PyTorch's `BCEWithLogitsLoss()`).
///   ∂L/∂Y = (σ(Y) − T) / (d n);   ∇²_Y L · R = σ(Y) ⊙ (1 − σ(Y)) ⊙ R / (d n)
struct BinaryCrossEntropyWithLogits {
  static constexpr const char* name = "binary_cross_entropy_with_logits";
  template <class S>
  using target_type = Matrix<S>;

  void check_outputs(const char*, Index) const {}

  template <class S>
  void check_targets(const char* where, Index outputs, Index n, const Matrix<S>& t) const {
    if (t.rows() != outputs || t.cols() != n)
      metalearn::detail::fail(where, "targets are ", t.rows(), " x ", t.cols(), ", expected ", outputs, " x ", n,
                   " (outputs x examples)");
    for (Index j = 0; j < n; ++j)
      for (Index i = 0; i < outputs; ++i)
        if (!metalearn::detail::is_finite(t(i, j)) || !(t(i, j) >= S(0) && t(i, j) <= S(1)))
          metalearn::detail::fail(where, "target (", i, ", ", j, ") is ", t(i, j), ", expected a probability in [0, 1]");
  }

  template <class S>
  S value(const ConstMatrixRef<S>& y, const Matrix<S>& t) const {
    const auto ya = y.array();
    return (ya.cwiseMax(S(0)) - ya * t.array() + (-ya.abs()).exp().log1p()).sum() / static_cast<S>(y.size());
  }

  template <class S>
  S value_and_gradient(const ConstMatrixRef<S>& y, const Matrix<S>& t, MatrixRef<S> g) const {
    const S inv = S(1) / static_cast<S>(y.size());
    g.array() = (y.array().logistic() - t.array()) * inv;  // (σ(Y) − T) / (d n)
    return value<S>(y, t);
  }

  template <class S>
  void hessian_vector_product(const ConstMatrixRef<S>& y, const Matrix<S>&, const ConstMatrixRef<S>& r,
                              MatrixRef<S> rg) const {
    const S inv = S(1) / static_cast<S>(y.size());
    rg.array() = y.array().logistic() * (S(1) - y.array().logistic()) * r.array() * inv;  // σ(1 − σ) R / (d n)
  }
};

}  // namespace metalearn::nn
