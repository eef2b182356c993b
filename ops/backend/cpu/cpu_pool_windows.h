// cpu_pool_windows.h: the windows of the CPU pooling primitives (cpu_pool.cpp) and the
// vectorised forward reduction over them that average pooling and max pooling share.
//
// A fold reduces one window: acc = init, then acc = combine(acc, x) over the window's rows and,
// within each, its columns, then finish(acc, entries). Every output gets exactly this sequence,
// whichever loop computes it, so the vector paths give the scalar loop's bits:
// - fold_row: one output row; the columns whose window lies inside the plane run as SIMD lanes
//   (stride 1 or 2 known at compile time: contiguous or shuffled loads), the edges alone;
// - fold_same_plane: a stride-1 window of 2 * pad + 1, whose output is the input's size: the
//   interior runs as one flat vector over the plane (rows wrap into the next, and the columns
//   that wrapped are edge columns, computed again alone afterwards).
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/backend/backend.h"

namespace fpa::cpu {

// The input rows (or columns) [begin, end) that output o covers, and its divisor's factor.
struct Window {
  int64_t begin, end, count;
};

inline Window window(const PoolGeom& g, int64_t o, int64_t in, int64_t out) {
  if (g.adaptive) {
    int64_t b = (o * in) / out, e = ((o + 1) * in + out - 1) / out;
    return {b, e, e - b};
  }
  int64_t b = o * g.stride - g.pad, e = b + g.kernel;
  const int64_t lo = std::max<int64_t>(b, 0), hi = std::min(e, in);
  return {lo, hi, g.count_include_pad ? g.kernel : hi - lo};
}

// The windows of every output row and column, computed once per call.
struct Windows {
  std::vector<Window> rows, cols;
  explicit Windows(const PoolGeom& g) {
    for (int64_t o = 0; o < g.OH; ++o) rows.push_back(window(g, o, g.H, g.OH));
    for (int64_t o = 0; o < g.OW; ++o) cols.push_back(window(g, o, g.W, g.OW));
  }
};

// The output columns [begin, end) whose fixed window lies wholly inside the plane (an empty
// range when none does).
struct InteriorColumns {
  int64_t begin, end;
};

inline InteriorColumns interior_columns(const PoolGeom& g) {
  if (g.adaptive || g.W + g.pad < g.kernel) return {0, 0};
  const int64_t begin = std::min((g.pad + g.stride - 1) / g.stride, g.OW);
  const int64_t end = std::min((g.W + g.pad - g.kernel) / g.stride + 1, g.OW);
  return {begin, std::max(begin, end)};
}

// Whether fold_same_plane applies: stride 1, a window of 2 * pad + 1, an interior.
inline bool same_size_window(const PoolGeom& g) {
  return !g.adaptive && g.stride == 1 && g.kernel == 2 * g.pad + 1 && g.OH == g.H && g.OW == g.W &&
         g.H > 2 * g.pad && g.W > 2 * g.pad;
}

// The mean of the window's entries (the divisor from the window's counts).
template <typename T>
struct AverageFold {
  static T init() { return T(0); }
  static T combine(T acc, T v) { return acc + v; }
  static T finish(T acc, int64_t entries) { return acc / T(entries); }
};

// The value at the window's argmax by PyTorch's rule: the first largest, or the last NaN.
template <typename T>
struct MaxFold {
  static T init() { return -std::numeric_limits<T>::infinity(); }
  static T combine(T acc, T v) { return v > acc || v != v ? v : acc; }
  static T finish(T acc, int64_t) { return acc; }
};

// One output of window (r, c), alone.
template <typename Fold, typename T>
T fold_window(const T* xp, int64_t W, const Window& r, const Window& c) {
  T acc = Fold::init();
  for (int64_t ih = r.begin; ih < r.end; ++ih)
    for (int64_t iw = c.begin; iw < c.end; ++iw) acc = Fold::combine(acc, xp[ih * W + iw]);
  return Fold::finish(acc, r.count * c.count);
}

// Output row y (OW) of row window r: kStride is the stride when known at compile time, else 0.
template <typename Fold, int64_t kStride, typename T>
void fold_row(const PoolGeom& g, const Windows& win, const InteriorColumns& in, const T* xp, const Window& r, T* y) {
  const int64_t kernel = g.kernel, stride = kStride ? kStride : g.stride, W = g.W;
  for (int64_t ow = 0; ow < in.begin; ++ow) y[ow] = fold_window<Fold>(xp, W, r, win.cols[ow]);
  const int64_t n = in.end - in.begin;
  T* yi = y + in.begin;
  const T* x0 = xp + in.begin * stride - g.pad;  // window start of the first interior column
  std::fill(yi, yi + n, Fold::init());
  for (int64_t ih = r.begin; ih < r.end; ++ih)
    for (int64_t kw = 0; kw < kernel; ++kw) {
      const T* src = x0 + ih * W + kw;
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) yi[i] = Fold::combine(yi[i], src[i * stride]);
    }
  if (n > 0) {
    const int64_t entries = r.count * win.cols[in.begin].count;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yi[i] = Fold::finish(yi[i], entries);
  }
  for (int64_t ow = in.end; ow < g.OW; ++ow) y[ow] = fold_window<Fold>(xp, W, r, win.cols[ow]);
}

// One plane y (H, W) of a same_size_window pool of x (H, W).
template <typename Fold, typename T>
void fold_same_plane(const PoolGeom& g, const Windows& win, const T* xp, T* yp) {
  const int64_t W = g.W, H = g.H, p = g.pad;
  const int64_t first = p * W + p, end = (H - p - 1) * W + (W - p);  // the interior's flat range
  std::fill(yp + first, yp + end, Fold::init());
  for (int64_t dh = -p; dh <= p; ++dh)
    for (int64_t dw = -p; dw <= p; ++dw) {
      const T* src = xp + dh * W + dw;
#pragma omp simd
      for (int64_t i = first; i < end; ++i) yp[i] = Fold::combine(yp[i], src[i]);
    }
  const int64_t entries = win.rows[p].count * win.cols[p].count;
#pragma omp simd
  for (int64_t i = first; i < end; ++i) yp[i] = Fold::finish(yp[i], entries);
  auto edge = [&](int64_t oh, int64_t ow) { yp[oh * W + ow] = fold_window<Fold>(xp, W, win.rows[oh], win.cols[ow]); };
  for (int64_t oh = 0; oh < H; ++oh) {
    if (oh < p || oh >= H - p) {
      for (int64_t ow = 0; ow < W; ++ow) edge(oh, ow);
      continue;
    }
    for (int64_t ow = 0; ow < p; ++ow) edge(oh, ow);
    for (int64_t ow = W - p; ow < W; ++ow) edge(oh, ow);
  }
}

// One plane of a fixed-window pool by Fold: the flat path where it applies, else row by row.
template <typename Fold, typename T>
void fold_plane(const PoolGeom& g, const Windows& win, const InteriorColumns& in, const T* xp, T* yp) {
  if (same_size_window(g)) return fold_same_plane<Fold>(g, win, xp, yp);
  for (int64_t oh = 0; oh < g.OH; ++oh) {
    const Window& r = win.rows[oh];
    if (g.stride == 1) fold_row<Fold, 1>(g, win, in, xp, r, yp + oh * g.OW);
    else if (g.stride == 2) fold_row<Fold, 2>(g, win, in, xp, r, yp + oh * g.OW);
    else fold_row<Fold, 0>(g, win, in, xp, r, yp + oh * g.OW);
  }
}

}  // namespace fpa::cpu
