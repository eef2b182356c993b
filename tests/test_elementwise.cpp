// test_elementwise.cpp: arithmetic, pointwise math, activations and masks: forward values against
// std:: math, broadcasting, error messages; the CPU kernels' fast paths (coalesced broadcasts,
// strided copies, the float math of ops/backend/cpu/cpu_math.h) against plain index loops, and
// their independence of the thread count. Their op cases: tests/op_cases/elementwise_cases.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>

#include "autograd/philox.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;
Shape s23{2, 3}, s234{2, 3, 4};

double ref_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

TEST(Elementwise, UnaryForwardMatchesStdMath) {
  Tensor x = from_vector({-1.5, -0.2, 0.3, 2.0}, {4}, DType::f64);
  Tensor p = from_vector({0.5, 1.0, 2.0, 3.0}, {4}, DType::f64);
  auto each = [](const Tensor& t, double (*f)(double)) {
    std::vector<double> v = t.to_vector();
    for (double& e : v) e = f(e);
    return from_vector(v, t.shape(), DType::f64);
  };
  EXPECT_CLOSE(exp(x), each(x, [](double v) { return std::exp(v); }));
  EXPECT_CLOSE(log(p), each(p, [](double v) { return std::log(v); }));
  EXPECT_CLOSE(sqrt(p), each(p, [](double v) { return std::sqrt(v); }));
  EXPECT_CLOSE(rsqrt(p), each(p, [](double v) { return 1 / std::sqrt(v); }));
  EXPECT_CLOSE(pow(p, 1.5), each(p, [](double v) { return std::pow(v, 1.5); }));
  EXPECT_CLOSE(abs(x), each(x, [](double v) { return std::abs(v); }));
  EXPECT_CLOSE(square(x), each(x, [](double v) { return v * v; }));
  EXPECT_CLOSE(erf(x), each(x, [](double v) { return std::erf(v); }));
  EXPECT_CLOSE(tanh(x), each(x, [](double v) { return std::tanh(v); }));
  EXPECT_CLOSE(sigmoid(x), each(x, [](double v) { return 1 / (1 + std::exp(-v)); }));
  EXPECT_CLOSE(relu(x), each(x, [](double v) { return v > 0 ? v : 0.0; }));
  EXPECT_CLOSE(leaky_relu(x, 0.1), each(x, [](double v) { return v > 0 ? v : 0.1 * v; }));
  EXPECT_CLOSE(silu(x), each(x, [](double v) { return v / (1 + std::exp(-v)); }));
  EXPECT_CLOSE(gelu(x), each(x, ref_gelu));
  EXPECT_CLOSE(clamp(x, -1.0, 0.5), each(x, [](double v) { return std::min(std::max(v, -1.0), 0.5); }));
}

TEST(Elementwise, BroadcastingFollowsNumpyRules) {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  Tensor b = from_vector({10, 20, 30}, {3}, DType::f64);
  Tensor c = from_vector({100, 200}, {2, 1}, DType::f64);
  EXPECT_CLOSE(a + b, from_vector({11, 22, 33, 14, 25, 36}, {2, 3}, DType::f64));
  EXPECT_CLOSE(b * c, from_vector({1000, 2000, 3000, 2000, 4000, 6000}, {2, 3}, DType::f64));
  EXPECT_CLOSE(a - c, from_vector({-99, -98, -97, -196, -195, -194}, {2, 3}, DType::f64));
  EXPECT_CLOSE(a / b, from_vector({0.1, 0.1, 0.1, 0.4, 0.25, 0.2}, {2, 3}, DType::f64));
}

TEST(Elementwise, GluAndWhere) {
  Tensor x = from_vector({1, 2, 0, 3}, {1, 4}, DType::f64);
  std::vector<double> g = glu(x, 1).to_vector();
  EXPECT_NEAR(g[0], 1 / (1 + std::exp(-0.0)), 1e-12);
  EXPECT_NEAR(g[1], 2 / (1 + std::exp(-3.0)), 1e-12);
  Tensor m = from_vector({1, 0}, {2}, DType::f64);
  EXPECT_CLOSE(where(m, from_vector({1, 2}, {2}, DType::f64), from_vector({3, 4}, {2}, DType::f64)),
               from_vector({1, 4}, {2}, DType::f64));
  EXPECT_CLOSE(gt(from_vector({1, 2}, {2}, DType::f64), from_vector({2, 1}, {2}, DType::f64)),
               from_vector({0, 1}, {2}, DType::f64));
}

TEST(Elementwise, Float32MatchesFloat64) {
  Tensor x = randn({64}, DType::f64);
  Tensor y = gelu(tanh(x) * sigmoid(x) + exp(x));
  EXPECT_CLOSE_TOL(gelu(tanh(x.to(DType::f32)) * sigmoid(x.to(DType::f32)) + exp(x.to(DType::f32))).to(DType::f64),
                   y, 1e-5, 1e-5);
}

TEST(Elementwise, MismatchesRaiseNamedErrors) {
  Tensor a = zeros({2, 3}), b = zeros({4});
  EXPECT_ERROR(add(a, b), "add: shapes (2, 3) and (4) do not broadcast");
  EXPECT_ERROR(mul(a, zeros({2, 3}, DType::f64)), "mul: dtype mismatch");
  EXPECT_ERROR(clamp(a, 1.0, 0.0), "clamp");
  EXPECT_ERROR(glu(zeros({2, 3}), 1), "glu: dimension 1 of (2, 3) is odd");
  EXPECT_ERROR(add(a, Tensor()), "add: second operand is an undefined tensor");
}

// ---- CPU kernel fast paths ----

// Row-major strides of `s` aligned to `out`'s trailing dims; 0 where s is 1 or missing.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.ndim, 0), own = s.strides();
  for (int i = 0; i < s.ndim; ++i)
    if (s[i] != 1) st[out.ndim - s.ndim + i] = own[i];
  return st;
}

// out[i] = f(a[ia], b[ib]) by plain index math, computed in the dtype T.
template <typename T, typename F>
Tensor binary_by_index(const Tensor& a, const Tensor& b, F f) {
  Shape out = broadcast_shapes(a.shape(), b.shape(), "test");
  std::vector<int64_t> sa = broadcast_strides(a.shape(), out), sb = broadcast_strides(b.shape(), out);
  std::vector<double> av = a.to_vector(), bv = b.to_vector(), r(out.numel());
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t rem = i, ia = 0, ib = 0;
    for (int d = out.ndim - 1; d >= 0; --d) ia += rem % out[d] * sa[d], ib += rem % out[d] * sb[d], rem /= out[d];
    r[i] = double(f(T(av[ia]), T(bv[ib])));
  }
  return from_vector(r, out, a.dtype());
}

template <typename T>
void check_broadcasts(DType dt) {
  std::mt19937 rng(11);
  std::vector<std::pair<Shape, Shape>> pairs = {
      {{32, 8, 6, 6}, {1, 8, 1, 1}},      {{4, 3, 9, 64}, {4, 3, 1, 64}},  {{5, 1, 7}, {1, 6, 1}},
      {{2, 3, 1, 4, 5}, {3, 2, 4, 1}},    {{7}, {}},                        {{}, {3, 2}},
      {{40, 33, 16}, {40, 1, 16}},        {{40, 33, 16}, {33, 1}},          {{1, 1, 1}, {1}},
      {{3, 4, 5}, {3, 4, 5}},             {{17, 1}, {1, 1000}},             {{2, 1, 1, 5}, {2, 3, 4, 1}}};
  const int64_t sizes[] = {1, 2, 3, 5, 16};
  for (int trial = 0; trial < 40; ++trial) {  // random shapes, size-1 dims anywhere
    int nd = 1 + int(rng() % 5);
    std::vector<int64_t> a(nd), b(nd);
    for (int d = 0; d < nd; ++d) {
      int64_t n = sizes[rng() % 5];
      a[d] = rng() % 3 == 0 ? 1 : n, b[d] = rng() % 3 == 0 ? 1 : n;
    }
    if (rng() % 2) b.erase(b.begin(), b.begin() + rng() % nd);  // missing leading dims
    pairs.push_back({Shape(a), Shape(b)});
  }
  Philox gen(3);
  for (auto& [sa, sb] : pairs) {
    SCOPED_TRACE(::testing::Message() << sa << " and " << sb);
    Tensor a = randn(sa, dt, Device::cpu, &gen), b = add_scalar(randn(sb, dt, Device::cpu, &gen), 0.1);
    EXPECT_TRUE(same_bits(add(a, b), binary_by_index<T>(a, b, [](T x, T y) { return x + y; })));
    EXPECT_TRUE(same_bits(sub(b, a), binary_by_index<T>(b, a, [](T x, T y) { return x - y; })));
    EXPECT_TRUE(same_bits(mul(a, b), binary_by_index<T>(a, b, [](T x, T y) { return x * y; })));
    EXPECT_TRUE(same_bits(div(a, b), binary_by_index<T>(a, b, [](T x, T y) { return x / y; })));
    EXPECT_TRUE(same_bits(gt(a, b), binary_by_index<T>(a, b, [](T x, T y) { return x > y ? T(1) : T(0); })));
  }
}

TEST(ElementwiseKernels, BroadcastsMatchIndexLoopsExactly) {
  check_broadcasts<float>(DType::f32);
  check_broadcasts<double>(DType::f64);
}

// flip, permute, expand, slice and pad (negative, zero, permuted and offset strides in
// copy_strided) against index math.
TEST(ElementwiseKernels, StridedCopiesMatchIndexLoops) {
  Philox gen(5);
  for (Shape s : {Shape{3, 4, 5}, Shape{2, 130, 70}, Shape{1, 9, 1, 33}}) {
    SCOPED_TRACE(::testing::Message() << s);
    Tensor x = randn(s, DType::f32, Device::cpu, &gen);
    std::vector<double> v = x.to_vector();
    std::vector<int64_t> st = s.strides();
    for (Axes axes : {Axes{0}, Axes{-1}, Axes{0, 2}, Axes{1}, Axes{0, 1, 2}}) {
      std::vector<double> r(v.size());
      for (int64_t i = 0; i < s.numel(); ++i) {
        int64_t rem = i, src = 0;
        for (int d = s.ndim - 1; d >= 0; --d) {
          int64_t k = rem % s[d];
          rem /= s[d];
          bool flipped = false;
          for (int ax : axes) flipped |= (ax < 0 ? ax + s.ndim : ax) == d;
          src += (flipped ? s[d] - 1 - k : k) * st[d];
        }
        r[i] = v[src];
      }
      EXPECT_TRUE(same_bits(flip(x, axes), from_vector(r, s, DType::f32)));
    }
  }
  Tensor x = randn({2, 3, 4, 5}, DType::f64, Device::cpu, &gen);
  std::vector<double> v = x.to_vector(), r;
  for (int l = 0; l < 5; ++l)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) r.push_back(v[((i * 3 + j) * 4 + k) * 5 + l]);
  EXPECT_TRUE(same_bits(permute(x, {3, 1, 0, 2}), from_vector(r, {5, 3, 2, 4}, DType::f64)));
  Tensor e = randn({3, 1, 5}, DType::f64, Device::cpu, &gen);
  std::vector<double> ev = e.to_vector();
  r.clear();
  for (int a = 0; a < 2; ++a)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 5; ++k) r.push_back(ev[i * 5 + k]);
  EXPECT_TRUE(same_bits(expand(e, {2, 3, 4, 5}), from_vector(r, {2, 3, 4, 5}, DType::f64)));
  Tensor sl = slice(flip(x, {1}), 2, 1, 3);  // a window of a flipped tensor
  r.clear();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 1; k < 3; ++k)
        for (int l = 0; l < 5; ++l) r.push_back(v[((i * 3 + (2 - j)) * 4 + k) * 5 + l]);
  EXPECT_TRUE(same_bits(sl, from_vector(r, {2, 3, 2, 5}, DType::f64)));
  EXPECT_TRUE(same_bits(slice(slice(pad(sl, {{2, 1}, {0, 3}}, 7.0), 3, 2, 7), 2, 0, 2), sl));
}

// ulps between a float result and the double reference rounded to float.
double ulps(float got, double ref) {
  float r = float(ref);
  if (std::isnan(r) || std::isnan(got)) return std::isnan(r) && std::isnan(got) ? 0 : 1e30;
  if (std::isinf(r) || std::isinf(got)) return got == r ? 0 : 1e30;
  float ulp = std::nextafter(std::fabs(r), std::numeric_limits<float>::infinity()) - std::fabs(r);
  return std::fabs(double(got) - ref) / ulp;
}

// exp, tanh, sigmoid, silu and erf of float data stay within 1 ulp of the double libm (the
// kernels compute in double: 0.51 ulp over a full sweep of floats), specials included; gelu
// within 1 ulp or 1e-7 absolute (below x = -5.6, where erf rounds to -1 and 1 + erf cancels,
// gelu is 0, as with the float formula 0.5 x (1 + erf(x / sqrt 2))).
TEST(ElementwiseKernels, Float32MathIsWithinOneUlp) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<double> xs = {0.0, -0.0, inf, -inf, std::nan(""), 1e-30, -1e-30, 1e-40, -1e-40, 88.7, 88.73,
                            89.0, -87.0, -103.0, -104.0, -150.0, 1e30, -1e30, 9.0, 9.1, -3.9, 3.96, 0.999, 1.0};
  for (int i = -40000; i <= 40000; ++i) xs.push_back(i * 7.3e-4);
  for (int i = 1; i <= 300; ++i) xs.push_back(std::ldexp(1.0, -i / 2) * (i % 2 ? 1 : -1.3));
  for (double& v : xs) v = double(float(v));  // the references see exactly the float inputs
  Tensor x = from_vector(xs, {int64_t(xs.size())}, DType::f32);
  struct Case {
    const char* name;
    Tensor (*op)(const Tensor&);
    double (*ref)(double);
    double atol;
  };
  const Case cases[] = {
      {"exp", exp, [](double v) { return std::exp(v); }, 0},
      {"tanh", tanh, [](double v) { return std::tanh(v); }, 0},
      {"sigmoid", sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }, 0},
      {"silu", silu, [](double v) { return v / (1 + std::exp(-v)); }, 0},
      {"erf", erf, [](double v) { return std::erf(v); }, 0},
      {"gelu", gelu, ref_gelu, 1e-7},
  };
  for (const Case& c : cases) {
    std::vector<float> y = c.op(x).to_floats();
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      // gelu(-inf) = -inf * 0 and silu(-inf) = -inf / inf are NaN in the old formulas, ~0 here.
      bool nan_formula = std::strcmp(c.name, "gelu") == 0 || std::strcmp(c.name, "silu") == 0;
      if (nan_formula && xs[i] == -std::numeric_limits<double>::infinity()) continue;
      double r = c.ref(xs[i]);
      double e = std::fabs(double(y[i]) - r) <= c.atol ? 0 : ulps(y[i], r);
      if (e > worst) worst = e, at = i;
    }
    EXPECT_LE(worst, 1.0) << c.name << "(" << xs[at] << ") = " << y[at] << ", reference " << c.ref(xs[at]);
  }
  // Signs of zero and the saturated ends.
  std::vector<float> t = tanh(from_vector({0.0, -0.0, 50, -50}, {4}, DType::f32)).to_floats();
  EXPECT_TRUE(!std::signbit(t[0]) && std::signbit(t[1]) && t[2] == 1 && t[3] == -1);
  std::vector<float> e = exp(from_vector({89, -104, 0}, {3}, DType::f32)).to_floats();
  EXPECT_TRUE(std::isinf(e[0]) && e[1] == 0 && e[2] == 1);
}

// gelu's backward is one unary map (gelu_grad) unless the gradient is recorded, then composed
// ops: both give gelu'(x) = Phi(x) + x phi(x), float within 2 ulp or 1e-7 of the double one;
// the unary map gives the limits at +-inf (1, 0), where the formula has inf * 0.
TEST(ElementwiseKernels, GeluBackwardIsItsDerivative) {
  std::vector<double> xs;
  for (int i = -2000; i <= 2000; ++i) xs.push_back(i * 4.1e-3);
  for (double v : {-12.0, -6.0, 0.0, -0.0, 1e-30, 7.5, 30.0}) xs.push_back(v);
  auto ref = [](double v) {
    return 0.5 * (1 + std::erf(v / std::sqrt(2.0))) + v * std::exp(-v * v / 2) / std::sqrt(2 * M_PI);
  };
  for (DType t : {DType::f64, DType::f32}) {
    SCOPED_TRACE(dtype_name(t));
    Tensor x = from_vector(xs, {int64_t(xs.size())}, DType::f64).to(t).requires_grad_();
    Tensor fused = grad({sum(gelu(x))}, {x})[0];
    Tensor recorded = grad({sum(gelu(x))}, {x}, {}, false, /*create_graph=*/true)[0];
    std::vector<double> want;
    for (double v : xs) want.push_back(ref(double(t == DType::f32 ? double(float(v)) : v)));
    Tensor expected = from_vector(want, {int64_t(xs.size())}, DType::f64);
    const double tol = t == DType::f32 ? 2.4e-7 : 1e-15;
    EXPECT_CLOSE_TOL(fused.to(DType::f64), expected, tol, tol);
    EXPECT_CLOSE_TOL(recorded.detach().to(DType::f64), expected, t == DType::f32 ? 1e-6 : 1e-14, tol);
    Tensor ends = from_vector({INFINITY, -INFINITY, NAN}, {3}, DType::f64).to(t).requires_grad_();
    std::vector<double> at_ends = grad({sum(gelu(ends))}, {ends})[0].to(DType::f64).to_vector();
    EXPECT_EQ(at_ends[0], 1.0);
    EXPECT_EQ(at_ends[1], 0.0);
    EXPECT_TRUE(std::isnan(at_ends[2]));
  }
}

// The same element gets the same bits wherever it sits in the array (vector body or
// remainder) and whatever the thread count.
TEST(ElementwiseKernels, ResultsDoNotDependOnPositionOrThreads) {
  const int saved = omp_get_max_threads();
  Philox gen(9);
  Tensor x = randn({100003}, DType::f32, Device::cpu, &gen);
  Tensor (*ops[])(const Tensor&) = {exp, tanh, sigmoid, silu, erf, gelu};
  for (auto op : ops) {
    Tensor y = op(x);
    for (int64_t off : {1, 3, 7, 13}) EXPECT_TRUE(same_bits(op(slice(x, 0, off, off + 40)), slice(y, 0, off, off + 40)));
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      EXPECT_TRUE(same_bits(op(x), y)) << threads << " threads";
    }
    omp_set_num_threads(saved);
  }
  Tensor a = randn({64, 3, 40, 41}, DType::f32, Device::cpu, &gen);
  Tensor b = randn({3, 1, 41}, DType::f32, Device::cpu, &gen);
  Tensor ab = a * b, fl = flip(a, {1, 3});
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    EXPECT_TRUE(same_bits(a * b, ab)) << threads << " threads";
    EXPECT_TRUE(same_bits(flip(a, {1, 3}), fl)) << threads << " threads";
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace fpa::test
