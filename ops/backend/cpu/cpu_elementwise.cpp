// cpu_elementwise.cpp: unary maps, broadcasting binary maps and strided copies on the CPU.
//
// The op switch runs once per call and picks a loop instantiated for that op's functor, so
// the inner loops are plain `#pragma omp simd` loops. Float exp, tanh, sigmoid, silu, erf
// and gelu use the vectorisable kernels of cpu_math.h; double data keeps std:: math.
// A strided index space is simplified before looping: size-1 dims are dropped and adjacent
// dims merged wherever every operand steps through them as one, so (B,C,H,W) * (1,C,1,1)
// runs as (B, C, H*W) with the second operand one scalar per run; the innermost dim then
// takes one of a few loops (both contiguous, one operand a scalar, general strides).
// Threads split the flat output range; every element is computed by the same arithmetic
// wherever it falls, so results do not depend on the thread count.
// NaN passes through relu, leaky_relu and clamp as in PyTorch; the masks (gt, inside, eq), sign
// and leaky_relu_grad compare false on NaN and give 0, 0 and the slope (tests/test_nan_propagation.cpp).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "ops/backend/cpu/cpu_kernels.h"
#include "ops/backend/cpu/cpu_math.h"
#include "ops/backend/strided_plan.h"

namespace fpa::cpu {
namespace {

// Calls f(begin, end) on one contiguous piece of [0, n) per thread (one piece when n is small).
template <typename F>
void parallel_range(int64_t n, F&& f) {
  if (n <= kParallelGrain) {
    if (n > 0) f(int64_t(0), n);
    return;
  }
#pragma omp parallel
  {
    int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t chunk = ((n + nt - 1) / nt + 63) / 64 * 64;  // whole cache lines per thread
    int64_t begin = std::min(n, t * chunk), end = std::min(n, begin + chunk);
    if (begin < end) f(begin, end);
  }
}

// ---- unary ----

// Float goes through cpu_math.h; double keeps the std:: functions.
FPA_VINLINE float exp_of(float v) { return vmath::exp_f(v); }
FPA_VINLINE double exp_of(double v) { return std::exp(v); }
FPA_VINLINE float tanh_of(float v) { return vmath::tanh_f(v); }
FPA_VINLINE double tanh_of(double v) { return std::tanh(v); }
FPA_VINLINE float sigmoid_of(float v) { return vmath::sigmoid_f(v); }
FPA_VINLINE double sigmoid_of(double v) { return 1.0 / (1.0 + std::exp(-v)); }
FPA_VINLINE float silu_of(float v) { return vmath::silu_f(v); }
FPA_VINLINE double silu_of(double v) { return v / (1.0 + std::exp(-v)); }
FPA_VINLINE float erf_of(float v) { return vmath::erf_f(v); }
FPA_VINLINE double erf_of(double v) { return std::erf(v); }
FPA_VINLINE float gelu_of(float v) { return vmath::gelu_f(v); }
FPA_VINLINE double gelu_of(double v) { return 0.5 * v * (1.0 + std::erf(v * 0.70710678118654752440)); }
FPA_VINLINE float gelu_grad_of(float v) { return vmath::gelu_grad_f(v); }
FPA_VINLINE double gelu_grad_of(double v) {  // x phi(x) is 0 beyond |x| = 40, as in cpu_math.h
  const double tail = std::fabs(v) > 40.0 ? 0.0 : v * std::exp(-0.5 * v * v) * 0.3989422804014327;
  return 0.5 * (1.0 + std::erf(v * 0.70710678118654752440)) + tail;
}

template <typename T, typename F>
void map_unary(int64_t n, const T* x, T* y, F f) {
  parallel_range(n, [&](int64_t begin, int64_t end) {
    // Local copies: a parameter read through a reference might alias y, and stays in the loop.
    const F g = f;
    const T* xp = x;
    T* yp = y;
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) yp[i] = g(xp[i]);
  });
}

// The lambdas are forced inline: GCC otherwise may keep them as calls, which stops vectorisation.
#define FPA_MAP(expr) map_unary(n, x, y, [=](T v) __attribute__((always_inline)) { return expr; })

template <typename T>
void unary_typed(UnaryOp op, int64_t n, T a, T b, const T* x, T* y) {
  switch (op) {
    case UnaryOp::neg: return FPA_MAP(-v);
    case UnaryOp::exp: return FPA_MAP(exp_of(v));
    case UnaryOp::log: return FPA_MAP(std::log(v));
    case UnaryOp::sqrt: return FPA_MAP(std::sqrt(v));
    case UnaryOp::rsqrt: return FPA_MAP(T(1) / std::sqrt(v));
    case UnaryOp::abs: return FPA_MAP(std::abs(v));
    case UnaryOp::sign: return FPA_MAP(T((v > 0) - (v < 0)));
    case UnaryOp::square: return FPA_MAP(v * v);
    case UnaryOp::tanh: return FPA_MAP(tanh_of(v));
    case UnaryOp::sigmoid: return FPA_MAP(sigmoid_of(v));
    // Not `v > 0 ? v : 0`, which maps NaN to 0: PyTorch's relu gives NaN for NaN.
    case UnaryOp::relu: return FPA_MAP(!(v <= 0) ? v : T(0));
    case UnaryOp::erf: return FPA_MAP(erf_of(v));
    case UnaryOp::leaky_relu: return FPA_MAP(v > 0 ? v : a * v);
    case UnaryOp::leaky_relu_grad: return FPA_MAP(v > 0 ? T(1) : a);
    case UnaryOp::silu: return FPA_MAP(silu_of(v));
    case UnaryOp::gelu: return FPA_MAP(gelu_of(v));
    case UnaryOp::gelu_grad: return FPA_MAP(gelu_grad_of(v));
    case UnaryOp::pow: return FPA_MAP(std::pow(v, a));
    // std::min(std::max(v, a), b), spelled out (no references to temporaries in a simd loop).
    case UnaryOp::clamp: return FPA_MAP(b < (v < a ? a : v) ? b : (v < a ? a : v));
    case UnaryOp::affine: return FPA_MAP(a * v + b);
    case UnaryOp::gt_mask: return FPA_MAP(v > a ? T(1) : T(0));
    case UnaryOp::inside_mask: return FPA_MAP((v >= a && v <= b) ? T(1) : T(0));
  }
}

#undef FPA_MAP

// ---- strided index spaces ----

// Calls run(offsets, n) for every stretch of the innermost dim (offsets: one per operand, in
// elements), the flat range split across threads, each thread walking its part in order.
template <int K, typename F>
void for_each_run(const StridedSpace<K>& s, int64_t total, F&& run) {
  parallel_range(total, [&](int64_t begin, int64_t end) {
    const int last = s.ndim - 1;
    int64_t idx[kMaxDims], off[K] = {};
    int64_t rem = begin;
    for (int d = last; d >= 0; --d) {
      idx[d] = rem % s.shape[d];
      rem /= s.shape[d];
      for (int k = 0; k < K; ++k) off[k] += idx[d] * s.stride[k][d];
    }
    for (int64_t i = begin; i < end;) {
      int64_t n = std::min(s.shape[last] - idx[last], end - i);
      run(off, n);
      i += n;
      idx[last] += n;
      for (int k = 0; k < K; ++k) off[k] += n * s.stride[k][last];
      for (int d = last; d > 0 && idx[d] == s.shape[d]; --d) {  // carry
        idx[d] = 0;
        ++idx[d - 1];
        for (int k = 0; k < K; ++k) off[k] += s.stride[k][d - 1] - s.shape[d] * s.stride[k][d];
      }
    }
  });
}

// ---- binary ----

struct Add {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a + b; }
};
struct Sub {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a - b; }
};
struct Mul {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a * b; }
};
struct Div {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a / b; }
};
struct EqMask {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a == b ? T(1) : T(0); }
};
struct GtMask {
  template <typename T> FPA_VINLINE T operator()(T a, T b) const { return a > b ? T(1) : T(0); }
};

// Operands of the space: 0 = out (contiguous), 1 = a, 2 = b.
template <typename T, typename Op>
void binary_loop(Op op, const StridedLoop& L, const T* a, const T* b, T* out) {
  StridedSpace<3> s;
  s.ndim = L.ndim;
  int64_t os = 1;
  for (int d = L.ndim - 1; d >= 0; --d) {
    s.shape[d] = L.shape[d];
    s.stride[0][d] = os, s.stride[1][d] = L.a_strides[d], s.stride[2][d] = L.b_strides[d];
    os *= L.shape[d];
  }
  int64_t total = simplify(s);
  if (total == 0) return;
  // The out stride of the innermost dim is 1: out is contiguous and size-1 dims are gone.
  const int64_t sa = s.stride[1][s.ndim - 1], sb = s.stride[2][s.ndim - 1];
  if (sa == 1 && sb == 1) {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* y = out + o[0];
      const T *p = a + o[1], *q = b + o[2];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = op(p[j], q[j]);
    });
  } else if (sa == 1 && sb == 0) {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* y = out + o[0];
      const T* p = a + o[1];
      const T q = b[o[2]];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = op(p[j], q);
    });
  } else if (sa == 0 && sb == 1) {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* y = out + o[0];
      const T p = a[o[1]];
      const T* q = b + o[2];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) y[j] = op(p, q[j]);
    });
  } else {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* y = out + o[0];
      const T *p = a + o[1], *q = b + o[2];
      for (int64_t j = 0; j < n; ++j) y[j] = op(p[j * sa], q[j * sb]);
    });
  }
}

template <typename T>
void binary_typed(BinaryOp op, const StridedLoop& L, const T* a, const T* b, T* out) {
  switch (op) {
    case BinaryOp::add: return binary_loop(Add{}, L, a, b, out);
    case BinaryOp::sub: return binary_loop(Sub{}, L, a, b, out);
    case BinaryOp::mul: return binary_loop(Mul{}, L, a, b, out);
    case BinaryOp::div: return binary_loop(Div{}, L, a, b, out);
    case BinaryOp::eq_mask: return binary_loop(EqMask{}, L, a, b, out);
    case BinaryOp::gt_mask: return binary_loop(GtMask{}, L, a, b, out);
  }
}

// ---- strided copy ----

// Operands of the space: 0 = dst, 1 = src.
template <typename T>
void copy_typed(const StridedLoop& L, const T* src, T* dst) {
  StridedSpace<2> s;
  s.ndim = L.ndim;
  for (int d = 0; d < L.ndim; ++d)
    s.shape[d] = L.shape[d], s.stride[0][d] = L.b_strides[d], s.stride[1][d] = L.a_strides[d];
  int64_t total = simplify(s);
  if (total == 0) return;
  const int64_t ds = s.stride[0][s.ndim - 1], ss = s.stride[1][s.ndim - 1];
  if (ds == 1 && ss == 1) {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) { std::memcpy(dst + o[0], src + o[1], n * sizeof(T)); });
  } else if (ds == 1 && ss == 0) {  // expand
    for_each_run(s, total, [&](const int64_t* o, int64_t n) { std::fill_n(dst + o[0], n, src[o[1]]); });
  } else if (ds == 1 && ss == -1) {  // flip
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* d = dst + o[0];
      const T* p = src + o[1];
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) d[j] = p[-j];
    });
  } else {
    for_each_run(s, total, [&](const int64_t* o, int64_t n) {
      T* d = dst + o[0];
      const T* p = src + o[1];
      for (int64_t j = 0; j < n; ++j) d[j * ds] = p[j * ss];
    });
  }
}

}  // namespace

void unary(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    unary_typed<T>(op, n, T(a), T(b), static_cast<const T*>(x), static_cast<T*>(y));
  });
}

void binary(DType t, BinaryOp op, const StridedLoop& L, const void* a, const void* b, void* out) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    binary_typed<T>(op, L, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out));
  });
}

void copy_strided(DType t, const StridedLoop& L, const void* src, void* dst) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    copy_typed<T>(L, static_cast<const T*>(src), static_cast<T*>(dst));
  });
}

}  // namespace fpa::cpu
