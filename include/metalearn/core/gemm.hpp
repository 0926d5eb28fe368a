#pragma once
/// @file
/// @brief The one place where metalearn multiplies matrices (internal).
///
/// Eigen's blocked matrix product packs its operands into buffers that it allocates on the
/// heap once they exceed EIGEN_STACK_ALLOCATION_LIMIT (128 KiB), e.g. already for a
/// 256 × 256 weight matrix. To keep the networks' passes free of heap allocation at any
/// size, `gemm` runs Eigen's own blocked kernel (general_matrix_matrix_product, the code
/// behind `dst.noalias() = lhs * rhs`) with packing buffers held by the caller's workspace
/// (`GemmScratch`), grown on first use. Products that Eigen would not block (vectors, depth
/// 1, tiny sizes) go through the ordinary expression, which does not allocate for them.
/// This uses Eigen-internal interfaces and is enabled for Eigen 3.4 only; other versions
/// fall back to the ordinary product.

#include <metalearn/core/types.hpp>

#include <cstddef>

namespace metalearn::detail {

/// Packing buffers of the blocked product, grown on demand and then reused.
template <class S>
class GemmScratch {
 public:
  /// A buffer of at least `size` scalars for the packed left operand.
  S* lhs(Index size) { return grow(lhs_, size); }
  /// A buffer of at least `size` scalars for the packed right operand.
  S* rhs(Index size) { return grow(rhs_, size); }
  /// Bytes held.
  std::size_t bytes() const { return sizeof(S) * static_cast<std::size_t>(lhs_.size() + rhs_.size()); }

 private:
  static S* grow(Vector<S>& v, Index size) {
    if (v.size() < size) v.resize(size);  // Eigen-aligned, as the packing kernels require
    return v.data();
  }
  Vector<S> lhs_;
  Vector<S> rhs_;
};

#if EIGEN_VERSION_AT_LEAST(3, 4, 0) && !EIGEN_VERSION_AT_LEAST(3, 4, 90)
#define METALEARN_SCRATCH_GEMM 1
/// Eigen's level-3 blocking with the packing buffers taken from a GemmScratch.
template <class S>
class ScratchBlocking : public Eigen::internal::level3_blocking<S, S> {
 public:
  ScratchBlocking(Index rows, Index cols, Index depth, GemmScratch<S>& scratch) {
    this->m_mc = rows;
    this->m_nc = cols;
    this->m_kc = depth;
    Eigen::internal::computeProductBlockingSizes<S, S, 1>(this->m_kc, this->m_mc, this->m_nc, Index(1));
    this->m_blockA = scratch.lhs(this->m_mc * this->m_kc);
    this->m_blockB = scratch.rhs(this->m_kc * this->m_nc);
  }
};
#endif

/// dst = lhs · rhs, or dst += lhs · rhs when `accumulate`. The operands are Maps (or
/// transposes of Maps) that do not alias dst.
template <class Dst, class Lhs, class Rhs, class S>
inline void gemm(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate, GemmScratch<S>& scratch) {
#ifdef METALEARN_SCRATCH_GEMM
  namespace ei = Eigen::internal;
  using D = std::decay_t<Dst>;
  using LT = ei::blas_traits<Lhs>;
  using RT = ei::blas_traits<Rhs>;
  using LX = std::decay_t<typename LT::ExtractType>;
  using RX = std::decay_t<typename RT::ExtractType>;
  const Index m = dst.rows(), n = dst.cols(), k = lhs.cols();
  // Eigen's own rule: vectors, depth 1 and tiny products are not blocked.
  const bool blocked = m > 1 && n > 1 && k > 1 && m + n + k >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
  if constexpr (!(D::Flags & Eigen::RowMajorBit) && !LT::NeedToConjugate && !RT::NeedToConjugate) {
    if (blocked && dst.innerStride() == 1) {
      const auto& l = LT::extract(lhs);
      const auto& r = RT::extract(rhs);
      if (l.innerStride() == 1 && r.innerStride() == 1) {
        if (!accumulate) dst.setZero();
        ScratchBlocking<S> blocking(m, n, k, scratch);
        ei::general_matrix_matrix_product<Index, S, (LX::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
                                          false, S, (RX::Flags & Eigen::RowMajorBit) ? Eigen::RowMajor : Eigen::ColMajor,
                                          false, Eigen::ColMajor, 1>::run(m, n, k, l.data(), l.outerStride(), r.data(),
                                                                          r.outerStride(), dst.data(), 1,
                                                                          dst.outerStride(), S(1), blocking, nullptr);
        return;
      }
    }
  }
#else
  (void)scratch;
#endif
  if (lhs.cols() == 1) {  // rank-1 update: Eigen would run its blocked kernel when depth 1 is only known at run time
    if (accumulate)
      dst.noalias() += lhs.col(0) * rhs.row(0);
    else
      dst.noalias() = lhs.col(0) * rhs.row(0);
    return;
  }
  if (accumulate)
    dst.noalias() += lhs * rhs;
  else
    dst.noalias() = lhs * rhs;
}

}  // namespace metalearn::detail
