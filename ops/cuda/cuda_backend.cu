// cuda_backend.cu: the CUDA backend's table, gathered from the ops/cuda files (one per family:
// cuda_memory, cuda_staging, cuda_elementwise, cuda_reduce, cuda_gemm, cuda_conv, cuda_pool,
// cuda_random, cuda_local_attention, cuda_paint and cuda_paint_backward (cuda_paint.cuh),
// cuda_lstm, cuda_channel_norm, cuda_graph; shared pieces in cuda_common.cuh and
// cuda_math.cuh, launching in cuda_launch.cuh, switches in cuda_flags.h). Every entry is
// implemented; `supports` lists them. Registered only when a usable GPU is present, so
// `--device cuda` elsewhere gives a clear error.
#include <fmt/format.h>
#include <cublas_v2.h>
#include <cudnn.h>

#include <cstring>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_flags.h"

namespace fpa {
namespace {

// Every entry of the table that is implemented here.
bool supports(const char* name) {
  // clang-format off
  static const char* const implemented[] = {
      "alloc",         "free",          "to_host",          "from_host",       "to_host_start",
      "to_host_finish", "copy",       "copy_many",
      "cast",          "fill",          "unary",            "binary",          "copy_strided",
      "reduce",        "softmax",       "softmax_backward", "gemm",
      "conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter",   "im2col",
      "col2im",        "avg_pool2d",
      "avg_pool2d_backward",            "resize_nearest",   "resize_nearest_backward",
      "rand_uniform",  "rand_normal",   "adam_step",        "local_attention", "local_attention_backward",
      "neighbour_dot", "neighbour_sum", "neighbour_transpose",
      "paint_forward", "paint_backward",  "lstm_gates_forward", "lstm_gates_backward",
      "channel_norm_forward",           "channel_norm_backward",
      "capture_begin", "capture_end",   "graph_replay",     "graph_release",
  };
  // clang-format on
  for (const char* entry : implemented)
    if (std::strcmp(entry, name) == 0) return true;
  return false;
}

}  // namespace

const Backend& cuda_backend() {
  static const Backend b = {
      "cuda",
      supports,
      gpu::alloc,
      gpu::free_,
      gpu::to_host,
      gpu::from_host,
      gpu::to_host_start,
      gpu::to_host_finish,
      gpu::copy,
      gpu::copy_many,
      gpu::cast,
      gpu::fill,
      gpu::unary,
      gpu::binary,
      gpu::copy_strided,
      gpu::reduce,
      gpu::softmax,
      gpu::softmax_backward,
      gpu::gemm,
      gpu::conv2d_forward,
      gpu::conv2d_backward_data,
      gpu::conv2d_backward_filter,
      gpu::im2col,
      gpu::col2im,
      gpu::avg_pool2d,
      gpu::avg_pool2d_backward,
      gpu::resize_nearest,
      gpu::resize_nearest_backward,
      gpu::rand_uniform,
      gpu::rand_normal,
      gpu::adam_step,
      gpu::local_attention,
      gpu::local_attention_backward,
      gpu::neighbour_dot,
      gpu::neighbour_sum,
      gpu::neighbour_transpose,
      gpu::paint_forward,
      gpu::paint_backward,
      gpu::lstm_gates_forward,
      gpu::lstm_gates_backward,
      gpu::channel_norm_forward,
      gpu::channel_norm_backward,
      gpu::capture_begin,
      gpu::capture_end,
      gpu::graph_replay,
      gpu::graph_release,
  };
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

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

}  // namespace fpa
