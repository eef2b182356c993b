// cuda_gemm.cu: strided-batched GEMM on CUDA through cuBLAS.
//
// The table's GEMM is row-major; cuBLAS is column-major. A row-major (r x c) matrix with
// leading dimension ld is the column-major (c x r) matrix with the same ld, its transpose, so
// C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T (column-major): the same
// call with the operands swapped and M and N exchanged. One cuBLAS handle, on the backend's
// stream, with its own 32 MiB workspace (so a CUDA graph capture never makes cuBLAS
// allocate). float32 uses plain FP32 math unless its TF32 switch (cuda_flags.h) is on: the
// matmul one, or for the LSTM's GEMMs (GemmPrecision::recurrent, ops/backend/backend.h) the cuDNN
// one, as PyTorch's nn.LSTM runs in cuDNN. float64 is FP64 throughout. K == 0 is done here
// (C = beta C), since cuBLAS rejects the zero leading dimensions such operands come with.
// beta == 0 overwrites C (never read).
#include <cublas_v2.h>

#include <mutex>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

namespace fpa::gpu {
namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) fail("cuda: cuBLAS ", what, " failed: ", cublasGetStatusString(s));
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t created = nullptr;
    check_cublas(cublasCreate(&created), "cublasCreate");
    check_cublas(cublasSetStream(created, stream()), "cublasSetStream");
    // Held for the handle's lifetime (the process).
    void* workspace = nullptr;
    const size_t workspace_bytes = size_t(32) << 20;
    FPA_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
    check_cublas(cublasSetWorkspace(created, workspace, workspace_bytes), "cublasSetWorkspace");
    return created;
  }();
  return h;
}

// C[b] (rows x cols, leading dimension ldc) = beta C[b], for K == 0.
template <typename T>
__global__ void scale_matrix_kernel(int64_t rows, int64_t cols, int64_t ldc, int64_t stride_c, int64_t batch, T beta,
                                    T* C) {
  FPA_GRID_STRIDE_LOOP(i, rows * cols * batch) {
    const int64_t b = i / (rows * cols), rc = i - b * rows * cols, r = rc / cols, c = rc - r * cols;
    T* p = C + b * stride_c + r * ldc + c;
    *p = beta == T(0) ? T(0) : beta * *p;
  }
}

int to_int(int64_t v, const char* what) {
  FPA_CHECK(v >= 0 && v <= 0x7fffffff, "cuda gemm: ", what, " = ", v, " does not fit cuBLAS's int");
  return int(v);
}

}  // namespace

void gemm(DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A, int64_t lda,
          int64_t sa, const void* B, int64_t ldb, int64_t sb, double beta, void* C, int64_t ldc, int64_t sc,
          int64_t batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  if (K == 0) {
    dispatch(t, [&](auto zero) {
      using T = decltype(zero);
      launch("gemm (K = 0)", scale_matrix_kernel<T>, blocks_for(M * N * batch), kThreads, M, N, ldc, sc, batch, T(beta),
             static_cast<T*>(C));
    });
    return;
  }
  static std::mutex mu;  // one handle: calls from several host threads take turns
  std::lock_guard<std::mutex> lock(mu);
  cublasHandle_t h = handle();
  // A failure names the product as the caller asked for it (row-major), not cuBLAS's swap.
  auto check = [&](cublasStatus_t s, const char* what) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    (void)cudaGetLastError();  // a failed launch inside cuBLAS leaves it set
    fail("cuda: cuBLAS ", what, " failed: ", cublasGetStatusString(s), " for ", t == DType::f32 ? "float32" : "float64",
         " C (", M, " x ", N, ") = ", ta ? "A^T" : "A", " ", tb ? "B^T" : "B", " with K ", K, ", lda ", lda, ", ldb ",
         ldb, ", ldc ", ldc, ", batch ", batch, " (strides ", sa, ", ", sb, ", ", sc, ")");
  };
  // Column-major call: C^T (N x M) = op(B)^T (N x K) op(A)^T (K x M).
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = to_int(N, "N"), n = to_int(M, "M"), k = to_int(K, "K");
  const int ld_b = to_int(ldb, "ldb"), ld_a = to_int(lda, "lda"), ld_c = to_int(ldc, "ldc");
  if (t == DType::f32) {
    const bool tf32 = gemm_precision() == GemmPrecision::recurrent ? cuda_tf32() : cuda_matmul_tf32();
    check(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    const float al = float(alpha), be = float(beta);
    auto a = static_cast<const float*>(A);
    auto b = static_cast<const float*>(B);
    auto c = static_cast<float*>(C);
    if (batch == 1) check(cublasSgemm(h, op_b, op_a, m, n, k, &al, b, ld_b, a, ld_a, &be, c, ld_c), "sgemm");
    else
      check(cublasSgemmStridedBatched(h, op_b, op_a, m, n, k, &al, b, ld_b, sb, a, ld_a, sa, &be, c, ld_c, sc,
                                      to_int(batch, "batch")),
            "sgemm (strided batched)");
  } else {
    check(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    const double al = alpha, be = beta;
    auto a = static_cast<const double*>(A);
    auto b = static_cast<const double*>(B);
    auto c = static_cast<double*>(C);
    if (batch == 1) check(cublasDgemm(h, op_b, op_a, m, n, k, &al, b, ld_b, a, ld_a, &be, c, ld_c), "dgemm");
    else
      check(cublasDgemmStridedBatched(h, op_b, op_a, m, n, k, &al, b, ld_b, sb, a, ld_a, sa, &be, c, ld_c, sc,
                                      to_int(batch, "batch")),
            "dgemm (strided batched)");
  }
  sync_if_requested("a cuBLAS GEMM");
}

}  // namespace fpa::gpu
