// emulated_backend.cpp: registers as Device::cuda a table whose kernel entries are the CUDA
// backend's kernels run on the host (cuda_host_shim.h), with memory, cast/fill, GEMM and the
// cuDNN convolutions taken from the CPU backend, and stand-ins for cuda_flags.h. With it the
// CUDA suite (tests/cuda) checks the kernels' indexing and planning on a machine with no GPU.
// Errors, graphs and staging are the backend's own code (cuda_errors.cu, cuda_graph.cu,
// cuda_staging.cu) on the fake runtime (fake_cuda_runtime.h); the table keeps the CPU's
// capture entries (an emulated capture records nothing), tests/cuda/emulation/test_* call them.
#include "ops/backend/block_cache.h"
#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

namespace fpa {

const Backend& cpu_backend();

namespace gpu {
cudaStream_t stream() { return nullptr; }
void* device_alloc(size_t bytes) { return cpu_backend().alloc(bytes); }
void* device_alloc_or_null(size_t bytes) { return cpu_backend().alloc(bytes); }
void device_free(void* p) { cpu_backend().free(p); }
void fill(DType t, int64_t n, double value, void* dst) { cpu_backend().fill(t, n, value, dst); }

// Capture pools for cuda_graph.cu: the allocator's bookkeeping (nothing is allocated from it).
BlockCache& pools() {
  static BlockCache* c = new BlockCache({[](size_t) -> void* { return nullptr; }, [](void*) {}});
  return *c;
}
int begin_capture_pool(int share) { return pools().begin_pool(share); }
int end_capture_pool() { return pools().end_pool(); }
void release_capture_pool(int pool) { pools().release_pool(pool); }
}  // namespace gpu

namespace {
bool conv_tf32 = true, matmul_tf32 = false;

// The CPU's table with every kernel primitive (ops/backend/primitives.def) the CUDA backend's.
Backend emulated_table() {
  Backend b = cpu_backend();
  b.name = "cuda";
  b.memory_bound = true;  // the CUDA backend's properties
  b.summary = cuda_device_summary;
  b.synchronize = cuda_synchronize;
  b.set_strict_float32 = [](bool strict) { set_cuda_tf32(!strict), set_cuda_matmul_tf32(false); };
#define FPA_PRIMITIVE(fn, ret, params)
#define FPA_KERNEL_PRIMITIVE(fn, ret, params) b.fn = gpu::fn;
#include "ops/backend/primitives.def"
  return b;
}

const Backend table = emulated_table();
const int registered = (register_backend(Device::cuda, &table), 0);
}  // namespace

void set_cuda_tf32(bool on) { conv_tf32 = on; }
bool cuda_tf32() { return conv_tf32; }
void set_cuda_matmul_tf32(bool on) { matmul_tf32 = on; }
bool cuda_matmul_tf32() { return matmul_tf32; }
void cuda_synchronize() { FPA_CUDA_CHECK(cudaStreamSynchronize(gpu::stream())); }
CudaMemoryStats cuda_memory_stats() { return {}; }
void cuda_empty_cache() {}
void cuda_reset_peak_memory() {}
std::string cuda_device_summary() { return "host emulation of the CUDA kernels (tests/cuda/emulation)"; }

}  // namespace fpa
