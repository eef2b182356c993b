// cuda_backend.cu: the CUDA backend's table, gathered from the ops/backend/cuda files (one per
// family: cuda_memory, cuda_staging, cuda_elementwise, cuda_reduce, cuda_gemm, cuda_conv,
// cuda_pool, cuda_random, cuda_adam, cuda_local_attention, cuda_paint and cuda_paint_backward
// (cuda_paint.cuh), cuda_lstm, cuda_channel_norm, cuda_graph; shared pieces in cuda_common.cuh and
// cuda_math.cuh, launching in cuda_launch.cuh, errors in cuda_errors.cu, switches in cuda_flags.h).
// Every primitive is implemented, so `supports` answers true for each. Registered only when a
// usable GPU is present, so `--device cuda` elsewhere gives a clear error.
#include <fmt/format.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

namespace fpa {

// Every primitive of ops/backend/primitives.def, from the gpu:: functions of the same names.
const Backend& cuda_backend() {
  static const Backend b = [] {
    Backend t{};
    t.name = "cuda";
    t.supports = is_primitive;
    t.memory_bound = true;
    t.summary = cuda_device_summary;
    t.synchronize = cuda_synchronize;
    t.memory_stats = [] {
      const CudaMemoryStats c = cuda_memory_stats();
      MemoryStats s;
      s.bytes_in_use = c.bytes_in_use, s.bytes_cached = c.bytes_cached;
      s.peak_bytes_in_use = c.peak_bytes_in_use, s.peak_bytes_reserved = c.peak_bytes_reserved;
      return s;
    };
    t.reset_peak_memory = [] { cuda_empty_cache(), cuda_reset_peak_memory(); };
    t.set_strict_float32 = [](bool strict) { set_cuda_tf32(!strict), set_cuda_matmul_tf32(false); };
#define FPA_PRIMITIVE(fn, ret, params) t.fn = gpu::fn;
#include "ops/backend/primitives.def"
    return t;
  }();
  return b;
}

const Backend* cuda_backend_if_usable() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return nullptr;
  return &cuda_backend();
}

std::string cuda_device_summary() {
  int device = 0, driver = 0, runtime = 0, blas[3] = {};
  cudaDeviceProp prop{};
  FPA_CUDA_CHECK(cudaGetDevice(&device));
  FPA_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  FPA_CUDA_CHECK(cudaDriverGetVersion(&driver));
  FPA_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  cublasGetProperty(MAJOR_VERSION, &blas[0]);
  cublasGetProperty(MINOR_VERSION, &blas[1]);
  cublasGetProperty(PATCH_LEVEL, &blas[2]);
  const size_t dnn = cudnnGetVersion();  // major * 10000 + minor * 100 + patch
  return fmt::format("{} (sm_{}{}, {} SMs, {:.1f} GiB), driver {}.{}, runtime {}.{}, cuBLAS {}.{}.{}, cuDNN {}.{}.{}",
                     prop.name, prop.major, prop.minor, prop.multiProcessorCount,
                     double(prop.totalGlobalMem) / double(1 << 30), driver / 1000, driver % 1000 / 10, runtime / 1000,
                     runtime % 1000 / 10, blas[0], blas[1], blas[2], dnn / 10000, dnn % 10000 / 100, dnn % 100);
}

}  // namespace fpa
