// cuda_memory.cu: device memory for the CUDA backend: the process's stream, the caching
// allocator, copies to the host and on the device, casts and fills, and the host-side
// switches of cuda_flags.h. (Copies from the host: cuda_staging.cu.)
//
// The allocator is ops/backend/block_cache.h (host code, tested on the CPU) on cudaMalloc and
// cudaFree, and on an address range that grows (cuda_address_range.cu) for large blocks: after
// a training step's first runs the driver is not called (cudaMalloc synchronises the device).
// Because every kernel and copy runs on one stream, a freed block can be handed out at once:
// its next user is queued behind its last one. The cache is never destroyed (tensors
// may outlive static teardown), and freeing never calls the driver, so it is safe from
// destructors at exit. Capture pools (cuda_graph.cu) keep a graph's blocks from anyone else
// while the graph lives.
// FPA_CUDA_CACHE=0 in the environment turns the cache off: every block is its own cudaMalloc of
// exactly its size, given back by cudaFree (which waits for the device) when freed, so that
// compute-sanitizer sees an access past a block's end (tools/gpu_check.sh). Slow; a capture
// that frees may fail (the trainer then goes on eagerly); cuda_memory_stats counts nothing.
// Everything is asynchronous except to_host, which waits for the copy (and so for all work
// queued before it).
#include <cstdlib>
#include <cstring>

#include "ops/backend/block_cache.h"
#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

namespace fpa {
namespace gpu {

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    // Non-blocking: never ordered against the legacy default stream, so library work queued
    // there (which a blocking stream would wait for) cannot invalidate a capture.
    FPA_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

namespace {

// cudaMalloc for the cache: nullptr when the device is out of memory, which the cache answers
// by giving its free segments back and asking once more.
void* cuda_malloc_or_null(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes);
  if (e == cudaSuccess) return p;
  (void)cudaGetLastError();  // clear it
  if (e == cudaErrorMemoryAllocation) return nullptr;
  check_cuda(e, "cudaMalloc", __FILE__, __LINE__);
  return nullptr;
}

void cuda_free(void* p) {
  if (cudaFree(p) != cudaSuccess) (void)cudaGetLastError();  // never thrown: destructors reach here
}

// False with FPA_CUDA_CACHE=0 (see the header).
bool caching() {
  static const bool on = [] {
    const char* env = std::getenv("FPA_CUDA_CACHE");
    return !(env && std::strcmp(env, "0") == 0);
  }();
  return on;
}

BlockCache& cache() {
  // never destroyed, see above
  static BlockCache* c = new BlockCache(
      {cuda_malloc_or_null, cuda_free, address_range_reserve, address_range_map, address_range_unmap});
  return *c;
}

template <typename From, typename To>
__global__ void cast_kernel(int64_t n, const From* src, To* dst) {
  FPA_GRID_STRIDE_LOOP(i, n) dst[i] = To(src[i]);
}

template <typename T>
__global__ void fill_kernel(int64_t n, T value, T* dst) {
  FPA_GRID_STRIDE_LOOP(i, n) dst[i] = value;
}

}  // namespace


void* device_alloc(size_t bytes) {
  if (!caching()) {
    void* p = cuda_malloc_or_null(bytes ? bytes : 1);
    if (!p) fail("cuda: out of device memory: cannot allocate ", bytes, " bytes (FPA_CUDA_CACHE=0: no cache)");
    return p;
  }
  void* p = cache().alloc(bytes);
  if (!p) {
    const BlockCacheStats s = cache().stats();
    fail("cuda: out of device memory: cannot allocate ", bytes, " bytes (", s.bytes_in_use,
         " bytes in use by tensors, ", s.bytes_cached, " cached",
         cache().capturing() ? ", while capturing a CUDA graph" : "", ")");
  }
  return p;
}
void* device_alloc_or_null(size_t bytes) {
  return caching() ? cache().alloc(bytes) : cuda_malloc_or_null(bytes ? bytes : 1);
}
void device_free(void* p) {
  if (!caching()) return p ? cuda_free(p) : void();
  cache().free(p);
}
int begin_capture_pool(int share) { return cache().begin_pool(share); }
int end_capture_pool() { return cache().end_pool(); }
void release_capture_pool(int pool) { cache().release_pool(pool); }

void* alloc(size_t bytes) { return device_alloc(bytes); }
void free(void* p) { device_free(p); }

void to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  FPA_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
  sync_if_requested("a device-to-device copy");
}

void cast(DType from, DType to, int64_t n, const void* src, void* dst) {
  if (from == to) return copy(dst, src, n * dtype_size(from));
  if (n <= 0) return;
  dispatch(from, [&](auto zf) {
    using F = decltype(zf);
    dispatch(to, [&](auto zt) {
      using T = decltype(zt);
      launch("cast", cast_kernel<F, T>, blocks_for(n), kThreads, n, static_cast<const F*>(src), static_cast<T*>(dst));
    });
  });
}

void fill(DType t, int64_t n, double value, void* dst) {
  if (n <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("fill", fill_kernel<T>, blocks_for(n), kThreads, n, T(value), static_cast<T*>(dst));
  });
}

}  // namespace gpu

// ---- cuda_flags.h

namespace {
bool g_conv_tf32 = true;     // PyTorch: torch.backends.cudnn.allow_tf32 = True
bool g_matmul_tf32 = false;  // PyTorch: torch.backends.cuda.matmul.allow_tf32 = False
}  // namespace

void set_cuda_tf32(bool on) { g_conv_tf32 = on; }
bool cuda_tf32() { return g_conv_tf32; }
void set_cuda_matmul_tf32(bool on) { g_matmul_tf32 = on; }
bool cuda_matmul_tf32() { return g_matmul_tf32; }

void cuda_synchronize() { FPA_CUDA_CHECK(cudaStreamSynchronize(gpu::stream())); }

CudaMemoryStats cuda_memory_stats() {
  const BlockCacheStats b = gpu::cache().stats();
  CudaMemoryStats s;
  s.device_mallocs = b.driver_allocs;
  s.bytes_in_use = b.bytes_in_use;
  s.bytes_cached = b.bytes_cached;
  s.peak_bytes_in_use = b.peak_bytes_in_use;
  s.peak_bytes_reserved = b.peak_bytes_reserved;
  s.bytes_in_address_range = b.bytes_in_range;
  return s;
}
void cuda_empty_cache() { gpu::cache().release_cached(); }
void cuda_reset_peak_memory() { gpu::cache().reset_peak(); }

}  // namespace fpa
