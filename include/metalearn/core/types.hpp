#pragma once
/// @file
/// @brief Scalar, vector and matrix aliases shared by every part of metalearn.

#include <Eigen/Core>

#include <type_traits>

namespace metalearn {

/// Signed index type used for sizes and offsets (Eigen's).
using Index = Eigen::Index;

/// Column vector of scalars; flat parameter vectors θ and gradients use this type.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// Column-major matrix of scalars; data sets are features × examples.
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// Writable view of a vector (a `Vector`, a `Map`, or a contiguous column or segment).
template <class Scalar>
using VectorRef = Eigen::Ref<Vector<Scalar>>;

/// Read-only view of a vector.
template <class Scalar>
using ConstVectorRef = Eigen::Ref<const Vector<Scalar>>;

/// Writable view of a column-major matrix block with contiguous columns.
template <class Scalar>
using MatrixRef = Eigen::Ref<Matrix<Scalar>>;

/// Read-only view of a column-major matrix.
template <class Scalar>
using ConstMatrixRef = Eigen::Ref<const Matrix<Scalar>>;

/// Integer class labels, one per example.
using Labels = Eigen::Matrix<int, Eigen::Dynamic, 1>;

/// True for the scalar types metalearn's own models are instantiated with.
template <class Scalar>
inline constexpr bool is_supported_scalar_v =
    std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>;

}  // namespace metalearn
