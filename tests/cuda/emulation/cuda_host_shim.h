// cuda_host_shim.h: the CUDA built-ins the ops/backend/cuda kernels use, for compiling them with
// g++ and running them on the host (tests/cuda/emulation/run.sh). Not a CUDA implementation: just
// enough for kernels whose threads are independent (run one after another) and for the few that
// cooperate (shuffles, __syncthreads: run as real threads, see ops/backend/cuda/cuda_launch.cuh
// beside this file). Arithmetic is the host's (no fused multiply-add unless asked for), so last-bit
// agreement here says nothing about the GPU; indexing, planning and coverage do. The runtime calls
// around the kernels are faked too (fake_cuda_runtime.h).
#pragma once
#include <cuda_runtime.h>
#include <pthread.h>

#include <cmath>
#include <cstdint>
#include <cstring>

using std::cos;
using std::erf;
using std::exp;
using std::fabs;
using std::floor;
using std::log;
using std::pow;
using std::sqrt;
using std::tanh;

#undef __shared__
#define __shared__ static  // blocks run one at a time
#undef __launch_bounds__
#define __launch_bounds__(...)  // a hint for nvcc's register allocation

namespace emu {
inline thread_local uint3 block_idx, thread_idx;
inline thread_local dim3 block_dim, grid_dim;
inline pthread_barrier_t block_barrier;
inline pthread_barrier_t warp_barrier[32];
inline double warp_slots[32][32];

// Lane `lane ^ delta` (xor) or `lane + delta` (down) of the caller's warp; out of range: own value.
template <typename T>
T shuffle(T v, int delta, bool xor_mode) {
  const unsigned lane = thread_idx.x % 32, warp = thread_idx.x / 32;
  std::memcpy(&warp_slots[warp][lane], &v, sizeof(T));
  pthread_barrier_wait(&warp_barrier[warp]);
  const unsigned src = xor_mode ? (lane ^ unsigned(delta)) : lane + unsigned(delta);
  T r = v;
  if (src < 32) std::memcpy(&r, &warp_slots[warp][src], sizeof(T));
  pthread_barrier_wait(&warp_barrier[warp]);
  return r;
}
}  // namespace emu

#define blockIdx emu::block_idx
#define threadIdx emu::thread_idx
#define blockDim emu::block_dim
#define gridDim emu::grid_dim

inline void __syncthreads() { pthread_barrier_wait(&emu::block_barrier); }
template <typename T>
T __shfl_down_sync(unsigned, T v, int delta) { return emu::shuffle(v, delta, false); }
template <typename T>
T __shfl_xor_sync(unsigned, T v, int delta) { return emu::shuffle(v, delta, true); }

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

// "Device" memory is host memory here.
inline cudaError_t emulated_memcpy_async(void* dst, const void* src, size_t n, cudaMemcpyKind, cudaStream_t) {
  if (n) std::memmove(dst, src, n);  // an empty tensor's pointer is null
  return cudaSuccess;
}
#define cudaMemcpyAsync emulated_memcpy_async

// The runtime calls of the backend's host code (errors, graphs, staging), with injectable faults.
#include "fake_cuda_runtime.h"
