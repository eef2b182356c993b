// cuda_adam.cu: the Adam step on CUDA (the adam_step primitive; nn/adam.h drives it over the flat
// parameter, gradient and moment buffers), one grid-stride kernel. The CPU's arithmetic in the
// CPU's order (ops/backend/cpu/cpu_adam.cpp, which the Makefile compiles with -ffp-contract=off),
// every rounding spelled out and none fused, so a step gives the CPU's bits. Not here: the bias
// terms (ops/backend/backend.cpp adam_bias_terms), the random numbers (cuda_random.cu).
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

// p -= step_size * m / (sqrt(v) / bc2_sqrt + eps) after the moment updates, in T, unfused.
// bias_terms, when set, replaces step_size and bc2_sqrt (a captured step reads each replay's terms).
template <typename T>
__global__ void adam_kernel(int64_t n, T step_size, T bc2_sqrt, const T* bias_terms, T b1, T b2, T eps, T wd, T* p,
                            const T* g, T* m, T* v) {
  if (bias_terms) step_size = bias_terms[0], bc2_sqrt = bias_terms[1];
  FPA_GRID_STRIDE_LOOP(i, n) {
    const T gi = add_rn(g[i], mul_rn(wd, p[i]));                                       // g + wd p
    const T mi = add_rn(mul_rn(b1, m[i]), mul_rn(sub_rn(T(1), b1), gi));               // b1 m + (1 - b1) g
    const T vi = add_rn(mul_rn(b2, v[i]), mul_rn(mul_rn(sub_rn(T(1), b2), gi), gi));   // b2 v + (1 - b2) g g
    m[i] = mi;
    v[i] = vi;
    p[i] = sub_rn(p[i], div_rn(mul_rn(step_size, mi), add_rn(div_rn(sqrt_rn(vi), bc2_sqrt), eps)));
  }
}

}  // namespace

void adam_step(DType t, int64_t n, const AdamArgs& A, void* param, const void* grad, void* m, void* v) {
  if (n <= 0) return;
  // Host-side constants exactly as the CPU computes them, or read from A.bias_terms on the device.
  double step_size = 0, bc2_sqrt = 0;
  if (!A.bias_terms) adam_bias_terms(A.lr, A.beta1, A.beta2, A.step, &step_size, &bc2_sqrt);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("adam_step", adam_kernel<T>, blocks_for(n), kThreads, n, T(step_size), T(bc2_sqrt),
           static_cast<const T*>(A.bias_terms), T(A.beta1), T(A.beta2), T(A.eps), T(A.weight_decay),
           static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(m), static_cast<T*>(v));
  });
}

}  // namespace fpa::gpu
