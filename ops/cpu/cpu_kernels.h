// cpu_kernels.h: the CPU backend's primitives (OpenMP, float and double), one .cpp per family,
// gathered into the Backend table by cpu_backend.cpp.
#pragma once
#include "autograd/error.h"
#include "ops/backend.h"

namespace fpa::cpu {

// Calls body with a typed zero of the dtype: DISPATCH(t, [&](auto zero) { using T = decltype(zero); ... }).
template <typename F>
void dispatch(DType t, F&& body) {
  if (t == DType::f32) body(float(0));
  else body(double(0));
}

// Below this many elements, loops run on one thread.
constexpr int64_t kParallelGrain = 1 << 14;

void unary(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y);
void binary(DType t, BinaryOp op, const StridedLoop& loop, const void* a, const void* b, void* out);
void copy_strided(DType t, const StridedLoop& loop, const void* src, void* dst);
void reduce(DType t, ReduceOp op, const Shape& x_shape, unsigned reduce_mask, const void* x, void* y);
void softmax(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y);
void softmax_backward(DType t, int64_t outer, int64_t dim, int64_t inner, const void* y, const void* g, const void* u,
                      void* dx);

void gemm(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
          const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b,
          double beta, void* C, int64_t ldc, int64_t stride_c, int64_t batch);
// How gemm cuts one product's C (M, N) into rows x cols tiles, one BLAS call each: from the
// shape alone (about kGemmTileFlops per tile, at most kGemmMaxTiles, tiles of at least
// kGemmMinTileRows rows and kGemmMinTileCols columns), never from the thread count.
struct GemmTiling {
  int64_t rows = 1, cols = 1;
};
constexpr double kGemmTileFlops = 1 << 22;
constexpr int64_t kGemmMaxTiles = 64, kGemmMinTileRows = 16, kGemmMinTileCols = 64;
GemmTiling gemm_tiling(int64_t M, int64_t N, int64_t K);
// Which GEMM runs: "OpenBLAS <version> (<kernel>)" or "portable OpenMP kernel".
const char* gemm_implementation();
// The portable kernel alone (always built; also the fallback when no BLAS loads).
void gemm_portable(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const void* A, int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc);

void conv2d_forward(DType t, const ConvGeom& g, const void* x, const void* w, void* y);
void conv2d_backward_data(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx);
void conv2d_backward_filter(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw);
void im2col(DType t, const ConvGeom& g, const void* x, void* col);
void col2im(DType t, const ConvGeom& g, const void* col, void* x);

void avg_pool2d(DType t, const PoolGeom& g, const void* x, void* y);
void avg_pool2d_backward(DType t, const PoolGeom& g, const void* dy, void* dx);
void resize_nearest(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x, void* y);
void resize_nearest_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                             const void* dy, void* dx);

void rand_uniform(DType t, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, void* dst);
void rand_normal(DType t, int64_t n, uint64_t seed, uint64_t offset, double mean, double std, void* dst);
void adam_step(DType t, int64_t n, const AdamArgs& args, void* param, const void* grad, void* m, void* v);

// cpu_local_attention.cpp
void neighbour_dot(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* a,
                   const void* b, void* out);
void neighbour_sum(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* w,
                   const void* x, void* out);
void neighbour_transpose(DType t, int64_t planes, int64_t H, int64_t W, int64_t kernel, const void* w, void* out);
void local_attention(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                     const void* key, const void* value, void* out, void* attn);
void local_attention_backward(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel,
                              const void* q, const void* key, const void* value, const void* attn,
                              const void* dout, void* dq, void* dkey, void* dvalue);

// cpu_paint.cpp
void paint_forward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                   void* W);
void paint_backward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                    const void* dW, void* dk, void* dv, void* dbeta, void* dw0);

// cpu_lstm.cpp
void lstm_gates_forward(DType t, int64_t B, int64_t H, void* gates, const void* c_prev, void* c, void* h);
void lstm_gates_backward(DType t, int64_t B, int64_t H, const void* gates, const void* c_prev, const void* c,
                         const void* dh, void* dc, void* dgates);

// cpu_channel_norm.cpp
void channel_norm_forward(DType t, int64_t N, int64_t C, int64_t P, double eps, const void* x, const void* g,
                          const void* b, void* y, void* mean, void* rstd);
void channel_norm_backward(DType t, int64_t N, int64_t C, int64_t P, const void* x, const void* g, const void* mean,
                           const void* rstd, const void* dy, void* dx, void* dg, void* db);

}  // namespace fpa::cpu
