// cpu_math.h: exp, expm1, tanh, sigmoid, silu, erf, gelu and gelu's derivative for float data,
// written to vectorise.
//
// Each function is branch-free, table-free straight-line arithmetic on one value, so inside a
// `#pragma omp simd` loop GCC turns it into vector code, and an element gets the same bits
// whether it lands in the vector body or in a scalar remainder (results never depend on the
// thread count or on alignment). The float versions compute in double and round once, so they
// are within about 0.5 ulp of the exact value (tests/test_elementwise.cpp sweeps them against
// the double libm). glibc's libmvec would be faster but several ulp off.
// What it is not: a libm. Double data keeps calling std::exp, std::tanh, std::erf.
#pragma once
#include <cstdint>

namespace fpa::cpu::vmath {

// Forced: GCC's early inliner calls these "cold" inside simd loops and keeps the calls,
// which blocks vectorisation.
#define FPA_VINLINE inline __attribute__((always_inline))

// c0 + x (c1 + x (c2 + ...)), unrolled at compile time.
FPA_VINLINE double poly(double, double c) { return c; }
template <typename... C>
FPA_VINLINE double poly(double x, double c, C... rest) { return c + x * poly(x, rest...); }

// x = n ln2 + r with |r| <= ln2/2 and scale = 2^n (x clamped to [-700, 700]; NaN passes to r).
struct Ln2Reduced {
  double r, scale;
};
FPA_VINLINE Ln2Reduced reduce_ln2(double x) {
  // Not `x < -700 ? -700 : x`: constant arms make GCC specialise the code after the select,
  // and the branches it creates stop vectorisation.
  x = __builtin_fabs(x) > 700.0 ? __builtin_copysign(700.0, x) : x;
  const double shifter = 0x1.8p52;  // adding it rounds to an integer held in the low mantissa bits
  double kd = x * 1.4426950408889634 + shifter;
  uint64_t ki = __builtin_bit_cast(uint64_t, kd);
  kd -= shifter;
  return {x - kd * 0x1.62e42fefa39efp-1 - kd * 0x1.abc9e3b39803fp-56,
          __builtin_bit_cast(double, (ki << 52) + 0x3ff0000000000000ull)};
}

// e^x in double to about 1e-11 relative (degree-9 Taylor on |r| <= 0.347; float needs 6e-8).
FPA_VINLINE double exp_d(double x) {
  auto [r, scale] = reduce_ln2(x);
  return poly(r, 1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
              1.0 / 362880) * scale;
}

// e^x - 1 in double to about 1e-12 relative, also near 0 (degree 10).
FPA_VINLINE double expm1_d(double x) {
  auto [r, scale] = reduce_ln2(x);
  double p = r * poly(r, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                      1.0 / 362880, 1.0 / 3628800);
  return scale * p + (scale - 1.0);
}

// erf in double: x P(x^2) on |x| < 1 (1e-14 relative), Q(|x| - 2.5) on 1 <= |x| <= 3.95
// (1e-9 absolute), +-1 beyond. Chebyshev fits computed with mpmath.chebyfit.
FPA_VINLINE double erf_d(double x) {
  double s = x * poly(x * x, 1.128379167095494, -0.37612638902808615, 0.11283791658548713,
                      -0.026866169050599326, 0.0052239671935439, -0.0008547933736519633,
                      0.00012046261269779797, -1.4795031400662045e-05, 1.5306373163641084e-06,
                      -1.0469110332151208e-07);
  double a = __builtin_fabs(x);
  double q = poly(a - 2.5, 0.999593047982555, 0.002178278477149569, -0.0054457084866670735,
                  0.008350212261757061, -0.008622419844859008, 0.00611658507158297, -0.0027982086376201164,
                  0.0005445393425852912, 0.0002598692589340108, -0.0002534303815818847, 8.00225016283282e-05,
                  7.76015756900154e-06, -1.5153995102536417e-05, 3.461528317745017e-06,
                  7.357494723767418e-07, -3.5116319925678533e-07, 1.713328469523717e-08);
  q = a > 3.95 ? 1.0 : q;  // also replaces the overflow of large |x|; NaN keeps q = NaN
  return a < 1.0 ? s : __builtin_copysign(q, x);
}

FPA_VINLINE float exp_f(float x) { return float(exp_d(x)); }
FPA_VINLINE float sigmoid_f(float x) { return float(1.0 / (1.0 + exp_d(-double(x)))); }
FPA_VINLINE float silu_f(float x) { return float(double(x) / (1.0 + exp_d(-double(x)))); }
FPA_VINLINE float erf_f(float x) { return float(erf_d(x)); }
FPA_VINLINE float gelu_f(float x) { return float(0.5 * double(x) * (1.0 + erf_d(double(x) * 0.70710678118654752440))); }
// gelu'(x) = Phi(x) + x phi(x); x phi(x) is 0 beyond |x| = 40 (it underflows there), which
// also gives the limits 1 and 0 at +-inf instead of inf * 0.
FPA_VINLINE float gelu_grad_f(float x) {
  const double v = x, tail = __builtin_fabs(v) > 40.0 ? 0.0 : v * exp_d(-0.5 * v * v) * 0.3989422804014327;
  return float(0.5 * (1.0 + erf_d(v * 0.70710678118654752440)) + tail);
}

// tanh |x| = -expm1(-2|x|) / (2 + expm1(-2|x|)).
FPA_VINLINE float tanh_f(float x) {
  double a = __builtin_fabs(double(x));
  double e = expm1_d(-2.0 * a);  // -1 for large |x|
  return float(__builtin_copysign(__builtin_fabs(e / (2.0 + e)), double(x)));
}

}  // namespace fpa::cpu::vmath
