// test_reduce.cpp: sum, mean, max, var, norm, softmax, group_norm and the losses: forward
// against loops, keepdim shapes; the CPU kernels' paths (innermost dim reduced or kept, size-1
// dims, few large outputs, wide softmax) against reference loops, their float32 accuracy and
// their independence of the thread count; the softmax backward primitive the same way. Their
// op cases: tests/op_cases/reduce_cases.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>

#include "autograd/philox.h"
#include "ops/backend/backend.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

Tensor t234() {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = std::sin(1.3 * i) * 3;
  return from_vector(v, {2, 3, 4}, DType::f64);
}

TEST(Reduce, SumMeanMaxMatchLoops) {
  Tensor x = t234();
  std::vector<double> v = x.to_vector();
  std::vector<double> s(3, 0), m(3, -1e300);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) s[b] += v[a * 12 + b * 4 + c], m[b] = std::max(m[b], v[a * 12 + b * 4 + c]);
  EXPECT_CLOSE(sum(x, {0, 2}), from_vector(s, {3}, DType::f64));
  EXPECT_EQ(sum(x, {0, 2}, true).shape(), Shape({1, 3, 1}));
  EXPECT_CLOSE(mean(x, {0, -1}), from_vector({s[0] / 8, s[1] / 8, s[2] / 8}, {3}, DType::f64));
  EXPECT_CLOSE(max(x, {2, 0}), from_vector(m, {3}, DType::f64));
  double total = 0;
  for (double e : v) total += e;
  EXPECT_NEAR(sum(x).item(), total, 1e-12);
  EXPECT_EQ(sum(x).shape().ndim, 0);
}

TEST(Reduce, VarNormSoftmax) {
  Tensor x = from_vector({1, 2, 3, 4, 6, 8}, {2, 3}, DType::f64);
  EXPECT_CLOSE(var(x, {1}), from_vector({2.0 / 3, 8.0 / 3}, {2}, DType::f64));
  EXPECT_CLOSE(norm(x, {1}), from_vector({std::sqrt(14.0), std::sqrt(116.0)}, {2}, DType::f64));
  std::vector<double> sm = softmax(x, 1).to_vector();
  double z = std::exp(1) + std::exp(2) + std::exp(3);
  EXPECT_NEAR(sm[0], std::exp(1) / z, 1e-12);
  EXPECT_NEAR(sm[2], std::exp(3) / z, 1e-12);
  // Large logits are max-subtracted (no overflow).
  std::vector<double> big = softmax(from_vector({1000, 1001}, {2}, DType::f64), 0).to_vector();
  EXPECT_NEAR(big[1], 1 / (1 + std::exp(-1.0)), 1e-12);
}

TEST(Reduce, MaxTiesShareTheGradient) {
  Tensor x = from_vector({1, 3, 3, 0}, {4}, DType::f64).requires_grad_();
  backward(max(x));
  EXPECT_CLOSE(x.grad(), from_vector({0, 0.5, 0.5, 0}, {4}, DType::f64));
}

// d||x||/dx = x / ||x||, and 0 (not NaN) for a row that is all zeros, as in PyTorch; also
// recorded for a second derivative (what the gradient penalty takes of a zero gradient).
TEST(Reduce, NormGradientIsZeroWhereTheNormIsZero) {
  Tensor x = from_vector({0, 0, 0, 1, 2, 2}, {2, 3}, DType::f64).requires_grad_();
  Tensor w = from_vector({0, 0, 0, 1, 1, 1}, {2, 3}, DType::f64).requires_grad_();
  Tensor penalty = sum(square(add_scalar(norm(mul(x, w), {1}), -1.0)));
  std::vector<Tensor> g = grad({penalty}, {x}, {}, true, true);
  EXPECT_CLOSE(g[0], from_vector({0, 0, 0, 4.0 / 3, 8.0 / 3, 8.0 / 3}, {2, 3}, DType::f64));
  backward(sum(g[0]));
  for (double v : w.grad().to_vector()) EXPECT_TRUE(std::isfinite(v));
}

TEST(Reduce, GroupNormNormalisesEachGroup) {
  Tensor x = randn({2, 4, 3, 3}, DType::f64);
  Tensor y = reshape(group_norm(x, 2, Tensor(), Tensor(), 0.0), {2, 2, 18});
  EXPECT_CLOSE_TOL(mean(y, {2}), zeros({2, 2}, DType::f64), 1e-12, 0);
  EXPECT_CLOSE_TOL(var(y, {2}), ones({2, 2}, DType::f64), 1e-10, 0);
}

TEST(Reduce, LossesMatchFormulas) {
  Tensor a = from_vector({1, 2, 3}, {3}, DType::f64), b = from_vector({1, 0, 5}, {3}, DType::f64);
  EXPECT_NEAR(mse_loss(a, b).item(), (0 + 4 + 4) / 3.0, 1e-12);
  Tensor l = from_vector({-2, 0.5, -0.5}, {3}, DType::f64);
  EXPECT_NEAR(hinge_real(l).item(), (0 + 1.5 + 0.5) / 3, 1e-12);
  EXPECT_NEAR(hinge_fake(l).item(), (3 + 0.5 + 1.5) / 3, 1e-12);
}

TEST(Reduce, BadAxesRaiseNamedErrors) {
  EXPECT_ERROR(sum(zeros({2, 3}), {2}), "sum: axis 2 out of range for shape (2, 3)");
  EXPECT_ERROR(softmax(zeros({2, 3}), -3), "softmax: axis -3 out of range");
  EXPECT_ERROR(max(zeros({2, 3}), {1, 1}), "max: repeated axis");
  EXPECT_ERROR(group_norm(zeros({2, 6, 4}), 4, Tensor(), Tensor()), "group_norm: 6 channels");
  EXPECT_ERROR(mse_loss(zeros({2, 3}), zeros({3})), "mse_loss: input (2, 3) and target (3) differ");
}

// ---- CPU kernel paths ----

// Sum (in long double) and max of x over the axes in `mask`, by index math; also the sum of |x|.
struct RefReduce {
  std::vector<double> sum, max, abs_sum;
};
RefReduce reduce_by_index(const Tensor& x, unsigned mask) {
  const Shape& s = x.shape();
  std::vector<double> v = x.to_vector();
  int64_t n_out = 1;
  for (int d = 0; d < s.ndim; ++d)
    if (!(mask >> d & 1u)) n_out *= s[d];
  std::vector<long double> sum(n_out, 0), abs_sum(n_out, 0);
  RefReduce r;
  r.max.assign(n_out, -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < s.numel(); ++i) {
    int64_t rem = i, o = 0, scale = 1;
    for (int d = s.ndim - 1; d >= 0; --d) {
      int64_t k = rem % s[d];
      rem /= s[d];
      if (!(mask >> d & 1u)) o += k * scale, scale *= s[d];
    }
    sum[o] += v[i], abs_sum[o] += std::fabs(v[i]), r.max[o] = std::max(r.max[o], v[i]);
  }
  r.sum.assign(sum.begin(), sum.end());
  r.abs_sum.assign(abs_sum.begin(), abs_sum.end());
  return r;
}

// Every axis subset of shapes with size-1 dims, odd sizes, long rows and many short ones,
// in both dtypes: max exactly, sums within a few ulps of the result (double accumulation).
TEST(ReduceKernels, EveryAxisSubsetMatchesReference) {
  Philox gen(21);
  for (Shape s : {Shape{2, 3, 4, 5}, Shape{1, 7, 1, 9}, Shape{4, 1, 6}, Shape{5, 33, 17}, Shape{3, 2, 1, 4, 5},
                  Shape{2, 700, 3}, Shape{300, 2, 40}, Shape{9000}, Shape{2, 5000}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor x = randn(s, dt, Device::cpu, &gen);
      for (unsigned mask = 1; mask < (1u << s.ndim); ++mask) {
        Axes axes;
        for (int d = 0; d < s.ndim; ++d)
          if (mask >> d & 1u) axes.push_back(d);
        SCOPED_TRACE(::testing::Message() << s << " mask " << mask << (dt == DType::f32 ? " f32" : " f64"));
        RefReduce r = reduce_by_index(x, mask);
        std::vector<double> sm = sum(x, axes).to_vector(), mx = max(x, axes).to_vector();
        ASSERT_EQ(sm.size(), r.sum.size());
        double eps = dt == DType::f32 ? 6e-8 : 1.2e-16;
        for (size_t o = 0; o < sm.size(); ++o) {
          EXPECT_EQ(mx[o], r.max[o]) << "max, output " << o;
          EXPECT_LE(std::fabs(sm[o] - r.sum[o]), eps * std::fabs(r.sum[o]) + 1e-15 * r.abs_sum[o]) << "sum, output " << o;
        }
      }
    }
  }
}

// Float32 data is summed in double: 2^20 copies of 0.1f give the exact product, rounded once
// (a float running sum ends near 100958 instead of 104857.6).
TEST(ReduceKernels, Float32SumsAreAccurate) {
  const float expect = float(1048576 * double(0.1f));
  EXPECT_EQ(sum(full({1 << 20}, 0.1, DType::f32)).item(), expect);
  EXPECT_EQ(sum(full({1 << 18, 4}, 0.1, DType::f32), {0}).to_vector()[3], float(262144 * double(0.1f)));
  EXPECT_EQ(sum(full({4, 1 << 18, 1}, 0.1, DType::f32), {1}).to_vector()[2], float(262144 * double(0.1f)));
}

// Empty reductions give the identity; max gives NaN for a NaN reduced, as PyTorch's
// (tests/test_nan_propagation.cpp).
TEST(ReduceKernels, EmptyAndNanFollowTheContract) {
  const Backend& be = backend(Device::cpu);
  float x[6] = {1, std::nanf(""), 3, std::nanf(""), std::nanf(""), -2}, y[3] = {7, 7, 7};
  be.reduce(DType::f32, ReduceOp::max, Shape({2, 3}), 0b10, x, y);
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_TRUE(std::isnan(y[1]));
  be.reduce(DType::f32, ReduceOp::sum, Shape({3, 0}), 0b10, x, y);
  EXPECT_TRUE(y[0] == 0 && y[1] == 0 && y[2] == 0);
  be.reduce(DType::f32, ReduceOp::max, Shape({3, 0}), 0b10, x, y);
  EXPECT_TRUE(std::isinf(y[0]) && y[0] < 0 && std::isinf(y[2]));
}

// Softmax over a wide middle axis (more columns than one block) and a last axis of odd
// length, against the formula in long double.
TEST(ReduceKernels, SoftmaxPathsMatchFormula) {
  Philox gen(4);
  for (auto [s, axis] : std::vector<std::pair<Shape, int>>{{{2, 5, 1100}, 1}, {{3, 37}, 1}, {{6, 9, 3}, 1}, {{4, 2, 100}, 2}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      Tensor x = mul_scalar(randn(s, dt, Device::cpu, &gen), 4.0);
      std::vector<double> v = x.to_vector(), y = softmax(x, axis).to_vector();
      int64_t dim = s[axis], inner = 1, outer = 1;
      for (int d = axis + 1; d < s.ndim; ++d) inner *= s[d];
      for (int d = 0; d < axis; ++d) outer *= s[d];
      // x - max is rounded to the dtype first, as the kernel does (for float that rounding
      // alone moves exp by up to |x - max| * 6e-8).
      auto shifted = [&](double xv, double m) { return dt == DType::f32 ? double(float(xv - m)) : xv - m; };
      double worst = 0;
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          double m = -INFINITY;
          long double z = 0;
          for (int64_t j = 0; j < dim; ++j) m = std::max(m, v[(o * dim + j) * inner + i]);
          for (int64_t j = 0; j < dim; ++j) z += std::exp((long double)shifted(v[(o * dim + j) * inner + i], m));
          for (int64_t j = 0; j < dim; ++j) {
            int64_t k = (o * dim + j) * inner + i;
            long double ref = std::exp((long double)shifted(v[k], m)) / z;
            worst = std::max(worst, double(std::fabs(y[k] - ref) / ref));
          }
        }
      EXPECT_LE(worst, dt == DType::f32 ? 4e-7 : 1e-14) << s << " axis " << axis;
    }
  }
}

// The backward primitive dx = y (g - sum_j g y), and with u dx = u (g - s) - g t (s = sum g y,
// t = sum u y), on the same paths, against the formula in long double, per element within a
// bound scaled by the terms' sizes (the rounding of s and t, which scales with sum |g y| and
// sum |u y|, not with |s| and |t|, since the sums may cancel; the differences and the products),
// and against the recorded composed ops that create_graph differentiates.
TEST(ReduceKernels, SoftmaxBackwardPathsMatchFormula) {
  Philox gen(5);
  const Backend& be = backend(Device::cpu);
  for (auto [s, axis] : std::vector<std::pair<Shape, int>>{
           {{2, 5, 1100}, 1}, {{3, 37}, 1}, {{6, 9, 3}, 1}, {{4, 2, 100}, 2}, {{5, 7}, 1}}) {
    for (DType dt : {DType::f64, DType::f32}) {
      for (bool with_u : {false, true}) {
        SCOPED_TRACE(with_u ? "with u" : "without u");
        Tensor y = softmax(mul_scalar(randn(s, dt, Device::cpu, &gen), 3.0), axis);
        Tensor g = randn(s, dt, Device::cpu, &gen), u = randn(s, dt, Device::cpu, &gen);
        Tensor dx = empty(s, dt, Device::cpu);
        int64_t dim = s[axis], inner = 1, outer = 1;
        for (int d = axis + 1; d < s.ndim; ++d) inner *= s[d];
        for (int d = 0; d < axis; ++d) outer *= s[d];
        be.softmax_backward(dt, outer, dim, inner, y.data(), g.data(), with_u ? u.data() : nullptr, dx.data());
        std::vector<double> yv = y.to_vector(), gv = g.to_vector(), uv = u.to_vector(), got = dx.to_vector();
        double worst = 0;
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            long double sg = 0, su = 0, sg_terms = 0, su_terms = 0;  // the sums and their terms' sizes
            for (int64_t j = 0; j < dim; ++j) {
              const int64_t k = (o * dim + j) * inner + i;
              sg += (long double)yv[k] * gv[k], su += (long double)uv[k] * yv[k];
              sg_terms += std::fabs((long double)yv[k] * gv[k]), su_terms += std::fabs((long double)uv[k] * yv[k]);
            }
            for (int64_t j = 0; j < dim; ++j) {
              const int64_t k = (o * dim + j) * inner + i;
              const double a = with_u ? uv[k] : yv[k];
              long double ref = a * (gv[k] - sg) - (with_u ? gv[k] * su : 0);
              double scale = std::fabs(a) * (std::fabs(gv[k]) + double(sg_terms)) +
                             (with_u ? std::fabs(gv[k]) * double(su_terms) : 0.0);
              worst = std::max(worst, double(std::fabs(got[k] - ref) / scale));
            }
          }
        EXPECT_LE(worst, dt == DType::f32 ? 2.5e-7 : 1e-15) << s << " axis " << axis;
        Tensor s_g = sum(mul(g, y), {axis}, true);
        Tensor composed = with_u ? sub(mul(u, sub(g, s_g)), mul(g, sum(mul(u, y), {axis}, true))) : mul(y, sub(g, s_g));
        EXPECT_CLOSE_SCALED(dx, composed, dt == DType::f32 ? 1e-6 : 1e-14, 0);
      }
    }
  }
}

// Outputs are accumulated in an order fixed by the shape: 1, 2, 3 threads give the same bits
// (training resume and the random-number tests rely on it).
TEST(ReduceKernels, ResultsDoNotDependOnThreadCount) {
  const int saved = omp_get_max_threads();
  Philox gen(8);
  Tensor a = randn({32, 64, 16, 16}, DType::f32, Device::cpu, &gen);  // bias-gradient pattern
  Tensor b = randn({3, 70000}, DType::f32, Device::cpu, &gen);        // fewer outputs than threads
  Tensor c = randn({300001}, DType::f64, Device::cpu, &gen);          // one output
  Tensor d = randn({4096, 65}, DType::f32, Device::cpu, &gen);        // innermost kept
  Tensor e = randn({16, 40, 700}, DType::f32, Device::cpu, &gen);
  Tensor f = randn({8, 9, 1000}, DType::f32, Device::cpu, &gen);
  auto softmax_backward = [](const Tensor& y, int axis) {  // the primitive, through autograd
    Tensor x = y.detach().requires_grad_(true);
    return grad({sum(mul(softmax(x, axis), y))}, {x})[0];
  };
  auto softmax_second_order = [](const Tensor& y, int axis) {  // the primitive with u
    Tensor x = y.detach().requires_grad_(true);
    Tensor g = grad({sum(mul(softmax(x, axis), y))}, {x}, {}, true, true)[0];
    return grad({sum(mul(g, y))}, {x})[0];
  };
  auto all = [&] {
    return std::vector<Tensor>{sum(a, {0, 2, 3}), sum(b, {1}), max(b, {1}), sum(c), sum(d, {0}), max(d, {0}),
                               sum(e, {0, 2}), sum(e, {1}), max(e, {0, 2}), softmax(d, -1), softmax(f, 1),
                               softmax_backward(d, -1), softmax_backward(f, 1), softmax_second_order(d, -1),
                               softmax_second_order(f, 1)};
  };
  omp_set_num_threads(1);
  std::vector<Tensor> ref = all();
  for (int threads : {2, 3}) {
    omp_set_num_threads(threads);
    std::vector<Tensor> got = all();
    for (size_t i = 0; i < ref.size(); ++i) EXPECT_TRUE(same_bits(got[i], ref[i])) << "case " << i << ", " << threads << " threads";
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace fpa::test
