// detail::gemm, the single product kernel behind every network pass, against Eigen's own
// product on shapes that reach each of its paths: the register-blocked small kernel (every
// packet count and panel split, with the overlapping last packet, every width of the last
// block of columns), the transposed left operand (copied, or read in place by the dot-product
// kernel from depth 192, with and without a partial last packet), Eigen's blocked product with
// scratch buffers, vectors and rank-1 updates.
#include <metalearn/core/gemm.hpp>

#include <catch.hpp>
#include <test_support.hpp>

using metalearn::Index;
using metalearn::Matrix;
using metalearn::Rng;

TEMPLATE_TEST_CASE("gemm: every path equals Eigen's product", "[core][gemm]", float, double) {
  using S = TestType;
  Rng rng(1);
  metalearn::detail::GemmScratch<S> scratch;
  const double tol = std::is_same_v<S, float> ? 2e-5 : 1e-13;
  const std::vector<Index> rows{1, 2, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 63, 64, 65, 80, 96, 97, 130, 200};
  for (Index m : rows) {
    for (Index n : {Index(1), Index(2), Index(3), Index(4), Index(5), Index(7), Index(9), Index(10), Index(21)}) {
      for (Index k : {Index(1), Index(2), Index(13), Index(40), Index(70), Index(192), Index(203)}) {
        INFO("m " << m << ", n " << n << ", k " << k);
        const Matrix<S> a = mlt::random_matrix<S>(m, k, rng), at = a.transpose();
        const Matrix<S> b = mlt::random_matrix<S>(k, n, rng), bt = b.transpose();
        const Matrix<S> c0 = mlt::random_matrix<S>(m, n, rng);
        const Matrix<S> expected = a.template cast<double>().template cast<S>() * b;
        Matrix<S> c(m, n);
        using Map = Eigen::Map<const Matrix<S>>;
        const Map am(a.data(), m, k), atm(at.data(), k, m), bm(b.data(), k, n), btm(bt.data(), n, k);
        for (int variant = 0; variant < 6; ++variant) {
          c = c0;
          Eigen::Map<Matrix<S>> cm(c.data(), m, n);
          const bool acc = variant & 1;
          if (variant < 2) metalearn::detail::gemm(cm, am, bm, acc, scratch);                   // A B
          else if (variant < 4) metalearn::detail::gemm(cm, atm.transpose(), btm.transpose(), acc, scratch);  // (Aᵀ)ᵀ (Bᵀ)ᵀ
          else metalearn::detail::gemm(cm, atm.transpose(), bm, acc, scratch);                  // (Aᵀ)ᵀ B
          const Matrix<S> want = acc ? Matrix<S>(c0 + expected) : expected;
          const double scale = std::max<double>(1, static_cast<double>(want.cwiseAbs().maxCoeff()));
          CHECK(static_cast<double>((c - want).cwiseAbs().maxCoeff()) <= tol * scale * std::sqrt(double(k)));
        }
      }
    }
  }
}

TEST_CASE("gemm: fixed-size operands and blocks of larger buffers", "[core][gemm]") {
  Rng rng(2);
  metalearn::detail::GemmScratch<float> scratch;
  const Matrix<float> w = mlt::random_matrix<float>(40, 40, rng), x = mlt::random_matrix<float>(40, 30, rng);
  Matrix<float> out = Matrix<float>::Zero(40, 30);
  Eigen::Map<const Eigen::Matrix<float, 40, 40>> wm(w.data());
  // columns [10, 20) of a 40 x 30 buffer, as the networks address their [A | RA] blocks
  Eigen::Map<Eigen::Matrix<float, 40, Eigen::Dynamic>> block(out.data() + 10 * 40, 40, 10);
  Eigen::Map<const Eigen::Matrix<float, 40, Eigen::Dynamic>> xin(x.data() + 5 * 40, 40, 10);
  metalearn::detail::gemm(block, wm, xin, false, scratch);
  const Matrix<float> expected = w * x.middleCols(5, 10);
  CHECK((out.middleCols(10, 10) - expected).cwiseAbs().maxCoeff() < 1e-4f);
  CHECK(out.leftCols(10).isZero());   // nothing written outside the block
  CHECK(out.rightCols(10).isZero());
}
