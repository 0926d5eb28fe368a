// Configure-time probe (cmake/MetalearnProjectOptions.cmake): does this compiler, with these
// flags, raise -Waggressive-loop-optimizations inside Eigen's row-major matrix-vector product
// when the depth (cols) is a compile-time multiple of the SIMD packet size?
//
// y (1 × n) = w (1 × 40) · D (40 × n) is evaluated by Eigen 3.4 as the row-major GEMV Dᵀwᵀ
// (general_matrix_vector_product<…, RowMajor, …>::run), which GCC 12 at -O3 clones with
// cols = 40 (IPA-CP). In that function, for(j = 0; j + P <= cols; j += P) consumes the
// depth in packets of P = 2, 4 or 8 doubles, and the scalar remainder for(; j < cols; ++j),
// the loop the warning names, runs cols mod P times: zero here. GCC nevertheless reports
// "iteration 2305843009213693951 invokes undefined behavior" for it: 2⁶¹ − 1 is (2⁶⁴ − 8) / 8,
// the count it derives from cols − j = 0 taken as an unsigned trip count minus one. Measured
// with g++ 12.2 -O3 -mavx2 -mfma on this file with the depth varied: the warning appears for
// every multiple of 4 from 24 on (24, 32, 36, 40, 44, 48, 64, 100, 128, 256) and for no other
// depth (20, 39, 41, 42, 43, 129) — exactly when the loop it names never runs. Not with
// -O2, -msse2 or AVX-512 (other clones), nor with clang. It is a false positive.
#include <Eigen/Core>

void product(const double* w, const double* d, double* out, long n) {
  Eigen::Map<const Eigen::Matrix<double, 1, 40>> W(w);
  Eigen::Map<const Eigen::Matrix<double, 40, Eigen::Dynamic>> D(d, 40, n);
  Eigen::Map<Eigen::Matrix<double, 1, Eigen::Dynamic>> y(out, n);
  y.noalias() = W * D;
}

int main() { return 0; }
