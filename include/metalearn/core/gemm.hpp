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

#include <algorithm>
#include <cstddef>
#include <type_traits>

namespace metalearn::detail {

/// Packing buffers of the blocked product, grown on demand and then reused.
template <class S>
class GemmScratch {
 public:
  /// A buffer of at least `size` scalars for the packed left operand.
  S* lhs(Index size) { return grow(lhs_, size); }
  /// A buffer of at least `size` scalars for the packed right operand.
  S* rhs(Index size) { return grow(rhs_, size); }
  /// A buffer of at least `size` scalars for a transposed copy of a left operand.
  S* transposed(Index size) { return grow(transposed_, size); }
  /// Bytes held.
  std::size_t bytes() const {
    return sizeof(S) * static_cast<std::size_t>(lhs_.size() + rhs_.size() + transposed_.size());
  }

 private:
  static S* grow(Vector<S>& v, Index size) {
    if (v.size() < size) v.resize(size);  // Eigen-aligned, as the packing kernels require
    return v.data();
  }
  Vector<S> lhs_;
  Vector<S> rhs_;
  Vector<S> transposed_;
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

/// C (m × n, column-major, ldc) = or += A (m × k, column-major, lda) · B, where B(p, j) is at
/// b[p·bs + j·bt]: a register-blocked kernel for the narrow products of small networks
/// (m between one and six SIMD packets), which Eigen's blocked product would first pack.
/// Four columns of C are kept in registers while the k columns of A stream through; the
/// last, partial packet of rows is the packet that ends at row m (overlapping its
/// neighbour), so every load stays inside A's columns and no copy of A is made.
template <class S, int R>
void small_gemm(Index m, Index n, Index k, const S* a, Index lda, const S* b, Index bs, Index bt, S* c, Index ldc,
                bool accumulate) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<S>::type;
  constexpr Index L = ei::packet_traits<S>::size;
  Index rows[R];  // first row of each packet
  for (int r = 0; r < R; ++r) rows[r] = std::min<Index>(r * L, m - L);
  auto block = [&](Index j0, auto cols_tag) {
    constexpr int Q = decltype(cols_tag)::value;
    P acc[Q][R];
    for (int q = 0; q < Q; ++q)
      for (int r = 0; r < R; ++r) acc[q][r] = ei::pset1<P>(S(0));
    for (Index p = 0; p < k; ++p) {
      P col[R];
      for (int r = 0; r < R; ++r) col[r] = ei::ploadu<P>(a + p * lda + rows[r]);
      for (int q = 0; q < Q; ++q) {
        const P bb = ei::pset1<P>(b[p * bs + (j0 + q) * bt]);
        for (int r = 0; r < R; ++r) acc[q][r] = ei::pmadd(col[r], bb, acc[q][r]);  // C(:, j) += A(:, p) B(p, j)
      }
    }
    for (int q = 0; q < Q; ++q) {
      S* cj = c + (j0 + q) * ldc;
      if (accumulate)  // load every packet of the column before storing any (they may overlap)
        for (int r = 0; r < R; ++r) acc[q][r] = ei::padd(acc[q][r], ei::ploadu<P>(cj + rows[r]));
      for (int r = 0; r < R; ++r) ei::pstoreu(cj + rows[r], acc[q][r]);
    }
  };
  Index j = 0;
  for (; j + 4 <= n; j += 4) block(j, std::integral_constant<int, 4>{});
  for (; j < n; ++j) block(j, std::integral_constant<int, 1>{});
}

/// True when `small_gemm` handles products with m rows of S.
template <class S>
constexpr bool small_gemm_rows(Index m) {
  constexpr Index L = Eigen::internal::packet_traits<S>::size;
  return m >= L && m <= 6 * L;
}

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
      constexpr Index L = ei::packet_traits<S>::size;
      if constexpr (LX::Flags & Eigen::RowMajorBit) {  // a transposed lhs: copy it column-major first
        if (l.innerStride() == 1 && r.innerStride() == 1 && small_gemm_rows<S>(m) && k <= 8 * L) {
          Eigen::Map<Matrix<S>> copy(scratch.transposed(m * k), m, k);
          copy = l;
          gemm(dst, copy, rhs, accumulate, scratch);
          return;
        }
      } else {  // narrow products with a column-major lhs
        if (l.innerStride() == 1 && r.innerStride() == 1 && small_gemm_rows<S>(m)) {
          const bool rhs_row_major = (RX::Flags & Eigen::RowMajorBit) != 0;
          const Index bs = rhs_row_major ? r.outerStride() : 1, bt = rhs_row_major ? 1 : r.outerStride();
          const Index packets = (m + L - 1) / L;
          auto run = [&](auto r_tag) {
            small_gemm<S, decltype(r_tag)::value>(m, n, k, l.data(), l.outerStride(), r.data(), bs, bt, dst.data(),
                                                  dst.outerStride(), accumulate);
          };
          switch (packets) {
            case 1: run(std::integral_constant<int, 1>{}); return;
            case 2: run(std::integral_constant<int, 2>{}); return;
            case 3: run(std::integral_constant<int, 3>{}); return;
            case 4: run(std::integral_constant<int, 4>{}); return;
            case 5: run(std::integral_constant<int, 5>{}); return;
            default: run(std::integral_constant<int, 6>{}); return;
          }
        }
      }
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
