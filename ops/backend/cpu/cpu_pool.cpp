// cpu_pool.cpp: the CPU pooling and resizing primitives: average pooling (fixed window or
// adaptive, forward and backward), max pooling (forward and backward), nearest-neighbour and
// bilinear resizing (forward and backward).
//
// Every primitive works on independent (H, W) planes, one OpenMP task per plane, so the
// backward scatters need no atomics. Windows follow PyTorch: a fixed window counts padding
// in its divisor (kernel*kernel) unless count_include_pad is off (then the entries it covers);
// an adaptive bin o covers [floor(o*H/OH), ceil((o+1)*H/OH)) and divides by its size. A max
// window's argmax is its first largest entry, or its last NaN, over the window's rows and
// columns inside the plane. The forward passes run as vectors (cpu_pool_windows.h), each window
// reduced in the same order as alone.
// Nearest resizing uses PyTorch's legacy rule src = min(floor(dst * float(in/out)), in - 1);
// bilinear resizing the rule of bilinear_taps.h. Outputs are overwritten.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/backend/bilinear_taps.h"
#include "ops/backend/cpu/cpu_kernels.h"
#include "ops/backend/cpu/cpu_pool_windows.h"

namespace fpa::cpu {
namespace {

bool worth_threads(int64_t work) { return work > kParallelGrain && !omp_in_parallel(); }

// The index in its plane of window (r, c)'s argmax: PyTorch's rule (first largest, last NaN).
template <typename T>
int64_t argmax(const T* xp, int64_t W, const Window& r, const Window& c) {
  int64_t best = r.begin * W + c.begin;
  T best_value = -std::numeric_limits<T>::infinity();
  for (int64_t ih = r.begin; ih < r.end; ++ih)
    for (int64_t iw = c.begin; iw < c.end; ++iw) {
      const T v = xp[ih * W + iw];
      if (v > best_value || std::isnan(v)) best_value = v, best = ih * W + iw;
    }
  return best;
}

// Output row (row window r) of a max pool: each column's argmax in its plane (argmax's rule, the
// same scan order), interior columns as vectors across the row; best (OW) is scratch. kStride
// as for fold_row (cpu_pool_windows.h).
template <int64_t kStride, typename T>
void max_pool_row(const PoolGeom& g, const Windows& win, const InteriorColumns& in, const T* xp, const Window& r,
                  int64_t* index, T* best) {
  const int64_t kernel = g.kernel, stride = kStride ? kStride : g.stride, W = g.W;
  for (int64_t ow = 0; ow < in.begin; ++ow) index[ow] = argmax(xp, W, r, win.cols[ow]);
  const int64_t n = in.end - in.begin;
  int64_t* ii = index + in.begin;
  const int64_t first = in.begin * stride - g.pad;  // window start of the first interior column
  std::fill(best, best + n, -std::numeric_limits<T>::infinity());
  for (int64_t i = 0; i < n; ++i) ii[i] = r.begin * W + first + i * stride;
  for (int64_t ih = r.begin; ih < r.end; ++ih)
    for (int64_t kw = 0; kw < kernel; ++kw) {
      const int64_t at = ih * W + first + kw;
      const T* src = xp + at;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) {
        const T v = src[i * stride];
        const bool take = v > best[i] || v != v;
        best[i] = take ? v : best[i];
        ii[i] = take ? at + i * stride : ii[i];
      }
    }
  for (int64_t ow = in.end; ow < g.OW; ++ow) index[ow] = argmax(xp, W, r, win.cols[ow]);
}

// The bilinear taps of every output index.
template <typename T>
std::vector<BilinearTap<T>> bilinear_taps(int64_t in, int64_t out) {
  std::vector<BilinearTap<T>> taps(out);
  const T scale = bilinear_scale<T>(in, out);
  for (int64_t o = 0; o < out; ++o) taps[o] = bilinear_tap<T>(o, scale, in);
  return taps;
}

// src index of every output index for the nearest rule.
std::vector<int64_t> nearest_sources(int64_t in, int64_t out) {
  std::vector<int64_t> src(out);
  const float scale = float(in) / float(out);
  for (int64_t o = 0; o < out; ++o)
    src[o] = std::min(static_cast<int64_t>(std::floor(float(o) * scale)), in - 1);
  return src;
}

}  // namespace

void avg_pool2d(DType t, const PoolGeom& g, const void* x, void* y) {
  const Windows win(g);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);  // (planes, H, W)
    auto ys = static_cast<T*>(y);        // (planes, OH, OW)
    const InteriorColumns interior = interior_columns(g);
#pragma omp parallel for schedule(static) if (worth_threads(g.planes * g.H * g.W))
    for (int64_t p = 0; p < g.planes; ++p)
      fold_plane<AverageFold<T>>(g, win, interior, xs + p * g.H * g.W, ys + p * g.OH * g.OW);
  });
}

void avg_pool2d_backward(DType t, const PoolGeom& g, const void* dy, void* dx) {
  const Windows win(g);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto dys = static_cast<const T*>(dy);  // (planes, OH, OW)
    auto dxs = static_cast<T*>(dx);        // (planes, H, W)
#pragma omp parallel for schedule(static) if (worth_threads(g.planes * g.H * g.W))
    for (int64_t p = 0; p < g.planes; ++p) {
      const T* dyp = dys + p * g.OH * g.OW;
      T* dxp = dxs + p * g.H * g.W;
      std::fill(dxp, dxp + g.H * g.W, T(0));
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const Window& r = win.rows[oh];
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const Window& c = win.cols[ow];
          const T share = dyp[oh * g.OW + ow] / T(r.count * c.count);
          for (int64_t ih = r.begin; ih < r.end; ++ih)
            for (int64_t iw = c.begin; iw < c.end; ++iw) dxp[ih * g.W + iw] += share;
        }
      }
    }
  });
}

void max_pool2d(DType t, const PoolGeom& g, const void* x, const void* v, void* y) {
  const Windows win(g);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);  // (planes, H, W)
    auto vs = static_cast<const T*>(v);  // (planes, H, W)
    auto ys = static_cast<T*>(y);        // (planes, OH, OW)
    const InteriorColumns interior = interior_columns(g);
    if (x == v) {  // the forward pass: the value at the argmax is the window's fold by MaxFold
#pragma omp parallel for schedule(static) if (worth_threads(g.planes * g.H * g.W))
      for (int64_t p = 0; p < g.planes; ++p)
        fold_plane<MaxFold<T>>(g, win, interior, xs + p * g.H * g.W, ys + p * g.OH * g.OW);
      return;
    }
#pragma omp parallel if (worth_threads(g.planes * g.H * g.W))
    {
      std::vector<int64_t> index(g.OW);  // (OW) argmax of each column of one output row
      std::vector<T> best(g.OW);
#pragma omp for schedule(static)
      for (int64_t p = 0; p < g.planes; ++p) {
        const T* xp = xs + p * g.H * g.W;
        const T* vp = vs + p * g.H * g.W;
        T* yp = ys + p * g.OH * g.OW;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const Window& r = win.rows[oh];
          if (g.stride == 1) max_pool_row<1>(g, win, interior, xp, r, index.data(), best.data());
          else if (g.stride == 2) max_pool_row<2>(g, win, interior, xp, r, index.data(), best.data());
          else max_pool_row<0>(g, win, interior, xp, r, index.data(), best.data());
          for (int64_t ow = 0; ow < g.OW; ++ow) yp[oh * g.OW + ow] = vp[index[ow]];
        }
      }
    }
  });
}

void max_pool2d_backward(DType t, const PoolGeom& g, const void* x, const void* dy, void* dx) {
  const Windows win(g);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);    // (planes, H, W)
    auto dys = static_cast<const T*>(dy);  // (planes, OH, OW)
    auto dxs = static_cast<T*>(dx);        // (planes, H, W)
#pragma omp parallel for schedule(static) if (worth_threads(g.planes * g.H * g.W))
    for (int64_t p = 0; p < g.planes; ++p) {
      const T* xp = xs + p * g.H * g.W;
      const T* dyp = dys + p * g.OH * g.OW;
      T* dxp = dxs + p * g.H * g.W;
      std::fill(dxp, dxp + g.H * g.W, T(0));
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow)
          dxp[argmax(xp, g.W, win.rows[oh], win.cols[ow])] += dyp[oh * g.OW + ow];
    }
  });
}

void resize_nearest(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x,
                    void* y) {
  const std::vector<int64_t> src_h = nearest_sources(H, OH), src_w = nearest_sources(W, OW);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);  // (planes, H, W)
    auto ys = static_cast<T*>(y);        // (planes, OH, OW)
#pragma omp parallel for schedule(static) if (worth_threads(planes * OH * OW))
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = xs + p * H * W;
      T* yp = ys + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const T* row = xp + src_h[oh] * W;
        for (int64_t ow = 0; ow < OW; ++ow) yp[oh * OW + ow] = row[src_w[ow]];
      }
    }
  });
}

void resize_nearest_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                             const void* dy, void* dx) {
  const std::vector<int64_t> src_h = nearest_sources(H, OH), src_w = nearest_sources(W, OW);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto dys = static_cast<const T*>(dy);  // (planes, OH, OW)
    auto dxs = static_cast<T*>(dx);        // (planes, H, W)
#pragma omp parallel for schedule(static) if (worth_threads(planes * OH * OW))
    for (int64_t p = 0; p < planes; ++p) {
      const T* dyp = dys + p * OH * OW;
      T* dxp = dxs + p * H * W;
      std::fill(dxp, dxp + H * W, T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {
        T* row = dxp + src_h[oh] * W;
        for (int64_t ow = 0; ow < OW; ++ow) row[src_w[ow]] += dyp[oh * OW + ow];
      }
    }
  });
}

void resize_bilinear(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x,
                     void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const std::vector<BilinearTap<T>> rows = bilinear_taps<T>(H, OH), cols = bilinear_taps<T>(W, OW);
    auto xs = static_cast<const T*>(x);  // (planes, H, W)
    auto ys = static_cast<T*>(y);        // (planes, OH, OW)
#pragma omp parallel for schedule(static) if (worth_threads(planes * OH * OW))
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = xs + p * H * W;
      T* yp = ys + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const BilinearTap<T>& r = rows[oh];
        const T* x0 = xp + r.i0 * W;
        const T* x1 = xp + r.i1 * W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const BilinearTap<T>& c = cols[ow];
          yp[oh * OW + ow] = r.l0 * (c.l0 * x0[c.i0] + c.l1 * x0[c.i1]) + r.l1 * (c.l0 * x1[c.i0] + c.l1 * x1[c.i1]);
        }
      }
    }
  });
}

void resize_bilinear_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                              const void* dy, void* dx) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const std::vector<BilinearTap<T>> rows = bilinear_taps<T>(H, OH), cols = bilinear_taps<T>(W, OW);
    auto dys = static_cast<const T*>(dy);  // (planes, OH, OW)
    auto dxs = static_cast<T*>(dx);        // (planes, H, W)
#pragma omp parallel for schedule(static) if (worth_threads(planes * OH * OW))
    for (int64_t p = 0; p < planes; ++p) {
      const T* dyp = dys + p * OH * OW;
      T* dxp = dxs + p * H * W;
      std::fill(dxp, dxp + H * W, T(0));
      for (int64_t oh = 0; oh < OH; ++oh) {
        const BilinearTap<T>& r = rows[oh];
        T* d0 = dxp + r.i0 * W;
        T* d1 = dxp + r.i1 * W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const BilinearTap<T>& c = cols[ow];
          const T g = dyp[oh * OW + ow];
          d0[c.i0] += r.l0 * c.l0 * g;
          d0[c.i1] += r.l0 * c.l1 * g;
          d1[c.i0] += r.l1 * c.l0 * g;
          d1[c.i1] += r.l1 * c.l1 * g;
        }
      }
    }
  });
}

}  // namespace fpa::cpu
