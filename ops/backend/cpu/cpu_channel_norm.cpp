// cpu_channel_norm.cpp: the discriminator's channel norm (ChanNorm) over x (N, C, P), forward
// and backward, each in one pass over the data; the statistics of a position (n, p) are over
// its C channels, which lie P apart, so the loops run c outer, p inner (contiguous) with one
// row of per-position sums. Sums are in double for both dtypes, each in a fixed order
// (forward and dx: over c per position; dg, db: over n then p per channel), so results do not
// depend on the thread count.
//
// Forward:  mean = sum_c x / C;  var = sum_c (x - mean)^2 / C;  rstd = 1 / sqrt(var + eps);
//           y = (x - mean) rstd g + b.
// Backward: xhat = (x - mean) rstd, dxhat = dy g (per channel);
//           dx = rstd (dxhat - mean_c(dxhat) - xhat mean_c(dxhat xhat));
//           dg = sum_{n,p} dy xhat;  db = sum_{n,p} dy.
#include <cmath>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {
namespace {

template <typename T>
void norm_forward(int64_t N, int64_t C, int64_t P, double eps, const T* x, const T* g, const T* b, T* y, T* mean,
                  T* rstd) {
#pragma omp parallel for schedule(static) if (N * C * P > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const T* xn = x + n * C * P;  // (C, P)
    T* yn = y + n * C * P;
    std::vector<double> m(P, 0.0), r(P, 0.0);  // (P): the mean, then rstd
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) m[p] += double(xn[c * P + p]);
    for (int64_t p = 0; p < P; ++p) m[p] /= double(C);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) {
        const double d = double(xn[c * P + p]) - m[p];
        r[p] += d * d;
      }
    for (int64_t p = 0; p < P; ++p) {
      r[p] = 1.0 / std::sqrt(r[p] / double(C) + eps);
      mean[n * P + p] = T(m[p]), rstd[n * P + p] = T(r[p]);
    }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p)
        yn[c * P + p] = T((double(xn[c * P + p]) - m[p]) * r[p] * double(g[c]) + double(b[c]));
  }
}

template <typename T>
void norm_backward(int64_t N, int64_t C, int64_t P, const T* x, const T* g, const T* mean, const T* rstd, const T* dy,
                   T* dx, T* dg, T* db) {
#pragma omp parallel for schedule(static) if (N * C * P > kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const T *xn = x + n * C * P, *dyn = dy + n * C * P;  // (C, P)
    T* dxn = dx + n * C * P;
    std::vector<double> a(P, 0.0), q(P, 0.0);  // (P): sum_c dxhat, sum_c dxhat xhat
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) {
        const double xhat = (double(xn[c * P + p]) - double(mean[n * P + p])) * double(rstd[n * P + p]);
        const double dxhat = double(dyn[c * P + p]) * double(g[c]);
        a[p] += dxhat, q[p] += dxhat * xhat;
      }
    for (int64_t c = 0; c < C; ++c)
      for (int64_t p = 0; p < P; ++p) {
        const double r = double(rstd[n * P + p]);
        const double xhat = (double(xn[c * P + p]) - double(mean[n * P + p])) * r;
        const double dxhat = double(dyn[c * P + p]) * double(g[c]);
        dxn[c * P + p] = T(r * (dxhat - a[p] / double(C) - xhat * q[p] / double(C)));
      }
  }
#pragma omp parallel for schedule(static) if (N * C * P > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    double sg = 0, sb = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < P; ++p) {
        const int64_t i = (n * C + c) * P + p;
        const double xhat = (double(x[i]) - double(mean[n * P + p])) * double(rstd[n * P + p]);
        sg += double(dy[i]) * xhat, sb += double(dy[i]);
      }
    dg[c] = T(sg), db[c] = T(sb);
  }
}

}  // namespace

void channel_norm_forward(DType t, int64_t N, int64_t C, int64_t P, double eps, const void* x, const void* g,
                          const void* b, void* y, void* mean, void* rstd) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    norm_forward(N, C, P, eps, static_cast<const T*>(x), static_cast<const T*>(g), static_cast<const T*>(b),
                 static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd));
  });
}

void channel_norm_backward(DType t, int64_t N, int64_t C, int64_t P, const void* x, const void* g, const void* mean,
                           const void* rstd, const void* dy, void* dx, void* dg, void* db) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    norm_backward(N, C, P, static_cast<const T*>(x), static_cast<const T*>(g), static_cast<const T*>(mean),
                  static_cast<const T*>(rstd), static_cast<const T*>(dy), static_cast<T*>(dx), static_cast<T*>(dg),
                  static_cast<T*>(db));
  });
}

}  // namespace fpa::cpu
