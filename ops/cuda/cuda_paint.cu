// cuda_paint.cu: the fused painting on CUDA (ops/backend.h paint_forward, paint_backward): the
// T-step delta / Hebbian / Oja recurrence over N independent S x S fast weight matrices, with
// the painter's key softmax and rate sigmoid. This file holds the design and the forward
// kernel; the backward is cuda_paint_backward.cu, the pieces both use cuda_paint.cuh. The CPU
// twin, whose semantics (the delta rule's plain first step without w0, oja's softmax(k - W^T v),
// the checkpointed backward) these kernels repeat, is ops/cpu/cpu_paint.cpp.
//
// One thread block paints one matrix; forward and backward are one launch each.
//  - Threads: warp w owns the row groups w, w + warps, ... of kRows = 4 rows, lane l the columns
//    l, l + 32 (C = 2 columns per lane per 64-wide tile; C = 1 when S <= 32); up to 16 warps
//    (S = 64: 512 threads). An element of W (and of G = dL/dW) is only ever touched by its
//    owning thread, so no barrier guards it. Delta and hebb act row by row (row i needs W_i k,
//    v_i, beta_i and k only): a warp paints its rows with no block barrier at all, and a
//    group's 4 row dot products are one warp_sum_all (9 shuffles instead of 20).
//  - Registers: when S <= 64 every warp has one group of one tile, and its part of W (forward)
//    or G (backward) stays in registers for all T steps (8 values per thread at S = 64).
//    Larger S keeps W / G in a buffer and loads a group's tile per use.
//  - The front end inside the kernel: the block first stages its matrix's step inputs (keys
//    through the softmax, values, rates through the sigmoid) in shared memory, a warp per step
//    (the steps are independent, so this is fully parallel, and all of a matrix's global loads
//    are issued at once, coalesced: the whole sequence is prefetched before step 1). The
//    backward takes the gradients back through the front end (softmax backward, sigmoid', the
//    rate gradient summed over rows when rate_dim is 1) in the same way, chunk by chunk. So no
//    pre- or post-pass kernel, and no scratch round trip for the transformed inputs.
//  - Column sums (oja's W^T v, every rule's dkey) are per-warp partial sums in a buffer, summed
//    over warps in a fixed order after a barrier: no atomics, deterministic. Oja needs them
//    inside the step (2 barriers per forward step, 4 per backward step); for delta and hebb,
//    dkey feeds nothing later, so the partials of a whole checkpoint chunk are summed at its
//    end (3 barriers per chunk, none per step).
//  - The backward recomputes by checkpoints as the CPU does: W before every c = ceil(sqrt(T))-th
//    step, then chunk by chunk from the last, the chunk's c states W_{t-1} repainted from its
//    checkpoint and run backwards. Hebb needs no W (G is constant) and skips it.
//  - Memory: the per-matrix buffers (staged inputs, partials, chunk gradients, the W / G buffer
//    when not in registers, states, checkpoints) go in that order into dynamic shared memory
//    while the device's opt-in limit (227 KiB on an H200) allows, the rest into one global
//    scratch (gpu::alloc; stream-ordered, so freed right after the launch). At the paper's
//    S 64, T 64 with rates per row: forward 48 KiB shared in float32 (96 KiB in float64);
//    backward 212 KiB in float32 (inputs 48, partials 32, the 8 states 128; the checkpoints,
//    128 KiB, in global memory), 168 KiB in float64 (states and checkpoints in global memory).
// Arithmetic is in the data type (float for float32): the delta rule contracts the errors of
// earlier steps, so the float result stays within about 1e-6 of the CPU's double one at T 64
// (the CUDA tests ask 1e-5 of the largest element); float64 agrees with the CPU to rounding.
#include "ops/cuda/cuda_paint.cuh"

namespace fpa::gpu {
namespace painting {
namespace {

// Block n: W[n] (S, S) = the painting of matrix n.
template <typename T, int C>
__global__ void __launch_bounds__(kMaxWarps * 32) paint_forward_kernel(PaintArgs<T> a) {
  FPA_DYNAMIC_SHARED(T, shared);
  const Matrix<T> m = resolve(a, shared);
  stage_inputs(a, m);
  __syncthreads();
  T w[kRows][C];
  start_matrix(a, w, m.mat);
  for (int t = 0; t < a.steps; ++t) forward_step(a, m, t, w, m.mat, m.mat);
  T* out = a.W + blockIdx.x * int64_t(a.S) * a.S;
  if (a.resident) store_fragment(w, out, a.S, threadIdx.x / 32, 0);
  else copy_fragments<T, C>(a, m.mat, out);
}

}  // namespace
}  // namespace painting

void paint_forward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                   void* W) {
  if (g.N == 0 || g.S == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    painting::launch_painting<T>("paint_forward (rows)", g, false, painting::paint_forward_kernel<T, 1>,
                                 painting::paint_forward_kernel<T, 2>, [&](painting::PaintArgs<T>& a) {
      a.k = static_cast<const T*>(k), a.v = static_cast<const T*>(v);
      a.beta = g.rule == PaintRule::hebb ? nullptr : static_cast<const T*>(beta);
      a.w0 = static_cast<const T*>(w0), a.W = static_cast<T*>(W);
    });
  });
}

}  // namespace fpa::gpu
