// cuda_pool.cu: average pooling (fixed window or adaptive, forward and backward), max pooling
// (forward and backward), nearest-neighbour and bilinear resizing (forward and backward) on CUDA.
//
// Windows follow PyTorch exactly as the CPU backend (cpu_pool.cpp) does: a fixed window
// counts padding in its divisor (kernel*kernel) unless count_include_pad is off (then the
// entries it covers); an adaptive bin o covers [floor(o*H/OH), ceil((o+1)*H/OH)) and divides by
// its size; a max window's argmax is its first largest entry, or its last NaN. Nearest resizing
// uses PyTorch's legacy rule src = min(floor(dst * float(in/out)), in - 1), in float, with the
// product rounded on its own as on the CPU; bilinear resizing the rule of bilinear_taps.h.
// Forward kernels: a thread per output element. Backward kernels gather instead of
// scattering: a thread per input element finds the outputs that read it (a range per axis,
// each candidate checked with the forward's own rule) and sums them in the CPU's order, so
// there are no atomics, results are deterministic and equal the CPU's bit for bit.
#include <cmath>

#include "ops/backend/bilinear_taps.h"
#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

// The input rows (or columns) [begin, end) that output o averages, and its divisor's factor.
struct Window {
  int64_t begin, end, count;
};

__device__ __forceinline__ Window window(const PoolGeom& g, int64_t o, int64_t in, int64_t out) {
  if (g.adaptive) {
    const int64_t b = (o * in) / out, e = ((o + 1) * in + out - 1) / out;
    return {b, e, e - b};
  }
  const int64_t b = o * g.stride - g.pad, e = b + g.kernel;
  const int64_t lo = b > 0 ? b : 0, hi = e < in ? e : in;
  return {lo, hi, g.count_include_pad ? g.kernel : hi - lo};
}

__device__ __forceinline__ int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// A superset [lo, hi] of the outputs along one axis whose windows hold input i (callers check
// each with window()).
struct Range {
  int64_t lo, hi;
};
__device__ __forceinline__ Range outputs_reading(const PoolGeom& g, int64_t i, int64_t in, int64_t out) {
  int64_t lo, hi;
  if (g.adaptive) {
    lo = (i * out) / in - 1;
    hi = ((i + 1) * out + in - 1) / in;
  } else {  // o*stride - pad <= i < o*stride - pad + kernel
    lo = floor_div(i + g.pad - g.kernel, g.stride);
    hi = floor_div(i + g.pad, g.stride) + 1;
  }
  return {lo > 0 ? lo : 0, hi < out - 1 ? hi : out - 1};
}

// Calls f(oh, ow, r, c) for every output (oh, ow) whose window (rows r, columns c) holds input
// (ih, iw), in the CPU's order (oh, then ow, ascending).
template <typename F>
__device__ __forceinline__ void for_each_window_holding(const PoolGeom& g, int64_t ih, int64_t iw, F&& f) {
  const Range rows = outputs_reading(g, ih, g.H, g.OH), cols = outputs_reading(g, iw, g.W, g.OW);
  for (int64_t oh = rows.lo; oh <= rows.hi; ++oh) {
    const Window r = window(g, oh, g.H, g.OH);
    if (ih < r.begin || ih >= r.end) continue;
    for (int64_t ow = cols.lo; ow <= cols.hi; ++ow) {
      const Window c = window(g, ow, g.W, g.OW);
      if (iw >= c.begin && iw < c.end) f(oh, ow, r, c);
    }
  }
}

template <typename T>
__global__ void avg_pool2d_kernel(PoolGeom g, int64_t total, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % g.OW, oh = i / g.OW % g.OH, p = i / (g.OW * g.OH);
    const Window r = window(g, oh, g.H, g.OH), c = window(g, ow, g.W, g.OW);
    const T* xp = x + p * g.H * g.W;
    T sum = 0;
    for (int64_t ih = r.begin; ih < r.end; ++ih)
      for (int64_t iw = c.begin; iw < c.end; ++iw) sum += xp[ih * g.W + iw];
    y[i] = sum / T(r.count * c.count);
  }
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(PoolGeom g, int64_t total, const T* dy, T* dx) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t iw = i % g.W, ih = i / g.W % g.H, p = i / (g.W * g.H);
    const T* dyp = dy + p * g.OH * g.OW;
    T acc = 0;
    for_each_window_holding(g, ih, iw, [&](int64_t oh, int64_t ow, const Window& r, const Window& c) {
      acc += dyp[oh * g.OW + ow] / T(r.count * c.count);
    });
    dx[i] = acc;
  }
}

// The index in its plane of window (r, c)'s argmax: PyTorch's rule (first largest, last NaN).
template <typename T>
__device__ __forceinline__ int64_t argmax(const T* xp, int64_t W, const Window& r, const Window& c) {
  int64_t best = r.begin * W + c.begin;
  T best_value = -INFINITY;
  for (int64_t ih = r.begin; ih < r.end; ++ih)
    for (int64_t iw = c.begin; iw < c.end; ++iw) {
      const T v = xp[ih * W + iw];
      if (v > best_value || v != v) best_value = v, best = ih * W + iw;  // v != v: NaN
    }
  return best;
}

template <typename T>
__global__ void max_pool2d_kernel(PoolGeom g, int64_t total, const T* x, const T* v, T* y) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % g.OW, oh = i / g.OW % g.OH, p = i / (g.OW * g.OH);
    const int64_t plane = p * g.H * g.W;
    y[i] = v[plane + argmax(x + plane, g.W, window(g, oh, g.H, g.OH), window(g, ow, g.W, g.OW))];
  }
}

template <typename T>
__global__ void max_pool2d_backward_kernel(PoolGeom g, int64_t total, const T* x, const T* dy, T* dx) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t iw = i % g.W, ih = i / g.W % g.H, p = i / (g.W * g.H);
    const T* xp = x + p * g.H * g.W;
    const T* dyp = dy + p * g.OH * g.OW;
    T acc = 0;
    for_each_window_holding(g, ih, iw, [&](int64_t oh, int64_t ow, const Window& r, const Window& c) {
      if (argmax(xp, g.W, r, c) == ih * g.W + iw) acc += dyp[oh * g.OW + ow];
    });
    dx[i] = acc;
  }
}

// The nearest rule: the source index of output o, `scale` = float(in) / float(out).
__device__ __forceinline__ int64_t nearest_source(int64_t o, float scale, int64_t in) {
  const int64_t s = static_cast<int64_t>(floorf(__fmul_rn(float(o), scale)));
  return s < in - 1 ? s : in - 1;
}

// The first output whose source is at least i (sources never decrease with o).
__device__ __forceinline__ int64_t first_output_reading(int64_t i, float scale, int64_t in, int64_t out) {
  int64_t o = (i * out + in - 1) / in;  // exact-arithmetic answer, then fixed for float rounding
  if (o > out) o = out;
  while (o > 0 && nearest_source(o - 1, scale, in) >= i) --o;
  while (o < out && nearest_source(o, scale, in) < i) ++o;
  return o;
}

template <typename T>
__global__ void resize_nearest_kernel(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, float scale_h,
                                      float scale_w, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
    y[i] = x[(p * H + nearest_source(oh, scale_h, H)) * W + nearest_source(ow, scale_w, W)];
  }
}

template <typename T>
__global__ void resize_nearest_backward_kernel(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                               float scale_h, float scale_w, const T* dy, T* dx) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t iw = i % W, ih = i / W % H, p = i / (W * H);
    const T* dyp = dy + p * OH * OW;
    const int64_t oh0 = first_output_reading(ih, scale_h, H, OH), ow0 = first_output_reading(iw, scale_w, W, OW);
    T acc = 0;
    for (int64_t oh = oh0; oh < OH && nearest_source(oh, scale_h, H) == ih; ++oh)
      for (int64_t ow = ow0; ow < OW && nearest_source(ow, scale_w, W) == iw; ++ow) acc += dyp[oh * OW + ow];
    dx[i] = acc;
  }
}

template <typename T>
__global__ void resize_bilinear_kernel(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW, T scale_h,
                                       T scale_w, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t ow = i % OW, oh = i / OW % OH, p = i / (OW * OH);
    const BilinearTap<T> r = bilinear_tap<T>(oh, scale_h, H), c = bilinear_tap<T>(ow, scale_w, W);
    const T* x0 = x + (p * H + r.i0) * W;
    const T* x1 = x + (p * H + r.i1) * W;
    y[i] = r.l0 * (c.l0 * x0[c.i0] + c.l1 * x0[c.i1]) + r.l1 * (c.l0 * x1[c.i0] + c.l1 * x1[c.i1]);
  }
}

// The outputs [begin, end) of one axis whose taps read input i: taps never decrease with the
// output, so they are those from the first with i1 >= i to the last with i0 <= i.
template <typename T>
__device__ void outputs_reading(int64_t i, T scale, int64_t in, int64_t out, int64_t& begin, int64_t& end) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (bilinear_tap<T>(mid, scale, in).i1 >= i) hi = mid; else lo = mid + 1;
  }
  begin = lo;
  hi = out;
  while (lo < hi) {
    const int64_t mid = (lo + hi) / 2;
    if (bilinear_tap<T>(mid, scale, in).i0 > i) hi = mid; else lo = mid + 1;
  }
  end = lo;
}

// dx at input (ih, iw): every output's taps on it, in the CPU's scatter order.
template <typename T>
__global__ void resize_bilinear_backward_kernel(int64_t total, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                                T scale_h, T scale_w, const T* dy, T* dx) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t iw = i % W, ih = i / W % H, p = i / (W * H);
    const T* dyp = dy + p * OH * OW;
    int64_t oh0, oh1, ow0, ow1;
    outputs_reading<T>(ih, scale_h, H, OH, oh0, oh1);
    outputs_reading<T>(iw, scale_w, W, OW, ow0, ow1);
    T acc = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const BilinearTap<T> r = bilinear_tap<T>(oh, scale_h, H);
      for (int64_t ow = ow0; ow < ow1; ++ow) {
        const BilinearTap<T> c = bilinear_tap<T>(ow, scale_w, W);
        const T g = dyp[oh * OW + ow];
        if (r.i0 == ih && c.i0 == iw) acc += r.l0 * c.l0 * g;
        if (r.i0 == ih && c.i1 == iw) acc += r.l0 * c.l1 * g;
        if (r.i1 == ih && c.i0 == iw) acc += r.l1 * c.l0 * g;
        if (r.i1 == ih && c.i1 == iw) acc += r.l1 * c.l1 * g;
      }
    }
    dx[i] = acc;
  }
}

// The elements of a pooling's input gradient (planes x H x W) for its kernel to write, or 0
// where there are none or no output reads any (dx is then zero-filled here).
int64_t gradient_elements(DType t, const PoolGeom& g, void* dx) {
  const int64_t total = g.planes * g.H * g.W;
  if (total <= 0) return 0;
  if (g.OH == 0 || g.OW == 0) return fill(t, total, 0.0, dx), 0;
  return total;
}

}  // namespace

void avg_pool2d(DType t, const PoolGeom& g, const void* x, void* y) {
  const int64_t total = g.planes * g.OH * g.OW;
  if (total <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("avg_pool2d", avg_pool2d_kernel<T>, blocks_for(total), kThreads, g, total, static_cast<const T*>(x),
           static_cast<T*>(y));
  });
}

void avg_pool2d_backward(DType t, const PoolGeom& g, const void* dy, void* dx) {
  const int64_t total = gradient_elements(t, g, dx);
  if (total == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("avg_pool2d_backward", avg_pool2d_backward_kernel<T>, blocks_for(total), kThreads, g, total,
           static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

void max_pool2d(DType t, const PoolGeom& g, const void* x, const void* v, void* y) {
  const int64_t total = g.planes * g.OH * g.OW;
  if (total <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("max_pool2d", max_pool2d_kernel<T>, blocks_for(total), kThreads, g, total, static_cast<const T*>(x),
           static_cast<const T*>(v), static_cast<T*>(y));
  });
}

void max_pool2d_backward(DType t, const PoolGeom& g, const void* x, const void* dy, void* dx) {
  const int64_t total = gradient_elements(t, g, dx);
  if (total == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("max_pool2d_backward", max_pool2d_backward_kernel<T>, blocks_for(total), kThreads, g, total,
           static_cast<const T*>(x), static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

void resize_nearest(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x, void* y) {
  const int64_t total = planes * OH * OW;
  if (total <= 0) return;
  FPA_CHECK(H > 0 && W > 0, "cuda resize_nearest: empty input (", H, ", ", W, ") to (", OH, ", ", OW, ")");
  const float scale_h = float(H) / float(OH), scale_w = float(W) / float(OW);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("resize_nearest", resize_nearest_kernel<T>, blocks_for(total), kThreads, total, H, W, OH, OW, scale_h,
           scale_w, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void resize_nearest_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* dy,
                             void* dx) {
  const int64_t total = planes * H * W;
  if (total <= 0) return;
  if (OH == 0 || OW == 0) return fill(t, total, 0.0, dx);
  const float scale_h = float(H) / float(OH), scale_w = float(W) / float(OW);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("resize_nearest_backward", resize_nearest_backward_kernel<T>, blocks_for(total), kThreads, total, H, W, OH,
           OW, scale_h, scale_w, static_cast<const T*>(dy), static_cast<T*>(dx));
  });
}

void resize_bilinear(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* x, void* y) {
  const int64_t total = planes * OH * OW;
  if (total <= 0) return;
  FPA_CHECK(H > 0 && W > 0, "cuda resize_bilinear: empty input (", H, ", ", W, ") to (", OH, ", ", OW, ")");
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("resize_bilinear", resize_bilinear_kernel<T>, blocks_for(total), kThreads, total, H, W, OH, OW,
           bilinear_scale<T>(H, OH), bilinear_scale<T>(W, OW), static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void resize_bilinear_backward(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const void* dy,
                              void* dx) {
  const int64_t total = planes * H * W;
  if (total <= 0) return;
  if (OH == 0 || OW == 0) return fill(t, total, 0.0, dx);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("resize_bilinear_backward", resize_bilinear_backward_kernel<T>, blocks_for(total), kThreads, total, H, W,
           OH, OW, bilinear_scale<T>(H, OH), bilinear_scale<T>(W, OW), static_cast<const T*>(dy),
           static_cast<T*>(dx));
  });
}

}  // namespace fpa::gpu
