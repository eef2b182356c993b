// cuda_memory.cu: device memory for the CUDA backend: the process's stream, the caching
// allocator, copies to the host and on the device, casts and fills, and the host-side
// switches of cuda_flags.h. (Copies from the host: cuda_staging.cu.)
//
// The allocator keeps freed blocks in free lists keyed by their rounded size (512 B steps up
// to 1 MiB, 128 KiB steps above): a training step allocates the same sizes every step, so after
// the first one no cudaMalloc (which synchronises the device) happens. Because every kernel
// and copy runs on one stream, a freed block can be handed out at once: its next user is
// queued behind its last one. When cudaMalloc runs out, the cache is returned to the driver
// and the allocation retried. The cache is never destroyed (tensors may outlive static
// teardown), and freeing never calls the driver, so it is safe from destructors at exit.
// Capture pools (cuda_graph.cu): while a capture is open, blocks come from a pool of that
// capture's own (or the shared cache, when it has none of the size) and go back to it, never
// to the shared free lists, so nothing else can be handed a block a replay will write;
// releasing the graph returns the pool to the cache.
// Everything is asynchronous except to_host, which waits for the copy (and so for all work
// queued before it).
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_flags.h"

namespace fpa {
namespace gpu {

void check_cuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) fail("cuda: ", what, ": ", cudaGetErrorString(e), " (", file, ":", line, ")");
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created = nullptr;
    // A blocking stream: it also waits for (and is waited for by) work on the legacy default stream.
    FPA_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamDefault));
    return created;
  }();
  return s;
}

namespace {

class DeviceBlockCache {
 public:
  void* alloc(size_t bytes) {
    const size_t size = bucket_size(bytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A capture takes the shared cache's blocks too (then they are the capture's): their
      // last users are queued before any replay, and the eager warm-up steps leave the cache
      // holding what the captured steps need, which would otherwise be held twice.
      for (int pool : {capturing_, 0}) {
        std::vector<void*>& blocks = free_[pool][size];
        if (blocks.empty()) continue;
        void* p = blocks.back();
        blocks.pop_back();
        cached_ -= size;
        note_in_use(p, size);
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation && capturing_ == 0) {
      (void)cudaGetLastError();  // clear it, give the cache back, try once more
      release_cached();
      e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      std::lock_guard<std::mutex> lock(mu_);
      fail("cuda: cannot allocate ", bytes, " bytes of device memory (", cudaGetErrorString(e), "; ", in_use_,
           " bytes in use by tensors)");
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++mallocs_;
    note_in_use(p, size);
    return p;
  }

  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(p);
    if (it == live_.end()) {  // not ours: report, never throw (called from destructors)
      std::fprintf(stderr, "fpa: cuda free of unknown pointer %p ignored\n", p);
      return;
    }
    const Block block = it->second;
    live_.erase(it);
    in_use_ -= block.size;
    cached_ += block.size;
    free_[block.pool][block.size].push_back(p);
  }

  void release_cached() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_[0]) {
      for (void* p : blocks) cudaFree(p);
      cached_ -= size * blocks.size();
      blocks.clear();
    }
  }

  // Opens a capture pool: until end_pool, allocations come from it and frees of its blocks go to it.
  int begin_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    FPA_CHECK(capturing_ == 0, "cuda: a capture is already open (captures do not nest)");
    capturing_ = next_pool_++;
    return capturing_;
  }
  // Closes the open capture pool and returns it (0 when none was open).
  int end_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    const int pool = capturing_;
    capturing_ = 0;
    return pool;
  }
  // The pool's free blocks back to the shared cache; its live blocks go there when freed.
  void release_pool(int pool) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_[pool])
      for (void* p : blocks) free_[0][size].push_back(p);
    free_.erase(pool);
    for (auto& [p, block] : live_)
      if (block.pool == pool) block.pool = 0;
  }

  CudaMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    CudaMemoryStats s;
    s.device_mallocs = mallocs_;
    s.bytes_in_use = in_use_;
    s.bytes_cached = cached_;
    s.peak_bytes_in_use = peak_;
    s.peak_bytes_reserved = peak_reserved_;
    return s;
  }

  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    peak_ = in_use_;
    peak_reserved_ = in_use_ + cached_;
  }

 private:
  struct Block {
    size_t size;  // rounded
    int pool;     // 0: the shared cache; otherwise the capture that allocated it
  };

  static size_t bucket_size(size_t bytes) {
    const size_t small_step = 512, large_step = size_t(128) << 10;
    if (bytes == 0) return small_step;
    if (bytes <= (size_t(1) << 20)) return (bytes + small_step - 1) / small_step * small_step;
    return (bytes + large_step - 1) / large_step * large_step;
  }

  void note_in_use(void* p, size_t size) {  // mu_ held
    in_use_ += size;
    if (in_use_ > peak_) peak_ = in_use_;
    if (in_use_ + cached_ > peak_reserved_) peak_reserved_ = in_use_ + cached_;  // grows only here (cudaMalloc)
    live_[p] = Block{size, capturing_};
  }

  std::mutex mu_;
  // pool -> rounded size -> cached blocks (pool 0: the shared cache)
  std::unordered_map<int, std::unordered_map<size_t, std::vector<void*>>> free_;
  std::unordered_map<void*, Block> live_;
  size_t in_use_ = 0, cached_ = 0;  // in_use_ + cached_: what is held from the driver
  size_t peak_ = 0, peak_reserved_ = 0;  // the most in use, and held, since reset_peak
  int64_t mallocs_ = 0;
  int capturing_ = 0, next_pool_ = 1;  // the open capture's pool, or 0
};

DeviceBlockCache& cache() {
  static DeviceBlockCache* c = new DeviceBlockCache();  // never destroyed, see the header comment
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

void* device_alloc(size_t bytes) { return cache().alloc(bytes); }
void device_free(void* p) { cache().free(p); }
int begin_capture_pool() { return cache().begin_pool(); }
int end_capture_pool() { return cache().end_pool(); }
void release_capture_pool(int pool) { cache().release_pool(pool); }

void* alloc(size_t bytes) { return device_alloc(bytes); }
void free_(void* p) { device_free(p); }

void to_host(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  FPA_CUDA_CHECK(cudaStreamSynchronize(stream()));
}

void copy(void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  FPA_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
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

CudaMemoryStats cuda_memory_stats() { return gpu::cache().stats(); }
void cuda_empty_cache() { gpu::cache().release_cached(); }
void cuda_reset_peak_memory() { gpu::cache().reset_peak(); }

}  // namespace fpa
