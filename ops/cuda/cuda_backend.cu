// cuda_backend.cu: the CUDA backend's table. For now only memory and copies are real (cudart);
// every compute entry fails with "unimplemented: NAME" (the CUDA kernels are their own issue).
// Registered only when a usable GPU is present, so `--device cuda` elsewhere gives a clear error.
#include <cuda_runtime.h>

#include <string>

#include "autograd/error.h"
#include "ops/backend.h"

namespace fpa {
namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("cuda: ", what, ": ", cudaGetErrorString(e));
}

void* alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}
void free_(void* p) { cudaFree(p); }
void to_host(void* dst, const void* src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "copy to host"); }
void from_host(void* dst, const void* src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "copy from host"); }
void copy(void* dst, const void* src, size_t n) { check(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToDevice), "copy"); }
bool supports(const char* name) {
  std::string s(name);
  return s == "alloc" || s == "free" || s == "to_host" || s == "from_host" || s == "copy";
}

#define UNIMPLEMENTED(name, ...) [](__VA_ARGS__) { fail("unimplemented: " name " (CUDA backend)"); }

}  // namespace

const Backend& cuda_backend() {
  static const Backend b = {
      "cuda", supports, alloc, free_, to_host, from_host, copy,
      UNIMPLEMENTED("cast", DType, DType, int64_t, const void*, void*),
      UNIMPLEMENTED("fill", DType, int64_t, double, void*),
      UNIMPLEMENTED("unary", DType, UnaryOp, int64_t, double, double, const void*, void*),
      UNIMPLEMENTED("binary", DType, BinaryOp, const StridedLoop&, const void*, const void*, void*),
      UNIMPLEMENTED("copy_strided", DType, const StridedLoop&, const void*, void*),
      UNIMPLEMENTED("reduce", DType, ReduceOp, const Shape&, unsigned, const void*, void*),
      UNIMPLEMENTED("softmax", DType, int64_t, int64_t, int64_t, const void*, void*),
      UNIMPLEMENTED("gemm", DType, bool, bool, int64_t, int64_t, int64_t, double, const void*, int64_t, int64_t,
                    const void*, int64_t, int64_t, double, void*, int64_t, int64_t, int64_t),
      UNIMPLEMENTED("conv2d_forward", DType, const ConvGeom&, const void*, const void*, void*),
      UNIMPLEMENTED("conv2d_backward_data", DType, const ConvGeom&, const void*, const void*, void*),
      UNIMPLEMENTED("conv2d_backward_filter", DType, const ConvGeom&, const void*, const void*, void*),
      UNIMPLEMENTED("im2col", DType, const ConvGeom&, const void*, void*),
      UNIMPLEMENTED("col2im", DType, const ConvGeom&, const void*, void*),
      UNIMPLEMENTED("avg_pool2d", DType, const PoolGeom&, const void*, void*),
      UNIMPLEMENTED("avg_pool2d_backward", DType, const PoolGeom&, const void*, void*),
      UNIMPLEMENTED("resize_nearest", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*),
      UNIMPLEMENTED("resize_nearest_backward", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*),
      UNIMPLEMENTED("rand_uniform", DType, int64_t, uint64_t, uint64_t, double, double, void*),
      UNIMPLEMENTED("rand_normal", DType, int64_t, uint64_t, uint64_t, double, double, void*),
      UNIMPLEMENTED("adam_step", DType, int64_t, const AdamArgs&, void*, const void*, void*, void*),
  };
  return b;
}

const Backend* cuda_backend_if_usable() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) return nullptr;
  return &cuda_backend();
}

int cuda_device_count() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

}  // namespace fpa
