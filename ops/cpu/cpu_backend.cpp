// cpu_backend.cpp: the CPU backend's table: memory, casts and fills here, the compute
// primitives from the other ops/cpu files.
#include <cstdlib>
#include <cstring>

#include "ops/cpu/cpu_kernels.h"

namespace fpa {
namespace cpu {
namespace {

void* alloc(size_t bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  FPA_CHECK(p != nullptr, "cpu: out of memory allocating ", bytes, " bytes");
  return p;
}
void free_(void* p) { std::free(p); }
void copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

void cast(DType from, DType to, int64_t n, const void* src, void* dst) {
  if (from == to) return copy(dst, src, n * dtype_size(from));
  dispatch(from, [&](auto zf) {
    using F = decltype(zf);
    dispatch(to, [&](auto zt) {
      using T = decltype(zt);
      const F* s = static_cast<const F*>(src);
      T* d = static_cast<T*>(dst);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
      for (int64_t i = 0; i < n; ++i) d[i] = T(s[i]);
    });
  });
}

void fill(DType t, int64_t n, double value, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    T* d = static_cast<T*>(dst);
    T v = T(value);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) d[i] = v;
  });
}

bool supports(const char*) { return true; }

}  // namespace
}  // namespace cpu

const Backend& cpu_backend() {
  static const Backend b = {
      "cpu",
      cpu::supports,
      cpu::alloc,
      cpu::free_,
      cpu::copy,
      cpu::copy,
      cpu::copy,
      cpu::cast,
      cpu::fill,
      cpu::unary,
      cpu::binary,
      cpu::copy_strided,
      cpu::reduce,
      cpu::softmax,
      cpu::gemm,
      cpu::conv2d_forward,
      cpu::conv2d_backward_data,
      cpu::conv2d_backward_filter,
      cpu::im2col,
      cpu::col2im,
      cpu::avg_pool2d,
      cpu::avg_pool2d_backward,
      cpu::resize_nearest,
      cpu::resize_nearest_backward,
      cpu::rand_uniform,
      cpu::rand_normal,
      cpu::adam_step,
  };
  return b;
}

}  // namespace fpa
