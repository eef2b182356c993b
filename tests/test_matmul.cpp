// test_matmul.cpp: matmul (2-d, batched, broadcast batch), transposed operands, linear, and the
// BLAS GEMM against the portable kernel. Their op cases: tests/op_cases/matmul_cases.cpp.
#include <gtest/gtest.h>

#include "ops/backend/cpu/cpu_kernels.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Reference product in double, by loops.
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  int64_t M = a.dim(0), K = a.dim(1), N = b.dim(1);
  std::vector<double> x = a.to_vector(), y = b.to_vector(), z(M * N, 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < N; ++j) z[i * N + j] += x[i * K + k] * y[k * N + j];
  return from_vector(z, {M, N}, DType::f64);
}

TEST(Matmul, MatchesLoopsInBothDtypes) {
  Tensor a = randn({37, 19}, DType::f64), b = randn({19, 23}, DType::f64);
  EXPECT_CLOSE_TOL(matmul(a, b), ref_matmul(a, b), 1e-12, 1e-12);
  EXPECT_CLOSE_TOL(matmul(a.to(DType::f32), b.to(DType::f32)).to(DType::f64), ref_matmul(a, b), 1e-4, 1e-4);
  EXPECT_CLOSE_TOL(matmul_t(transpose(a, 0, 1), b, true, false), ref_matmul(a, b), 1e-12, 1e-12);
  EXPECT_CLOSE_TOL(matmul_t(a, transpose(b, 0, 1), false, true), ref_matmul(a, b), 1e-12, 1e-12);
}

TEST(Matmul, BatchedAndLargeMatchPerMatrix) {
  Tensor a = randn({3, 70, 40}, DType::f64), b = randn({3, 40, 50}, DType::f64);
  Tensor c = matmul(a, b);
  for (int i = 0; i < 3; ++i)
    EXPECT_CLOSE_TOL(reshape(slice(c, 0, i, i + 1), {70, 50}),
                     ref_matmul(reshape(slice(a, 0, i, i + 1), {70, 40}), reshape(slice(b, 0, i, i + 1), {40, 50})),
                     1e-12, 1e-12);
  // Large enough to take the threaded paths (rows split over threads).
  Tensor p = randn({300, 200}, DType::f32), q = randn({200, 150}, DType::f32);
  EXPECT_CLOSE_TOL(matmul(p, q).to(DType::f64), ref_matmul(p, q), 1e-3, 1e-4);
}

TEST(Matmul, PortableKernelMatchesBlas) {
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      Tensor a = randn(ta ? Shape{20, 33} : Shape{33, 20}, DType::f64);
      Tensor b = randn(tb ? Shape{17, 20} : Shape{20, 17}, DType::f64);
      Tensor c = full({33, 17}, 0.5, DType::f64);
      Tensor expected = add(mul_scalar(matmul_t(a, b, ta, tb), 2.0), full({33, 17}, 0.5 * 0.25, DType::f64));
      cpu::gemm_portable(DType::f64, ta, tb, 33, 17, 20, 2.0, a.data(), a.dim(1), b.data(), b.dim(1), 0.25, c.data(), 17);
      EXPECT_CLOSE_TOL(c, expected, 1e-12, 1e-12);
    }
}

TEST(Matmul, LinearMatchesFormula) {
  Tensor x = randn({4, 3}, DType::f64), w = randn({2, 3}, DType::f64), b = randn({2}, DType::f64);
  EXPECT_CLOSE_TOL(linear(x, w, b), add(ref_matmul(x, transpose(w, 0, 1)), b), 1e-12, 1e-12);
}

TEST(Matmul, BadShapesRaiseNamedErrors) {
  EXPECT_ERROR(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: inner dimensions differ: (2, 3) @ (4, 5)");
  EXPECT_ERROR(matmul(zeros({3}), zeros({3, 2})), "matmul: operands need at least 2 dims");
  EXPECT_ERROR(matmul(zeros({2, 2, 3}), zeros({3, 3, 2})), "matmul: shapes (2) and (3) do not broadcast");
  EXPECT_ERROR(linear(zeros({4, 3}), zeros({2, 5})), "linear: input (4, 3) does not match weight (2, 5)");
}

}  // namespace
}  // namespace fpa::test
