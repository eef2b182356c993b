// cpu_reduce.cpp: sum/max reductions over any set of axes, and softmax over one axis (and its backward).
//
// Reduce first simplifies x's shape: size-1 dims dropped, adjacent dims of the same kind
// (kept or reduced) merged, so (B, C, H, W) summed over {0, 2, 3} becomes (B | C | H*W) with
// B and H*W reduced. Then one of two loops, chosen by the innermost dim:
//  - reduced: each output combines contiguous rows of x (its H*W runs, one per b), each
//    row by a vectorised sum or max in pieces of 4096 (16 interleaved double lanes, combined
//    pairwise), the pieces in order;
//  - kept: each output row adds whole contiguous rows of x into a double row buffer.
// Determinism: every output is combined in an order fixed by the shape alone (threads split
// outputs; with few outputs they may compute one output's row pieces, which are still combined
// in that order), so results do not depend on the thread count.
// Sums accumulate in double (float data too). Max starts from -inf and gives NaN for a NaN
// anywhere in what it reduces, as PyTorch's max/amax do.
// Softmax walks (outer, dim, inner) so that the contiguous dim is the vectorised one. Its max
// skips NaN (unless first), but a NaN in a row still reaches every output of the row through
// exp(NaN - max) in the sum, as PyTorch's softmax gives NaN for the whole row.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"
#include "ops/backend/cpu/cpu_math.h"
#include "ops/backend/strided_plan.h"

namespace fpa::cpu {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr int kLanes = 16;         // interleaved partial results of a row
constexpr int64_t kChunk = 4096;    // a reduced row is combined in pieces of this many elements
constexpr int64_t kColBlock = 512;  // output columns per task when the innermost dim is kept

struct SumOp {
  static constexpr double init = 0.0;
  static FPA_VINLINE double apply(double acc, double v) { return acc + v; }
};
// The larger of acc and v, NaN winning as in PyTorch's max: a NaN v replaces acc, a NaN acc
// stays (no v compares above it), so a NaN anywhere in a row gives NaN in any order of combining.
struct MaxOp {
  static constexpr double init = kNegInf;
  static FPA_VINLINE double apply(double acc, double v) { return (acc < v || v != v) ? v : acc; }
};

// Combination of p[0..n) in double: element j goes to lane j % 16, lanes combine pairwise
// (rows shorter than 16: left to right).
template <typename Op, typename T>
double combine_row(const T* p, int64_t n) {
  if (n < kLanes) {
    double acc = Op::init;
    for (int64_t j = 0; j < n; ++j) acc = Op::apply(acc, double(p[j]));
    return acc;
  }
  double lane[kLanes];
  for (int l = 0; l < kLanes; ++l) lane[l] = Op::init;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lane[l] = Op::apply(lane[l], double(p[j + l]));
  for (int l = 0; j < n; ++j, ++l) lane[l] = Op::apply(lane[l], double(p[j]));
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] = Op::apply(lane[l], lane[l + w]);
  return lane[0];
}

// A row-major walk over some dims of x: the element offset of the current step.
struct Walk {
  int ndim = 0;
  int64_t shape[kMaxDims], stride[kMaxDims], idx[kMaxDims] = {};
  int64_t offset = 0;
  int64_t count() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
  void seek(int64_t flat) {
    offset = 0;
    for (int d = ndim - 1; d >= 0; --d) idx[d] = flat % shape[d], flat /= shape[d], offset += idx[d] * stride[d];
  }
  void next() {
    for (int d = ndim - 1; d >= 0; --d) {
      offset += stride[d];
      if (++idx[d] < shape[d]) return;
      offset -= stride[d] * shape[d];
      idx[d] = 0;
    }
  }
};

// Innermost dim reduced: y[o] combines, in order, the pieces of its rows: for each reduced
// row r, for each chunk of at most kChunk elements, combine_row(chunk). Threads take whole
// outputs; with fewer outputs than threads, the pieces are computed in parallel first and
// combined in the same order afterwards, which gives the same bits.
template <typename Op, typename T>
void reduce_rows(const ReducePlan<Walk>& p, const T* x, T* y) {
  const int64_t n_out = p.kept.count(), rows = p.reduced.count();
  const int64_t chunks = (p.inner + kChunk - 1) / kChunk, pieces = rows * chunks;
  auto piece = [&](const Walk& kept, const Walk& reduced, int64_t c) {
    int64_t c0 = c * kChunk;
    return combine_row<Op>(x + kept.offset + reduced.offset + c0, std::min(kChunk, p.inner - c0));
  };
  const bool parallel = n_out * rows * p.inner > kParallelGrain;
  const int64_t nt = parallel ? omp_get_max_threads() : 1;
  if (nt > 1 && n_out < 4 * nt && p.inner >= 256 && pieces > 1 && n_out * pieces <= (1 << 16)) {
    std::vector<double> part(n_out * pieces);
#pragma omp parallel
    {
      Walk kept = p.kept, reduced = p.reduced;
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n_out * pieces; ++i) {
        kept.seek(i / pieces);
        reduced.seek(i % pieces / chunks);
        part[i] = piece(kept, reduced, i % chunks);
      }
    }
    for (int64_t o = 0; o < n_out; ++o) {
      double acc = Op::init;
      for (int64_t i = 0; i < pieces; ++i) acc = Op::apply(acc, part[o * pieces + i]);
      y[o] = T(acc);
    }
    return;
  }
#pragma omp parallel if (nt > 1 && n_out > 1)
  {
    Walk kept = p.kept, reduced = p.reduced;
    int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t begin = n_out * t / n, end = n_out * (t + 1) / n;
    if (begin < end) kept.seek(begin);
    if (pieces == 1 && kept.ndim == 1) {  // one short row per output, at a plain stride
      for (int64_t o = begin; o < end; ++o) y[o] = T(combine_row<Op>(x + o * kept.stride[0], p.inner));
      begin = end;
    }
    for (int64_t o = begin; o < end; ++o, kept.next()) {
      double acc = Op::init;
      reduced.seek(0);
      for (int64_t r = 0; r < rows; ++r, reduced.next())
        for (int64_t c = 0; c < chunks; ++c) acc = Op::apply(acc, piece(kept, reduced, c));
      y[o] = T(acc);
    }
  }
}

// Innermost dim kept: output row k (all kept dims but the innermost) accumulates, in the order
// of the reduced rows, whole contiguous rows of x into a double buffer. Threads take
// (row, column block) tasks.
template <typename Op, typename T>
void reduce_columns(const ReducePlan<Walk>& p, const T* x, T* y) {
  const int64_t out_rows = p.kept.count(), rows = p.reduced.count(), cols = p.inner;
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock, tasks = out_rows * blocks;
#pragma omp parallel if (out_rows * rows * cols > kParallelGrain && tasks > 1)
  {
    Walk kept = p.kept, reduced = p.reduced;
    double acc[kColBlock];
#pragma omp for schedule(static)
    for (int64_t task = 0; task < tasks; ++task) {
      int64_t k = task / blocks, c0 = task % blocks * kColBlock, n = std::min(kColBlock, cols - c0);
      kept.seek(k);
      for (int64_t c = 0; c < n; ++c) acc[c] = Op::init;
      const T* base = x + kept.offset + c0;
      auto add_row = [&](const T* row) {
        if (n < kLanes) {  // narrow: a plain loop beats the vector loop's set-up
          for (int64_t c = 0; c < n; ++c) acc[c] = Op::apply(acc[c], double(row[c]));
          return;
        }
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) acc[c] = Op::apply(acc[c], double(row[c]));
      };
      if (reduced.ndim == 1) {  // the common case: one (merged) reduced dim, a plain stride
        for (int64_t r = 0; r < rows; ++r) add_row(base + r * reduced.stride[0]);
      } else {
        reduced.seek(0);
        for (int64_t r = 0; r < rows; ++r, reduced.next()) add_row(base + reduced.offset);
      }
      T* out = y + k * cols + c0;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) out[c] = T(acc[c]);
    }
  }
}

template <typename Op, typename T>
void reduce_typed(const Shape& xs, unsigned mask, const T* x, T* y) {
  ReducePlan<Walk> p = plan_reduce<Walk>(xs, mask);
  int64_t n_out = 1;
  for (int d = 0; d < xs.ndim; ++d)
    if (!(mask >> d & 1u)) n_out *= xs[d];
  if (n_out == 0) return;
  if (p.empty_reduction) std::fill_n(y, n_out, T(Op::init));
  else if (p.inner_reduced) reduce_rows<Op>(p, x, y);
  else reduce_columns<Op>(p, x, y);
}

// ---- softmax ----
//
// Three passes over a task's data: maxes and y = x - max; exp over y as one flat loop (short
// rows and narrow slabs vectorise too, and exp_of gives an element the same bits wherever it
// sits); sums, 1/sum and scaling. A task is a group of whole rows (inner == 1), of whole
// (dim, inner) slabs, or one column block of a wide slab; how tasks are cut never changes a bit.

FPA_VINLINE float exp_of(float v) { return vmath::exp_f(v); }
FPA_VINLINE double exp_of(double v) { return std::exp(v); }

template <typename T>
void exp_in_place(int64_t n, T* y) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = exp_of(y[i]);
}

template <typename T>
T row_max(const T* x, int64_t n) {
  T m = x[0];  // NaN is skipped unless it comes first (m < NaN is false), on every path alike
  if (n < kLanes) {
    for (int64_t j = 1; j < n; ++j) m = m < x[j] ? x[j] : m;
    return m;
  }
  T lane[kLanes];
  for (int l = 0; l < kLanes; ++l) lane[l] = m;
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lane[l] = lane[l] < x[j + l] ? x[j + l] : lane[l];
  for (int l = 0; j < n; ++j, ++l) lane[l] = lane[l] < x[j] ? x[j] : lane[l];
  for (int l = 0; l < kLanes; ++l) m = m < lane[l] ? lane[l] : m;
  return m;
}

// `rows` contiguous rows of length n (softmax over the last axis).
template <typename T>
void softmax_rows(int64_t rows, int64_t n, const T* x, T* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * n, m = row_max(xr, n);
    T* yr = y + r * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] - m;
  }
  exp_in_place(rows * n, y);
  for (int64_t r = 0; r < rows; ++r) {
    T* yr = y + r * n;
    const T inv = T(1) / T(combine_row<SumOp>(yr, n));
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) yr[i] *= inv;
  }
}

// Columns [0, n) of `slabs` consecutive (dim, inner) slabs (n == inner, or one block of a
// single wide slab): the reductions run down the columns, the contiguous inner dim vectorised.
template <typename T>
void softmax_columns(int64_t slabs, int64_t dim, int64_t inner, int64_t n, const T* x, T* y) {
  T m[kColBlock];
  double s[kColBlock];
  for (int64_t b = 0; b < slabs; ++b) {
    const T* xs = x + b * dim * inner;
    T* ys = y + b * dim * inner;
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) m[c] = xs[c];  // NaN is skipped unless it comes first
    for (int64_t j = 1; j < dim; ++j) {
      const T* xr = xs + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) m[c] = m[c] < xr[c] ? xr[c] : m[c];
    }
    for (int64_t j = 0; j < dim; ++j) {
      const T* xr = xs + j * inner;
      T* yr = ys + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) yr[c] = xr[c] - m[c];
    }
  }
  if (n == inner) exp_in_place(slabs * dim * inner, y);
  else
    for (int64_t j = 0; j < dim; ++j) exp_in_place(n, y + j * inner);
  for (int64_t b = 0; b < slabs; ++b) {
    T* ys = y + b * dim * inner;
    for (int64_t c = 0; c < n; ++c) s[c] = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const T* yr = ys + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) s[c] += yr[c];
    }
#pragma omp simd
    for (int64_t c = 0; c < n; ++c) m[c] = T(1) / T(s[c]);  // m now holds 1 / sum
    for (int64_t j = 0; j < dim; ++j) {
      T* yr = ys + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) yr[c] *= m[c];
    }
  }
}

// Cuts (outer, dim, inner) into tasks as above and runs them in parallel: rows(offset, count)
// for `count` whole rows (inner == 1); columns(offset, slabs, n) for columns [0, n) of `slabs`
// slabs starting at element `offset`.
template <typename Rows, typename Columns>
void for_softmax_tasks(int64_t outer, int64_t dim, int64_t inner, Rows rows, Columns columns) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  const bool parallel = outer * dim * inner > kParallelGrain;
  constexpr int64_t kTaskElems = 8192;  // group small rows or slabs up to about this many elements
  if (inner == 1) {
    const int64_t per = std::max<int64_t>(1, kTaskElems / dim), tasks = (outer + per - 1) / per;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t o = t * per;
      rows(o * dim, std::min(per, outer - o));
    }
  } else if (inner <= kColBlock) {
    const int64_t per = std::max<int64_t>(1, kTaskElems / (dim * inner)), tasks = (outer + per - 1) / per;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t o = t * per;
      columns(o * dim * inner, std::min(per, outer - o), inner);
    }
  } else {
    const int64_t blocks = (inner + kColBlock - 1) / kColBlock, tasks = outer * blocks;
#pragma omp parallel for schedule(static) if (parallel && tasks > 1)
    for (int64_t t = 0; t < tasks; ++t) {
      int64_t o = t / blocks, c0 = t % blocks * kColBlock;
      columns(o * dim * inner + c0, 1, std::min(kColBlock, inner - c0));
    }
  }
}

template <typename T>
void softmax_typed(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y) {
  for_softmax_tasks(
      outer, dim, inner, [&](int64_t off, int64_t rows) { softmax_rows(rows, dim, x + off, y + off); },
      [&](int64_t off, int64_t slabs, int64_t n) { softmax_columns(slabs, dim, inner, n, x + off, y + off); });
}

// ---- softmax backward: dx = y (g - s), s = sum over dim of g y in double (lanes as combine_row) ----

template <typename T>
double dot_row(const T* a, const T* b, int64_t n) {
  double lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
#pragma omp simd
    for (int l = 0; l < kLanes; ++l) lane[l] += double(a[j + l]) * double(b[j + l]);
  for (int l = 0; j < n; ++j, ++l) lane[l] += double(a[j]) * double(b[j]);
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) lane[l] += lane[l + w];
  return lane[0];
}

// dx = y (g - s) with s = sum g y; with u: dx = u (g - s) - g t, t = sum u y (sums in double).
template <typename T>
void softmax_backward_rows(int64_t rows, int64_t n, const T* y, const T* g, const T* u, T* dx) {
  for (int64_t r = 0; r < rows; ++r) {
    const T *yr = y + r * n, *gr = g + r * n;
    const T s = T(dot_row(yr, gr, n));
    T* dr = dx + r * n;
    if (!u) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) dr[i] = yr[i] * (gr[i] - s);
      continue;
    }
    const T* ur = u + r * n;
    const T t = T(dot_row(ur, yr, n));
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dr[i] = ur[i] * (gr[i] - s) - gr[i] * t;
  }
}

// Columns [0, n) of `slabs` consecutive (dim, inner) slabs, n <= kColBlock.
template <typename T>
void softmax_backward_columns(int64_t slabs, int64_t dim, int64_t inner, int64_t n, const T* y, const T* g,
                              const T* u, T* dx) {
  double s[kColBlock], t[kColBlock];
  T st[kColBlock], tt[kColBlock];
  for (int64_t b = 0; b < slabs; ++b) {
    const int64_t off = b * dim * inner;
    for (int64_t c = 0; c < n; ++c) s[c] = 0, t[c] = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const T *yr = y + off + j * inner, *gr = g + off + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) s[c] += double(yr[c]) * double(gr[c]);
      if (!u) continue;
      const T* ur = u + off + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) t[c] += double(ur[c]) * double(yr[c]);
    }
    for (int64_t c = 0; c < n; ++c) st[c] = T(s[c]), tt[c] = T(t[c]);
    for (int64_t j = 0; j < dim; ++j) {
      const T *yr = y + off + j * inner, *gr = g + off + j * inner;
      T* dr = dx + off + j * inner;
      if (!u) {
#pragma omp simd
        for (int64_t c = 0; c < n; ++c) dr[c] = yr[c] * (gr[c] - st[c]);
        continue;
      }
      const T* ur = u + off + j * inner;
#pragma omp simd
      for (int64_t c = 0; c < n; ++c) dr[c] = ur[c] * (gr[c] - st[c]) - gr[c] * tt[c];
    }
  }
}

template <typename T>
void softmax_backward_typed(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* g, const T* u, T* dx) {
  for_softmax_tasks(
      outer, dim, inner,
      [&](int64_t off, int64_t rows) {
        softmax_backward_rows(rows, dim, y + off, g + off, u ? u + off : nullptr, dx + off);
      },
      [&](int64_t off, int64_t slabs, int64_t n) {
        softmax_backward_columns(slabs, dim, inner, n, y + off, g + off, u ? u + off : nullptr, dx + off);
      });
}

}  // namespace

void reduce(DType t, ReduceOp op, const Shape& xs, unsigned mask, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    if (op == ReduceOp::sum) reduce_typed<SumOp>(xs, mask, xp, yp);
    else reduce_typed<MaxOp>(xs, mask, xp, yp);
  });
}

void softmax(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_typed(outer, dim, inner, static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void softmax_backward(DType t, int64_t outer, int64_t dim, int64_t inner, const void* y, const void* g, const void* u,
                      void* dx) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_typed(outer, dim, inner, static_cast<const T*>(y), static_cast<const T*>(g),
                           static_cast<const T*>(u), static_cast<T*>(dx));
  });
}

}  // namespace fpa::cpu
