// cpu_elementwise.cpp: unary maps, broadcasting binary maps and strided copies on the CPU.
#include <cmath>
#include <cstring>

#include "ops/cpu/cpu_kernels.h"

namespace fpa::cpu {

template <typename T>
static inline T apply_unary(UnaryOp op, T x, T a, T b) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::abs: return std::abs(x);
    case UnaryOp::sign: return T((x > 0) - (x < 0));
    case UnaryOp::square: return x * x;
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::relu: return x > 0 ? x : T(0);
    case UnaryOp::erf: return std::erf(x);
    case UnaryOp::leaky_relu: return x > 0 ? x : a * x;
    case UnaryOp::silu: return x / (T(1) + std::exp(-x));
    case UnaryOp::gelu: return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
    case UnaryOp::pow: return std::pow(x, a);
    case UnaryOp::clamp: return std::min(std::max(x, a), b);
    case UnaryOp::affine: return a * x + b;
    case UnaryOp::gt_mask: return x > a ? T(1) : T(0);
    case UnaryOp::inside_mask: return (x >= a && x <= b) ? T(1) : T(0);
  }
  return x;
}

void unary(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    T ta = T(a), tb = T(b);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) yp[i] = apply_unary(op, xp[i], ta, tb);
  });
}

template <typename T>
static inline T apply_binary(BinaryOp op, T a, T b) {
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

// Offsets of flat index i (row-major over loop.shape) in both operands.
static inline void offsets(const StridedLoop& L, int64_t i, int64_t& oa, int64_t& ob) {
  oa = ob = 0;
  for (int d = L.ndim - 1; d >= 0; --d) {
    int64_t k = i % L.shape[d];
    i /= L.shape[d];
    oa += k * L.a_strides[d];
    ob += k * L.b_strides[d];
  }
}

// Runs f(first flat index, its offsets, count along the last dim) over rows of the loop,
// so the innermost dimension is a plain strided loop.
template <typename F>
static void for_rows(const StridedLoop& L, F&& f) {
  int64_t total = 1;
  for (int d = 0; d < L.ndim; ++d) total *= L.shape[d];
  if (total == 0) return;
  int64_t inner = L.ndim ? L.shape[L.ndim - 1] : 1;
  int64_t rows = total / inner;
#pragma omp parallel for schedule(static) if (total > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t oa, ob;
    offsets(L, r * inner, oa, ob);
    f(r * inner, oa, ob, inner);
  }
}

void binary(DType t, BinaryOp op, const StridedLoop& L, const void* a, const void* b, void* out) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* ap = static_cast<const T*>(a);
    const T* bp = static_cast<const T*>(b);
    T* op_ = static_cast<T*>(out);
    int last = L.ndim - 1;
    int64_t sa = L.ndim ? L.a_strides[last] : 0, sb = L.ndim ? L.b_strides[last] : 0;
    for_rows(L, [&](int64_t o, int64_t oa, int64_t ob, int64_t n) {
      if (sa == 1 && sb == 1) {
        for (int64_t j = 0; j < n; ++j) op_[o + j] = apply_binary(op, ap[oa + j], bp[ob + j]);
      } else {
        for (int64_t j = 0; j < n; ++j) op_[o + j] = apply_binary(op, ap[oa + j * sa], bp[ob + j * sb]);
      }
    });
  });
}

void copy_strided(DType t, const StridedLoop& L, const void* src, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const T* s = static_cast<const T*>(src);
    T* d = static_cast<T*>(dst);
    int last = L.ndim - 1;
    int64_t ss = L.ndim ? L.a_strides[last] : 1, ds = L.ndim ? L.b_strides[last] : 1;
    for_rows(L, [&](int64_t, int64_t os, int64_t od, int64_t n) {
      if (ss == 1 && ds == 1) std::memcpy(d + od, s + os, n * sizeof(T));
      else for (int64_t j = 0; j < n; ++j) d[od + j * ds] = s[os + j * ss];
    });
  });
}

}  // namespace fpa::cpu
