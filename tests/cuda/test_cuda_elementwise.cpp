// test_cuda_elementwise.cpp: unary, binary and copy_strided on CUDA against the CPU: every
// UnaryOp and BinaryOp in float32 and float64, on odd, large and empty sizes, NaN and
// infinities, broadcast (0) and negative (flip) strides, 5-d spaces, windows of a larger
// destination. Binary maps and copies are exact IEEE operations: they must agree bit for bit.
#include <cmath>

#include "ops/op_util.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

// The element `offset` of a buffer on one device, as a raw pointer.
char* at(const Buffers& b, Device d, int64_t offset) {
  return static_cast<char*>(b.on(d)) + offset * int64_t(dtype_size(b.host.dtype()));
}

// ---- unary

struct UnaryCase {
  const char* name;
  UnaryOp op;
  double lo, hi;  // input range
  double a, b;    // the op's parameters
};

const UnaryCase kUnaryCases[] = {
    {"neg", UnaryOp::neg, -4, 4, 0, 0},
    {"exp", UnaryOp::exp, -10, 10, 0, 0},
    {"log", UnaryOp::log, 1e-3, 100, 0, 0},
    {"sqrt", UnaryOp::sqrt, 0, 100, 0, 0},
    {"rsqrt", UnaryOp::rsqrt, 1e-3, 100, 0, 0},
    {"abs", UnaryOp::abs, -4, 4, 0, 0},
    {"sign", UnaryOp::sign, -4, 4, 0, 0},
    {"square", UnaryOp::square, -4, 4, 0, 0},
    {"tanh", UnaryOp::tanh, -6, 6, 0, 0},
    {"sigmoid", UnaryOp::sigmoid, -20, 20, 0, 0},
    {"relu", UnaryOp::relu, -4, 4, 0, 0},
    {"erf", UnaryOp::erf, -5, 5, 0, 0},
    {"leaky_relu", UnaryOp::leaky_relu, -4, 4, 0.2, 0},
    {"leaky_relu_grad", UnaryOp::leaky_relu_grad, -4, 4, 0.2, 0},
    {"silu", UnaryOp::silu, -20, 20, 0, 0},
    {"gelu", UnaryOp::gelu, -6, 6, 0, 0},
    {"gelu_grad", UnaryOp::gelu_grad, -6, 6, 0, 0},
    {"pow", UnaryOp::pow, 0.01, 4, 2.5, 0},
    {"pow_negative_exponent", UnaryOp::pow, 0.1, 4, -1.5, 0},
    {"pow_integer_exponent_negative_base", UnaryOp::pow, -3, 3, 3, 0},
    {"clamp", UnaryOp::clamp, -2, 2, -0.5, 0.7},
    {"affine", UnaryOp::affine, -4, 4, 1.5, -0.25},
    {"gt_mask", UnaryOp::gt_mask, -1, 1, 0.1, 0},
    {"inside_mask", UnaryOp::inside_mask, -1, 1, -0.3, 0.6},
};

// One ulp or two of libm differences (CUDA's math library against glibc's).
Tolerance unary_tolerance(DType t) { return t == DType::f32 ? Tolerance{1e-6, 4e-6} : Tolerance{1e-15, 2e-14}; }

TEST(CudaUnary, EveryOpMatchesTheCpu) {
  REQUIRE_CUDA();
  std::vector<int64_t> sizes = {1, 1000, 4097};
  if (large_cases()) sizes.push_back((1 << 22) + 5);
  for (const UnaryCase& c : kUnaryCases)
    for (DType t : kDtypes)
      for (int64_t n : sizes)
        run_case(std::string("unary ") + c.name + " " + dtype_label(t) + " n=" + std::to_string(n), [&] {
          Buffers x = uniform({n}, t, 7 * n + 1, c.lo, c.hi);
          Buffers y = filled({n}, t);
          on_both([&](Device d) { backend(d).unary(t, c.op, n, c.a, c.b, x.on(d), y.on(d)); });
          EXPECT_MATCH(y, unary_tolerance(t));
        });
}

TEST(CudaUnary, SpecialValuesMatchTheCpu) {
  REQUIRE_CUDA();
  const double inf = INFINITY, nan = NAN;
  const std::vector<double> finite = {0.0, -0.0, 1e-30, -1e-30, 1e-3, -1e-3, 30.0, -30.0, 88.8, -104.0, 1e30, -1e30};
  for (const UnaryCase& c : kUnaryCases)
    for (DType t : kDtypes)
      run_case(std::string("unary ") + c.name + " special values " + dtype_label(t), [&] {
        std::vector<double> v = finite;
        v.push_back(nan);
        // x / (1 + exp(-x)) at -inf is -inf in the CPU's float kernel, NaN elsewhere: not compared.
        if (c.op != UnaryOp::silu) v.insert(v.end(), {inf, -inf});
        if (c.op == UnaryOp::log || c.op == UnaryOp::sqrt || c.op == UnaryOp::rsqrt || c.op == UnaryOp::pow) {
          for (double& e : v) e = std::abs(e);  // the domain (NaN stays)
        }
        const int64_t n = int64_t(v.size());
        Buffers x = from_values(v, {n}, t);
        Buffers y = filled({n}, t);
        on_both([&](Device d) { backend(d).unary(t, c.op, n, c.a, c.b, x.on(d), y.on(d)); });
        EXPECT_MATCH(y, unary_tolerance(t));
      });
}

// NaN in, NaN out of every map but those PyTorch answers with a number: the masks and sign
// (comparisons with NaN are false: 0) and leaky_relu_grad (the slope: x > 0 is false), on
// both devices (relu used to map NaN to 0 on both).
TEST(CudaUnary, NanPropagatesAsInPyTorch) {
  REQUIRE_CUDA();
  for (const UnaryCase& c : kUnaryCases)
    for (DType t : kDtypes)
      run_case(std::string("unary ") + c.name + " of NaN " + dtype_label(t), [&] {
        Buffers x = from_values({NAN, 1.0, NAN}, {3}, t);
        Buffers y = filled({3}, t, 0.0);
        on_both([&](Device d) { backend(d).unary(t, c.op, 3, c.a, c.b, x.on(d), y.on(d)); });
        EXPECT_MATCH(y, unary_tolerance(t));
        const bool number = c.op == UnaryOp::gt_mask || c.op == UnaryOp::inside_mask || c.op == UnaryOp::sign ||
                            c.op == UnaryOp::leaky_relu_grad;
        for (const Tensor& out : {y.host, y.device}) {
          const std::vector<double> v = out.to_vector();
          EXPECT_TRUE(std::isnan(v[0]) != number && std::isnan(v[2]) != number && !std::isnan(v[1]))
              << (out.device() == Device::cpu ? "cpu" : "cuda") << ": " << v[0] << " " << v[1] << " " << v[2];
        }
      });
}

TEST(CudaUnary, EmptyIsANoOp) {
  REQUIRE_CUDA();
  run_case("unary n=0", [&] { backend(Device::cuda).unary(DType::f32, UnaryOp::exp, 0, 0, 0, nullptr, nullptr); });
}

// ---- binary

const BinaryOp kBinaryOps[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,
                               BinaryOp::div, BinaryOp::eq_mask, BinaryOp::gt_mask};
const char* binary_name(BinaryOp op) {
  const char* names[] = {"add", "sub", "mul", "div", "eq_mask", "gt_mask"};
  return names[int(op)];
}

// Values on a grid of quarters (so eq_mask finds equal pairs): a in [-2, 2], b in +-[0.25, 2].
Buffers quarters(const Shape& s, DType t, uint64_t seed, bool nonzero) {
  std::vector<double> v = uniform(s, DType::f64, seed, -2, 2).host.to_vector();
  for (double& e : v) {
    e = std::round(e * 4) / 4;
    if (nonzero && e == 0) e = 0.25;
  }
  return from_values(v, s, t);
}

struct BroadcastCase {
  Shape out, a, b;
};

TEST(CudaBinary, BroadcastShapesMatchTheCpuExactly) {
  REQUIRE_CUDA();
  std::vector<BroadcastCase> cases = {
      {{1}, {1}, {1}},
      {{3, 5, 7}, {3, 5, 7}, {3, 5, 7}},
      {{4, 5, 6}, {4, 1, 6}, {1, 5, 1}},
      {{8, 16, 9, 9}, {8, 16, 9, 9}, {1, 16, 1, 1}},  // a bias
      {{2, 3}, {1}, {2, 3}},                          // a scalar
      {{2, 3}, {2, 3}, {1}},
      {{2, 3, 4, 6, 5}, {2, 3, 4, 1, 5}, {1, 3, 1, 6, 5}},  // 5-d
      {{7, 1, 3}, {7, 1, 1}, {1, 1, 3}},
      {{0, 5}, {0, 5}, {1, 5}},  // empty
      {{3, 0, 2}, {3, 1, 2}, {3, 0, 1}},
  };
  if (large_cases()) {
    cases.push_back({{(1 << 21) + 17}, {(1 << 21) + 17}, {(1 << 21) + 17}});
    cases.push_back({{64, 256, 130}, {64, 256, 130}, {256, 1}});
    cases.push_back({{32, 1, 300, 300}, {32, 1, 300, 300}, {1, 1, 1, 300}});
  }
  for (const BroadcastCase& c : cases)
    for (BinaryOp op : kBinaryOps)
      for (DType t : kDtypes)
        run_case(std::string("binary ") + binary_name(op) + " " + dtype_label(t) + " " + c.a.str() + " , " + c.b.str() +
                     " -> " + c.out.str(),
                 [&] {
                   Buffers a = quarters(c.a, t, 3, false), b = quarters(c.b, t, 4, op == BinaryOp::div);
                   Buffers y = filled(c.out, t);
                   const StridedLoop loop = broadcast_loop(c.out, c.a, c.b);
                   on_both([&](Device d) { backend(d).binary(t, op, loop, a.on(d), b.on(d), y.on(d)); });
                   EXPECT_IDENTICAL(y);
                 });
}

TEST(CudaBinary, NegativeAndZeroStridesMatchTheCpuExactly) {
  REQUIRE_CUDA();
  for (BinaryOp op : kBinaryOps)
    for (DType t : kDtypes) {
      run_case(std::string("binary ") + binary_name(op) + " " + dtype_label(t) + " a flipped along both axes", [&] {
        Buffers a = quarters({3, 5}, t, 8, false), b = quarters({3, 5}, t, 9, true);
        Buffers y = filled({3, 5}, t);
        StridedLoop L;
        L.ndim = 2;
        L.shape[0] = 3, L.shape[1] = 5;
        L.a_strides[0] = -5, L.a_strides[1] = -1;  // from the last element backwards
        L.b_strides[0] = 5, L.b_strides[1] = 1;
        on_both([&](Device d) { backend(d).binary(t, op, L, at(a, d, 14), b.on(d), y.on(d)); });
        EXPECT_IDENTICAL(y);
      });
      run_case(std::string("binary ") + binary_name(op) + " " + dtype_label(t) + " b a flipped row, broadcast", [&] {
        Buffers a = quarters({4, 6, 7}, t, 10, false), b = quarters({7}, t, 11, true);
        Buffers y = filled({4, 6, 7}, t);
        StridedLoop L;
        L.ndim = 3;
        L.shape[0] = 4, L.shape[1] = 6, L.shape[2] = 7;
        L.a_strides[0] = 42, L.a_strides[1] = 7, L.a_strides[2] = 1;
        L.b_strides[0] = 0, L.b_strides[1] = 0, L.b_strides[2] = -1;
        on_both([&](Device d) { backend(d).binary(t, op, L, a.on(d), at(b, d, 6), y.on(d)); });
        EXPECT_IDENTICAL(y);
      });
    }
}

// ---- copy_strided

struct CopyCase {
  std::string label;
  StridedLoop loop;
  int64_t src_elems, dst_elems;    // buffer sizes
  int64_t src_offset, dst_offset;  // where the loop starts in each
};

// src (shape) permuted by `order` into a contiguous dst.
CopyCase permute_case(const Shape& s, const std::vector<int>& order) {
  CopyCase c;
  c.label = "permute " + s.str();
  StridedLoop& L = c.loop;
  L.ndim = s.ndim;
  std::vector<int64_t> st = s.strides();
  Shape out = s;
  for (int i = 0; i < s.ndim; ++i) out[i] = s[order[i]];
  std::vector<int64_t> ost = out.strides();
  for (int i = 0; i < s.ndim; ++i) L.shape[i] = out[i], L.a_strides[i] = st[order[i]], L.b_strides[i] = ost[i];
  c.src_elems = c.dst_elems = s.numel();
  c.src_offset = c.dst_offset = 0;
  return c;
}

// A plain loop over `shape` with the given strides.
CopyCase strided_case(std::string label, const Shape& shape, std::vector<int64_t> a, std::vector<int64_t> b,
                      int64_t src_elems, int64_t dst_elems, int64_t src_offset, int64_t dst_offset) {
  CopyCase c;
  c.label = std::move(label);
  c.loop.ndim = shape.ndim;
  for (int i = 0; i < shape.ndim; ++i)
    c.loop.shape[i] = shape[i], c.loop.a_strides[i] = a[i], c.loop.b_strides[i] = b[i];
  c.src_elems = src_elems, c.dst_elems = dst_elems, c.src_offset = src_offset, c.dst_offset = dst_offset;
  return c;
}

TEST(CudaCopyStrided, PermuteFlipExpandWindowMatchTheCpuExactly) {
  REQUIRE_CUDA();
  std::vector<CopyCase> cases = {
      permute_case({2, 3, 4, 5}, {0, 2, 3, 1}),
      permute_case({2, 3, 1, 4, 5}, {4, 2, 0, 3, 1}),
      permute_case({7}, {0}),
      permute_case({1, 1}, {1, 0}),
      // flip of axes 0 and 2 of (3, 4, 5): start at (2, 0, 4)
      strided_case("flip (3, 4, 5) axes 0 2", {3, 4, 5}, {-20, 5, -1}, {20, 5, 1}, 60, 60, 2 * 20 + 4, 0),
      // expand (3, 1, 4) -> (2, 3, 5, 4)
      strided_case("expand (3, 1, 4) to (2, 3, 5, 4)", {2, 3, 5, 4}, {0, 4, 0, 1}, {60, 20, 4, 1}, 12, 120, 0, 0),
      // (3, 4) into the window at (1, 2) of a (5, 7) destination; the rest must stay
      strided_case("window (3, 4) of (5, 7)", {3, 4}, {4, 1}, {7, 1}, 12, 35, 0, 1 * 7 + 2),
      // a (6) row flipped and expanded to (4, 6)
      strided_case("flip and expand (6) to (4, 6)", {4, 6}, {0, -1}, {6, 1}, 6, 24, 5, 0),
      // written backwards: dst[5 - i] = src[i]
      strided_case("destination flipped", {6}, {1}, {-1}, 6, 6, 0, 5),
      strided_case("empty (0, 3)", {0, 3}, {3, 1}, {3, 1}, 1, 1, 0, 0),
  };
  if (large_cases()) {
    cases.push_back(permute_case({257, 1031}, {1, 0}));
    cases.push_back(permute_case({64, 128, 130}, {2, 0, 1}));
    cases.push_back(strided_case("large flip", {1 << 21}, {-1}, {1}, 1 << 21, 1 << 21, (1 << 21) - 1, 0));
  }
  for (const CopyCase& c : cases)
    for (DType t : kDtypes)
      run_case("copy_strided " + c.label + " " + dtype_label(t), [&] {
        Buffers src = uniform({c.src_elems}, t, 21);
        Buffers dst = filled({c.dst_elems}, t, 7.0);
        on_both(
            [&](Device d) { backend(d).copy_strided(t, c.loop, at(src, d, c.src_offset), at(dst, d, c.dst_offset)); });
        EXPECT_IDENTICAL(dst);
      });
}

}  // namespace
}  // namespace fpa::test::cuda
