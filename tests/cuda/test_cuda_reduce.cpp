// test_cuda_reduce.cpp: reduce (sum, max over any mask of dims), softmax and its backward on CUDA against
// the CPU, float32 and float64: every mask of a 4-d shape, size-1 dims, empty reductions,
// NaN in sum and max, and large shapes that take each kernel path (one block per output, split
// reductions, a thread per output, short rows).
#include <cmath>

#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

struct ReduceCase {
  Shape shape;
  unsigned mask;
};

std::string mask_str(unsigned mask, int ndim) {
  std::string s = "{";
  for (int d = 0; d < ndim; ++d)
    if (mask >> d & 1u) s += (s.size() > 1 ? "," : "") + std::to_string(d);
  return s + "}";
}

Shape kept_shape(const Shape& s, unsigned mask) {
  std::vector<int64_t> d;
  for (int i = 0; i < s.ndim; ++i)
    if (!(mask >> i & 1u)) d.push_back(s[i]);
  return d.empty() ? Shape{1} : Shape(d);
}

// Sums round differently in another order: in float64 by up to count * eps * max|x| (|x| <= 1);
// float32 sums are accumulated in double on both sides, so only the final rounding differs.
Tolerance sum_tolerance(DType t, int64_t count) {
  if (t == DType::f32) return {2e-7, 2e-7, true};
  return {1e-15 * double(std::max<int64_t>(count, 16)), 1e-14, false};
}

// The output (row-major over the kept dims) that element `flat` of x goes to.
int64_t output_of(const Shape& s, unsigned mask, int64_t flat) {
  int64_t out = 0, scale = 1;
  for (int d = s.ndim - 1; d >= 0; --d) {
    const int64_t i = flat % s[d];
    flat /= s[d];
    if (mask >> d & 1u) continue;
    out += i * scale;
    scale *= s[d];
  }
  return out;
}

// with_nan: every 7th element of x is NaN, and then both sum and max (as PyTorch's) give NaN
// exactly in the outputs that reduce one of them, on the GPU as on the CPU.
void check_reduce(const ReduceCase& c, DType t, ReduceOp op, bool with_nan) {
  const int64_t count = c.shape.numel() / std::max<int64_t>(1, kept_shape(c.shape, c.mask).numel());
  Buffers x = uniform(c.shape, t, 17 + c.mask, -1, 1);
  std::vector<bool> nan_out(kept_shape(c.shape, c.mask).numel(), false);
  if (with_nan) {
    std::vector<double> v = x.host.to_vector();
    for (size_t i = 0; i < v.size(); i += 7) v[i] = NAN, nan_out[output_of(c.shape, c.mask, int64_t(i))] = true;
    x = from_values(v, c.shape, t);
  }
  Buffers y = filled(kept_shape(c.shape, c.mask), t);
  on_both([&](Device d) { backend(d).reduce(t, op, c.shape, c.mask, x.on(d), y.on(d)); });
  if (op == ReduceOp::max) EXPECT_IDENTICAL(y);
  else EXPECT_MATCH(y, sum_tolerance(t, count));
  const std::vector<double> got = y.device.to_vector();
  for (size_t o = 0; o < got.size(); ++o)
    EXPECT_EQ(std::isnan(got[o]), bool(nan_out[o])) << "output " << o << " = " << got[o];
}

TEST(CudaReduce, EveryMaskOfSmallShapesMatchesTheCpu) {
  REQUIRE_CUDA();
  std::vector<ReduceCase> cases = {{{7}, 1}, {{1}, 1}, {{1}, 0}, {{3, 4}, 0}, {{3, 4}, 1}, {{3, 4}, 2}, {{3, 4}, 3}};
  for (unsigned m = 0; m < 16; ++m) cases.push_back({{2, 3, 4, 5}, m});
  for (unsigned m : {1u, 2u, 5u, 10u, 21u, 31u, 26u}) cases.push_back({{5, 1, 7, 1, 3}, m});
  cases.push_back({{3, 33, 1}, 2});
  for (const ReduceCase& c : cases)
    for (DType t : kDtypes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::max})
        run_case(std::string(op == ReduceOp::sum ? "sum " : "max ") + dtype_label(t) + " " + c.shape.str() + " over " +
                     mask_str(c.mask, c.shape.ndim),
                 [&] { check_reduce(c, t, op, false); });
}

TEST(CudaReduce, LargeShapesTakeEveryKernelPath) {
  REQUIRE_CUDA();
  if (!large_cases()) GTEST_SKIP() << "FPA_CUDA_TEST_SMALL";
  const std::vector<ReduceCase> cases = {
      {{(1 << 22) + 3}, 1},    // one output, split into many blocks
      {{64, 100000}, 2},       // rows, few outputs, split
      {{100000, 64}, 2},       // rows, many outputs
      {{1000000, 3}, 2},       // short rows: a thread per output
      {{64, 100000}, 1},       // columns, few outputs: split down the rows
      {{100000, 64}, 1},       // columns
      {{32, 64, 33, 33}, 13},  // (B, C, H, W) over B, H, W: a bias gradient
      {{32, 64, 33, 33}, 2},   // over C: a channel norm
      {{4096, 4096}, 3},       // everything
      {{8, 3, 50000, 2}, 5},   // reduced dims apart, innermost kept
  };
  for (const ReduceCase& c : cases)
    for (DType t : kDtypes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::max})
        run_case(std::string(op == ReduceOp::sum ? "sum " : "max ") + dtype_label(t) + " " + c.shape.str() + " over " +
                     mask_str(c.mask, c.shape.ndim),
                 [&] { check_reduce(c, t, op, false); });
}

TEST(CudaReduce, MaxAndSumKeepNan) {
  REQUIRE_CUDA();
  for (const ReduceCase& c : std::vector<ReduceCase>{{{40, 30}, 1}, {{40, 30}, 2}, {{6, 5, 4}, 5}, {{1000}, 1}})
    for (DType t : kDtypes)
      for (ReduceOp op : {ReduceOp::sum, ReduceOp::max})
        run_case(std::string(op == ReduceOp::sum ? "sum " : "max ") + dtype_label(t) + " with NaN " + c.shape.str() +
                     " over " + mask_str(c.mask, c.shape.ndim),
                 [&] { check_reduce(c, t, op, true); });
}

TEST(CudaReduce, EmptyReductionsGiveTheIdentity) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max}) {
      run_case(std::string("empty reduction ") + dtype_label(t), [&] {
        const Shape xs = {3, 0};
        Buffers x = filled(xs, t);
        Buffers y = filled({3}, t);
        on_both([&](Device d) { backend(d).reduce(t, op, xs, 2u, x.on(d), y.on(d)); });
        EXPECT_IDENTICAL(y);  // 0 or -inf
      });
      run_case(std::string("no outputs ") + dtype_label(t), [&] {
        backend(Device::cuda).reduce(t, op, Shape{0, 4}, 2u, nullptr, nullptr);
      });
    }
}

// ---- softmax

struct SoftmaxCase {
  int64_t outer, dim, inner;
};

TEST(CudaSoftmax, MatchesTheCpu) {
  REQUIRE_CUDA();
  std::vector<SoftmaxCase> cases = {{1, 1, 1},     {3, 7, 1}, {5, 1000, 1}, {4, 9, 256},  {2, 3, 1000},
                                    {1000, 33, 1}, {7, 5, 3}, {2, 1, 5},    {1, 4097, 1}, {0, 3, 1}};
  if (large_cases()) {
    cases.push_back({1, 100000, 1});
    cases.push_back({8192, 512, 1});
    cases.push_back({64, 64, 4096});
  }
  for (const SoftmaxCase& c : cases)
    for (DType t : kDtypes)
      for (double range : {1.0, 60.0})  // 60: exp would overflow without the max subtracted
        run_case("softmax " + std::string(dtype_label(t)) + " (" + std::to_string(c.outer) + ", " +
                     std::to_string(c.dim) + ", " + std::to_string(c.inner) + ") range " + std::to_string(range),
                 [&] {
                   const Shape s = {c.outer, c.dim, c.inner};
                   Buffers x = uniform(s, t, 31, -range, range);
                   Buffers y = filled(s, t);
                   on_both([&](Device d) { backend(d).softmax(t, c.outer, c.dim, c.inner, x.on(d), y.on(d)); });
                   EXPECT_MATCH(y, t == DType::f32 ? Tolerance{1e-7, 1e-5} : Tolerance{1e-16, 1e-13});
                 });
}

// A NaN (or an infinity: inf - inf) in x makes its whole softmax row NaN, as in PyTorch, and
// nothing else: rows of a warp, and columns.
TEST(CudaSoftmax, NanFillsItsRow) {
  REQUIRE_CUDA();
  for (const SoftmaxCase& c : std::vector<SoftmaxCase>{{3, 7, 1}, {2, 40, 1}, {4, 9, 5}})
    for (DType t : kDtypes)
      for (double bad : {double(NAN), double(INFINITY)})
        run_case("softmax with " + std::to_string(bad) + " " + dtype_label(t) + " (" + std::to_string(c.outer) + ", " +
                     std::to_string(c.dim) + ", " + std::to_string(c.inner) + ")",
                 [&] {
                   const Shape s = {c.outer, c.dim, c.inner};
                   std::vector<double> v = uniform(s, t, 32).host.to_vector();
                   const int64_t o = 1, j = c.dim - 2, col = c.inner - 1;  // the bad element's place
                   v[(o * c.dim + j) * c.inner + col] = bad;
                   Buffers x = from_values(v, s, t), y = filled(s, t);
                   on_both([&](Device d) { backend(d).softmax(t, c.outer, c.dim, c.inner, x.on(d), y.on(d)); });
                   EXPECT_MATCH(y, t == DType::f32 ? Tolerance{1e-7, 1e-5} : Tolerance{1e-16, 1e-13});
                   const std::vector<double> got = y.device.to_vector();
                   for (int64_t i = 0; i < s.numel(); ++i) {
                     const bool in_row = i / (c.dim * c.inner) == o && i % c.inner == col;
                     EXPECT_EQ(std::isnan(got[i]), in_row) << "element " << i << " = " << got[i];
                   }
                 });
}

// The backward primitive dx = y (g - sum_j g y), and with u (the second order's term)
// dx = u (g - sum g y) - g sum u y: y positive with sums near 1, as a softmax's.
TEST(CudaSoftmax, BackwardMatchesTheCpu) {
  REQUIRE_CUDA();
  std::vector<SoftmaxCase> cases = {{1, 1, 1},     {3, 7, 1}, {5, 1000, 1}, {4, 9, 256},  {2, 3, 1000},
                                    {1000, 33, 1}, {7, 5, 3}, {2, 1, 5},    {1, 4097, 1}, {0, 3, 1}};
  if (large_cases()) {
    cases.push_back({8192, 512, 1});
    cases.push_back({64, 64, 4096});
  }
  for (const SoftmaxCase& c : cases)
    for (DType t : kDtypes)
      for (bool with_u : {false, true})
        run_case("softmax_backward " + std::string(dtype_label(t)) + (with_u ? " with u" : "") + " (" +
                     std::to_string(c.outer) + ", " + std::to_string(c.dim) + ", " + std::to_string(c.inner) + ")",
                 [&] {
                   const Shape s = {c.outer, c.dim, c.inner};
                   Buffers y = uniform(s, t, 41, 0.0, 2.0 / double(c.dim)), g = uniform(s, t, 42);
                   Buffers u = uniform(s, t, 43), dx = filled(s, t);
                   on_both([&](Device d) {
                     backend(d).softmax_backward(t, c.outer, c.dim, c.inner, y.on(d), g.on(d),
                                                 with_u ? u.on(d) : nullptr, dx.on(d));
                   });
                   EXPECT_MATCH(dx, t == DType::f32 ? Tolerance{1e-6, 1e-5} : Tolerance{1e-15, 1e-13});
                 });
}

}  // namespace
}  // namespace fpa::test::cuda
