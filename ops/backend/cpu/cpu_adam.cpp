// cpu_adam.cpp: the Adam step on the CPU (the adam_step primitive; nn/adam.h drives it over the
// flat parameter, gradient and moment buffers). Not here: the bias terms (ops/backend/backend.cpp
// adam_bias_terms), the random numbers (cpu_random.cpp).
// Compiled with -ffp-contract=off (Makefile): every product is rounded before it is added, on
// any -march, which the CUDA twin (ops/backend/cuda/cuda_adam.cu) spells out to give the same bits.
#include <cmath>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {

void adam_step(DType t, int64_t n, const AdamArgs& A, void* param, const void* grad, void* m_, void* v_) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    T* p = static_cast<T*>(param);
    const T* g = static_cast<const T*>(grad);
    T* m = static_cast<T*>(m_);
    T* v = static_cast<T*>(v_);
    double step_size_d = 0, bc2_sqrt_d = 0;
    if (!A.bias_terms) adam_bias_terms(A.lr, A.beta1, A.beta2, A.step, &step_size_d, &bc2_sqrt_d);
    const T* terms = static_cast<const T*>(A.bias_terms);
    const T step_size = terms ? terms[0] : T(step_size_d), bc2_sqrt = terms ? terms[1] : T(bc2_sqrt_d);
    T b1 = T(A.beta1), b2 = T(A.beta2), eps = T(A.eps), wd = T(A.weight_decay);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i] + wd * p[i];
      m[i] = b1 * m[i] + (T(1) - b1) * gi;
      v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
      p[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + eps);
    }
  });
}

}  // namespace fpa::cpu
