// cpu_random.cpp: counter-based random numbers on the CPU (Philox, autograd/philox.h); the Adam
// step is in cpu_adam.cpp. Compiled with -ffp-contract=off (Makefile): every product is rounded
// before it is added, on any -march, which the CUDA twins (ops/backend/cuda/cuda_random.cu) spell
// out to give the same bits.
#include <cmath>

#include "autograd/philox.h"
#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {

// Uniform in [0, 1) from one Philox draw: 24 bits for float, 53 bits for double.
template <typename T>
static inline T uniform01(const Philox4& r, int which) {
  if constexpr (sizeof(T) == 4) return T(r.v[which] >> 8) * T(1.0 / 16777216.0);
  else return T((uint64_t(r.v[which]) << 21 ^ uint64_t(r.v[which + 1]) >> 11) & ((1ull << 53) - 1)) *
              T(1.0 / 9007199254740992.0);
}

void rand_uniform(DType t, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      Philox4 r = philox4x32(offset + i, seed);
      d[i] = T(lo + (hi - lo) * double(uniform01<T>(r, 0)));
    }
  });
}

void rand_normal(DType t, int64_t n, uint64_t seed, uint64_t offset, double mean, double std, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      Philox4 r = philox4x32(offset + i, seed);
      // Box-Muller on words (0, 1) and (2, 3); u1 in (0, 1] so the log is finite.
      double u1 = 1.0 - double(uniform01<double>(r, 0));
      double u2 = double(uniform01<double>(r, 2));
      d[i] = T(mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
  });
}

}  // namespace fpa::cpu
