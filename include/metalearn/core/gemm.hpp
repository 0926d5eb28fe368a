#pragma once
/// @file
/// @brief The one place where metalearn multiplies matrices (internal).
///
/// `gemm(dst, lhs, rhs, accumulate, scratch)` reduces its operands (Maps, and transposes of
/// Maps) to pointer, leading dimension and orientation, and hands them to `gemm_kernel`,
/// which is instantiated once per scalar type — so that networks of many shapes do not each
/// instantiate Eigen's product machinery. It then picks:
///   - narrow products (m between one and six SIMD packets), and products with few columns or
///     a short depth (meta-learning's small batches): a register-blocked kernel (`small_gemm`,
///     over panels of rows) that reads a column-major left operand in place, without the
///     packing and zeroing of Eigen's blocked product; a transposed left operand Xᵀ is first
///     copied column-major, or, when it is deep (k ≥ 192) and the right operand column-major,
///     read in place by a kernel of dot products of columns (`dot_gemm`);
///   - other large products: Eigen's own blocked kernel (general_matrix_matrix_product, the
///     code behind `dst.noalias() = lhs * rhs`) with packing buffers held by the caller's
///     `GemmScratch`: Eigen would otherwise allocate them on the heap once they exceed
///     EIGEN_STACK_ALLOCATION_LIMIT (128 KiB), already for a 256 × 256 weight matrix;
///   - vectors, rank-1 updates and tiny products: Eigen's expressions, which do not allocate
///     for them.
/// The blocked path uses Eigen-internal interfaces and is enabled for Eigen 3.4 only; other
/// versions use the ordinary product there.

#include <metalearn/core/types.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>

namespace metalearn::detail {

/// Packing buffers of the products, grown on demand and then reused.
template <class S>
class GemmScratch {
 public:
  /// A buffer of at least `size` scalars for the packed left operand.
  S* lhs(Index size) { return grow(lhs_, size); }
  /// A buffer of at least `size` scalars for the packed right operand.
  S* rhs(Index size) { return grow(rhs_, size); }
  /// A buffer of at least `size` scalars for a transposed copy of a left operand.
  S* transposed(Index size) { return grow(transposed_, size); }
  /// Grows the buffers to at least these sizes now, so that later requests within them never
  /// allocate.
  void reserve(Index lhs_size, Index rhs_size, Index transposed_size) {
    grow(lhs_, lhs_size);
    grow(rhs_, rhs_size);
    grow(transposed_, transposed_size);
  }
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

/// A matrix operand in memory: element (i, j) at data[i·ld + j] when row-major, else
/// data[i + j·ld].
template <class S>
struct Operand {
  const S* data;
  Index ld;
  bool row_major;
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

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // SIMD packet types as template arguments
#endif
/// dst (cols × rows, column-major, ldd) = srcᵀ, src (rows × cols, column-major, lds): square
/// tiles of one SIMD packet transposed in registers (cache-friendly and vectorised; Eigen's
/// `dst = src.transpose()` copies element by element with strided writes), scalar edges.
template <class S>
void transpose(const S* src, Index rows, Index cols, Index lds, S* dst, Index ldd) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<S>::type;
  constexpr Index L = ei::packet_traits<S>::size;
  Index i = 0;
  for (; i + L <= rows; i += L) {
    Index j = 0;
    for (; j + L <= cols; j += L) {
      ei::PacketBlock<P, static_cast<int>(L)> tile;
      for (Index q = 0; q < L; ++q) tile.packet[q] = ei::ploadu<P>(src + i + (j + q) * lds);  // src(i:i+L, j+q)
      ei::ptranspose(tile);
      for (Index q = 0; q < L; ++q) ei::pstoreu(dst + j + (i + q) * ldd, tile.packet[q]);   // dst(j:j+L, i+q)
    }
    for (; j < cols; ++j)
      for (Index q = 0; q < L; ++q) dst[j + (i + q) * ldd] = src[i + q + j * lds];
  }
  for (; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) dst[j + i * ldd] = src[i + j * lds];
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/// SIMD registers of the target (Eigen's count: 32 with AVX-512 or AArch64 NEON, 16 for other
/// x86-64 targets); `small_gemm` sizes its register blocks by it.
constexpr int simd_registers = EIGEN_ARCH_DEFAULT_NUMBER_OF_REGISTERS;

#if defined(EIGEN_USE_BLAS) && defined(METALEARN_SCRATCH_GEMM)
/// Products of at least this many multiply-adds go to the BLAS when the build has one
/// (EIGEN_USE_BLAS: the blocked path below calls its sgemm_/dgemm_), even where `small_gemm`
/// would take them: a tuned BLAS beats the small kernel on products this large (batch-32
/// passes of a 784-256 layer), not on meta-learning's (40 × 40 × 10 is 16 000; width 256 with
/// 10 columns, 655 360).
inline constexpr Index blas_gemm_threshold = Index(1) << 20;
#endif

/// True when the register-blocked kernel `small_gemm` beats Eigen's blocked product: a narrow
/// result (at most six packets of rows), or few columns or a short depth (the products of
/// meta-learning on small batches), where packing and zeroing cost as much as the arithmetic.
template <class S>
constexpr bool use_small_gemm(Index m, Index n, Index k) {
  constexpr Index L = Eigen::internal::packet_traits<S>::size;
#if defined(EIGEN_USE_BLAS) && defined(METALEARN_SCRATCH_GEMM)
  if (m > 1 && n > 1 && m * n * k >= blas_gemm_threshold) return false;
#endif
  return m >= L && (m <= 6 * L || n <= 32 || k <= 32);
}

/// Columns of C that `small_gemm` keeps in registers beside R packets of rows: up to five,
/// as many as fit with the R packets of A and the broadcast of B.
template <int R>
constexpr int small_gemm_columns() {
  int q = 5;
  while (q > 1 && q * R + R + 1 > simd_registers) --q;
  return q;
}

/// The most packets of rows in one panel of `small_gemm`: six with 32 registers, two with fewer
/// (wider panels spill there).
constexpr int small_gemm_most_packets = simd_registers >= 32 ? 6 : 2;

/// Packets of rows per panel of `small_gemm` for m rows. With 32 registers a result of up to
/// six packets is one panel; taller ones are cut into panels of at most four packets, so that
/// five columns fit beside them and A is streamed once per five columns of C (panels of six
/// packets with blocks of four columns, then single ones, streamed it four times for ten).
template <class S>
constexpr Index small_gemm_panel_packets(Index m) {
  constexpr Index L = Eigen::internal::packet_traits<S>::size;
  if (small_gemm_most_packets == 6) return m <= 6 * L ? 6 : 4;
  return small_gemm_most_packets;
}

/// Q columns j0 … j0 + Q − 1 of a panel of m rows of C: C(:, j) = or += A B(:, j), with R
/// packets of rows and Q columns in registers while the k columns of A stream through. Always
/// inlined: as a call it is measurably slower on the paper's width-40 products.
template <class S, int R, int Q>
EIGEN_ALWAYS_INLINE void small_gemm_block(Index m, Index j0, Index k, const S* a, Index lda, const S* b, Index bs,
                                          Index bt, S* c, Index ldc, bool accumulate) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<S>::type;
  constexpr Index L = ei::packet_traits<S>::size;
  Index rows[R];  // first row of each packet
  for (int r = 0; r < R; ++r) rows[r] = std::min<Index>(r * L, m - L);
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
}

/// C (m × n, column-major, ldc) = or += A (m × k, column-major, lda) · B, where B(p, j) is at
/// b[p·bs + j·bt], for m rows in R packets: blocks of `small_gemm_columns<R>()` columns, then
/// one block of the remaining ones. The last, partial packet of rows is the packet that ends
/// at row m (overlapping its neighbour), so every load stays inside A's columns and no copy of
/// A is made. Every element of C is one chain of multiply-adds in the order p = 0 … k − 1
/// whatever the blocking, so the blocking changes no bit of a result.
template <class S, int R>
void small_gemm(Index m, Index n, Index k, const S* a, Index lda, const S* b, Index bs, Index bt, S* c, Index ldc,
                bool accumulate) {
  constexpr int Q = small_gemm_columns<R>();
  Index j = 0;
  for (; j + Q <= n; j += Q) small_gemm_block<S, R, Q>(m, j, k, a, lda, b, bs, bt, c, ldc, accumulate);
  const auto tail = [&](auto cols_tag) {
    constexpr int T = decltype(cols_tag)::value;
    if constexpr (T < Q) small_gemm_block<S, R, T>(m, j, k, a, lda, b, bs, bt, c, ldc, accumulate);
  };
  switch (n - j) {
    case 0: break;
    case 1: tail(std::integral_constant<int, 1>{}); break;
    case 2: tail(std::integral_constant<int, 2>{}); break;
    case 3: tail(std::integral_constant<int, 3>{}); break;
    default: tail(std::integral_constant<int, 4>{}); break;  // Q ≤ 5
  }
}

/// True when a product with a transposed left operand, Xᵀ B with X k × m and a column-major
/// B, runs as dot products of columns (`dot_gemm`) instead of copying Xᵀ column-major for
/// `small_gemm`: from a depth of 192. The copy is a register transpose bound by shuffles; the
/// dot products pay one reduction per element of C instead, which the depth amortises
/// (bench_gemm's `gemm/transposed/...` rows time both; bench/README.md has the crossover). A
/// layer with 192 outputs or more thus keeps no Wᵀ copy for the cached R-pass, which halves
/// the per-step state that second-order MAML stores at width 256.
template <class S>
constexpr bool use_dot_gemm(Index k) {
  return k >= std::max<Index>(192, Eigen::internal::packet_traits<S>::size);
}

/// PX columns of X (x, ldx) against Q columns of B (b, ldb), k ≥ one packet deep, into
/// C(i, j), i < PX, j < Q (c, ldc): PX·Q accumulators of one packet each run along k; the
/// last packet is the one that ends at k, with its lanes that the previous packet already
/// covered zeroed in X by `tail` (k mod L of the lanes kept, or none when L divides k).
template <class S, int PX, int Q, class P>
EIGEN_ALWAYS_INLINE void dot_gemm_block(Index k, const S* x, Index ldx, const S* b, Index ldb, S* c, Index ldc,
                                        const P& tail, bool accumulate) {
  namespace ei = Eigen::internal;
  constexpr Index L = ei::packet_traits<S>::size;
  P acc[PX][Q];
  for (int i = 0; i < PX; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = ei::pset1<P>(S(0));
  const auto step = [&](Index p, auto masked) {
    P xs[PX];
    for (int i = 0; i < PX; ++i) {
      xs[i] = ei::ploadu<P>(x + i * ldx + p);
      if constexpr (decltype(masked)::value) xs[i] = ei::pand(xs[i], tail);
    }
    for (int q = 0; q < Q; ++q) {
      const P bq = ei::ploadu<P>(b + q * ldb + p);
      for (int i = 0; i < PX; ++i) acc[i][q] = ei::pmadd(xs[i], bq, acc[i][q]);  // Σ_p X(p, i) B(p, j), L lanes
    }
  };
  Index p = 0;
  for (; p + L <= k; p += L) step(p, std::false_type{});
  if (p < k) step(k - L, std::true_type{});
  for (int q = 0; q < Q; ++q)
    for (int i = 0; i < PX; ++i) {
      S& out = c[i + q * ldc];
      const S sum = ei::predux(acc[i][q]);  // C(i, j) = the lanes' sum
      out = accumulate ? out + sum : sum;
    }
}

/// C (m × n, column-major, ldc) = or += Xᵀ B for X (k × m, column-major, ldx) and B (k × n,
/// column-major, ldb), k ≥ one packet: blocks of two columns of X by five of B (ten
/// accumulators, which fit 16 registers), then the remaining ones. X is read in place, once
/// per five columns of C, and no copy is made.
template <class S>
void dot_gemm(Index m, Index n, Index k, const S* x, Index ldx, const S* b, Index ldb, S* c, Index ldc,
              bool accumulate) {
  namespace ei = Eigen::internal;
  using P = typename ei::packet_traits<S>::type;
  constexpr Index L = ei::packet_traits<S>::size;
  eigen_assert(k >= L);
  // lanes L − (k mod L) … L − 1 of the last packet are new: keep them (all bits set), zero the rest
  S lanes[L];
  const Index fresh = k % L;
  std::memset(lanes, 0, sizeof(lanes));
  std::memset(lanes + (L - fresh), 0xff, sizeof(S) * static_cast<std::size_t>(fresh));
  const P tail = ei::ploadu<P>(lanes);
  constexpr int Q = 5;
  const auto rows = [&](Index i, auto px) {
    constexpr int PX = decltype(px)::value;
    const S* xi = x + i * ldx;
    Index j = 0;
    for (; j + Q <= n; j += Q)
      dot_gemm_block<S, PX, Q>(k, xi, ldx, b + j * ldb, ldb, c + i + j * ldc, ldc, tail, accumulate);
    const auto last = [&](auto cols) {
      dot_gemm_block<S, PX, decltype(cols)::value>(k, xi, ldx, b + j * ldb, ldb, c + i + j * ldc, ldc, tail, accumulate);
    };
    switch (n - j) {
      case 0: break;
      case 1: last(std::integral_constant<int, 1>{}); break;
      case 2: last(std::integral_constant<int, 2>{}); break;
      case 3: last(std::integral_constant<int, 3>{}); break;
      default: last(std::integral_constant<int, 4>{}); break;
    }
  };
  Index i = 0;
  for (; i + 2 <= m; i += 2) rows(i, std::integral_constant<int, 2>{});
  if (i < m) rows(i, std::integral_constant<int, 1>{});
}

/// C (m × n, column-major, ldc) = or += A (m × k) · B (k × n); see the file comment.
template <class S>
void gemm_kernel(S* c, Index ldc, Index m, Index n, Index k, Operand<S> a, Operand<S> b, bool accumulate,
                 GemmScratch<S>& scratch) {
  constexpr int Dyn = Eigen::Dynamic;
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<Matrix<S>, 0, Stride> dst(c, m, n, Stride(ldc));
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!accumulate) dst.setZero();
    return;
  }
  if (k == 1) {  // rank-1 update
    using InnerStride = Eigen::InnerStride<>;
    Eigen::Map<const Vector<S>, 0, InnerStride> col(a.data, m, InnerStride(a.row_major ? a.ld : 1));
    Eigen::Map<const Vector<S>, 0, InnerStride> row(b.data, n, InnerStride(b.row_major ? 1 : b.ld));
    if (accumulate) dst.noalias() += col * row.transpose();
    else dst.noalias() = col * row.transpose();
    return;
  }
  constexpr Index L = Eigen::internal::packet_traits<S>::size;
  const bool blocked = m > 1 && n > 1 && m + n + k >= EIGEN_GEMM_TO_COEFFBASED_THRESHOLD;
  if (blocked && use_small_gemm<S>(m, n, k)) {
    if (a.row_major && !b.row_major && use_dot_gemm<S>(k)) {  // A = Xᵀ, deep: dot products of columns
      dot_gemm(m, n, k, a.data, a.ld, b.data, b.ld, c, ldc, accumulate);
      return;
    }
    if (a.row_major) {  // the kernel reads A's columns in place: copy a transposed A column-major
      S* copy = scratch.transposed(m * k);
      transpose(a.data, k, m, a.ld, copy, m);  // A is Xᵀ for X (k × m, column-major)
      a = {copy, m, false};
    }
    const Index bs = b.row_major ? b.ld : 1, bt = b.row_major ? 1 : b.ld;
    // panels of rows, as equal as possible, each of at least one packet
    const Index most = small_gemm_panel_packets<S>(m) * L;
    const Index panels = (m + most - 1) / most;
    for (Index i = 0, panel = 0; panel < panels; ++panel) {
      const Index rows = (m - i) / (panels - panel);
      const S* ai = a.data + i;
      S* ci = c + i;
      const auto panel_of = [&](auto packets) {
        constexpr int R = decltype(packets)::value;
        if constexpr (R <= small_gemm_most_packets)
          small_gemm<S, R>(rows, n, k, ai, a.ld, b.data, bs, bt, ci, ldc, accumulate);
      };
      switch ((rows + L - 1) / L) {
        case 1: panel_of(std::integral_constant<int, 1>{}); break;
        case 2: panel_of(std::integral_constant<int, 2>{}); break;
        case 3: panel_of(std::integral_constant<int, 3>{}); break;
        case 4: panel_of(std::integral_constant<int, 4>{}); break;
        case 5: panel_of(std::integral_constant<int, 5>{}); break;
        default: panel_of(std::integral_constant<int, 6>{}); break;
      }
      i += rows;
    }
    return;
  }
#ifdef METALEARN_SCRATCH_GEMM
  if (blocked) {
    namespace ei = Eigen::internal;
    if (!accumulate) dst.setZero();
    ScratchBlocking<S> blocking(m, n, k, scratch);
    auto run = [&](auto lhs_order, auto rhs_order) {
      ei::general_matrix_matrix_product<Index, S, decltype(lhs_order)::value, false, S, decltype(rhs_order)::value,
                                        false, Eigen::ColMajor, 1>::run(m, n, k, a.data, a.ld, b.data, b.ld, c, 1, ldc,
                                                                        S(1), blocking, nullptr);
    };
    using Col = std::integral_constant<int, Eigen::ColMajor>;
    using Row = std::integral_constant<int, Eigen::RowMajor>;
    if (a.row_major) {
      if (b.row_major) run(Row{}, Row{});
      else run(Row{}, Col{});
    } else {
      if (b.row_major) run(Col{}, Row{});
      else run(Col{}, Col{});
    }
    return;
  }
#endif
  // vectors and tiny products: Eigen's expressions (gemv and coefficient-based products)
  using ColMap = Eigen::Map<const Matrix<S>, 0, Stride>;
  using RowMap = Eigen::Map<const Eigen::Matrix<S, Dyn, Dyn, Eigen::RowMajor>, 0, Stride>;
  auto product = [&](const auto& lhs, const auto& rhs) {
    if (accumulate) dst.noalias() += lhs * rhs;
    else dst.noalias() = lhs * rhs;
  };
  if (a.row_major) {
    const RowMap lhs(a.data, m, k, Stride(a.ld));
    if (b.row_major) product(lhs, RowMap(b.data, k, n, Stride(b.ld)));
    else product(lhs, ColMap(b.data, k, n, Stride(b.ld)));
  } else {
    const ColMap lhs(a.data, m, k, Stride(a.ld));
    if (b.row_major) product(lhs, RowMap(b.data, k, n, Stride(b.ld)));
    else product(lhs, ColMap(b.data, k, n, Stride(b.ld)));
  }
}

/// The operand view of a Map (or a transpose of one) with unit inner stride.
template <class X>
Operand<typename X::Scalar> operand(const X& x) {
  using T = Eigen::internal::blas_traits<X>;
  static_assert(!T::NeedToConjugate, "metalearn::detail::gemm: no conjugated operands");
  const auto& e = T::extract(x);
  using E = std::decay_t<decltype(e)>;
  constexpr bool row_major = (E::Flags & Eigen::RowMajorBit) != 0;
  eigen_assert(e.innerStride() == 1 && "metalearn::detail::gemm: operands need unit inner stride");
  // a single row or column has no meaningful outer stride: use its extent
  const Index ld = row_major ? (e.rows() > 1 ? e.outerStride() : e.cols()) : (e.cols() > 1 ? e.outerStride() : e.rows());
  return {e.data(), std::max<Index>(ld, 1), row_major};
}

/// dst = lhs · rhs, or dst += lhs · rhs when `accumulate`. The operands are Maps (or
/// transposes of Maps) with unit inner stride that do not alias dst.
template <class Dst, class Lhs, class Rhs, class S>
inline void gemm(Dst&& dst, const Lhs& lhs, const Rhs& rhs, bool accumulate, GemmScratch<S>& scratch) {
  using D = std::decay_t<Dst>;
  eigen_assert(dst.rows() == lhs.rows() && dst.cols() == rhs.cols() && lhs.cols() == rhs.rows());
  eigen_assert(dst.innerStride() == 1);
  if constexpr ((D::Flags & Eigen::RowMajorBit) != 0) {
    if (dst.rows() > 1) {  // a row-major C is a column-major Cᵀ = Bᵀ Aᵀ
      gemm(dst.transpose(), rhs.transpose(), lhs.transpose(), accumulate, scratch);
      return;
    }
  }
  const Index ldc = (D::Flags & Eigen::RowMajorBit) != 0 ? 1 : std::max<Index>(dst.outerStride(), dst.rows());
  gemm_kernel<S>(dst.data(), ldc, dst.rows(), dst.cols(), lhs.cols(), operand(lhs), operand(rhs), accumulate, scratch);
}

}  // namespace metalearn::detail
