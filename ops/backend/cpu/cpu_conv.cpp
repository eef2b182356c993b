// cpu_conv.cpp: the CPU convolution primitives: conv2d forward, backward-data and
// backward-filter (any stride, padding and groups), and im2col / col2im.
//
// Convolution lowers one image at a time to a column matrix, col (groups, K, L) with
// K = Cin/groups*KH*KW and L = OH*OW, so that one row-major GEMM per group gives
// y (Cout/groups, L) = W (Cout/groups, K) x col (K, L). A 1x1, stride-1, unpadded convolution
// skips the lowering (the image already is its col). Depthwise convolutions (one input channel
// per group) run as direct loops, where a GEMM with M = 1 would be mostly overhead. Wide 3x3,
// stride-1 float32 convolutions run forward by Winograd's algorithm instead (cpu_winograd.cpp).
// Threading: with at least as many images as threads, each thread takes whole images with its
// own col buffer (cpu::gemm runs single-threaded inside a parallel region); with fewer, images
// run one after another and the GEMM threads itself. Outputs are overwritten, never accumulated.
// Either way every output is computed by the same operations in the same order (cpu::gemm's
// tiles, from the shapes and the forward pass's image count, and backward-filter's image groups
// depend on the shapes only), so on any thread count.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {
namespace {

template <typename T>
constexpr DType dtype_of() { return sizeof(T) == 4 ? DType::f32 : DType::f64; }

// Outputs o in [lo, hi) read input o*stride - pad + k inside [0, n); clipped to [0, out).
void valid_range(int64_t k, int64_t stride, int64_t pad, int64_t n, int64_t out, int64_t& lo, int64_t& hi) {
  int64_t first = pad - k;          // o*stride >= pad - k
  int64_t last = n - 1 + pad - k;   // o*stride <= n - 1 + pad - k
  lo = first <= 0 ? 0 : (first + stride - 1) / stride;
  hi = last < 0 ? 0 : last / stride + 1;
  hi = std::min(hi, out);
  lo = std::min(lo, hi);
}

bool is_pointwise(const ConvGeom& g) {
  return g.KH == 1 && g.KW == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0 &&
         g.OH == g.H && g.OW == g.W;
}

bool is_depthwise(const ConvGeom& g) { return g.groups > 1 && g.Cin == g.groups; }

// Backward-filter sums its images in at most this many groups (one partial dw each).
constexpr int64_t kFilterGroups = 8;

// Whether to split the images over threads (each image then runs single-threaded).
bool parallel_over_images(int64_t N) {
  int threads = omp_get_max_threads();
  return threads > 1 && N >= threads && !omp_in_parallel();
}

// One channel plane x (H, W) to its KH*KW rows of col (KH*KW, OH*OW); padding reads as zero.
template <typename T>
void im2col_plane(const ConvGeom& g, const T* x, T* col) {
  const int64_t L = g.OH * g.OW;
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    int64_t h0, h1;
    valid_range(kh, g.stride_h, g.pad_h, g.H, g.OH, h0, h1);
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      int64_t w0, w1;
      valid_range(kw, g.stride_w, g.pad_w, g.W, g.OW, w0, w1);
      T* row = col + (kh * g.KW + kw) * L;  // (OH, OW)
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        T* out = row + oh * g.OW;
        if (oh < h0 || oh >= h1) {
          std::fill(out, out + g.OW, T(0));
          continue;
        }
        const int64_t base = (oh * g.stride_h - g.pad_h + kh) * g.W + kw - g.pad_w;  // input index at ow = 0
        std::fill(out, out + w0, T(0));
        if (g.stride_w == 1) {
          std::memcpy(out + w0, x + base + w0, (w1 - w0) * sizeof(T));
        } else {
          for (int64_t ow = w0; ow < w1; ++ow) out[ow] = x[base + ow * g.stride_w];
        }
        std::fill(out + w1, out + g.OW, T(0));
      }
    }
  }
}

// The adjoint: x (H, W) = the sum of col (KH*KW, OH*OW) scattered back; x is overwritten.
template <typename T>
void col2im_plane(const ConvGeom& g, const T* col, T* x) {
  const int64_t L = g.OH * g.OW;
  std::fill(x, x + g.H * g.W, T(0));
  for (int64_t kh = 0; kh < g.KH; ++kh) {
    int64_t h0, h1;
    valid_range(kh, g.stride_h, g.pad_h, g.H, g.OH, h0, h1);
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      int64_t w0, w1;
      valid_range(kw, g.stride_w, g.pad_w, g.W, g.OW, w0, w1);
      const T* row = col + (kh * g.KW + kw) * L;
      for (int64_t oh = h0; oh < h1; ++oh) {
        const T* in = row + oh * g.OW;
        const int64_t base = (oh * g.stride_h - g.pad_h + kh) * g.W + kw - g.pad_w;
        for (int64_t ow = w0; ow < w1; ++ow) x[base + ow * g.stride_w] += in[ow];
      }
    }
  }
}

// C channel planes of one image, x (C, H, W) -> col (C*KH*KW, L); threaded over channels if asked.
template <typename T>
void im2col_image(const ConvGeom& g, int64_t C, const T* x, T* col, bool threaded) {
  const int64_t plane = g.H * g.W, rows = g.KH * g.KW * g.OH * g.OW;
#pragma omp parallel for schedule(static) if (threaded && C * rows > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) im2col_plane(g, x + c * plane, col + c * rows);
}

template <typename T>
void col2im_image(const ConvGeom& g, int64_t C, const T* col, T* x, bool threaded) {
  const int64_t plane = g.H * g.W, rows = g.KH * g.KW * g.OH * g.OW;
#pragma omp parallel for schedule(static) if (threaded && C * rows > kParallelGrain)
  for (int64_t c = 0; c < C; ++c) col2im_plane(g, col + c * rows, x + c * plane);
}

// An uninitialised buffer of n elements (col buffers are fully written before being read).
template <typename T>
std::unique_ptr<T[]> scratch(int64_t n) { return std::unique_ptr<T[]>(new T[std::max<int64_t>(n, 1)]); }

// Runs image(n, col, threaded) for every image, split over threads when there are enough.
template <typename T, typename ImageFn>
void for_each_image(int64_t N, int64_t col_elems, ImageFn&& image) {
  if (parallel_over_images(N)) {
#pragma omp parallel
    {
      auto col = scratch<T>(col_elems);
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) image(n, col.get(), false);
    }
  } else {
    auto col = scratch<T>(col_elems);
    for (int64_t n = 0; n < N; ++n) image(n, col.get(), true);
  }
}

// ---- GEMM path (any groups with more than one input channel per group)

// Each image's GEMMs are tiled as N * groups products sharing the budget (gemm_products): with
// images split over threads, tiles only add packing; with fewer images than threads, a lone
// image's GEMM is still cut for its threads.
template <typename T>
void forward_gemm(const ConvGeom& g, const T* x, const T* w, T* y) {
  const int64_t Cog = g.Cout / g.groups, K = g.Cin / g.groups * g.KH * g.KW, L = g.OH * g.OW;
  const bool pointwise = is_pointwise(g);
  for_each_image<T>(g.N, pointwise ? 0 : g.groups * K * L, [&](int64_t n, T* col, bool threaded) {
    const T* xn = x + n * g.Cin * g.H * g.W;  // (Cin, H, W)
    if (!pointwise) im2col_image(g, g.Cin, xn, col, threaded);
    const T* cols = pointwise ? xn : col;     // (groups, K, L)
    T* yn = y + n * g.Cout * L;               // (groups, Cog, L)
    gemm_products(dtype_of<T>(), false, false, Cog, L, K, 1.0, w, K, Cog * K, cols, L, K * L, 0.0, yn, L, Cog * L,
                  g.groups, g.N * g.groups);
  });
}

template <typename T>
void backward_data_gemm(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t Cog = g.Cout / g.groups, K = g.Cin / g.groups * g.KH * g.KW, L = g.OH * g.OW;
  const bool pointwise = is_pointwise(g);
  for_each_image<T>(g.N, pointwise ? 0 : g.groups * K * L, [&](int64_t n, T* col, bool threaded) {
    T* dxn = dx + n * g.Cin * g.H * g.W;  // (Cin, H, W)
    const T* dyn = dy + n * g.Cout * L;   // (groups, Cog, L)
    T* cols = pointwise ? dxn : col;      // (groups, K, L) = W^T (K, Cog) x dy (Cog, L)
    gemm(dtype_of<T>(), true, false, K, L, Cog, 1.0, w, K, Cog * K, dyn, L, Cog * L, 0.0, cols, L, K * L,
         g.groups);
    if (!pointwise) col2im_image(g, g.Cin, col, dxn, threaded);
  });
}

template <typename T>
void backward_filter_gemm(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t Cog = g.Cout / g.groups, K = g.Cin / g.groups * g.KH * g.KW, L = g.OH * g.OW;
  const int64_t dw_elems = g.Cout * K;  // (groups, Cog, K)
  const bool pointwise = is_pointwise(g);
  // dw (Cog, K) += dy (Cog, L) x col^T (L, K), per group; beta 0 starts a fresh sum.
  auto accumulate = [&](int64_t n, T* col, T* dst, double beta, bool threaded) {
    const T* xn = x + n * g.Cin * g.H * g.W;
    if (!pointwise) im2col_image(g, g.Cin, xn, col, threaded);
    const T* cols = pointwise ? xn : col;
    gemm(dtype_of<T>(), false, true, Cog, K, L, 1.0, dy + n * g.Cout * L, L, Cog * L, cols, L, K * L, beta, dst,
         K, Cog * K, g.groups);
  };
  // The images are summed in fixed groups (from N alone), each group's images in order into its
  // own partial dw, then the partials in group order: the same bits on any thread count.
  const int64_t groups = std::min(g.N, kFilterGroups);
  if (groups <= 1) {
    if (g.N == 0) std::fill(dw, dw + dw_elems, T(0));
    auto col = scratch<T>(pointwise ? 0 : g.groups * K * L);
    for (int64_t n = 0; n < g.N; ++n) accumulate(n, col.get(), dw, n == 0 ? 0.0 : 1.0, true);
    return;
  }
  std::vector<T> partial(groups * dw_elems);  // (groups, Cout, K)
#pragma omp parallel if (!omp_in_parallel())
  {
    auto col = scratch<T>(pointwise ? 0 : g.groups * K * L);
#pragma omp for schedule(dynamic, 1)
    for (int64_t p = 0; p < groups; ++p) {
      const int64_t first = g.N * p / groups, end = g.N * (p + 1) / groups;
      for (int64_t n = first; n < end; ++n)
        accumulate(n, col.get(), partial.data() + p * dw_elems, n == first ? 0.0 : 1.0, false);
    }
  }
#pragma omp parallel for schedule(static) if (dw_elems > kParallelGrain && !omp_in_parallel())
  for (int64_t i = 0; i < dw_elems; ++i) {
    T s = partial[i];
    for (int64_t p = 1; p < groups; ++p) s += partial[p * dw_elems + i];
    dw[i] = s;
  }
}

// ---- direct path for depthwise convolutions: channel c feeds outputs [c*m, (c+1)*m)

// dst[i] += a * src[i * stride] for i < n (vectorised when stride is 1).
template <typename T>
inline void add_scaled_gather(int64_t n, T a, const T* src, int64_t stride, T* dst) {
  if (stride == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i * stride];
  }
}

// dst[i * stride] += a * src[i] for i < n.
template <typename T>
inline void add_scaled_scatter(int64_t n, T a, const T* src, T* dst, int64_t stride) {
  if (stride == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dst[i] += a * src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * stride] += a * src[i];
  }
}

// acc[i] += a[i] * b[i * stride] for i < n.
template <typename T>
inline void add_product_gather(int64_t n, const T* a, const T* b, int64_t stride, T* acc) {
  if (stride == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) acc[i] += a[i] * b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) acc[i] += a[i] * b[i * stride];
  }
}

template <typename T>
void forward_depthwise(const ConvGeom& g, const T* x, const T* w, T* y) {
  const int64_t m = g.Cout / g.groups, L = g.OH * g.OW, planes = g.N * g.Cout;
#pragma omp parallel for schedule(static) if (planes * L * g.KH * g.KW > kParallelGrain && !omp_in_parallel())
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / g.Cout, co = p % g.Cout;
    const T* xp = x + (n * g.Cin + co / m) * g.H * g.W;  // (H, W)
    const T* wk = w + co * g.KH * g.KW;                  // (KH, KW)
    T* yp = y + p * L;                                   // (OH, OW)
    std::fill(yp, yp + L, T(0));
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      int64_t h0, h1;
      valid_range(kh, g.stride_h, g.pad_h, g.H, g.OH, h0, h1);
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        int64_t w0, w1;
        valid_range(kw, g.stride_w, g.pad_w, g.W, g.OW, w0, w1);
        const T wv = wk[kh * g.KW + kw];
        for (int64_t oh = h0; oh < h1; ++oh) {
          const int64_t base = (oh * g.stride_h - g.pad_h + kh) * g.W + kw - g.pad_w;
          add_scaled_gather(w1 - w0, wv, xp + base + w0 * g.stride_w, g.stride_w, yp + oh * g.OW + w0);
        }
      }
    }
  }
}

template <typename T>
void backward_data_depthwise(const ConvGeom& g, const T* dy, const T* w, T* dx) {
  const int64_t m = g.Cout / g.groups, L = g.OH * g.OW, planes = g.N * g.Cin;
#pragma omp parallel for schedule(static) if (planes * m * L * g.KH * g.KW > kParallelGrain && !omp_in_parallel())
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t n = p / g.Cin, ci = p % g.Cin;
    T* dxp = dx + p * g.H * g.W;  // (H, W)
    std::fill(dxp, dxp + g.H * g.W, T(0));
    for (int64_t co = ci * m; co < (ci + 1) * m; ++co) {
      const T* dyp = dy + (n * g.Cout + co) * L;  // (OH, OW)
      const T* wk = w + co * g.KH * g.KW;
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t h0, h1;
        valid_range(kh, g.stride_h, g.pad_h, g.H, g.OH, h0, h1);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          int64_t w0, w1;
          valid_range(kw, g.stride_w, g.pad_w, g.W, g.OW, w0, w1);
          const T wv = wk[kh * g.KW + kw];
          for (int64_t oh = h0; oh < h1; ++oh) {
            const int64_t base = (oh * g.stride_h - g.pad_h + kh) * g.W + kw - g.pad_w;
            add_scaled_scatter(w1 - w0, wv, dyp + oh * g.OW + w0, dxp + base + w0 * g.stride_w, g.stride_w);
          }
        }
      }
    }
  }
}

template <typename T>
void backward_filter_depthwise(const ConvGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t m = g.Cout / g.groups, L = g.OH * g.OW;
#pragma omp parallel if (g.N * g.Cout * L * g.KH * g.KW > kParallelGrain && !omp_in_parallel())
  {
    std::vector<T> column_sums(g.OW);  // per output column, summed over images and rows
#pragma omp for schedule(static)
    for (int64_t co = 0; co < g.Cout; ++co) {
      for (int64_t kh = 0; kh < g.KH; ++kh) {
        int64_t h0, h1;
        valid_range(kh, g.stride_h, g.pad_h, g.H, g.OH, h0, h1);
        for (int64_t kw = 0; kw < g.KW; ++kw) {
          int64_t w0, w1;
          valid_range(kw, g.stride_w, g.pad_w, g.W, g.OW, w0, w1);
          std::fill(column_sums.begin(), column_sums.end(), T(0));
          for (int64_t n = 0; n < g.N; ++n) {
            const T* xp = x + (n * g.Cin + co / m) * g.H * g.W;  // (H, W)
            const T* dyp = dy + (n * g.Cout + co) * L;           // (OH, OW)
            for (int64_t oh = h0; oh < h1; ++oh) {
              const int64_t base = (oh * g.stride_h - g.pad_h + kh) * g.W + kw - g.pad_w;
              add_product_gather(w1 - w0, dyp + oh * g.OW + w0, xp + base + w0 * g.stride_w, g.stride_w,
                                 column_sums.data() + w0);
            }
          }
          double sum = 0;
          for (T v : column_sums) sum += v;
          dw[(co * g.KH + kh) * g.KW + kw] = T(sum);
        }
      }
    }
  }
}

}  // namespace

void conv2d_forward(DType t, const ConvGeom& g, const void* x, const void* w, void* y) {
  if (!is_depthwise(g) && winograd_applies(t, g))  // float32 only
    return conv2d_forward_winograd(g, static_cast<const float*>(x), static_cast<const float*>(w),
                                   static_cast<float*>(y));
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);
    auto ws = static_cast<const T*>(w);
    auto ys = static_cast<T*>(y);
    if (is_depthwise(g)) forward_depthwise(g, xs, ws, ys);
    else forward_gemm(g, xs, ws, ys);
  });
}

void conv2d_forward_gemm(DType t, const ConvGeom& g, const void* x, const void* w, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    forward_gemm(g, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<T*>(y));
  });
}

void conv2d_backward_data(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto dys = static_cast<const T*>(dy);
    auto ws = static_cast<const T*>(w);
    auto dxs = static_cast<T*>(dx);
    if (is_depthwise(g)) backward_data_depthwise(g, dys, ws, dxs);
    else backward_data_gemm(g, dys, ws, dxs);
  });
}

void conv2d_backward_filter(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);
    auto dys = static_cast<const T*>(dy);
    auto dws = static_cast<T*>(dw);
    if (is_depthwise(g)) backward_filter_depthwise(g, xs, dys, dws);
    else backward_filter_gemm(g, xs, dys, dws);
  });
}

void im2col(DType t, const ConvGeom& g, const void* x, void* col) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xs = static_cast<const T*>(x);  // (N*C, H, W)
    auto cs = static_cast<T*>(col);      // (N*C, KH*KW, OH*OW)
    const int64_t planes = g.N * g.Cin, rows = g.KH * g.KW * g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * rows > kParallelGrain && !omp_in_parallel())
    for (int64_t p = 0; p < planes; ++p) im2col_plane(g, xs + p * g.H * g.W, cs + p * rows);
  });
}

void col2im(DType t, const ConvGeom& g, const void* col, void* x) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto cs = static_cast<const T*>(col);  // (N*C, KH*KW, OH*OW)
    auto xs = static_cast<T*>(x);          // (N*C, H, W)
    const int64_t planes = g.N * g.Cin, rows = g.KH * g.KW * g.OH * g.OW;
#pragma omp parallel for schedule(static) if (planes * rows > kParallelGrain && !omp_in_parallel())
    for (int64_t p = 0; p < planes; ++p) col2im_plane(g, cs + p * rows, xs + p * g.H * g.W);
  });
}

}  // namespace fpa::cpu
