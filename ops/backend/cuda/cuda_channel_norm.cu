// cuda_channel_norm.cu: the discriminator's channel norm (ChanNorm) over x (N, C, P) on CUDA,
// forward and backward (ops/backend/backend.h channel_norm_forward / channel_norm_backward). The
// CPU twin is ops/backend/cpu/cpu_channel_norm.cpp, whose formulas and double sums these kernels
// repeat:
//   forward:  mean = sum_c x / C;  rstd = 1 / sqrt(sum_c (x - mean)^2 / C + eps);
//             y = (x - mean) rstd g + b
//   backward: xhat = (x - mean) rstd, dxhat = dy g;
//             dx = rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat));
//             dg = sum_{n,p} dy xhat;  db = sum_{n,p} dy
// The forward and dx are one grid-stride loop over the positions (n, p): a thread walks its
// position's C channels, P apart, so neighbouring threads read neighbouring addresses. dg and
// db take one block per channel: each thread sums a fixed stride of the N*P positions, then a
// fixed tree in shared memory adds the partial sums (deterministic, no atomics).
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

constexpr int kChannelThreads = 256;  // threads of a dg/db block (a power of two)

template <typename T>
__global__ void channel_norm_forward_kernel(int64_t N, int64_t C, int64_t P, double eps, const T* x, const T* g,
                                            const T* b, T* y, T* mean, T* rstd) {
  FPA_GRID_STRIDE_LOOP(i, N * P) {
    const int64_t n = i / P, p = i - n * P;
    const T* xi = x + n * C * P + p;  // xi[c * P]: channel c of this position
    T* yi = y + n * C * P + p;
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += double(xi[c * P]);
    m /= double(C);
    for (int64_t c = 0; c < C; ++c) {
      const double d = double(xi[c * P]) - m;
      v += d * d;
    }
    const double r = 1.0 / sqrt(v / double(C) + eps);
    mean[i] = T(m), rstd[i] = T(r);
    for (int64_t c = 0; c < C; ++c) yi[c * P] = T((double(xi[c * P]) - m) * r * double(g[c]) + double(b[c]));
  }
}

template <typename T>
__global__ void channel_norm_dx_kernel(int64_t N, int64_t C, int64_t P, const T* x, const T* g, const T* mean,
                                       const T* rstd, const T* dy, T* dx) {
  FPA_GRID_STRIDE_LOOP(i, N * P) {
    const int64_t n = i / P, p = i - n * P;
    const int64_t base = n * C * P + p;  // channel c of this position at base + c * P
    const double m = double(mean[i]), r = double(rstd[i]);
    double a = 0, q = 0;  // sum_c dxhat, sum_c dxhat xhat
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (double(x[base + c * P]) - m) * r, dxhat = double(dy[base + c * P]) * double(g[c]);
      a += dxhat, q += dxhat * xhat;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double xhat = (double(x[base + c * P]) - m) * r, dxhat = double(dy[base + c * P]) * double(g[c]);
      dx[base + c * P] = T(r * (dxhat - a / double(C) - xhat * q / double(C)));
    }
  }
}

// Block c: dg[c] = sum over (n, p) of dy xhat, db[c] = sum of dy.
template <typename T>
__global__ void channel_norm_dgdb_kernel(int64_t N, int64_t C, int64_t P, const T* x, const T* mean, const T* rstd,
                                         const T* dy, T* dg, T* db) {
  __shared__ double sg[kChannelThreads], sb[kChannelThreads];
  const int64_t c = blockIdx.x;
  double acc_g = 0, acc_b = 0;
  for (int64_t i = threadIdx.x; i < N * P; i += kChannelThreads) {  // position i = (n, p)
    const int64_t n = i / P, p = i - n * P, e = (n * C + c) * P + p;
    const double xhat = (double(x[e]) - double(mean[i])) * double(rstd[i]);
    acc_g += double(dy[e]) * xhat, acc_b += double(dy[e]);
  }
  sg[threadIdx.x] = acc_g, sb[threadIdx.x] = acc_b;
  __syncthreads();
  for (int half = kChannelThreads / 2; half > 0; half /= 2) {
    if (int(threadIdx.x) < half) sg[threadIdx.x] += sg[threadIdx.x + half], sb[threadIdx.x] += sb[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) dg[c] = T(sg[0]), db[c] = T(sb[0]);
}

}  // namespace

void channel_norm_forward(DType t, int64_t N, int64_t C, int64_t P, double eps, const void* x, const void* g,
                          const void* b, void* y, void* mean, void* rstd) {
  if (N * P == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("channel_norm_forward", channel_norm_forward_kernel<T>, blocks_for(N * P), kThreads, N, C, P, eps,
           static_cast<const T*>(x), static_cast<const T*>(g), static_cast<const T*>(b), static_cast<T*>(y),
           static_cast<T*>(mean), static_cast<T*>(rstd));
  });
}

void channel_norm_backward(DType t, int64_t N, int64_t C, int64_t P, const void* x, const void* g, const void* mean,
                           const void* rstd, const void* dy, void* dx, void* dg, void* db) {
  if (C == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto px = static_cast<const T*>(x);
    auto pm = static_cast<const T*>(mean);
    auto pr = static_cast<const T*>(rstd);
    auto pdy = static_cast<const T*>(dy);
    if (N * P > 0)
      launch("channel_norm_backward", channel_norm_dx_kernel<T>, blocks_for(N * P), kThreads, N, C, P, px,
             static_cast<const T*>(g), pm, pr, pdy, static_cast<T*>(dx));
    launch("channel_norm_backward (rows)", channel_norm_dgdb_kernel<T>, unsigned(C), kChannelThreads, N, C, P, px, pm,
           pr, pdy, static_cast<T*>(dg), static_cast<T*>(db));
  });
}

}  // namespace fpa::gpu
