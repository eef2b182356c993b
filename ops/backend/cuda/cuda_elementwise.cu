// cuda_elementwise.cu: unary maps, broadcasting binary maps, strided copies and batched
// copies (copy_many) on CUDA.
//
// Each primitive is one grid-stride kernel; the op is a switch inside the loop (uniform
// across the grid, so it costs a jump, not divergence). Float exp, tanh, sigmoid, silu, erf,
// gelu and gelu's derivative are computed in double and rounded once, as the CPU backend's
// cpu_math.h does, so both backends agree to the last bit or one ulp.
// A strided index space is simplified on the host first, exactly as on the CPU: size-1
// dims dropped, adjacent dims merged where every operand steps through them as one, so
// (B,C,H,W) + (1,C,1,1) runs as (B, C, H*W) and a contiguous map as one flat dim. The
// kernel then turns each flat index into per-operand offsets with 32-bit division when the
// space has fewer than 2^32 elements (64-bit division otherwise). Strides may be 0
// (broadcast) or negative (flip); out is contiguous for binary, dst strided for copies.
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_math.cuh"
#include "ops/backend/strided_plan.h"

namespace fpa::gpu {
namespace {

// ---- unary

__device__ __forceinline__ float silu_of(float v) { return float(double(v) / (1.0 + exp(-double(v)))); }
__device__ __forceinline__ double silu_of(double v) { return v / (1.0 + exp(-v)); }
__device__ __forceinline__ float erf_of(float v) { return float(erf(double(v))); }
__device__ __forceinline__ double erf_of(double v) { return erf(v); }
__device__ __forceinline__ double gelu_d(double v) { return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440)); }
__device__ __forceinline__ float gelu_of(float v) { return float(gelu_d(double(v))); }
__device__ __forceinline__ double gelu_of(double v) { return gelu_d(v); }
__device__ __forceinline__ double gelu_grad_d(double v) {  // x phi(x) is 0 beyond |x| = 40, as on the CPU
  const double tail = fabs(v) > 40.0 ? 0.0 : v * exp(-0.5 * v * v) * 0.3989422804014327;
  return 0.5 * (1.0 + erf(v * 0.70710678118654752440)) + tail;
}
__device__ __forceinline__ float gelu_grad_of(float v) { return float(gelu_grad_d(double(v))); }
__device__ __forceinline__ double gelu_grad_of(double v) { return gelu_grad_d(v); }

template <typename T>
__device__ __forceinline__ T unary_value(UnaryOp op, T v, T a, T b) {
  switch (op) {
    case UnaryOp::neg: return -v;
    case UnaryOp::exp: return exp_of(v);
    case UnaryOp::log: return log(v);
    case UnaryOp::sqrt: return sqrt(v);
    case UnaryOp::rsqrt: return T(1) / sqrt(v);
    case UnaryOp::abs: return fabs(v);
    case UnaryOp::sign: return T((v > T(0)) - (v < T(0)));
    case UnaryOp::square: return v * v;
    case UnaryOp::tanh: return tanh_of(v);
    case UnaryOp::sigmoid: return sigmoid_of(v);
    case UnaryOp::relu: return !(v <= T(0)) ? v : T(0);  // NaN stays NaN, as on the CPU
    case UnaryOp::erf: return erf_of(v);
    case UnaryOp::leaky_relu: return v > T(0) ? v : a * v;
    case UnaryOp::leaky_relu_grad: return v > T(0) ? T(1) : a;
    case UnaryOp::silu: return silu_of(v);
    case UnaryOp::gelu: return gelu_of(v);
    case UnaryOp::gelu_grad: return gelu_grad_of(v);
    case UnaryOp::pow: return pow(v, a);
    case UnaryOp::clamp: {  // the CPU's min(max(v, a), b), NaN passing through
      const T lo = v < a ? a : v;
      return b < lo ? b : lo;
    }
    case UnaryOp::affine: return a * v + b;
    case UnaryOp::gt_mask: return v > a ? T(1) : T(0);
    case UnaryOp::inside_mask: return (v >= a && v <= b) ? T(1) : T(0);
  }
  return v;
}

template <typename T>
__global__ void unary_kernel(UnaryOp op, int64_t n, T a, T b, const T* x, T* y) {
  FPA_GRID_STRIDE_LOOP(i, n) y[i] = unary_value(op, x[i], a, b);
}

// ---- strided index spaces

// The offsets (in elements) of flat index i in operands first..K-1. Index is the type the
// divisions run in; the outermost dim needs none.
template <typename Index, int K>
__device__ __forceinline__ void offsets_of(const StridedSpace<K>& s, Index i, int first, int64_t* off) {
  for (int k = first; k < K; ++k) off[k] = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d > 0; --d) {  // unrolled: constant indices keep s out of local memory
    if (d >= s.ndim) continue;
    const Index extent = Index(s.shape[d]);
    const Index q = i / extent;
    const int64_t idx = int64_t(i - q * extent);
    i = q;
    for (int k = first; k < K; ++k) off[k] += idx * s.stride[k][d];
  }
  for (int k = first; k < K; ++k) off[k] += int64_t(i) * s.stride[k][0];
}

// ---- binary

template <typename T>
__device__ __forceinline__ T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::eq_mask: return a == b ? T(1) : T(0);
    case BinaryOp::gt_mask: return a > b ? T(1) : T(0);
  }
  return a;
}

// Operands of the space: 0 = out (contiguous, so its offset is i), 1 = a, 2 = b.
template <typename T, typename Index>
__global__ void binary_kernel(BinaryOp op, StridedSpace<3> s, int64_t total, const T* a, const T* b, T* out) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    int64_t off[3];
    offsets_of<Index>(s, Index(i), 1, off);
    out[i] = binary_value(op, a[off[1]], b[off[2]]);
  }
}

// Both operands contiguous and of the output's shape: no index arithmetic.
template <typename T>
__global__ void binary_flat_kernel(BinaryOp op, int64_t n, const T* a, const T* b, T* out) {
  FPA_GRID_STRIDE_LOOP(i, n) out[i] = binary_value(op, a[i], b[i]);
}

// ---- strided copy: operands 0 = dst, 1 = src

template <typename T, typename Index>
__global__ void copy_strided_kernel(StridedSpace<2> s, int64_t total, const T* src, T* dst) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    int64_t off[2];
    offsets_of<Index>(s, Index(i), 0, off);
    dst[off[0]] = src[off[1]];
  }
}

constexpr int64_t kMax32 = int64_t(1) << 32;

// ---- copy_many: up to kSpansPerLaunch copies per kernel, the spans passed by value as its
// parameters (a captured launch keeps them); block row y copies span y, in 16-byte words when
// both pointers and the size allow, else 4-byte words, else bytes.

constexpr int kSpansPerLaunch = 64;  // 64 x 24 bytes of parameters, well under the 4 KiB limit
constexpr unsigned kCopyManyMaxBlocks = 512;  // per span; the grid-stride loop covers the rest
struct SpanBatch {
  CopySpan span[kSpansPerLaunch];
};

template <typename Word>
__device__ void copy_words(const CopySpan& s) {
  const int64_t n = int64_t(s.bytes / sizeof(Word));
  const Word* src = static_cast<const Word*>(s.src);
  Word* dst = static_cast<Word*>(s.dst);
  FPA_GRID_STRIDE_LOOP(i, n) dst[i] = src[i];
}

__global__ void copy_many_kernel(SpanBatch batch) {
  const CopySpan s = batch.span[blockIdx.y];
  const uintptr_t all = uintptr_t(s.dst) | uintptr_t(s.src) | uintptr_t(s.bytes);
  if (all % 16 == 0) copy_words<uint4>(s);
  else if (all % 4 == 0) copy_words<uint32_t>(s);
  else copy_words<unsigned char>(s);
}

}  // namespace

void unary(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y) {
  if (n <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("unary", unary_kernel<T>, blocks_for(n), kThreads, op, n, T(a), T(b), static_cast<const T*>(x),
           static_cast<T*>(y));
  });
}

void binary(DType t, BinaryOp op, const StridedLoop& L, const void* a, const void* b, void* out) {
  StridedSpace<3> s;
  s.ndim = L.ndim;
  int64_t out_stride = 1;
  for (int d = L.ndim - 1; d >= 0; --d) {
    s.shape[d] = L.shape[d];
    s.stride[0][d] = out_stride, s.stride[1][d] = L.a_strides[d], s.stride[2][d] = L.b_strides[d];
    out_stride *= L.shape[d];
  }
  const int64_t total = simplify(s);
  if (total == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto pa = static_cast<const T*>(a);
    auto pb = static_cast<const T*>(b);
    auto po = static_cast<T*>(out);
    const unsigned blocks = blocks_for(total);
    if (s.ndim == 1 && s.stride[1][0] == 1 && s.stride[2][0] == 1)
      launch("binary", binary_flat_kernel<T>, blocks, kThreads, op, total, pa, pb, po);
    else if (total < kMax32) launch("binary", binary_kernel<T, uint32_t>, blocks, kThreads, op, s, total, pa, pb, po);
    else launch("binary", binary_kernel<T, uint64_t>, blocks, kThreads, op, s, total, pa, pb, po);
  });
}

void copy_strided(DType t, const StridedLoop& L, const void* src, void* dst) {
  StridedSpace<2> s;
  s.ndim = L.ndim;
  for (int d = 0; d < L.ndim; ++d)
    s.shape[d] = L.shape[d], s.stride[0][d] = L.b_strides[d], s.stride[1][d] = L.a_strides[d];
  const int64_t total = simplify(s);
  if (total == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    auto ps = static_cast<const T*>(src);
    auto pd = static_cast<T*>(dst);
    if (s.ndim == 1 && s.stride[0][0] == 1 && s.stride[1][0] == 1) {  // one contiguous run
      FPA_CUDA_CHECK(cudaMemcpyAsync(pd, ps, total * sizeof(T), cudaMemcpyDeviceToDevice, stream()));
      return;
    }
    const unsigned blocks = blocks_for(total);
    if (total < kMax32) launch("copy_strided", copy_strided_kernel<T, uint32_t>, blocks, kThreads, s, total, ps, pd);
    else launch("copy_strided", copy_strided_kernel<T, uint64_t>, blocks, kThreads, s, total, ps, pd);
  });
}

void copy_many(int64_t count, const CopySpan* spans) {
  for (int64_t first = 0; first < count; first += kSpansPerLaunch) {
    SpanBatch batch{};
    const int n = int(count - first < kSpansPerLaunch ? count - first : kSpansPerLaunch);
    size_t most = 0;  // bytes of the largest span
    for (int i = 0; i < n; ++i) {
      batch.span[i] = spans[first + i];
      most = batch.span[i].bytes > most ? batch.span[i].bytes : most;
    }
    if (most == 0) continue;
    const unsigned blocks = blocks_for(int64_t((most + 15) / 16));  // enough for the widest words
    launch("copy_many", copy_many_kernel, dim3(blocks < kCopyManyMaxBlocks ? blocks : kCopyManyMaxBlocks, n),
           kThreads, batch);
  }
}

}  // namespace fpa::gpu
