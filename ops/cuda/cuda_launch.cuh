// cuda_launch.cuh: how the CUDA backend launches its kernels: grid sizing for grid-stride
// loops, the loop itself, and `launch`, the one place a kernel is started (on the backend's
// stream, with a bad configuration reported at once as an fpa::Error naming the kernel).
// Faults inside a kernel surface at the next synchronising call (to_host, cuda_synchronize).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace fpa::gpu {

cudaStream_t stream();
void check_cuda(cudaError_t e, const char* what, const char* file, int line);

constexpr int kThreads = 256;  // threads per block of the elementwise kernels

// Blocks for a grid-stride loop over n items (capped: the loop covers the rest).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads, cap = int64_t(1) << 20;
  return unsigned(b < cap ? b : cap);
}

#define FPA_GRID_STRIDE_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

// kernel<<<grid, threads, 0, stream()>>>(args...), each argument converted to its parameter's type.
template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, unsigned threads, Args... args) {
  kernel<<<grid, threads, 0, stream()>>>(Params(args)...);
  check_cuda(cudaGetLastError(), name, __FILE__, __LINE__);
}

}  // namespace fpa::gpu
