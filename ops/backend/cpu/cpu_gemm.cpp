// cpu_gemm.cpp: strided-batched GEMM on the CPU.
//
// OpenBLAS (Debian's OpenMP build) is loaded with dlopen on first use, so the build has no
// link-time BLAS dependency and falls back to a portable OpenMP kernel when it is absent
// (or when FPA_NO_BLAS=1). OpenBLAS 0.3.21 does not recognise recent Xeons and would run its
// SSE3 "Prescott" kernels; unless the user set OPENBLAS_CORETYPE, we ask for the kernels of
// the widest vector unit this CPU has (AVX-512: SkylakeX, AVX2: Haswell) before loading it.
// Threading, the same bits on any thread count and any BLAS kernel set: each product's C is cut
// into tiles by its shape alone (gemm_tiling; gemm_products's callers may also say how many
// products share a budget of kGemmBatchTiles tiles, which makes fewer, larger tiles), every
// tile is one single-threaded BLAS call (the library's own threads are off), and the
// (product, tile) pairs are shared among OpenMP threads.
// So no element is ever computed by a different call, or summed in a different order, when the
// thread count changes; BLAS kernels may round a tile of 3 rows differently from one of 6.
#include <dlfcn.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {
namespace {

enum { kRowMajor = 101, kNoTrans = 111, kTrans = 112 };
using SgemmFn = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                         float*, int);
using DgemmFn = void (*)(int, int, int, int, int, int, double, const double*, int, const double*, int,
                         double, double*, int);

struct Blas {
  SgemmFn sgemm = nullptr;
  DgemmFn dgemm = nullptr;
  std::string description = "portable OpenMP kernel";
};

const Blas& blas() {
  static Blas b;
  static std::once_flag once;
  std::call_once(once, [] {
    if (env_switch_on("FPA_NO_BLAS")) return;
    if (!std::getenv("OPENBLAS_CORETYPE")) {
      if (__builtin_cpu_supports("avx512f")) setenv("OPENBLAS_CORETYPE", "SkylakeX", 0);
      else if (__builtin_cpu_supports("avx2")) setenv("OPENBLAS_CORETYPE", "Haswell", 0);
    }
    const char* candidates[] = {"/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0",
                                "/usr/lib/aarch64-linux-gnu/openblas-openmp/libopenblas.so.0",
                                "libopenblas.so.0", "libopenblas.so"};
    for (const char* path : candidates) {
      void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
      if (!h) continue;
      auto s = reinterpret_cast<SgemmFn>(dlsym(h, "cblas_sgemm"));
      auto d = reinterpret_cast<DgemmFn>(dlsym(h, "cblas_dgemm"));
      if (!s || !d) continue;
      b.sgemm = s, b.dgemm = d;
      // Every call is one tile on one thread: OpenBLAS's own threads would split it further. An
      // OpenMP build of OpenBLAS also sets the caller's OpenMP thread count to 1 here, which
      // outside a parallel region (a first call from gemm_implementation) would leave every
      // later region of this thread on one thread: the count is put back.
      if (auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(h, "openblas_set_num_threads"))) {
        const int threads = omp_get_max_threads();
        set_threads(1);
        omp_set_num_threads(threads);
      }
      auto config = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_config"));
      auto core = reinterpret_cast<char* (*)()>(dlsym(h, "openblas_get_corename"));
      b.description = std::string(config ? config() : "OpenBLAS") + ", kernels " + (core ? core() : "?");
      return;
    }
  });
  return b;
}

template <typename T>
void gemm_one(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
              const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const Blas& b = blas();
  int oa = ta ? kTrans : kNoTrans, ob = tb ? kTrans : kNoTrans;
  if constexpr (sizeof(T) == 4) {
    if (b.sgemm) return b.sgemm(kRowMajor, oa, ob, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  } else {
    if (b.dgemm) return b.dgemm(kRowMajor, oa, ob, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
  gemm_portable(sizeof(T) == 4 ? DType::f32 : DType::f64, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// Tile (i, j) of C: rows [M i / tm, M (i+1) / tm) and columns [N j / tn, N (j+1) / tn).
template <typename T>
void gemm_tile(const GemmTiling& tiles, int64_t tile, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha,
               const T* A, int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  const int64_t i = tile / tiles.cols, j = tile % tiles.cols;
  const int64_t m0 = M * i / tiles.rows, m1 = M * (i + 1) / tiles.rows;
  const int64_t n0 = N * j / tiles.cols, n1 = N * (j + 1) / tiles.cols;
  if (m1 <= m0 || n1 <= n0) return;
  const T* a = ta ? A + m0 : A + m0 * lda;
  const T* b = tb ? B + n0 * ldb : B + n0;
  gemm_one(ta, tb, m1 - m0, n1 - n0, K, alpha, a, lda, b, ldb, beta, C + m0 * ldc + n0, ldc);
}

}  // namespace

GemmTiling gemm_tiling(int64_t M, int64_t N, int64_t K, int64_t products) {
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t most = products <= 1 ? kGemmMaxTiles : std::max<int64_t>(1, kGemmBatchTiles / products);
  const int64_t wanted = std::clamp<int64_t>(int64_t(flops / kGemmTileFlops), 1, most);
  GemmTiling t;
  // Tiles about as tall as wide: each tile's BLAS call packs its rows of A and columns of B,
  // and square tiles pack the least for a given count.
  const int64_t square_rows = std::llround(std::sqrt(double(wanted) * double(M) / double(std::max<int64_t>(N, 1))));
  t.rows = std::clamp<int64_t>(square_rows, 1, std::max<int64_t>(1, M / kGemmMinTileRows));
  t.cols = std::clamp<int64_t>(N / kGemmMinTileCols, 1, (wanted + t.rows - 1) / t.rows);
  return t;
}

const char* gemm_implementation() { return blas().description.c_str(); }

void gemm_products(DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
                   int64_t lda, int64_t sa, const void* B, int64_t ldb, int64_t sb, double beta, void* C,
                   int64_t ldc, int64_t sc, int64_t batch, int64_t tiling_products) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* a = static_cast<const T*>(A);
    const T* b = static_cast<const T*>(B);
    T* c = static_cast<T*>(C);
    const GemmTiling tiles = gemm_tiling(M, N, K, tiling_products);
    const int64_t per_product = tiles.rows * tiles.cols, work = batch * per_product;
    const bool parallel = work > 1 && !omp_in_parallel() && 2.0 * M * N * K * batch >= 2 * kGemmTileFlops;
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
    for (int64_t w = 0; w < work; ++w) {
      const int64_t i = w / per_product;
      gemm_tile<T>(tiles, w % per_product, ta, tb, M, N, K, T(alpha), a + i * sa, lda, b + i * sb, ldb, T(beta),
                   c + i * sc, ldc);
    }
  });
}

void gemm(DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
          int64_t lda, int64_t sa, const void* B, int64_t ldb, int64_t sb, double beta, void* C, int64_t ldc,
          int64_t sc, int64_t batch) {
  gemm_products(t, ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch, 1);
}

void gemm_portable(DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const void* A,
                   int64_t lda, const void* B, int64_t ldb, double beta, void* C, int64_t ldc) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* a = static_cast<const T*>(A);
    const T* b = static_cast<const T*>(B);
    T* c = static_cast<T*>(C);
    // op(B) packed as (K, N) so the inner loop is contiguous and vectorises.
    std::vector<T> bt;
    const T* bk = b;
    int64_t ldbk = ldb;
    if (tb) {
      bt.resize(K * N);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) bt[k * N + n] = b[n * ldb + k];
      bk = bt.data(), ldbk = N;
    }
#pragma omp parallel for schedule(static) if (M * N * K > (1 << 16) && !omp_in_parallel())
    for (int64_t m = 0; m < M; ++m) {
      std::vector<T> row(N, T(0));
      for (int64_t k = 0; k < K; ++k) {
        T av = ta ? a[k * lda + m] : a[m * lda + k];
        const T* br = bk + k * ldbk;
        for (int64_t n = 0; n < N; ++n) row[n] += av * br[n];
      }
      T* cr = c + m * ldc;
      for (int64_t n = 0; n < N; ++n) cr[n] = T(alpha) * row[n] + (beta == 0 ? T(0) : T(beta) * cr[n]);
    }
  });
}

}  // namespace fpa::cpu
