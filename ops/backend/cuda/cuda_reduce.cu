// cuda_reduce.cu: sum/max reductions over any set of axes, and softmax over one axis (and its backward),
// on CUDA.
//
// Reduce plans x's shape as the CPU does (cpu_reduce.cpp): size-1 dims dropped, neighbours of
// the same kind (kept or reduced) merged, leaving the kept dims (output order), the reduced
// dims, and an innermost contiguous dim that is either reduced or kept. Then:
//  - innermost reduced ("rows"): a block per (output, split); its threads stride over the
//    output's elements (consecutive threads read consecutive elements) and combine their
//    partial results in a fixed tree;
//  - innermost kept ("columns"): a thread per (output, split); consecutive threads own
//    consecutive outputs, so each step down the reduced rows is one coalesced read.
// When there are few outputs for the GPU, the reduced range is cut into splits whose partial
// results (double) go to a scratch buffer and are combined in split order by a second kernel.
// The split count depends on the shape alone, so results are the same on every run.
// As on the CPU: sums accumulate in double (float data too); max gives NaN when it reduces a
// NaN and starts from -inf; an empty reduction gives 0 or -inf.
// Softmax: a warp per row when the axis is innermost, else a thread per (outer, inner)
// column; max, exp(x - max), sum in double, multiply by 1/sum, as the CPU does (a NaN in a
// row reaches all of the row's outputs through the sum, as in PyTorch).
#include <cmath>
#include <vector>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/strided_plan.h"

namespace fpa::gpu {
namespace {

struct SumOp {
  static __device__ __forceinline__ double init() { return 0.0; }
  static __device__ __forceinline__ double apply(double acc, double v) { return acc + v; }
};
// The larger of acc and v, NaN winning (the CPU's rule, PyTorch's max): a NaN v replaces acc,
// a NaN acc stays, so any NaN reduced gives NaN whatever the order of combining.
struct MaxOp {
  static __device__ __forceinline__ double init() { return -INFINITY; }
  static __device__ __forceinline__ double apply(double acc, double v) { return (acc < v || v != v) ? v : acc; }
};

// A row-major walk over some dims of x (contiguous strides): the offset of a flat step.
struct Walk {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
  int64_t count() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }
  __device__ __forceinline__ int64_t offset_of(int64_t flat) const {
    int64_t off = 0;
    for (int d = ndim - 1; d > 0; --d) {
      const int64_t q = flat / shape[d];
      off += (flat - q * shape[d]) * stride[d];
      flat = q;
    }
    return ndim > 0 ? off + flat * stride[0] : off;
  }
};

constexpr int kReduceThreads = 256;
constexpr int64_t kShortReduction = 32;  // at most this many elements per output: a thread per output

// Combines the block's per-thread values in a fixed tree; thread 0 gets the result.
template <typename Op>
__device__ double block_combine(double v) {
  __shared__ double warp_results[kReduceThreads / 32];
  for (int w = 16; w > 0; w /= 2) v = Op::apply(v, __shfl_down_sync(0xffffffffu, v, w));
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kReduceThreads / 32 ? warp_results[lane] : Op::init();
    for (int w = 16; w > 0; w /= 2) v = Op::apply(v, __shfl_down_sync(0xffffffffu, v, w));
  }
  return v;
}

// Innermost dim reduced. Block b: output o = b / splits, split s = b % splits, covering
// elements [s*per_split, (s+1)*per_split) of the output's `rows x inner` reduced elements.
// Writes y[o] (splits == 1) or partial[b].
template <typename Op, typename T>
__global__ void reduce_rows_kernel(ReducePlan<Walk> p, int64_t reduced_len, int64_t splits, int64_t per_split, const T* x,
                                   T* y, double* partial) {
  const int64_t b = blockIdx.x, o = b / splits, s = b % splits;
  const int64_t base = p.kept.offset_of(o);
  const int64_t begin = s * per_split, end = begin + per_split < reduced_len ? begin + per_split : reduced_len;
  double acc = Op::init();
  if (p.reduced.ndim == 0) {  // one contiguous run
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc = Op::apply(acc, double(x[base + r]));
  } else if (reduced_len < (int64_t(1) << 32)) {  // 32-bit division
    const uint32_t inner = uint32_t(p.inner);
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) {
      const uint32_t row = uint32_t(r) / inner, col = uint32_t(r) - row * inner;
      acc = Op::apply(acc, double(x[base + p.reduced.offset_of(row) + col]));
    }
  } else {
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) {
      const int64_t row = r / p.inner, col = r - row * p.inner;
      acc = Op::apply(acc, double(x[base + p.reduced.offset_of(row) + col]));
    }
  }
  acc = block_combine<Op>(acc);
  if (threadIdx.x == 0) {
    if (splits == 1) y[o] = T(acc);
    else partial[b] = acc;
  }
}

// Innermost dim reduced but short (a few elements per output): a thread per output.
template <typename Op, typename T>
__global__ void reduce_short_rows_kernel(ReducePlan<Walk> p, int64_t n_out, int64_t rows, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(o, n_out) {
    const T* base = x + p.kept.offset_of(o);
    double acc = Op::init();
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = base + p.reduced.offset_of(r);
      for (int64_t c = 0; c < p.inner; ++c) acc = Op::apply(acc, double(row[c]));
    }
    y[o] = T(acc);
  }
}

// Innermost dim kept. Thread (o, split s): o = k * inner + c over the kept outputs, rows
// [s*per_split, (s+1)*per_split) of the reduced walk.
template <typename Op, typename T>
__global__ void reduce_columns_kernel(ReducePlan<Walk> p, int64_t n_out, int64_t rows, int64_t splits, int64_t per_split,
                                      const T* x, T* y, double* partial) {
  const int64_t s = blockIdx.y;
  const int64_t r0 = s * per_split, r1 = r0 + per_split < rows ? r0 + per_split : rows;
  FPA_GRID_STRIDE_LOOP(o, n_out) {
    const int64_t k = o / p.inner, c = o - k * p.inner;
    const T* base = x + p.kept.offset_of(k) + c;
    double acc = Op::init();
    if (p.reduced.ndim <= 1) {
      const int64_t step = p.reduced.ndim == 1 ? p.reduced.stride[0] : 0;
      for (int64_t r = r0; r < r1; ++r) acc = Op::apply(acc, double(base[r * step]));
    } else {
      for (int64_t r = r0; r < r1; ++r) acc = Op::apply(acc, double(base[p.reduced.offset_of(r)]));
    }
    if (splits == 1) y[o] = T(acc);
    else partial[o * splits + s] = acc;
  }
}

// y[o] = the splits of output o combined in order.
template <typename Op, typename T>
__global__ void combine_splits_kernel(int64_t n_out, int64_t splits, const double* partial, T* y) {
  FPA_GRID_STRIDE_LOOP(o, n_out) {
    double acc = Op::init();
    for (int64_t s = 0; s < splits; ++s) acc = Op::apply(acc, partial[o * splits + s]);
    y[o] = T(acc);
  }
}

template <typename T>
__global__ void fill_identity_kernel(int64_t n, T value, T* y) {
  FPA_GRID_STRIDE_LOOP(i, n) y[i] = value;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

template <typename Op, typename T>
void reduce_typed(const Shape& xs, unsigned mask, const T* x, T* y, bool is_max) {
  const ReducePlan<Walk> p = plan_reduce<Walk>(xs, mask);
  int64_t n_out = 1;
  for (int d = 0; d < xs.ndim; ++d)
    if (!(mask >> d & 1u)) n_out *= xs[d];
  if (n_out == 0) return;
  if (p.empty_reduction) {
    launch("reduce (empty)", fill_identity_kernel<T>, blocks_for(n_out), kThreads, n_out, is_max ? T(-INFINITY) : T(0),
           y);
    return;
  }
  const int64_t rows = p.reduced.count();
  if (p.inner_reduced && rows * p.inner <= kShortReduction) {
    launch("reduce (short rows)", reduce_short_rows_kernel<Op, T>, blocks_for(n_out), kThreads, p, n_out, rows, x, y);
  } else if (p.inner_reduced) {
    // One block per output; outputs with long reductions are split until the grid has
    // about 2048 blocks, each split at least 8192 elements.
    const int64_t reduced_len = rows * p.inner;
    const int64_t splits = clamp64(std::min(ceil_div(reduced_len, 8192), ceil_div(2048, n_out)), 1, 4096);
    const int64_t per_split = ceil_div(reduced_len, splits);
    FPA_CHECK(n_out * splits < (int64_t(1) << 31), "cuda reduce: ", n_out, " outputs is more than one grid holds");
    Scratch partial(splits > 1 ? n_out * splits * sizeof(double) : 0);
    launch("reduce (rows)", reduce_rows_kernel<Op, T>, unsigned(n_out * splits), kReduceThreads, p, reduced_len, splits,
           per_split, x, y, partial.as<double>());
    if (splits > 1) {
      launch("reduce (combine)", combine_splits_kernel<Op, T>, blocks_for(n_out), kThreads, n_out, splits,
             partial.as<double>(), y);
    }
  } else {
    // One thread per output; long reductions split until there are about 128K threads,
    // each split at least 32 rows.
    const int64_t splits = clamp64(std::min(ceil_div(rows, 32), ceil_div(int64_t(1) << 17, n_out)), 1, 65535);
    const int64_t per_split = ceil_div(rows, splits);
    Scratch partial(splits > 1 ? n_out * splits * sizeof(double) : 0);
    dim3 grid(blocks_for(n_out), unsigned(splits));
    launch("reduce (columns)", reduce_columns_kernel<Op, T>, grid, kThreads, p, n_out, rows, splits, per_split, x, y,
           partial.as<double>());
    if (splits > 1) {
      launch("reduce (combine)", combine_splits_kernel<Op, T>, blocks_for(n_out), kThreads, n_out, splits,
             partial.as<double>(), y);
    }
  }
}

// ---- softmax

__device__ __forceinline__ float exp_of(float v) { return float(exp(double(v))); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }

// The larger of m and v; a NaN v is skipped, a NaN m stays.
template <typename T>
__device__ __forceinline__ T max_keep(T m, T v) {
  return m < v ? v : m;
}

// inner == 1: warp w handles rows w, w + warps, ...; rows are `dim` long and contiguous.
template <typename T>
__global__ void softmax_rows_kernel(int64_t outer, int64_t dim, const T* x, T* y) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; row < outer; row += warps) {
    const T* xr = x + row * dim;
    T* yr = y + row * dim;
    T m = xr[0];  // NaN is skipped unless it comes first, as on the CPU
    for (int64_t j = lane; j < dim; j += 32) m = max_keep(m, xr[j]);
    for (int w = 16; w > 0; w /= 2) m = max_keep(m, __shfl_xor_sync(0xffffffffu, m, w));
    double sum = 0;
    for (int64_t j = lane; j < dim; j += 32) {
      const T e = exp_of(T(xr[j] - m));
      yr[j] = e;
      sum += double(e);
    }
    for (int w = 16; w > 0; w /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, w);
    const T inv = T(1) / T(sum);
    for (int64_t j = lane; j < dim; j += 32) yr[j] *= inv;
  }
}

// inner > 1: a thread per (o, c) column; x[o, j, c] at o*dim*inner + j*inner + c.
template <typename T>
__global__ void softmax_columns_kernel(int64_t outer, int64_t dim, int64_t inner, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(col, outer * inner) {
    const int64_t o = col / inner, c = col - o * inner;
    const T* xc = x + o * dim * inner + c;
    T* yc = y + o * dim * inner + c;
    T m = xc[0];
    for (int64_t j = 1; j < dim; ++j) m = max_keep(m, xc[j * inner]);
    double sum = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const T e = exp_of(T(xc[j * inner] - m));
      yc[j * inner] = e;
      sum += double(e);
    }
    const T inv = T(1) / T(sum);
    for (int64_t j = 0; j < dim; ++j) yc[j * inner] *= inv;
  }
}

// Backward, dx = y (g - s) with s = sum over dim of g y in double: the forward's layouts. With
// u: dx = u (g - s) - g t, t = sum u y (the second order's term).
template <typename T>
__global__ void softmax_backward_rows_kernel(int64_t outer, int64_t dim, const T* y, const T* g, const T* u, T* dx) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
  for (int64_t row = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32; row < outer; row += warps) {
    const T *yr = y + row * dim, *gr = g + row * dim, *ur = u ? u + row * dim : nullptr;
    double sum = 0, sum_u = 0;
    for (int64_t j = lane; j < dim; j += 32) {
      sum += double(yr[j]) * double(gr[j]);
      if (ur) sum_u += double(ur[j]) * double(yr[j]);
    }
    for (int w = 16; w > 0; w /= 2) {
      sum += __shfl_xor_sync(0xffffffffu, sum, w);
      sum_u += __shfl_xor_sync(0xffffffffu, sum_u, w);
    }
    const T s = T(sum), t = T(sum_u);
    if (!ur)
      for (int64_t j = lane; j < dim; j += 32) dx[row * dim + j] = yr[j] * (gr[j] - s);
    else
      for (int64_t j = lane; j < dim; j += 32) dx[row * dim + j] = ur[j] * (gr[j] - s) - gr[j] * t;
  }
}

template <typename T>
__global__ void softmax_backward_columns_kernel(int64_t outer, int64_t dim, int64_t inner, const T* y, const T* g,
                                                const T* u, T* dx) {
  FPA_GRID_STRIDE_LOOP(col, outer * inner) {
    const int64_t o = col / inner, c = col - o * inner, base = o * dim * inner + c;
    double sum = 0, sum_u = 0;
    for (int64_t j = 0; j < dim; ++j) {
      const int64_t i = base + j * inner;
      sum += double(y[i]) * double(g[i]);
      if (u) sum_u += double(u[i]) * double(y[i]);
    }
    const T s = T(sum), t = T(sum_u);
    for (int64_t j = 0; j < dim; ++j) {
      const int64_t i = base + j * inner;
      dx[i] = u ? u[i] * (g[i] - s) - g[i] * t : y[i] * (g[i] - s);
    }
  }
}

}  // namespace

void reduce(DType t, ReduceOp op, const Shape& xs, unsigned mask, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    if (op == ReduceOp::sum) reduce_typed<SumOp>(xs, mask, xp, yp, false);
    else reduce_typed<MaxOp>(xs, mask, xp, yp, true);
  });
}

void softmax(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto xp = static_cast<const T*>(x);
    auto yp = static_cast<T*>(y);
    if (inner == 1) {
      const int64_t rows_per_block = kThreads / 32;
      launch("softmax (rows)", softmax_rows_kernel<T>, blocks_for(outer, int(rows_per_block)), kThreads, outer, dim, xp,
             yp);
    } else {
      launch("softmax (columns)", softmax_columns_kernel<T>, blocks_for(outer * inner), kThreads, outer, dim, inner, xp,
             yp);
    }
  });
}

void softmax_backward(DType t, int64_t outer, int64_t dim, int64_t inner, const void* y, const void* g, const void* u,
                      void* dx) {
  if (outer == 0 || dim == 0 || inner == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto yp = static_cast<const T*>(y);
    auto gp = static_cast<const T*>(g);
    auto up = static_cast<const T*>(u);
    auto dxp = static_cast<T*>(dx);
    if (inner == 1) {
      const int64_t rows_per_block = kThreads / 32;
      launch("softmax_backward (rows)", softmax_backward_rows_kernel<T>, blocks_for(outer, int(rows_per_block)),
             kThreads, outer, dim, yp, gp, up, dxp);
    } else {
      launch("softmax_backward (columns)", softmax_backward_columns_kernel<T>, blocks_for(outer * inner), kThreads,
             outer, dim, inner, yp, gp, up, dxp);
    }
  });
}

}  // namespace fpa::gpu
