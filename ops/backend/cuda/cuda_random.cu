// cuda_random.cu: counter-based random numbers on CUDA (the Adam step is in cuda_adam.cu).
//
// Random numbers: element i is Philox-4x32-10 of counter (offset + i) under key seed, the
// same generator as autograd/philox.h (copied here as device code) turned into numbers by
// the same formulas as the CPU backend (cpu_random.cpp), every rounding spelled out and none
// fused (the Makefile compiles cpu_random.cpp with -ffp-contract=off, so g++ fuses nothing
// there either, whatever -march), so uniform numbers equal the CPU's bit for bit in both
// dtypes. Normal numbers go through log and cos, where CUDA's libm and glibc may differ in the
// last bit of a double: float64 normals agree to an ulp or two, float32 ones (rounded from
// those doubles) nearly always exactly.
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"

namespace fpa::gpu {
namespace {

struct Philox4 {
  uint32_t v[4];
};

// autograd/philox.h's philox4x32, as device code.
__device__ __forceinline__ Philox4 philox4x32(uint64_t counter, uint64_t key) {
  uint32_t c0 = uint32_t(counter), c1 = uint32_t(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
    const uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
    c1 = uint32_t(p1), c3 = uint32_t(p0), c0 = n0, c2 = n2;
    k0 += 0x9E3779B9u, k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Uniform in [0, 1): 24 bits for float, 53 bits (words `which` and `which + 1`) for double.
__device__ __forceinline__ float uniform01_float(const Philox4& r, int which) {
  return mul_rn(float(r.v[which] >> 8), float(1.0 / 16777216.0));
}
__device__ __forceinline__ double uniform01_double(const Philox4& r, int which) {
  const uint64_t bits = (uint64_t(r.v[which]) << 21 ^ uint64_t(r.v[which + 1]) >> 11) & ((1ull << 53) - 1);
  return mul_rn(double(bits), 1.0 / 9007199254740992.0);
}

template <typename T>
__global__ void rand_uniform_kernel(int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, T* dst) {
  FPA_GRID_STRIDE_LOOP(i, n) {
    const Philox4 r = philox4x32(offset + uint64_t(i), seed);
    const double u = sizeof(T) == 4 ? double(uniform01_float(r, 0)) : uniform01_double(r, 0);
    dst[i] = T(add_rn(lo, mul_rn(sub_rn(hi, lo), u)));  // lo + (hi - lo) * u
  }
}

template <typename T>
__global__ void rand_normal_kernel(int64_t n, uint64_t seed, uint64_t offset, double mean, double std, T* dst) {
  FPA_GRID_STRIDE_LOOP(i, n) {
    const Philox4 r = philox4x32(offset + uint64_t(i), seed);
    // Box-Muller on words (0, 1) and (2, 3); u1 in (0, 1] so the log is finite.
    const double u1 = sub_rn(1.0, uniform01_double(r, 0));
    const double u2 = uniform01_double(r, 2);
    const double radius = sqrt_rn(mul_rn(-2.0, log(u1)));
    const double angle = cos(mul_rn(6.283185307179586, u2));
    dst[i] = T(add_rn(mean, mul_rn(mul_rn(std, radius), angle)));  // mean + std * radius * angle
  }
}

}  // namespace

void rand_uniform(DType t, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, void* dst) {
  if (n <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("rand_uniform", rand_uniform_kernel<T>, blocks_for(n), kThreads, n, seed, offset, lo, hi,
           static_cast<T*>(dst));
  });
}

void rand_normal(DType t, int64_t n, uint64_t seed, uint64_t offset, double mean, double std, void* dst) {
  if (n <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("rand_normal", rand_normal_kernel<T>, blocks_for(n), kThreads, n, seed, offset, mean, std,
           static_cast<T*>(dst));
  });
}

}  // namespace fpa::gpu
