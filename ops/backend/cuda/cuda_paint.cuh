// cuda_paint.cuh: the pieces both painting kernels use (cuda_paint.cu: the forward kernel and
// the design; cuda_paint_backward.cu: the backward): warp reductions, the kernel arguments and
// where a matrix's buffers live, the lanes' fragments of a matrix, the staging of the step
// inputs through the front end, the forward steps of the three rules (the backward repaints
// with them), and the host-side planning and launch. Included by those two files only.
#pragma once
#include <algorithm>
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_math.cuh"

namespace fpa::gpu::painting {

constexpr int kRows = 4;       // rows of a group: one warp reduction serves their dot products
constexpr int kMaxWarps = 16;  // per block
constexpr unsigned kFullMask = 0xffffffffu;

// ---- warp reductions (every lane gets the result)

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int m = 16; m > 0; m /= 2) v += __shfl_xor_sync(kFullMask, v, m);
  return v;
}
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int m = 16; m > 0; m /= 2) {
    const T o = __shfl_xor_sync(kFullMask, v, m);
    v = v < o ? o : v;
  }
  return v;
}

// Sums each of v[0..N) over the warp and leaves all N sums in every lane: the lanes first split
// the values between them (each exchange over lane bit m halves what a lane holds), sum their
// one value over the remaining lanes, then gather the N sums back. 2 (N - 1) + 5 - log2(N)
// shuffles instead of 5 N (N = 4: 9; N = 8: 16).
template <int N, typename T>
__device__ __forceinline__ void warp_sum_all(T (&v)[N]) {
  static_assert(N >= 1 && N <= 32 && (N & (N - 1)) == 0, "warp_sum_all: N must be a power of two <= 32");
  constexpr int kSplits = N == 1 ? 0 : N == 2 ? 1 : N == 4 ? 2 : N == 8 ? 3 : N == 16 ? 4 : 5;
  const unsigned lane = threadIdx.x % 32;
#pragma unroll
  for (int s = 0; s < kSplits; ++s) {  // keep the half picked by lane bit m, add the partner's
    const int m = 16 >> s, half = N >> (s + 1);
    const bool upper = lane & m;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const T keep = upper ? v[i + half] : v[i], send = upper ? v[i] : v[i + half];
      v[i] = keep + __shfl_xor_sync(kFullMask, send, m);
    }
  }
  for (int m = 16 >> kSplits; m > 0; m /= 2) v[0] += __shfl_xor_sync(kFullMask, v[0], m);
#pragma unroll
  for (int s = kSplits - 1; s >= 0; --s) {  // gather: the partner holds the other half
    const int m = 16 >> s, half = N >> (s + 1);
    const bool upper = lane & m;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const T own = v[i], other = __shfl_xor_sync(kFullMask, own, m);
      v[i] = upper ? other : own;
      v[i + half] = upper ? own : other;
    }
  }
}

// ---- where a matrix's buffers live

// One per-matrix buffer: `offset` elements into the block's dynamic shared memory, or (offset
// -1) matrix n's copy at scratch + global_base + n * size.
struct Place {
  int64_t offset, global_base, size;
};

template <typename T>
struct PaintArgs {
  PaintRule rule;
  int steps, N, S, rate_dim;  // T, N, S, rate_dim of the geometry
  bool key_softmax, rate_sigmoid;
  int groups, tiles, warps;  // row groups, column tiles, warps per block
  int chunk, chunks;         // checkpoint chunk length c and count
  bool resident;             // W / G in registers (S <= 64)
  const T *k, *v, *beta, *w0, *dW;  // inputs (global); beta, w0, dW may be null
  T *W, *dk, *dv, *dbeta, *dw0;     // outputs (global); dbeta, dw0 may be null
  T* scratch;
  Place key, val, rate, partial, dkey, drate, vecs, mat, states, checkpoints;
};

// The block's matrix: its buffers resolved to pointers.
template <typename T>
struct Matrix {
  T *key, *val, *rate;    // (T, S), (T, S), (T, rate_dim): the rule's inputs after the front end
  T* partial;             // (c, warps, S): per-warp column sums (forward: (warps, S))
  T *dkey, *drate;        // (c, S) each: a chunk's gradients w.r.t. the rule's key and rate
  T *p, *dval;            // (S) each: oja's softmax of the step, and its first dval term
  T* mat;                 // (S, S): W or G when not in registers
  T *states, *checkpoints;  // (c, S, S): W_{t-1} of a chunk's steps; (chunks, S, S)
};

template <typename T>
__device__ __forceinline__ T* at(const Place& p, T* shared, T* scratch) {
  return p.offset >= 0 ? shared + p.offset : scratch + p.global_base + int64_t(blockIdx.x) * p.size;
}

template <typename T>
__device__ Matrix<T> resolve(const PaintArgs<T>& a, T* shared) {
  Matrix<T> m;
  T* s = a.scratch;
  m.key = at(a.key, shared, s), m.val = at(a.val, shared, s), m.rate = at(a.rate, shared, s);
  m.partial = at(a.partial, shared, s), m.dkey = at(a.dkey, shared, s), m.drate = at(a.drate, shared, s);
  m.p = at(a.vecs, shared, s), m.dval = m.p + a.S;
  m.mat = at(a.mat, shared, s), m.states = at(a.states, shared, s), m.checkpoints = at(a.checkpoints, shared, s);
  return m;
}

// ---- the lane's fragments: rows group*kRows + r, columns tile*32C + c*32 + lane (0 outside S)

template <int C>
__device__ __forceinline__ int column(int tile, int c) {
  return tile * 32 * C + c * 32 + int(threadIdx.x % 32);
}

template <typename T, int C>
__device__ __forceinline__ void load_fragment(T (&f)[kRows][C], const T* M, int S, int group, int tile) {
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int i = group * kRows + r, j = column<C>(tile, c);
      f[r][c] = i < S && j < S ? M[int64_t(i) * S + j] : T(0);
    }
}
template <typename T, int C>
__device__ __forceinline__ void store_fragment(const T (&f)[kRows][C], T* M, int S, int group, int tile) {
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const int i = group * kRows + r, j = column<C>(tile, c);
      if (i < S && j < S) M[int64_t(i) * S + j] = f[r][c];
    }
}
template <typename T, int C>
__device__ __forceinline__ void load_columns(T (&x)[C], const T* vec, int S, int tile) {
#pragma unroll
  for (int c = 0; c < C; ++c) x[c] = column<C>(tile, c) < S ? vec[column<C>(tile, c)] : T(0);
}
template <typename T>
__device__ __forceinline__ void load_rows(T (&x)[kRows], const T* vec, int S, int group) {
#pragma unroll
  for (int r = 0; r < kRows; ++r) x[r] = group * kRows + r < S ? vec[group * kRows + r] : T(0);
}
// Step t's rates at the group's rows (one per matrix or one per row).
template <typename T>
__device__ __forceinline__ void load_rates(T (&x)[kRows], const PaintArgs<T>& a, const Matrix<T>& m, int t,
                                           int group) {
  const T* rate = m.rate + int64_t(t) * a.rate_dim;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = group * kRows + r;
    x[r] = i < a.S ? rate[a.rate_dim == 1 ? 0 : i] : T(0);
  }
}
// to = from, fragment by fragment (each thread copies what it owns).
template <typename T, int C>
__device__ void copy_fragments(const PaintArgs<T>& a, const T* from, T* to) {
  for (int group = threadIdx.x / 32; group < a.groups; group += a.warps)
    for (int tile = 0; tile < a.tiles; ++tile) {
      T f[kRows][C];
      load_fragment(f, from, a.S, group, tile);
      store_fragment(f, to, a.S, group, tile);
    }
}
// Adds the lane's column sums x (over a group's rows) to its warp's partial row; the warp's
// first group starts it.
template <typename T, int C>
__device__ __forceinline__ void add_partial(const T (&x)[C], T* warp_partial, int S, int group, int tile) {
  const bool first = group == int(threadIdx.x / 32);
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int j = column<C>(tile, c);
    if (j < S) warp_partial[j] = first ? x[c] : warp_partial[j] + x[c];
  }
}

// ---- the front end: stage the step inputs

template <typename T>
__device__ void stage_inputs(const PaintArgs<T>& a, const Matrix<T>& m) {
  const int lane = threadIdx.x % 32, S = a.S;
  for (int t = threadIdx.x / 32; t < a.steps; t += a.warps) {
    const int64_t row = int64_t(t) * a.N + blockIdx.x;  // (t, n) of a (T, N, .) tensor
    const T *k = a.k + row * S, *v = a.v + row * S;
    T *key = m.key + int64_t(t) * S, *val = m.val + int64_t(t) * S;
    T top = -INFINITY;
    for (int j = lane; j < S; j += 32) val[j] = v[j], key[j] = k[j], top = top < k[j] ? k[j] : top;
    if (a.key_softmax) {
      top = warp_max(top);
      T total = 0;
      for (int j = lane; j < S; j += 32) key[j] = exp_of(T(key[j] - top)), total += key[j];
      const T inv = T(1) / warp_sum(total);
      for (int j = lane; j < S; j += 32) key[j] *= inv;
    }
    if (!a.beta) continue;
    for (int i = lane; i < a.rate_dim; i += 32) {
      const T b = a.beta[row * a.rate_dim + i];
      m.rate[int64_t(t) * a.rate_dim + i] = a.rate_sigmoid ? T(1) / (T(1) + exp_of(-b)) : b;
    }
  }
}

// ---- forward steps

// Delta / hebb step t for the warp's groups: W += u key^T, u = val (hebb, the plain first delta
// step) or rate (val - W key). Registers w, or fragments read from `from`, written to `to`.
template <typename T, int C>
__device__ void outer_step(const PaintArgs<T>& a, const Matrix<T>& m, int t, bool plain, T (&w)[kRows][C],
                           const T* from, T* to) {
  const int S = a.S, last = a.tiles - 1;
  const T* key = m.key + int64_t(t) * S;
  const bool with_dot = a.rule == PaintRule::delta && !plain;
  for (int group = threadIdx.x / 32; group < a.groups; group += a.warps) {
    T u[kRows];
    load_rows(u, m.val + int64_t(t) * S, S, group);
    if (with_dot) {
      T rate[kRows], dot[kRows] = {};
      load_rates(rate, a, m, t, group);
      for (int tile = 0; tile <= last; ++tile) {
        T kc[C];
        load_columns(kc, key, S, tile);
        if (!a.resident) load_fragment(w, from, S, group, tile);
#pragma unroll
        for (int r = 0; r < kRows; ++r)
#pragma unroll
          for (int c = 0; c < C; ++c) dot[r] += w[r][c] * kc[c];
      }
      warp_sum_all(dot);
#pragma unroll
      for (int r = 0; r < kRows; ++r) u[r] = rate[r] * (u[r] - dot[r]);
    }
    for (int tile = last; tile >= 0; --tile) {  // the dot pass left the last tile in w
      T kc[C];
      load_columns(kc, key, S, tile);
      if (!a.resident && (tile != last || !with_dot)) load_fragment(w, from, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) w[r][c] += u[r] * kc[c];
      if (!a.resident) store_fragment(w, to, S, group, tile);
    }
  }
}

// partial (warps, S) = the warps' column sums of W^T x over their groups; W from w when
// `in_registers` (resident), else loaded from `from` into w.
template <typename T, int C>
__device__ void column_sums(const PaintArgs<T>& a, const T* x, bool in_registers, T (&w)[kRows][C], const T* from,
                            T* partial) {
  const int warp = threadIdx.x / 32;
  for (int group = warp; group < a.groups; group += a.warps) {
    T xr[kRows];
    load_rows(xr, x, a.S, group);
    for (int tile = 0; tile < a.tiles; ++tile) {
      if (!in_registers) load_fragment(w, from, a.S, group, tile);
      T sum[C] = {};
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) sum[c] += w[r][c] * xr[r];
      add_partial(sum, partial + int64_t(warp) * a.S, a.S, group, tile);
    }
  }
}

// Warp 0: p = softmax(key - sum over warps of partial (warps, S)).
template <typename T>
__device__ void softmax_of_difference(const PaintArgs<T>& a, const T* key, const T* partial, T* p) {
  const int lane = threadIdx.x % 32, S = a.S;
  T top = -INFINITY;
  for (int j = lane; j < S; j += 32) {
    T s = 0;
    for (int w = 0; w < a.warps; ++w) s += partial[w * S + j];
    p[j] = key[j] - s, top = top < p[j] ? p[j] : top;
  }
  top = warp_max(top);
  T total = 0;
  for (int j = lane; j < S; j += 32) p[j] = exp_of(T(p[j] - top)), total += p[j];
  const T inv = T(1) / warp_sum(total);
  for (int j = lane; j < S; j += 32) p[j] *= inv;
}

// Oja step t (the whole block): p = softmax(key - W^T val); W += (rate val) p^T. 2 barriers.
template <typename T, int C>
__device__ void oja_step(const PaintArgs<T>& a, const Matrix<T>& m, int t, T (&w)[kRows][C], const T* from, T* to) {
  const int S = a.S;
  column_sums(a, m.val + int64_t(t) * S, a.resident, w, from, m.partial);
  __syncthreads();
  if (threadIdx.x < 32) softmax_of_difference(a, m.key + int64_t(t) * S, m.partial, m.p);
  __syncthreads();
  for (int group = threadIdx.x / 32; group < a.groups; group += a.warps) {
    T u[kRows], rate[kRows];
    load_rows(u, m.val + int64_t(t) * S, S, group);
    load_rates(rate, a, m, t, group);
#pragma unroll
    for (int r = 0; r < kRows; ++r) u[r] *= rate[r];
    for (int tile = 0; tile < a.tiles; ++tile) {
      T pc[C];
      load_columns(pc, m.p, S, tile);
      if (!a.resident) load_fragment(w, from, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) w[r][c] += u[r] * pc[c];
      if (!a.resident) store_fragment(w, to, S, group, tile);
    }
  }
}

template <typename T, int C>
__device__ __forceinline__ void forward_step(const PaintArgs<T>& a, const Matrix<T>& m, int t, T (&w)[kRows][C],
                                             const T* from, T* to) {
  if (a.rule == PaintRule::oja) oja_step(a, m, t, w, from, to);
  else outer_step(a, m, t, t == 0 && !a.w0, w, from, to);
}

// w (resident) or `to` (S, S) = matrix n's w0, or 0.
template <typename T, int C>
__device__ void start_matrix(const PaintArgs<T>& a, T (&w)[kRows][C], T* to) {
  const int64_t SS = int64_t(a.S) * a.S;
  for (int group = threadIdx.x / 32; group < a.groups; group += a.warps)
    for (int tile = 0; tile < a.tiles; ++tile) {
      if (a.w0) load_fragment(w, a.w0 + blockIdx.x * SS, a.S, group, tile);
      else
        for (auto& row : w)
          for (T& x : row) x = 0;
      if (!a.resident) store_fragment(w, to, a.S, group, tile);
    }
}

// ---- planning on the host

// Places buffers in dynamic shared memory, in the order asked, while they fit; the rest in one
// global scratch of N copies.
class Planner {
 public:
  Planner(size_t shared_elems, int64_t N) : limit_(int64_t(shared_elems)), N_(N) {}
  Place place(int64_t size) {
    if (shared_ + size <= limit_) {
      const Place p{shared_, 0, size};
      shared_ += size;
      return p;
    }
    const Place p{-1, global_, size};
    global_ += size * N_;
    return p;
  }
  int64_t shared_elems() const { return shared_; }
  int64_t global_elems() const { return global_; }

 private:
  int64_t limit_, N_, shared_ = 0, global_ = 0;
};

template <typename T>
PaintArgs<T> plan(const PaintGeom& g, bool backward, Planner& planner) {
  FPA_CHECK(g.T >= 1 && g.S >= 1 && g.N < (int64_t(1) << 31) && g.T * g.S < (int64_t(1) << 31),
            "cuda paint: unsupported geometry T ", g.T, ", N ", g.N, ", S ", g.S);
  FPA_CHECK(g.rule == PaintRule::hebb || g.rate_dim == 1 || g.rate_dim == g.S, "cuda paint: rate_dim must be 1 or S");
  PaintArgs<T> a{};
  a.rule = g.rule, a.steps = int(g.T), a.N = int(g.N), a.S = int(g.S), a.rate_dim = int(g.rate_dim);
  a.key_softmax = g.key_softmax, a.rate_sigmoid = g.rate_sigmoid;
  const int C = g.S <= 32 ? 1 : 2;
  a.groups = int((g.S + kRows - 1) / kRows), a.tiles = int((g.S + 32 * C - 1) / (32 * C));
  a.warps = std::min(a.groups, kMaxWarps);
  a.resident = a.tiles == 1 && a.groups <= kMaxWarps;
  a.chunk = std::max(1, int(std::ceil(std::sqrt(double(g.T)))));
  a.chunks = (a.steps + a.chunk - 1) / a.chunk;
  const int64_t S = g.S, SS = S * S, slots = backward ? a.chunk : 1;
  const bool hebb = g.rule == PaintRule::hebb, oja = g.rule == PaintRule::oja;
  // In order of use per step: staged inputs, partials, chunk gradients, the W / G buffer, states.
  a.key = planner.place(g.T * S), a.val = planner.place(g.T * S), a.rate = planner.place(hebb ? 0 : g.T * g.rate_dim);
  a.partial = planner.place((backward || oja) ? slots * a.warps * S : 0);
  a.dkey = planner.place(backward ? slots * S : 0), a.drate = planner.place(backward && !hebb ? slots * S : 0);
  a.vecs = planner.place(oja ? 2 * S : 0);
  a.mat = planner.place(a.resident ? 0 : SS);
  a.states = planner.place(backward && !hebb ? a.chunk * SS : 0);
  a.checkpoints = planner.place(backward && !hebb ? a.chunks * SS : 0);
  return a;
}

// Plans the buffers, fills the pointers of `a` (fill), and launches kernel C1 (S <= 32: one
// column per lane) or C2 (two) on a block per matrix.
template <typename T, typename Fill>
void launch_painting(const char* name, const PaintGeom& g, bool backward, void (*kernel_c1)(PaintArgs<T>),
                     void (*kernel_c2)(PaintArgs<T>), Fill fill) {
  Planner planner(max_dynamic_shared_bytes() / sizeof(T), g.N);
  PaintArgs<T> a = plan<T>(g, backward, planner);
  fill(a);
  Scratch scratch(size_t(planner.global_elems()) * sizeof(T));
  a.scratch = scratch.as<T>();
  const size_t bytes = size_t(planner.shared_elems()) * sizeof(T);
  launch_with_shared(name, g.S <= 32 ? kernel_c1 : kernel_c2, unsigned(g.N), unsigned(a.warps * 32), bytes, a);
}

}  // namespace fpa::gpu::painting
