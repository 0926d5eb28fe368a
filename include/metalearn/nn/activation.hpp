#pragma once
/// @file
/// @brief Element-wise activation functions with their first and second derivatives.
///
/// Each activation is a small value type with three members, all taking Eigen arrays of
/// pre-activations `z` and returning an expression (evaluated by the caller):
///   - `value(z)`                   a = f(z)
///   - `derivative(z, a)`           f'(z), given a = f(z) (some are cheaper from a)
///   - `second_derivative(z, a)`    f''(z), needed by the exact Hessian-vector product
/// and `has_curvature`, false when f'' is zero almost everywhere (the R-pass then skips
/// the f'' term). `Activation` is a variant of all of them for networks built at run time.
///
/// Conventions at kinks: ReLU and leaky ReLU use the derivative of the right branch only
/// for z > 0 (f'(0) = 0 for ReLU, slope for leaky ReLU), and f'' = 0 everywhere, which is
/// the derivative almost everywhere; ELU's f'' jumps at 0 (f''(0) = α, from the left).

#include <metalearn/core/types.hpp>

#include <cmath>
#include <string>
#include <variant>

namespace metalearn::nn {

/// f(z) = z.
struct Identity {
  static constexpr const char* name = "identity";
  static constexpr bool has_curvature = false;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    return z.derived();
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    return Z::PlainObject::Ones(z.rows(), z.cols());
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    return Z::PlainObject::Zero(z.rows(), z.cols());
  }
};

/// f(z) = max(z, 0).
struct Relu {
  static constexpr const char* name = "relu";
  static constexpr bool has_curvature = false;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    return z.cwiseMax(typename Z::Scalar(0));
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    using S = typename Z::Scalar;  // select vectorizes; a cast of the comparison does not
    return (z > S(0)).select(Z::PlainObject::Ones(z.rows(), z.cols()), Z::PlainObject::Zero(z.rows(), z.cols()));
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    return Z::PlainObject::Zero(z.rows(), z.cols());
  }
};

/// f(z) = z for z > 0, slope·z otherwise.
struct LeakyRelu {
  static constexpr const char* name = "leaky_relu";
  static constexpr bool has_curvature = false;
  double slope = 0.01;  ///< Slope for z <= 0.
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    using S = typename Z::Scalar;
    return (z > S(0)).select(z, S(slope) * z);
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    using S = typename Z::Scalar;
    return (z > S(0)).select(Z::PlainObject::Constant(z.rows(), z.cols(), S(1)),
                             Z::PlainObject::Constant(z.rows(), z.cols(), S(slope)));
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    return Z::PlainObject::Zero(z.rows(), z.cols());
  }
};

/// f(z) = tanh z;  f' = 1 − a²;  f'' = −2a(1 − a²).
struct Tanh {
  static constexpr const char* name = "tanh";
  static constexpr bool has_curvature = true;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    return z.tanh();
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<A>& a) const {
    using S = typename A::Scalar;
    return S(1) - a.square();
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<A>& a) const {
    using S = typename A::Scalar;
    return S(-2) * a * (S(1) - a.square());
  }
};

/// f(z) = σ(z) = 1 / (1 + e^−z);  f' = a(1 − a);  f'' = a(1 − a)(1 − 2a).
struct Sigmoid {
  static constexpr const char* name = "sigmoid";
  static constexpr bool has_curvature = true;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    return z.logistic();
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<A>& a) const {
    using S = typename A::Scalar;
    return a * (S(1) - a);
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>&, const Eigen::ArrayBase<A>& a) const {
    using S = typename A::Scalar;
    return a * (S(1) - a) * (S(1) - S(2) * a);
  }
};

/// f(z) = log(1 + e^z), computed as max(z, 0) + log1p(e^−|z|);  f' = σ(z);  f'' = σ(1 − σ).
struct Softplus {
  static constexpr const char* name = "softplus";
  static constexpr bool has_curvature = true;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    using S = typename Z::Scalar;
    return z.cwiseMax(S(0)) + (-z.abs()).exp().log1p();
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    return z.logistic();
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    using S = typename Z::Scalar;
    return z.logistic() * (S(1) - z.logistic());
  }
};

/// f(z) = z for z > 0, α(e^z − 1) otherwise;  f' = 1 or a + α;  f'' = 0 or a + α.
struct Elu {
  static constexpr const char* name = "elu";
  static constexpr bool has_curvature = true;
  double alpha = 1.0;  ///< Saturation value −α for z → −∞.
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    using S = typename Z::Scalar;
    return (z > S(0)).select(z, S(alpha) * z.cwiseMin(S(0)).expm1());
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>& a) const {
    using S = typename Z::Scalar;
    return (z > S(0)).select(Z::PlainObject::Constant(z.rows(), z.cols(), S(1)), a + S(alpha));
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>& a) const {
    using S = typename Z::Scalar;
    return (z > S(0)).select(Z::PlainObject::Zero(z.rows(), z.cols()), a + S(alpha));
  }
};

/// GELU, tanh form: f(z) = ½ z (1 + tanh u), u = c (z + k z³), c = √(2/π), k = 0.044715.
///   f'  = ½(1 + t) + ½ z (1 − t²) u'                       with t = tanh u, u' = c(1 + 3k z²)
///   f'' = (1 − t²) u' − z t (1 − t²) u'² + ½ z (1 − t²) u''   with u'' = 6 c k z
struct Gelu {
  static constexpr const char* name = "gelu";
  static constexpr bool has_curvature = true;
  template <class Z>
  auto value(const Eigen::ArrayBase<Z>& z) const {
    using S = typename Z::Scalar;
    return z.unaryExpr([](S x) {
      const S t = std::tanh(S(kC) * (x + S(kK) * x * x * x));
      return S(0.5) * x * (S(1) + t);
    });
  }
  template <class Z, class A>
  auto derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    using S = typename Z::Scalar;
    return z.unaryExpr([](S x) {
      const S t = std::tanh(S(kC) * (x + S(kK) * x * x * x));
      const S du = S(kC) * (S(1) + S(3 * kK) * x * x);
      return S(0.5) * (S(1) + t) + S(0.5) * x * (S(1) - t * t) * du;
    });
  }
  template <class Z, class A>
  auto second_derivative(const Eigen::ArrayBase<Z>& z, const Eigen::ArrayBase<A>&) const {
    using S = typename Z::Scalar;
    return z.unaryExpr([](S x) {
      const S t = std::tanh(S(kC) * (x + S(kK) * x * x * x));
      const S sech2 = S(1) - t * t;
      const S du = S(kC) * (S(1) + S(3 * kK) * x * x);
      const S d2u = S(6 * kC * kK) * x;
      return sech2 * du - x * t * sech2 * du * du + S(0.5) * x * sech2 * d2u;
    });
  }

 private:
  static constexpr double kC = 0.7978845608028654;  // √(2/π)
  static constexpr double kK = 0.044715;
};

/// Any of the activations above, chosen at run time (for `Mlp<Scalar>` built from widths).
using Activation = std::variant<Identity, Relu, LeakyRelu, Tanh, Sigmoid, Softplus, Elu, Gelu>;

/// The activation's name ("relu", "tanh", ...).
inline std::string activation_name(const Activation& activation) {
  return std::visit([](const auto& a) { return std::string(a.name); }, activation);
}

}  // namespace metalearn::nn
