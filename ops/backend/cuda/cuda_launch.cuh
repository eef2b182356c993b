// cuda_launch.cuh: how the CUDA backend launches its kernels: grid sizing for grid-stride
// loops, the loop itself, and `launch` / `launch_with_shared`, the one place a kernel is
// started (on the backend's stream, with a bad configuration reported at once as an fpa::Error
// naming the kernel). A kernel with dynamic shared memory names it with FPA_DYNAMIC_SHARED and
// is started by launch_with_shared, which first raises the kernel's limit above the default
// 48 KiB when asked for more (up to max_dynamic_shared_bytes()), once per kernel and size.
// Faults inside a kernel surface at the next synchronising call (to_host, cuda_synchronize),
// or at the launch itself with FPA_CUDA_SYNC=1 (cuda_errors.cu). The host emulation
// (tests/cuda/emulation/ops/backend/cuda/cuda_launch.cuh) mirrors this file.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace fpa::gpu {

cudaStream_t stream();
void check_cuda(cudaError_t e, const char* what, const char* file, int line);
// After a launch: a bad configuration throws naming the kernel; with FPA_CUDA_SYNC=1 (outside a
// capture) the stream is waited for, so a fault inside the kernel does too (cuda_errors.cu).
void check_launch(const char* kernel);

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
  check_launch(name);
}

// The most dynamic shared memory one block may use on this device (the opt-in limit), in bytes.
inline size_t max_dynamic_shared_bytes() {
  static const size_t bytes = [] {
    int device = 0, value = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice", __FILE__, __LINE__);
    check_cuda(cudaDeviceGetAttribute(&value, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
               "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)", __FILE__, __LINE__);
    return size_t(value);
  }();
  return bytes;
}

// Raises a kernel's dynamic shared memory limit to `bytes` the first time that much is asked
// for, not at every launch (so a step captured as a CUDA graph after an eager one never calls
// cudaFuncSetAttribute while recording).
inline void raise_shared_limit(const void* kernel, size_t bytes, const char* name) {
  static std::mutex mu;
  static std::unordered_map<const void*, size_t> raised;  // kernel -> the limit it has now
  std::lock_guard<std::mutex> lock(mu);
  size_t& limit = raised[kernel];
  if (bytes <= limit) return;
  check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)), name, __FILE__,
             __LINE__);
  limit = bytes;
}

// kernel<<<grid, threads, shared_bytes, stream()>>>(args...) for a kernel that declares
// FPA_DYNAMIC_SHARED; above 48 KiB the kernel's limit is raised first.
template <typename... Params, typename... Args>
void launch_with_shared(const char* name, void (*kernel)(Params...), dim3 grid, unsigned threads, size_t shared_bytes,
                        Args... args) {
  if (shared_bytes > 48 * 1024) raise_shared_limit(reinterpret_cast<const void*>(kernel), shared_bytes, name);
  kernel<<<grid, threads, shared_bytes, stream()>>>(Params(args)...);
  check_launch(name);
}

// Inside a kernel: `T* name` = the block's dynamic shared memory (launch_with_shared's bytes).
#define FPA_DYNAMIC_SHARED(T, name)                                          \
  extern __shared__ __align__(16) unsigned char fpa_dynamic_shared_bytes[]; \
  T* name = reinterpret_cast<T*>(fpa_dynamic_shared_bytes)

}  // namespace fpa::gpu
