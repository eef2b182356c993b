// cpu_kernels.h: the CPU backend's primitives (OpenMP, float and double), one .cpp per family
// (memory and the table in cpu_backend.cpp), and what those files share.
#pragma once
#include <cstdlib>
#include <string>

#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa::cpu {

// Calls body with a typed zero of the dtype: DISPATCH(t, [&](auto zero) { using T = decltype(zero); ... }).
template <typename F>
void dispatch(DType t, F&& body) {
  if (t == DType::f32) body(float(0));
  else body(double(0));
}

// Below this many elements, loops run on one thread.
constexpr int64_t kParallelGrain = 1 << 14;

// Whether the environment variable `name` turns a switch on: set, non-empty and not "0"
// (FPA_NO_BLAS, FPA_NO_WINOGRAD).
inline bool env_switch_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

// Every primitive of ops/backend/primitives.def, in this namespace; cpu_backend.cpp gathers them
// into the table.
#define FPA_PRIMITIVE(fn, ret, params) ret fn params;
#include "ops/backend/primitives.def"

// How gemm cuts one product's C (M, N) into rows x cols tiles, one BLAS call each: from the
// shape alone (about kGemmTileFlops per tile, tiles of at least kGemmMinTileRows rows and
// kGemmMinTileCols columns), never from the thread count. A product alone (products = 1, as
// gemm tiles every product) gets at most kGemmMaxTiles tiles; `products` > 1 products that run
// together share kGemmBatchTiles, at least one each: each tile packs its rows of A and columns
// of B again, so the batch's own parallelism is used before cutting products.
struct GemmTiling {
  int64_t rows = 1, cols = 1;
};
constexpr double kGemmTileFlops = 1 << 22;
constexpr int64_t kGemmMaxTiles = 64, kGemmBatchTiles = 16, kGemmMinTileRows = 16, kGemmMinTileCols = 64;
GemmTiling gemm_tiling(int64_t M, int64_t N, int64_t K, int64_t products = 1);
// gemm with the tiling of gemm_tiling(M, N, K, tiling_products): for callers whose batch brings
// its own parallelism (a convolution's images, Winograd's positions), fewer tiles pack less.
// tiling_products comes from shapes alone (a capacity, not a thread count), so the bits too.
void gemm_products(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const void* A, int64_t lda, int64_t sa, const void* B, int64_t ldb, int64_t sb, double beta,
                   void* C, int64_t ldc, int64_t sc, int64_t batch, int64_t tiling_products);
// Which GEMM runs: "OpenBLAS <version> (<kernel>)" or "portable OpenMP kernel".
const char* gemm_implementation();
// 3x3 and 5x5, stride-1 float32 convolutions with at least this many input and output channels
// and output rows and columns run forward by Winograd's F(4x4, 3x3) or F(2x2, 5x5)
// (cpu_winograd.cpp), unless FPA_NO_WINOGRAD=1; the other convolutions and all backward passes
// by im2col and GEMM.
constexpr int64_t kWinogradMinChannels = 16, kWinogradMinSide = 12;
bool winograd_applies(DType t, const ConvGeom& g);
void conv2d_forward_winograd(const ConvGeom& g, const float* x, const float* w, float* y);
void conv2d_forward_gemm(DType t, const ConvGeom& g, const void* x, const void* w, void* y);
// The portable kernel alone (always built; also the fallback when no BLAS loads).
void gemm_portable(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const void* A, int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc);

}  // namespace fpa::cpu
