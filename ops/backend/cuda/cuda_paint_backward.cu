// cuda_paint_backward.cu: the fused painting's backward on CUDA (ops/backend/backend.h
// paint_backward; the design is in cuda_paint.cu, the shared pieces in cuda_paint.cuh). A block
// per matrix: G = dL/dW_T in registers (S <= 64) or a buffer; the checkpoint pass (W before
// every c-th step), then chunk by chunk from the last, the chunk's states repainted with the
// forward steps and the steps run backwards: delta and hebb by warps on their own rows, their
// dkey partials kept per step of the chunk; oja by the block (it needs W^T v and its softmax in
// the step); finish_chunk then sums the partials and takes the gradients through the front end.
// Per step, as on the CPU (ops/backend/cpu/cpu_paint.cpp), with W = W_{t-1} and G = dL/dW_t:
//   hebb, plain first delta step:  dval = G key, dkey = G^T val
//   delta:  u = rate (val - W key), a = rate (G key): dval = a, drate = (G key) (val - W key),
//           dkey = G^T u - W^T a, G -= a key^T
//   oja:    p = softmax(key - W^T val), u = rate val, du = G p: drate = du val,
//           dkey = p (dp - p.dp) with dp = G^T u, dval = rate du - W dkey, G -= val dkey^T
#include "ops/backend/cuda/cuda_paint.cuh"

namespace fpa::gpu {
namespace painting {
namespace {

// ---- backward steps: G = dL/dW_t becomes dL/dW_{t-1}; W = W_{t-1}

// Lanes 0..kRows-1 write the group's row results: dval to dv, drate to the chunk's slot.
template <typename T>
__device__ __forceinline__ void write_rows(const PaintArgs<T>& a, const Matrix<T>& m, int t, int slot, int group,
                                           const T (&dval)[kRows], const T (&drate)[kRows]) {
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(t) * a.N + blockIdx.x;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int i = group * kRows + r;
    if (lane != r || i >= a.S) continue;
    a.dv[row * a.S + i] = dval[r];
    if (a.dbeta) m.drate[slot * a.S + i] = drate[r];
  }
}

// Hebb, or the plain first delta step (W_t = W_{t-1} + val key^T): dval = G key, dkey = G^T val.
template <typename T, int C>
__device__ void outer_step_backward_plain(const PaintArgs<T>& a, const Matrix<T>& m, int t, int slot,
                                          T (&g)[kRows][C]) {
  const int S = a.S, last = a.tiles - 1, warp = threadIdx.x / 32;
  const T* key = m.key + int64_t(t) * S;
  for (int group = warp; group < a.groups; group += a.warps) {
    T val[kRows], dot[kRows] = {}, zero[kRows] = {};
    load_rows(val, m.val + int64_t(t) * S, S, group);
    for (int tile = 0; tile <= last; ++tile) {
      T kc[C];
      load_columns(kc, key, S, tile);
      if (!a.resident) load_fragment(g, m.mat, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) dot[r] += g[r][c] * kc[c];
    }
    warp_sum_all(dot);
    write_rows(a, m, t, slot, group, dot, zero);
    for (int tile = last; tile >= 0; --tile) {
      if (!a.resident && tile != last) load_fragment(g, m.mat, S, group, tile);
      T sum[C] = {};
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) sum[c] += g[r][c] * val[r];
      add_partial(sum, m.partial + (int64_t(slot) * a.warps + warp) * S, S, group, tile);
    }
  }
}

// Delta: u = rate (val - W key), W_t = W + u key^T. With a = rate (G key): dval = a,
// drate = (G key) (val - W key), dkey = G^T u - W^T a, G -= a key^T.
template <typename T, int C>
__device__ void delta_step_backward(const PaintArgs<T>& a, const Matrix<T>& m, int t, int slot, T (&g)[kRows][C],
                                    const T* W) {
  const int S = a.S, last = a.tiles - 1, warp = threadIdx.x / 32;
  const T* key = m.key + int64_t(t) * S;
  for (int group = warp; group < a.groups; group += a.warps) {
    T val[kRows], rate[kRows], dots[2 * kRows] = {};  // W_i key, then G_i key
    load_rows(val, m.val + int64_t(t) * S, S, group);
    load_rates(rate, a, m, t, group);
    T w[kRows][C];
    for (int tile = 0; tile <= last; ++tile) {
      T kc[C];
      load_columns(kc, key, S, tile);
      load_fragment(w, W, S, group, tile);
      if (!a.resident) load_fragment(g, m.mat, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) dots[r] += w[r][c] * kc[c], dots[kRows + r] += g[r][c] * kc[c];
    }
    warp_sum_all(dots);
    T u[kRows], ar[kRows], drate[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const T err = val[r] - dots[r];
      u[r] = rate[r] * err, ar[r] = rate[r] * dots[kRows + r], drate[r] = dots[kRows + r] * err;
    }
    write_rows(a, m, t, slot, group, ar, drate);
    for (int tile = last; tile >= 0; --tile) {  // the dot pass left the last tile in w and g
      T kc[C], sum[C] = {};
      load_columns(kc, key, S, tile);
      if (tile != last) {
        load_fragment(w, W, S, group, tile);
        if (!a.resident) load_fragment(g, m.mat, S, group, tile);
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) sum[c] += g[r][c] * u[r] - w[r][c] * ar[r], g[r][c] -= ar[r] * kc[c];
      add_partial(sum, m.partial + (int64_t(slot) * a.warps + warp) * S, S, group, tile);
      if (!a.resident) store_fragment(g, m.mat, S, group, tile);
    }
  }
}

// Oja (the whole block, 4 barriers): p = softmax(key - W^T val), u = rate val, W_t = W + u p^T.
// du = G p: drate = du val, dval = rate du - W dkey; dp = G^T u, dkey = p (dp - p.dp)
// (into the chunk's dkey slot); G -= val dkey^T.
template <typename T, int C>
__device__ void oja_step_backward(const PaintArgs<T>& a, const Matrix<T>& m, int t, int slot, T (&g)[kRows][C],
                                  const T* W) {
  const int S = a.S, last = a.tiles - 1, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const T* val_t = m.val + int64_t(t) * S;
  T* partial = m.partial + int64_t(slot) * a.warps * S;  // (warps, S)
  T* dkey = m.dkey + int64_t(slot) * S;
  T w[kRows][C];
  column_sums(a, val_t, false, w, W, partial);  // W^T val
  __syncthreads();
  if (warp == 0) softmax_of_difference(a, m.key + int64_t(t) * S, partial, m.p);
  __syncthreads();
  for (int group = warp; group < a.groups; group += a.warps) {  // du, drate, rate du, G^T u
    T val[kRows], rate[kRows], du[kRows] = {};
    load_rows(val, val_t, S, group);
    load_rates(rate, a, m, t, group);
    for (int tile = 0; tile <= last; ++tile) {
      T pc[C];
      load_columns(pc, m.p, S, tile);
      if (!a.resident) load_fragment(g, m.mat, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) du[r] += g[r][c] * pc[c];
    }
    warp_sum_all(du);
    T u[kRows], first_dval[kRows], drate[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) u[r] = rate[r] * val[r], first_dval[r] = rate[r] * du[r], drate[r] = du[r] * val[r];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int i = group * kRows + r;
      if (lane != r || i >= S) continue;
      m.dval[i] = first_dval[r];
      if (a.dbeta) m.drate[slot * S + i] = drate[r];
    }
    for (int tile = last; tile >= 0; --tile) {
      if (!a.resident && tile != last) load_fragment(g, m.mat, S, group, tile);
      T sum[C] = {};
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) sum[c] += g[r][c] * u[r];
      add_partial(sum, partial + int64_t(warp) * S, S, group, tile);
    }
  }
  __syncthreads();
  if (warp == 0) {  // dkey = p (dp - p.dp), dp = the partials' sum
    T dot = 0;
    for (int j = lane; j < S; j += 32) {
      T dp = 0;
      for (int w = 0; w < a.warps; ++w) dp += partial[w * S + j];
      dkey[j] = dp, dot += dp * m.p[j];
    }
    dot = warp_sum(dot);
    for (int j = lane; j < S; j += 32) dkey[j] = m.p[j] * (dkey[j] - dot);
  }
  __syncthreads();
  const int64_t row = int64_t(t) * a.N + blockIdx.x;
  for (int group = warp; group < a.groups; group += a.warps) {  // dval -= W dkey; G -= val dkey^T
    T val[kRows], wd[kRows] = {};
    load_rows(val, val_t, S, group);
    for (int tile = 0; tile <= last; ++tile) {
      T dc[C];
      load_columns(dc, dkey, S, tile);
      load_fragment(w, W, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) wd[r] += w[r][c] * dc[c];
    }
    warp_sum_all(wd);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const int i = group * kRows + r;
      if (lane == r && i < S) a.dv[row * S + i] = m.dval[i] - wd[r];
    }
    for (int tile = 0; tile <= last; ++tile) {
      T dc[C];
      load_columns(dc, dkey, S, tile);
      if (!a.resident) load_fragment(g, m.mat, S, group, tile);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) g[r][c] -= val[r] * dc[c];
      if (!a.resident) store_fragment(g, m.mat, S, group, tile);
    }
  }
}

// The gradients w.r.t. the raw inputs of steps [t0, t0 + steps) from the chunk's slots: dkey
// summed over warps (delta, hebb), through the key softmax into dk; drate through the sigmoid
// (summed over rows when rate_dim is 1) into dbeta. A warp per step; 3 barriers.
template <typename T>
__device__ void finish_chunk(const PaintArgs<T>& a, const Matrix<T>& m, int t0, int steps) {
  const int S = a.S, lane = threadIdx.x % 32;
  __syncthreads();
  if (a.rule != PaintRule::oja)
    for (int e = threadIdx.x; e < steps * S; e += blockDim.x) {
      const int slot = e / S, j = e - slot * S;
      T s = 0;
      for (int w = 0; w < a.warps; ++w) s += m.partial[(int64_t(slot) * a.warps + w) * S + j];
      m.dkey[e] = s;
    }
  __syncthreads();
  for (int slot = threadIdx.x / 32; slot < steps; slot += a.warps) {
    const int t = t0 + slot;
    const int64_t row = int64_t(t) * a.N + blockIdx.x;
    const T *key = m.key + int64_t(t) * S, *dkey = m.dkey + int64_t(slot) * S;
    T* dk = a.dk + row * S;
    T dot = 0;
    if (a.key_softmax) {
      for (int j = lane; j < S; j += 32) dot += key[j] * dkey[j];
      dot = warp_sum(dot);
    }
    for (int j = lane; j < S; j += 32) dk[j] = a.key_softmax ? key[j] * (dkey[j] - dot) : dkey[j];
    if (!a.dbeta || a.rule == PaintRule::hebb) continue;
    const T *drate = m.drate + int64_t(slot) * S, *rate = m.rate + int64_t(t) * a.rate_dim;
    auto raw = [&](T d, T r) { return a.rate_sigmoid ? d * r * (T(1) - r) : d; };
    if (a.rate_dim == 1) {
      T s = 0;
      for (int i = lane; i < S; i += 32) s += drate[i];
      s = warp_sum(s);
      if (lane == 0) a.dbeta[row] = raw(s, rate[0]);
    } else {
      for (int i = lane; i < S; i += 32) a.dbeta[row * S + i] = raw(drate[i], rate[i]);
    }
  }
  __syncthreads();
}

// Block n: dk, dv, dbeta of matrix n's steps and dw0[n] from dW[n], repainting by checkpoints.
template <typename T, int C>
__global__ void __launch_bounds__(kMaxWarps * 32) paint_backward_kernel(PaintArgs<T> a) {
  FPA_DYNAMIC_SHARED(T, shared);
  const Matrix<T> m = resolve(a, shared);
  stage_inputs(a, m);
  __syncthreads();
  const int64_t SS = int64_t(a.S) * a.S;
  const int c = a.chunk, warp = threadIdx.x / 32;
  T g[kRows][C], w[kRows][C];  // G, and W in the recomputations (used when resident)
  if (a.resident) load_fragment(g, a.dW + blockIdx.x * SS, a.S, warp, 0);
  else copy_fragments<T, C>(a, a.dW + blockIdx.x * SS, m.mat);
  const bool hebb = a.rule == PaintRule::hebb;
  if (!hebb) {  // checkpoints: W before steps 0, c, ..., (chunks - 1) c; states[0] is the work matrix
    start_matrix(a, w, m.states);
    const int last_start = (a.chunks - 1) * c;
    for (int t = 0; t <= last_start; ++t) {
      if (t % c == 0) {
        T* checkpoint = m.checkpoints + (t / c) * SS;
        if (a.resident) store_fragment(w, checkpoint, a.S, warp, 0);
        else copy_fragments<T, C>(a, m.states, checkpoint);
      }
      if (t < last_start) forward_step(a, m, t, w, m.states, m.states);
    }
  }
  for (int j = a.chunks - 1; j >= 0; --j) {
    const int t0 = j * c, t1 = t0 + c < a.steps ? t0 + c : a.steps;
    if (!hebb) {  // states[t - t0] = W_{t-1} for the chunk's steps
      copy_fragments<T, C>(a, m.checkpoints + j * SS, m.states);
      if (a.resident) load_fragment(w, m.states, a.S, warp, 0);
      for (int t = t0; t + 1 < t1; ++t) {
        T* next = m.states + (t - t0 + 1) * SS;
        forward_step(a, m, t, w, m.states + (t - t0) * SS, next);
        if (a.resident) store_fragment(w, next, a.S, warp, 0);
      }
    }
    for (int t = t1 - 1; t >= t0; --t) {
      const bool plain = t == 0 && !a.w0;
      if (a.rule == PaintRule::oja) oja_step_backward(a, m, t, t - t0, g, m.states + (t - t0) * SS);
      else if (hebb || plain) outer_step_backward_plain(a, m, t, t - t0, g);
      else delta_step_backward(a, m, t, t - t0, g, m.states + (t - t0) * SS);
    }
    finish_chunk(a, m, t0, t1 - t0);
  }
  if (!a.dw0) return;
  if (a.resident) store_fragment(g, a.dw0 + blockIdx.x * SS, a.S, warp, 0);
  else copy_fragments<T, C>(a, m.mat, a.dw0 + blockIdx.x * SS);
}

}  // namespace
}  // namespace painting

void paint_backward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                    const void* dW, void* dk, void* dv, void* dbeta, void* dw0) {
  if (g.N == 0 || g.S == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    painting::launch_painting<T>("paint_backward (rows)", g, true, painting::paint_backward_kernel<T, 1>,
                                 painting::paint_backward_kernel<T, 2>, [&](painting::PaintArgs<T>& a) {
      a.k = static_cast<const T*>(k), a.v = static_cast<const T*>(v);
      a.beta = g.rule == PaintRule::hebb ? nullptr : static_cast<const T*>(beta);
      a.w0 = static_cast<const T*>(w0), a.dW = static_cast<const T*>(dW);
      a.dk = static_cast<T*>(dk), a.dv = static_cast<T*>(dv);
      a.dbeta = g.rule == PaintRule::hebb ? nullptr : static_cast<T*>(dbeta);
      a.dw0 = static_cast<T*>(dw0);
    });
  });
}

}  // namespace fpa::gpu
