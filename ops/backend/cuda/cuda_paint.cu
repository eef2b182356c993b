// cuda_paint.cu: the fused painting on CUDA (ops/backend/backend.h paint_forward, paint_backward):
// the T-step delta / Hebbian / Oja recurrence over N independent S x S fast weight matrices, with
// the painter's key softmax and rate sigmoid. This file holds the forward kernel; the backward is
// cuda_paint_backward.cu, the pieces both use cuda_paint.cuh. The CPU twin, whose semantics (the
// delta rule's plain first step without w0, oja's softmax(k - W^T v), the checkpointed backward)
// these kernels repeat, is ops/backend/cpu/cpu_paint.cpp.
//
// One thread block paints one matrix, W in registers up to S = 64; forward and backward are one
// launch each. The design (threads, registers, shared memory, checkpoints, precision):
// ops/backend/PAINT_KERNELS.md.
#include "ops/backend/cuda/cuda_paint.cuh"

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
