// matmul_f64.h: C += A B in float64 on the CPU, cache-blocked and OpenMP-parallel, for the dense
// linear algebra of the image-quality measures (train/feature_distances.cpp): the covariance
// rank-k updates, the products of FID's matrix square root and KID's kernel matrices.
// It knows nothing of tensors or backends; A and B are strided views, so a transpose is just a
// view with its strides swapped. Results do not depend on the thread count (each element of C is
// summed by one thread in a fixed order).
#pragma once
#include <cstdint>

namespace fpa {

// A read-only matrix view: element (i, j) is data[i * row_stride + j * col_stride].
struct MatrixViewF64 {
  const double* data;
  int64_t row_stride, col_stride;
};

// A row-major (rows, cols) matrix and its transpose, as views.
inline MatrixViewF64 row_major(const double* data, int64_t cols) { return {data, cols, 1}; }
inline MatrixViewF64 transposed(const double* data, int64_t cols) { return {data, 1, cols}; }

enum class Triangle { full, upper };

// C (m, n), row stride ldc: C += A (m, k) B (k, n). Triangle::upper (m == n) computes only the
// tiles that meet the upper triangle (column >= row): the entries on and above the diagonal are
// exact, those below are partly updated and must be ignored (mirror the upper triangle).
void matmul_add_f64(double* c, int64_t ldc, MatrixViewF64 a, MatrixViewF64 b, int64_t m, int64_t n, int64_t k,
                    Triangle part = Triangle::full);

// Copies the upper triangle of the (n, n) row-major matrix onto its lower triangle.
void mirror_upper_f64(double* c, int64_t n);

}  // namespace fpa
