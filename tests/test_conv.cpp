// test_conv.cpp: conv2d, conv_transpose2d, conv2d_weight_grad, unfold and fold: values and
// gradients against direct float64 loops (strides, padding, groups, depthwise, 1x1, both
// threading paths), float32 against float64, error messages. The op cases of every op of the
// family: tests/op_cases/conv_cases.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <sstream>

#include "autograd/philox.h"
#include "ops/backend/cpu/cpu_kernels.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// ---- direct-loop references in float64

// Row-major index into a 4-d shape.
struct Dims4 {
  int64_t n, c, h, w;
  explicit Dims4(const Shape& s) : n(s[0]), c(s[1]), h(s[2]), w(s[3]) {}
  int64_t at(int64_t i, int64_t j, int64_t k, int64_t l) const { return ((i * c + j) * h + k) * w + l; }
};

bool inside(int64_t i, int64_t n) { return i >= 0 && i < n; }

// Padding of the rows (h) and of the columns (w); one number pads both.
struct Pad {
  int64_t h, w;
  Pad(int64_t both) : h(both), w(both) {}
  Pad(int64_t rows, int64_t cols) : h(rows), w(cols) {}
};

// y[n, co, oh, ow] = sum over the group's input channels and the kernel of x * w.
Tensor ref_conv2d(const Tensor& x, const Tensor& w, int64_t s, Pad p, int64_t groups) {
  Dims4 X(x.shape()), K(w.shape());
  const int64_t OH = (X.h + 2 * p.h - K.h) / s + 1, OW = (X.w + 2 * p.w - K.w) / s + 1, cog = K.n / groups;
  Shape ys{X.n, K.n, OH, OW};
  Dims4 Y(ys);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), yv(ys.numel(), 0.0);
  for (int64_t n = 0; n < X.n; ++n)
    for (int64_t co = 0; co < K.n; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = 0;
          for (int64_t cl = 0; cl < K.c; ++cl)
            for (int64_t kh = 0; kh < K.h; ++kh)
              for (int64_t kw = 0; kw < K.w; ++kw) {
                int64_t ih = oh * s - p.h + kh, iw = ow * s - p.w + kw;
                if (inside(ih, X.h) && inside(iw, X.w))
                  acc += xv[X.at(n, co / cog * K.c + cl, ih, iw)] * wv[K.at(co, cl, kh, kw)];
              }
          yv[Y.at(n, co, oh, ow)] = acc;
        }
  return from_vector(yv, ys, DType::f64);
}

// Transposed conv as an explicit scatter: each x element adds x * w[ci, :, :, :] to its window.
Tensor ref_conv_transpose2d(const Tensor& x, const Tensor& w, int64_t s, Pad p, int64_t groups,
                            int64_t out_h, int64_t out_w) {
  Dims4 X(x.shape()), K(w.shape());
  const int64_t cig = X.c / groups;
  Shape ys{X.n, K.c * groups, out_h, out_w};
  Dims4 Y(ys);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), yv(ys.numel(), 0.0);
  for (int64_t n = 0; n < X.n; ++n)
    for (int64_t ci = 0; ci < X.c; ++ci)
      for (int64_t ih = 0; ih < X.h; ++ih)
        for (int64_t iw = 0; iw < X.w; ++iw)
          for (int64_t cl = 0; cl < K.c; ++cl)
            for (int64_t kh = 0; kh < K.h; ++kh)
              for (int64_t kw = 0; kw < K.w; ++kw) {
                int64_t oh = ih * s - p.h + kh, ow = iw * s - p.w + kw;
                if (inside(oh, out_h) && inside(ow, out_w))
                  yv[Y.at(n, ci / cig * K.c + cl, oh, ow)] += xv[X.at(n, ci, ih, iw)] * wv[K.at(ci, cl, kh, kw)];
              }
  return from_vector(yv, ys, DType::f64);
}

// dw[co, cl, kh, kw] = sum over images and output positions of dy * the input it saw.
Tensor ref_weight_grad(const Tensor& x, const Tensor& dy, const Shape& ws, int64_t s, Pad p, int64_t groups) {
  Dims4 X(x.shape()), D(dy.shape()), K(ws);
  const int64_t cog = K.n / groups;
  std::vector<double> xv = x.to_vector(), dv = dy.to_vector(), wv(ws.numel(), 0.0);
  for (int64_t co = 0; co < K.n; ++co)
    for (int64_t cl = 0; cl < K.c; ++cl)
      for (int64_t kh = 0; kh < K.h; ++kh)
        for (int64_t kw = 0; kw < K.w; ++kw) {
          double acc = 0;
          for (int64_t n = 0; n < X.n; ++n)
            for (int64_t oh = 0; oh < D.h; ++oh)
              for (int64_t ow = 0; ow < D.w; ++ow) {
                int64_t ih = oh * s - p.h + kh, iw = ow * s - p.w + kw;
                if (inside(ih, X.h) && inside(iw, X.w))
                  acc += xv[X.at(n, co / cog * K.c + cl, ih, iw)] * dv[D.at(n, co, oh, ow)];
              }
          wv[K.at(co, cl, kh, kw)] = acc;
        }
  return from_vector(wv, ws, DType::f64);
}

// cols[n, (c*k + kh)*k + kw, oh*OW + ow] = x[n, c, oh*s - p + kh, ow*s - p + kw] (0 outside).
Tensor ref_unfold(const Tensor& x, int64_t k, int64_t s, int64_t p) {
  Dims4 X(x.shape());
  const int64_t OH = (X.h + 2 * p - k) / s + 1, OW = (X.w + 2 * p - k) / s + 1, L = OH * OW;
  std::vector<double> xv = x.to_vector(), cv(X.n * X.c * k * k * L, 0.0);
  for (int64_t n = 0; n < X.n; ++n)
    for (int64_t c = 0; c < X.c; ++c)
      for (int64_t kh = 0; kh < k; ++kh)
        for (int64_t kw = 0; kw < k; ++kw)
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t ih = oh * s - p + kh, iw = ow * s - p + kw;
              int64_t row = (c * k + kh) * k + kw;
              if (inside(ih, X.h) && inside(iw, X.w))
                cv[(n * X.c * k * k + row) * L + oh * OW + ow] = xv[X.at(n, c, ih, iw)];
            }
  return from_vector(cv, {X.n, X.c * k * k, L}, DType::f64);
}

Tensor random(const Shape& s, uint64_t seed, DType t = DType::f64) {
  Philox gen(seed);
  return randn(s, DType::f64, Device::cpu, &gen).to(t);
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

struct ConvConfig {
  int64_t N, Cin, H, W, Cout, KH, KW, stride, pad, groups;
  int64_t pad_w = -1;  // the columns' padding when >= 0
  Conv2dOptions options() const { return {stride, pad, groups, pad_w}; }
  Pad padding() const { return pad_w >= 0 ? Pad(pad, pad_w) : Pad(pad); }
};

std::vector<ConvConfig> conv_configs() {
  const int64_t many = omp_get_max_threads() + 1;  // enough images for the image-parallel path
  return {
      {2, 4, 7, 7, 6, 3, 3, 2, 1, 2},     // stride 2, padding, groups 2
      {2, 3, 6, 5, 3, 3, 3, 1, 1, 3},     // depthwise
      {1, 3, 7, 6, 6, 3, 3, 2, 1, 3},     // depthwise, multiplier 2, stride 2
      {3, 5, 4, 4, 7, 1, 1, 1, 0, 1},     // 1x1 (no im2col)
      {2, 4, 5, 5, 6, 1, 1, 2, 0, 2},     // 1x1 strided, groups 2 (im2col)
      {1, 3, 8, 8, 4, 4, 4, 2, 1, 1},     // the discriminator's 4x4 s2 p1
      {2, 2, 6, 7, 3, 2, 3, 1, 2, 1},     // non-square kernel, padding beyond the kernel half
      {1, 8, 9, 9, 16, 3, 3, 1, 1, 1},    // one image: threaded GEMM path
      {many, 8, 9, 9, 16, 3, 3, 1, 1, 1}, // image-parallel path
      {many, 6, 8, 8, 4, 3, 3, 2, 1, 2},  // image-parallel, grouped, strided
      {2, 3, 6, 9, 4, 1, 7, 1, 0, 1, 3},  // Inception's 1x7, padding (0, 3)
      {2, 3, 9, 6, 4, 7, 1, 1, 3, 1, 0},  // Inception's 7x1, padding (3, 0)
      {1, 4, 7, 8, 2, 3, 1, 2, 2, 2, 1},  // strided, grouped, both paddings set
  };
}

std::string describe(const ConvConfig& c) {
  std::ostringstream os;
  os << "x (" << c.N << ", " << c.Cin << ", " << c.H << ", " << c.W << ") w (" << c.Cout << ", "
     << c.Cin / c.groups << ", " << c.KH << ", " << c.KW << ") stride " << c.stride << " pad " << c.pad
     << " pad_w " << c.pad_w << " groups " << c.groups;
  return os.str();
}

TEST(Conv, Conv2dForwardAndGradientsMatchLoops) {
  uint64_t seed = 1;
  for (const ConvConfig& c : conv_configs()) {
    SCOPED_TRACE(describe(c));
    Tensor x = random({c.N, c.Cin, c.H, c.W}, seed++).requires_grad_();
    Tensor w = random({c.Cout, c.Cin / c.groups, c.KH, c.KW}, seed++).requires_grad_();
    Tensor y = conv2d(x, w, Tensor(), c.options());
    EXPECT_CLOSE_TOL(y, ref_conv2d(x, w, c.stride, c.padding(), c.groups), 1e-12, 1e-12);
    Tensor gy = random(y.shape(), seed++);
    V g = grad({y}, {x, w}, {gy});
    EXPECT_CLOSE_TOL(g[0], ref_conv_transpose2d(gy, w, c.stride, c.padding(), c.groups, c.H, c.W), 1e-12, 1e-12);
    EXPECT_CLOSE_TOL(g[1], ref_weight_grad(x, gy, w.shape(), c.stride, c.padding(), c.groups), 1e-12, 1e-12);
  }
}

TEST(Conv, ConvTranspose2dMatchesScatterLoop) {
  struct Case {
    Shape x, w;
    Conv2dOptions o;
    int64_t output_padding;
  };
  const Case cases[] = {
      {{2, 3, 4, 4}, {3, 5, 4, 4}, {2, 1, 1}, 0},  // the U-Net's x2 upsample
      {{1, 4, 3, 5}, {4, 2, 3, 3}, {2, 1, 2}, 1},  // groups 2, output padding
      {{2, 3, 5, 5}, {3, 1, 3, 3}, {1, 1, 3}, 0},  // depthwise
      {{3, 6, 3, 3}, {6, 4, 1, 1}, {1, 0, 1}, 0},  // 1x1
      {{2, 3, 4, 5}, {3, 2, 1, 3}, {2, 0, 1, 1}, 1},  // 1x3, padding (0, 1), output padding
  };
  uint64_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " w " + c.w.str());
    Tensor x = random(c.x, seed++), w = random(c.w, seed++), b = random({c.w[1] * c.o.groups}, seed++);
    Tensor y = conv_transpose2d(x, w, Tensor(), c.o, c.output_padding);
    int64_t out_h = (c.x[2] - 1) * c.o.stride - 2 * c.o.pad_h() + c.w[2] + c.output_padding;
    int64_t out_w = (c.x[3] - 1) * c.o.stride - 2 * c.o.pad_w() + c.w[3] + c.output_padding;
    Tensor ref = ref_conv_transpose2d(x, w, c.o.stride, Pad(c.o.pad_h(), c.o.pad_w()), c.o.groups, out_h, out_w);
    EXPECT_CLOSE_TOL(y, ref, 1e-12, 1e-12);
    Tensor yb = conv_transpose2d(x, w, b, c.o, c.output_padding);
    EXPECT_CLOSE_TOL(yb, add(ref, reshape(b, Shape{1, b.dim(0), 1, 1})), 1e-12, 1e-12);
  }
}

TEST(Conv, WeightGradAndBiasMatchLoops) {
  Tensor x = random({3, 4, 6, 6}, 7), dy = random({3, 6, 3, 3}, 8);
  Tensor g = conv2d_weight_grad(x, dy, {6, 2, 3, 3}, {2, 1, 2});
  EXPECT_CLOSE_TOL(g, ref_weight_grad(x, dy, {6, 2, 3, 3}, 2, 1, 2), 1e-12, 1e-12);

  Tensor w = random({5, 4, 3, 3}, 9), b = random({5}, 10);
  Tensor y = conv2d(x, w, b, {1, 1, 1});
  EXPECT_CLOSE_TOL(y, add(ref_conv2d(x, w, 1, 1, 1), reshape(b, Shape{1, 5, 1, 1})), 1e-12, 1e-12);
}

TEST(Conv, Float32AgreesWithFloat64) {
  for (const ConvConfig& c : conv_configs()) {
    SCOPED_TRACE(describe(c));
    Tensor x = random({c.N, c.Cin, c.H, c.W}, 21), w = random({c.Cout, c.Cin / c.groups, c.KH, c.KW}, 22);
    Conv2dOptions o = c.options();
    auto forward_backward = [&](DType t) {
      Tensor xt = x.to(t).requires_grad_(), wt = w.to(t).requires_grad_();
      Tensor y = conv2d(xt, wt, Tensor(), o);
      V g = grad({y}, {xt, wt}, {random(y.shape(), 23, t)});
      EXPECT_EQ(y.dtype(), t);
      return V{y.to(DType::f64), g[0].to(DType::f64), g[1].to(DType::f64)};
    };
    V r32 = forward_backward(DType::f32), r64 = forward_backward(DType::f64);
    for (int i = 0; i < 3; ++i) EXPECT_CLOSE_TOL(r32[i], r64[i], 1e-4, 1e-4);
  }
}

// Wide 3x3 and 5x5 stride-1 float32 convolutions run forward by Winograd's F(4x4, 3x3) and
// F(2x2, 5x5): against the float64 result, their error stays under 1e-5 of the largest output
// (3x3: 2.6e-6 to 4.3e-6 over the OpenBLAS kernel sets, where the direct float32 sum's is 2.6e-7
// to 4.9e-7), on shapes with partial tiles, padding on one side only and more tiles per row
// than one vector holds.
TEST(Conv, WinogradForwardStaysWithinFloat32Rounding) {
  struct Case {
    Shape x;
    int64_t cout, kernel, pad_h, pad_w;
  };
  const Case cases[] = {{{2, 16, 13, 14}, 24, 3, 1, 1}, {{1, 32, 14, 19}, 16, 3, 0, 0}, {{3, 17, 35, 35}, 20, 3, 1, 1},
                        {{1, 16, 40, 14}, 16, 3, 1, 0}, {{1, 16, 71, 71}, 16, 3, 0, 0}, {{2, 48, 35, 35}, 64, 5, 2, 2},
                        {{1, 16, 17, 40}, 20, 5, 0, 2}, {{1, 16, 37, 37}, 16, 5, 1, 1}};
  uint64_t seed = 40;
  for (const Case& c : cases) {
    const int64_t k = c.kernel;
    Tensor x = random(c.x, seed++);
    Tensor w = random({c.cout, c.x[1], k, k}, seed++) * (1.0 / std::sqrt(double(k * k * c.x[1])));
    Conv2dOptions o;
    o.padding = c.pad_h, o.padding_w = c.pad_w;
    Tensor y64 = conv2d(x, w, Tensor(), o);
    const ConvGeom g{c.x[0], c.x[1], c.x[2], c.x[3], c.cout, k, k, y64.dim(2), y64.dim(3), 1, 1, c.pad_h, c.pad_w, 1};
    SCOPED_TRACE("x " + c.x.str() + " Cout " + std::to_string(c.cout) + " kernel " + std::to_string(k));
    ASSERT_TRUE(cpu::winograd_applies(DType::f32, g));
    ASSERT_FALSE(cpu::winograd_applies(DType::f64, g));
    Tensor x32 = x.to(DType::f32), w32 = w.to(DType::f32);
    Tensor winograd = conv2d(x32, w32, Tensor(), o);
    Tensor direct = empty(y64.shape(), DType::f32);
    cpu::conv2d_forward_gemm(DType::f32, g, x32.data(), w32.data(), direct.data());
    const std::vector<double> ref = y64.to_vector(), a = winograd.to_vector(), b = direct.to_vector();
    double scale = 0, err_winograd = 0, err_direct = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      scale = std::max(scale, std::abs(ref[i]));
      err_winograd = std::max(err_winograd, std::abs(a[i] - ref[i]));
      err_direct = std::max(err_direct, std::abs(b[i] - ref[i]));
    }
    EXPECT_LT(err_winograd, 1e-5 * scale) << "relative: " << err_winograd / scale << ", direct float32 "
                                          << err_direct / scale;
  }
  const ConvGeom strided{1, 16, 20, 20, 16, 3, 3, 9, 9, 2, 2, 0, 0, 1};
  const ConvGeom grouped{1, 16, 20, 20, 16, 3, 3, 18, 18, 1, 1, 0, 0, 2};
  const ConvGeom narrow{1, 8, 20, 20, 16, 3, 3, 18, 18, 1, 1, 0, 0, 1};
  const ConvGeom small{1, 16, 10, 10, 16, 3, 3, 8, 8, 1, 1, 0, 0, 1};
  const ConvGeom seven{1, 16, 20, 20, 16, 7, 7, 14, 14, 1, 1, 0, 0, 1};
  const ConvGeom one_by_seven{1, 16, 20, 20, 16, 1, 7, 20, 14, 1, 1, 0, 0, 1};
  for (const ConvGeom& g : {strided, grouped, narrow, small, seven, one_by_seven})
    EXPECT_FALSE(cpu::winograd_applies(DType::f32, g));
}

TEST(Conv, UnfoldMatchesLoopsAndFoldIsItsAdjoint) {
  struct Case {
    Shape x;
    int64_t k, s, p;
  };
  const Case cases[] = {{{2, 3, 5, 6}, 3, 1, 1}, {{1, 2, 6, 6}, 2, 2, 0}, {{2, 2, 7, 5}, 3, 2, 1}, {{1, 1, 4, 4}, 1, 1, 0}};
  uint64_t seed = 300;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " kernel " + std::to_string(c.k));
    Tensor x = random(c.x, seed++);
    Tensor cols = unfold(x, c.k, c.s, c.p);
    EXPECT_CLOSE_TOL(cols, ref_unfold(x, c.k, c.s, c.p), 0, 0);
    Tensor r = random(cols.shape(), seed++);
    Tensor folded = fold(r, c.x[2], c.x[3], c.k, c.s, c.p);
    EXPECT_EQ(folded.shape(), c.x);
    EXPECT_NEAR(dot(cols, r), dot(x, folded), 1e-10);  // <unfold x, r> = <x, fold r>
    Tensor r32 = fold(r.to(DType::f32), c.x[2], c.x[3], c.k, c.s, c.p);
    EXPECT_CLOSE_TOL(r32.to(DType::f64), folded, 1e-5, 1e-5);
  }
}

TEST(Conv, FoldOfOnesCountsWindowsPerPixel) {
  // 3x3 windows, padding 1, on 3x3: corners are seen by 4 windows, edges by 6, the centre by 9.
  Tensor cols = ones({1, 9, 9}, DType::f64);
  EXPECT_CLOSE(fold(cols, 3, 3, 3, 1, 1), from_vector({4, 6, 4, 6, 9, 6, 4, 6, 4}, {1, 1, 3, 3}, DType::f64));
}

TEST(Conv, ErrorsNameTheOpAndShapes) {
  Tensor x = zeros({2, 3, 8, 8}), w = zeros({4, 2, 3, 3});
  EXPECT_ERROR(conv2d(x, w), "conv2d: x (2, 3, 8, 8) has 3 channels but weight (4, 2, 3, 3) with groups 1 expects 2");
  EXPECT_ERROR(conv2d(zeros({2, 4, 8, 8}), zeros({6, 2, 3, 3}), Tensor(), {1, 0, 4}), "not divisible by groups 4");
  EXPECT_ERROR(conv2d(zeros({2, 4, 8, 8}), zeros({6, 2, 3, 3}), Tensor(), {1, 0, 0}), "groups must be >= 1");
  EXPECT_ERROR(conv2d(zeros({3, 8, 8}), w), "conv2d: x must be 4-d");
  EXPECT_ERROR(conv2d(zeros({2, 2, 8, 8}), zeros({4, 2, 3})), "conv2d: weight must be 4-d");
  EXPECT_ERROR(conv2d(zeros({2, 2, 8, 8}), zeros({4, 2, 3, 3}, DType::f64)), "conv2d: dtype mismatch");
  EXPECT_ERROR(conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 5, 5})), "larger than x (1, 1, 2, 2)");
  EXPECT_ERROR(conv2d(zeros({2, 2, 8, 8}), zeros({4, 2, 3, 3}), zeros({3})), "conv2d: bias must be (4)");
  EXPECT_ERROR(conv2d(zeros({2, 2, 8, 8}), zeros({4, 2, 3, 3}), Tensor(), {0, 0, 1}), "stride must be >= 1");
  EXPECT_ERROR(conv_transpose2d(zeros({1, 3, 4, 4}), zeros({4, 2, 3, 3})),
               "conv_transpose2d: x (1, 3, 4, 4) has 3 channels but weight (4, 2, 3, 3)");
  EXPECT_ERROR(conv_transpose2d(zeros({1, 4, 4, 4}), zeros({4, 2, 3, 3}), Tensor(), {2, 1, 1}, 2), "output_padding 2");
  EXPECT_ERROR(conv2d_weight_grad(zeros({2, 2, 8, 8}), zeros({2, 4, 7, 7}), {4, 2, 3, 3}, {1, 1, 1}),
               "conv2d_weight_grad: dy (2, 4, 7, 7) does not match the output (2, 4, 8, 8)");
  EXPECT_ERROR(unfold(zeros({3, 8, 8}), 3), "unfold: x must be 4-d");
  EXPECT_ERROR(fold(zeros({1, 9, 10}), 4, 4, 3, 1, 1), "fold: cols (1, 9, 10) has 10 positions");
  EXPECT_ERROR(fold(zeros({1, 8, 16}), 4, 4, 3, 1, 1), "not a multiple of kernel*kernel");
}

}  // namespace
}  // namespace fpa::test
