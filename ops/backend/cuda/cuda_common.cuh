// cuda_common.cuh: what every file of the CUDA backend shares: error checks that throw fpa::Error,
// the one stream all work goes to, the caching allocator's entry points, scratch buffers, dispatch
// on dtype, arithmetic with explicit rounding, and the declarations of the primitives (generated
// from ops/backend/primitives.def) that cuda_backend.cu gathers into the table.
//
// Conventions: kernels are grid-stride loops over 64-bit indices (or a block per item where
// a block cooperates), started by launch() on stream(); a primitive with nothing to do returns
// before launching (an empty grid is a CUDA error).
// Nothing here synchronises: only to_host and to_host_finish wait for the device. Launching:
// cuda_launch.cuh.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "autograd/error.h"
#include "ops/backend/backend.h"
#include "ops/backend/cuda/cuda_launch.cuh"

namespace fpa::gpu {

// ---- errors

// Throws "cuda: WHAT: <CUDA's message> (file:line)" unless e is cudaSuccess, clearing the
// thread's last error (cuda_errors.cu).
void check_cuda(cudaError_t e, const char* what, const char* file, int line);
#define FPA_CUDA_CHECK(expr) ::fpa::gpu::check_cuda((expr), #expr, __FILE__, __LINE__)
// With FPA_CUDA_SYNC=1 and no capture open, waits for the stream after a library call (cuBLAS,
// cuDNN, a copy) and throws naming `what` if the device faulted (cuda_errors.cu).
void sync_if_requested(const char* what);

// ---- stream and memory (cuda_memory.cu)

// The one stream of the process; every kernel, copy and library call is ordered on it, so a
// block freed to the cache may be handed out again at once.
cudaStream_t stream();
// Device memory from the caching allocator (never cudaMalloc in the steady state).
void* device_alloc(size_t bytes);
// The same, nullptr where the device has not that much memory (device_alloc throws).
void* device_alloc_or_null(size_t bytes);
void device_free(void* ptr);
// Capture pools (cuda_graph.cu; the rules in ops/backend/block_cache.h): begin_capture_pool routes
// allocations and frees into a new pool, or into `share` (a live pool), and throws while one is
// open, until end_capture_pool, which returns it (0 when none was open); release_capture_pool
// says one capture of the pool is done, and after the last its blocks are the cache's.
int begin_capture_pool(int share);
int end_capture_pool();
void release_capture_pool(int pool);
// The allocator's growing address range (cuda_address_range.cu; BlockCache::Driver's reserve,
// map, unmap): nullptr from reserve where the device cannot, or FPA_CUDA_ADDRESS_RANGE=0.
void* address_range_reserve(size_t& capacity);
bool address_range_map(void* at, size_t bytes);
void address_range_unmap(void* at, size_t bytes);

// A scratch buffer from the allocator, returned to the cache at scope end (safe: later users
// of the block are ordered after this scope's kernels on the one stream).
class Scratch {
 public:
  explicit Scratch(size_t bytes) : ptr_(bytes ? device_alloc(bytes) : nullptr) {}
  ~Scratch() {
    if (ptr_) device_free(ptr_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  void* get() const { return ptr_; }

 private:
  void* ptr_;
};

// Calls body with a typed zero of the dtype: dispatch(t, [&](auto zero) { using T = decltype(zero); ... }).
template <typename F>
void dispatch(DType t, F&& body) {
  if (t == DType::f32) body(float(0));
  else body(double(0));
}

// ---- arithmetic with the rounding spelled out
// nvcc fuses a*b+c into one FMA wherever it likes, and g++ on the CPU backend does too where
// -march has FMA. Where the CUDA result must equal the CPU's bit for bit (random numbers,
// Adam), the CPU file is compiled with -ffp-contract=off (Makefile) and the kernels spell out
// every rounding with these, unfused.

__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub_rn(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub_rn(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ float sqrt_rn(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double sqrt_rn(double a) { return __dsqrt_rn(a); }

// ---- the primitives: every one of ops/backend/primitives.def, in this namespace, one .cu file per
// family (cuda_backend.cu names them); cuda_backend.cu gathers them into the table.

#define FPA_PRIMITIVE(fn, ret, params) ret fn params;
#include "ops/backend/primitives.def"

}  // namespace fpa::gpu
