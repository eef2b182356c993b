// cpu_reduce.cpp: sum/max reductions over any set of axes, and softmax over one axis.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/cpu/cpu_kernels.h"

namespace fpa::cpu {

void reduce(DType t, ReduceOp op, const Shape& xs, unsigned mask, const void* x, void* y) {
  // Split dims into kept (output index) and reduced (inner loop), with x strides for each.
  std::vector<int64_t> xstr = xs.strides();
  int64_t kept_shape[kMaxDims], kept_str[kMaxDims], red_shape[kMaxDims], red_str[kMaxDims];
  int nk = 0, nr = 0;
  int64_t n_out = 1, n_red = 1;
  for (int d = 0; d < xs.ndim; ++d) {
    if (mask >> d & 1u) red_shape[nr] = xs[d], red_str[nr++] = xstr[d], n_red *= xs[d];
    else kept_shape[nk] = xs[d], kept_str[nk++] = xstr[d], n_out *= xs[d];
  }
  // The innermost reduced dim runs as the tight loop.
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    int64_t inner_n = nr ? red_shape[nr - 1] : 1, inner_s = nr ? red_str[nr - 1] : 0;
    int64_t outer_red = inner_n ? n_red / inner_n : 0;
#pragma omp parallel for schedule(static) if (n_out * n_red > kParallelGrain && n_out > 1)
    for (int64_t o = 0; o < n_out; ++o) {
      int64_t base = 0, rem = o;
      for (int d = nk - 1; d >= 0; --d) base += (rem % kept_shape[d]) * kept_str[d], rem /= kept_shape[d];
      double acc = op == ReduceOp::sum ? 0.0 : -std::numeric_limits<double>::infinity();
      for (int64_t r = 0; r < outer_red; ++r) {
        int64_t off = base, rr = r;
        for (int d = nr - 2; d >= 0; --d) off += (rr % red_shape[d]) * red_str[d], rr /= red_shape[d];
        const T* p = xp + off;
        if (op == ReduceOp::sum) {
          T s = 0;
          for (int64_t j = 0; j < inner_n; ++j) s += p[j * inner_s];
          acc += s;
        } else {
          for (int64_t j = 0; j < inner_n; ++j) acc = std::max(acc, double(p[j * inner_s]));
        }
      }
      yp[o] = T(acc);
    }
  });
}

void softmax(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
#pragma omp parallel for collapse(2) schedule(static) if (outer * dim * inner > kParallelGrain)
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        const T* xr = xp + o * dim * inner + i;
        T* yr = yp + o * dim * inner + i;
        T m = xr[0];
        for (int64_t j = 1; j < dim; ++j) m = std::max(m, xr[j * inner]);
        T s = 0;
        for (int64_t j = 0; j < dim; ++j) s += (yr[j * inner] = std::exp(xr[j * inner] - m));
        T inv = T(1) / s;
        for (int64_t j = 0; j < dim; ++j) yr[j * inner] *= inv;
      }
    }
  });
}

}  // namespace fpa::cpu
