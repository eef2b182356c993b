// test_pool.cpp: avg_pool2d, adaptive_avg_pool2d, max_pool2d, nearest resizing
// (interpolate_nearest, upsample_nearest) and bilinear resizing (interpolate_bilinear): values
// and gradients against direct float64 loops and PyTorch's values, PyTorch's index and tie
// rules on known sizes, float32 against float64, error messages. The op
// cases of every op of the family, including the internal backward ops:
// tests/op_cases/pool_cases.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <functional>

#include "autograd/philox.h"
#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// ---- direct-loop references in float64

Tensor random(const Shape& s, uint64_t seed) {
  Philox gen(seed);
  return randn(s, DType::f64, Device::cpu, &gen);
}

// Per output index, the input range [begin, end) it averages and the divisor's factor.
struct Bin {
  int64_t begin, end, count;
};
using BinRule = std::function<Bin(int64_t o, int64_t in, int64_t out)>;

// include_pad false: the divisor's factor is the entries the window covers, not k.
BinRule fixed_window(int64_t k, int64_t s, int64_t p, bool include_pad = true) {
  return [=](int64_t o, int64_t in, int64_t) {
    const int64_t b = o * s - p, lo = std::max<int64_t>(b, 0), hi = std::min(b + k, in);
    return Bin{lo, hi, include_pad ? k : hi - lo};
  };
}
Bin adaptive_bin(int64_t o, int64_t in, int64_t out) {
  int64_t b = static_cast<int64_t>(std::floor(double(o) * in / out));
  int64_t e = static_cast<int64_t>(std::ceil(double(o + 1) * in / out));
  return {b, e, e - b};
}

Tensor ref_pool(const Tensor& x, int64_t OH, int64_t OW, const BinRule& bin) {
  const Shape& s = x.shape();
  std::vector<double> xv = x.to_vector(), yv;
  for (int64_t p = 0; p < s[0] * s[1]; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        Bin r = bin(oh, s[2], OH), c = bin(ow, s[3], OW);
        double acc = 0;
        for (int64_t i = r.begin; i < r.end; ++i)
          for (int64_t j = c.begin; j < c.end; ++j) acc += xv[(p * s[2] + i) * s[3] + j];
        yv.push_back(acc / double(r.count * c.count));
      }
  return from_vector(yv, {s[0], s[1], OH, OW}, DType::f64);
}

// The adjoint, by scatter.
Tensor ref_pool_backward(const Tensor& dy, const Shape& xs, const BinRule& bin) {
  const int64_t OH = dy.dim(2), OW = dy.dim(3);
  std::vector<double> dv = dy.to_vector(), xv(xs.numel(), 0.0);
  for (int64_t p = 0; p < xs[0] * xs[1]; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        Bin r = bin(oh, xs[2], OH), c = bin(ow, xs[3], OW);
        for (int64_t i = r.begin; i < r.end; ++i)
          for (int64_t j = c.begin; j < c.end; ++j)
            xv[(p * xs[2] + i) * xs[3] + j] += dv[(p * OH + oh) * OW + ow] / double(r.count * c.count);
      }
  return from_vector(xv, xs, DType::f64);
}

// Nearest with explicit source indices per output row and column.
Tensor ref_nearest(const Tensor& x, const std::vector<int64_t>& rows, const std::vector<int64_t>& cols) {
  const Shape& s = x.shape();
  std::vector<double> xv = x.to_vector(), yv;
  for (int64_t p = 0; p < s[0] * s[1]; ++p)
    for (int64_t r : rows)
      for (int64_t c : cols) yv.push_back(xv[(p * s[2] + r) * s[3] + c]);
  return from_vector(yv, {s[0], s[1], int64_t(rows.size()), int64_t(cols.size())}, DType::f64);
}

std::vector<int64_t> legacy_nearest(int64_t in, int64_t out) {
  std::vector<int64_t> v;
  for (int64_t o = 0; o < out; ++o) v.push_back(std::min(in - 1, int64_t(std::floor(double(o) * in / out))));
  return v;
}

// Max pooling by loops: each window's first largest entry inside the plane (padding is never
// chosen), its gradient there.
Tensor ref_max_pool(const Tensor& x, int64_t k, int64_t s, int64_t p, const Tensor& gy, Tensor* gx) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  std::vector<double> xv = x.to_vector(), gyv = gy.to_vector(), y(N * C * OH * OW), g(xv.size(), 0.0);
  for (int64_t plane = 0; plane < N * C; ++plane)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = -1;
        for (int64_t ih = oh * s - p; ih < oh * s - p + k; ++ih)
          for (int64_t iw = ow * s - p; iw < ow * s - p + k; ++iw) {
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            const int64_t i = (plane * H + ih) * W + iw;
            if (best < 0 || xv[i] > xv[best]) best = i;
          }
        const int64_t o = (plane * OH + oh) * OW + ow;
        y[o] = xv[best];
        g[best] += gyv[o];
      }
  *gx = from_vector(g, x.shape(), DType::f64);
  return from_vector(y, {N, C, OH, OW}, DType::f64);
}

TEST(Pool, FixedWindowPoolsAndGradientsMatchLoops) {
  struct Case {
    Shape x;
    int64_t k, s, p;
  };
  const Case cases[] = {{{2, 3, 6, 6}, 2, 2, 0}, {{1, 2, 7, 5}, 3, 2, 1}, {{2, 2, 5, 5}, 2, 2, 0},
                        {{1, 3, 6, 4}, 3, 1, 1}, {{2, 2, 5, 5}, 3, 1, 1}, {{1, 3, 8, 9}, 3, 2, 0},
                        // rows longer than a vector register, as the forward passes run them
                        {{1, 2, 5, 41}, 3, 1, 1}, {{1, 2, 7, 38}, 3, 2, 1}, {{1, 1, 3, 35}, 2, 2, 0},
                        {{1, 2, 7, 9}, 5, 1, 2}};
  uint64_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " kernel " + std::to_string(c.k) + " stride " + std::to_string(c.s));
    Tensor x = random(c.x, seed++).requires_grad_();
    const int64_t OH = (c.x[2] + 2 * c.p - c.k) / c.s + 1, OW = (c.x[3] + 2 * c.p - c.k) / c.s + 1;
    Tensor gy = random({c.x[0], c.x[1], OH, OW}, seed++);
    for (bool include_pad : {true, false}) {
      SCOPED_TRACE(include_pad ? "count_include_pad" : "padding not counted");
      Tensor avg = avg_pool2d(x, c.k, c.s, c.p, include_pad);
      EXPECT_CLOSE(avg, ref_pool(x, OH, OW, fixed_window(c.k, c.s, c.p, include_pad)));
      EXPECT_CLOSE(grad({avg}, {x}, {gy})[0], ref_pool_backward(gy, c.x, fixed_window(c.k, c.s, c.p, include_pad)));
    }
    Tensor max = max_pool2d(x, c.k, c.s, c.p), max_grad;
    EXPECT_CLOSE(max, ref_max_pool(x.detach(), c.k, c.s, c.p, gy, &max_grad));
    EXPECT_CLOSE(grad({max}, {x}, {gy})[0], max_grad);
  }
}

// Ties go to the window's first entry, NaN wins (the last one), an all -inf window keeps its
// first entry, and the gradient of the gradient is the pool of the second upstream at the same
// argmax (nothing for x).
TEST(Pool, MaxPool2dTiesNanAndSecondOrderFollowPyTorch) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  Tensor x = from_vector({1, 1, -inf, -inf,  //
                          1, 1, -inf, -inf,  //
                          0, nan, 2, 5,      //
                          nan, 0, 5, 5},
                         {1, 1, 4, 4}, DType::f64)
                 .requires_grad_();
  Tensor y = max_pool2d(x, 2);
  const std::vector<double> yv = y.to_vector();
  EXPECT_EQ(yv[0], 1.0);
  EXPECT_EQ(yv[1], -inf);
  EXPECT_TRUE(std::isnan(yv[2]));
  EXPECT_EQ(yv[3], 5.0);
  Tensor gy = from_vector({1, 2, 3, 4}, {1, 1, 2, 2}, DType::f64).requires_grad_();
  Tensor gx = grad({y}, {x}, {gy}, false, true)[0];
  EXPECT_EQ(gx.to_vector(), std::vector<double>({1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 3, 0, 0, 0}));
  Tensor ggx = from_vector({10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25}, {1, 1, 4, 4}, DType::f64);
  std::vector<Tensor> second = grad({gx}, {gy, x}, {ggx}, false, false, true);
  EXPECT_EQ(second[0].to_vector(), std::vector<double>({10, 12, 22, 21}));
  EXPECT_FALSE(second[1].defined());
}

// A stride-1 window of 2 * pad + 1 runs as one flat vector over the plane, its edges alone:
// NaN inside and on the edges, and infinities, give what the scan rule gives window by window.
TEST(Pool, MaxPool2dSameSizeWindowFollowsTheScanRule) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  const int64_t H = 5, W = 6;
  std::vector<double> v = {1,    2,   3, -inf, 0, 4,  //
                           nan,  5,   1, 2,    3, 0,  //
                           -1,   7,   7, nan,  2, 1,  //
                           inf,  0,   1, 2,    3, nan,  //
                           2,    1,   0, -1,   6, 6};
  std::vector<double> expected(H * W);
  for (int64_t oh = 0; oh < H; ++oh)
    for (int64_t ow = 0; ow < W; ++ow) {
      double best = -inf;
      for (int64_t ih = std::max<int64_t>(oh - 1, 0); ih <= std::min(oh + 1, H - 1); ++ih)
        for (int64_t iw = std::max<int64_t>(ow - 1, 0); iw <= std::min(ow + 1, W - 1); ++iw)
          if (v[ih * W + iw] > best || std::isnan(v[ih * W + iw])) best = v[ih * W + iw];
      expected[oh * W + ow] = best;
    }
  for (DType t : {DType::f64, DType::f32}) {
    const std::vector<double> y = max_pool2d(from_vector(v, {1, 1, H, W}, t), 3, 1, 1).to_vector();
    for (int64_t i = 0; i < H * W; ++i) {
      if (std::isnan(expected[i])) EXPECT_TRUE(std::isnan(y[i])) << i;
      else EXPECT_EQ(y[i], expected[i]) << i;
    }
  }
}

TEST(Pool, AvgPool2dDefaultStrideIsTheKernelAndPaddingCountsInDivisorUnlessAsked) {
  Tensor x = ones({1, 1, 4, 4}, DType::f64);
  EXPECT_EQ(avg_pool2d(x, 2).shape(), Shape({1, 1, 2, 2}));
  // count_include_pad: the corner window of a 3x3/s2/p1 pool sees 4 ones out of 9.
  EXPECT_NEAR(avg_pool2d(x, 3, 2, 1).to_vector()[0], 4.0 / 9.0, 1e-15);
  // Without it, every window of ones averages to one (Inception's pools).
  for (double v : avg_pool2d(x, 3, 1, 1, false).to_vector()) EXPECT_EQ(v, 1.0);
}

TEST(Pool, AdaptiveAvgPool2dAndGradientMatchLoops) {
  struct Case {
    Shape x;
    int64_t oh, ow;
  };
  const Case cases[] = {{{2, 2, 5, 7}, 3, 4}, {{1, 3, 16, 16}, 4, 4}, {{1, 2, 3, 3}, 5, 5}, {{2, 1, 6, 6}, 1, 1}};
  uint64_t seed = 50;
  for (const Case& c : cases) {
    SCOPED_TRACE("x " + c.x.str() + " to " + std::to_string(c.oh) + "x" + std::to_string(c.ow));
    Tensor x = random(c.x, seed++).requires_grad_();
    Tensor y = adaptive_avg_pool2d(x, c.oh, c.ow);
    EXPECT_CLOSE(y, ref_pool(x, c.oh, c.ow, adaptive_bin));
    Tensor gy = random(y.shape(), seed++);
    EXPECT_CLOSE(grad({y}, {x}, {gy})[0], ref_pool_backward(gy, c.x, adaptive_bin));
  }
}

TEST(Pool, AdaptiveBinsFollowPyTorch) {
  // 5 -> 3: bins [0, 2), [1, 4), [3, 5) (overlapping), each divided by its own size.
  Tensor x = from_vector({1, 2, 4, 8, 16}, {1, 1, 1, 5}, DType::f64);
  EXPECT_CLOSE(adaptive_avg_pool2d(x, 1, 3), from_vector({1.5, 14.0 / 3, 12}, {1, 1, 1, 3}, DType::f64));
}

TEST(Pool, NearestInterpolateMatchesPyTorchIndices) {
  struct Case {
    int64_t H, W, OH, OW;
    std::vector<int64_t> rows, cols;  // PyTorch's source indices, written out
  };
  const Case cases[] = {
      {8, 8, 16, 16, {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}, {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7}},
      {16, 16, 8, 8, {0, 2, 4, 6, 8, 10, 12, 14}, {0, 2, 4, 6, 8, 10, 12, 14}},
      {5, 5, 3, 3, {0, 1, 3}, {0, 1, 3}},
      {3, 5, 7, 3, {0, 0, 0, 1, 1, 2, 2}, {0, 1, 3}},
  };
  uint64_t seed = 80;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.H) + "x" + std::to_string(c.W) + " to " + std::to_string(c.OH) + "x" +
                 std::to_string(c.OW));
    EXPECT_EQ(legacy_nearest(c.H, c.OH), c.rows);
    EXPECT_EQ(legacy_nearest(c.W, c.OW), c.cols);
    Tensor x = random({2, 3, c.H, c.W}, seed++).requires_grad_();
    Tensor y = interpolate_nearest(x, c.OH, c.OW);
    EXPECT_CLOSE_TOL(y, ref_nearest(x, c.rows, c.cols), 0, 0);
    // Backward: each pixel collects the gradients of the outputs that picked it.
    Tensor gy = random(y.shape(), seed++);
    std::vector<double> gv = gy.to_vector(), dx(x.numel(), 0.0);
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t i = 0; i < c.OH; ++i)
        for (int64_t j = 0; j < c.OW; ++j)
          dx[(p * c.H + c.rows[i]) * c.W + c.cols[j]] += gv[(p * c.OH + i) * c.OW + j];
    EXPECT_CLOSE(grad({y}, {x}, {gy})[0], from_vector(dx, x.shape(), DType::f64));
  }
}

// x[i, j] = (4i + j)^1.5 on a 3x4 plane, resized by PyTorch's F.interpolate(mode="bilinear",
// align_corners=False) in float64 (torch 2.x), values written out.
TEST(Pool, BilinearInterpolateMatchesPyTorch) {
  std::vector<double> xv(12);
  for (int i = 0; i < 12; ++i) xv[i] = std::pow(double(i), 1.5);
  Tensor x = from_vector(xv, {1, 1, 3, 4}, DType::f64);
  const std::vector<double> up = {
      0.0, 0.3571428571428571, 0.9285714285714285, 1.9142135623730951, 2.9975503603147926, 4.3505362448636165,
      5.196152422706632, 3.1999999999999997, 3.8686199839284208, 4.938411958213895, 6.323983806263461,
      7.7865433337471615, 9.47223674350573, 10.525795124604834, 8.0, 9.135835674106767, 10.953172752677595,
      12.938639172099009, 14.970032793895715, 17.1547874914689, 18.520259177452136, 16.77645019878171,
      18.167766540288092, 20.393872686698302, 22.76228864934474, 25.169968911092514, 27.710189450313422,
      29.29782728732649, 22.627416997969522, 24.189053784408976, 26.687672642712105, 29.311388300841895,
      31.969926322557047, 34.747124089543114, 36.4828726939094};
  const std::vector<double> down = {2.257514161979123,  4.670319964804573,  8.071908419116573,
                                    19.649649785710075, 25.218201018656174, 31.225402273235503};
  EXPECT_CLOSE_TOL(interpolate_bilinear(x, 5, 7), from_vector(up, {1, 1, 5, 7}, DType::f64), 1e-14, 1e-14);
  EXPECT_CLOSE_TOL(interpolate_bilinear(x, 2, 3), from_vector(down, {1, 1, 2, 3}, DType::f64), 1e-14, 1e-14);
  EXPECT_CLOSE_TOL(interpolate_bilinear(x, 3, 4), x, 0, 0);  // the same size reads each pixel once
}

// The backward is the adjoint: <resize(x), g> = <x, resize^T(g)> for random x, g, and a dense
// loop over the taps gives the same input gradient.
TEST(Pool, BilinearInterpolateGradientIsTheAdjoint) {
  struct Case {
    int64_t H, W, OH, OW;
  };
  const Case cases[] = {{3, 4, 5, 7}, {6, 5, 4, 2}, {4, 4, 299, 13}, {1, 5, 3, 1}};
  uint64_t seed = 120;
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.H) + "x" + std::to_string(c.W) + " to " + std::to_string(c.OH) + "x" +
                 std::to_string(c.OW));
    Tensor x = random({2, 3, c.H, c.W}, seed++).requires_grad_();
    Tensor y = interpolate_bilinear(x, c.OH, c.OW);
    Tensor gy = random(y.shape(), seed++);
    Tensor gx = grad({y}, {x}, {gy})[0];
    std::vector<double> yv = y.to_vector(), gyv = gy.to_vector(), xv = x.to_vector(), gxv = gx.to_vector();
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < yv.size(); ++i) lhs += yv[i] * gyv[i];
    for (size_t i = 0; i < xv.size(); ++i) rhs += xv[i] * gxv[i];
    EXPECT_NEAR(lhs, rhs, 1e-10 * (1 + std::abs(lhs)));
    // Each output's weights on its plane: a column of the resize matrix, from resizing unit planes.
    std::vector<double> dense(gxv.size(), 0.0);
    for (int64_t j = 0; j < c.H * c.W; ++j) {
      std::vector<double> unit(c.H * c.W, 0.0);
      unit[j] = 1;
      std::vector<double> col = interpolate_bilinear(from_vector(unit, {1, 1, c.H, c.W}, DType::f64), c.OH, c.OW)
                                    .to_vector();
      for (int64_t p = 0; p < 6; ++p) {
        double acc = 0;
        for (int64_t o = 0; o < c.OH * c.OW; ++o) acc += col[o] * gyv[p * c.OH * c.OW + o];
        dense[p * c.H * c.W + j] = acc;
      }
    }
    EXPECT_CLOSE(gx, from_vector(dense, x.shape(), DType::f64));
  }
}

TEST(Pool, UpsampleNearestRepeatsPixels) {
  Tensor x = random({2, 3, 4, 5}, 90);
  Tensor y = upsample_nearest(x, 2);
  EXPECT_EQ(y.shape(), Shape({2, 3, 8, 10}));
  EXPECT_CLOSE_TOL(y, interpolate_nearest(x, 8, 10), 0, 0);
  EXPECT_CLOSE_TOL(y, ref_nearest(x, legacy_nearest(4, 8), legacy_nearest(5, 10)), 0, 0);
  EXPECT_CLOSE_TOL(upsample_nearest(x, 1), x, 0, 0);
}

TEST(Pool, Float32AgreesWithFloat64) {
  Tensor x = random({2, 4, 16, 16}, 95);
  auto both = [&](const std::function<Tensor(const Tensor&)>& op, double tol = 1e-6) {
    Tensor x32 = x.to(DType::f32).requires_grad_();
    Tensor y32 = op(x32);
    EXPECT_EQ(y32.dtype(), DType::f32);
    Tensor gy = random(y32.shape(), 96);
    EXPECT_CLOSE_TOL(y32.to(DType::f64), op(x), tol, tol);
    Tensor x64 = x.detach().requires_grad_();
    Tensor g64 = grad({op(x64)}, {x64}, {gy})[0];
    EXPECT_CLOSE_TOL(grad({y32}, {x32}, {gy.to(DType::f32)})[0].to(DType::f64), g64, tol, tol);
  };
  both([](const Tensor& t) { return avg_pool2d(t, 2); });
  both([](const Tensor& t) { return avg_pool2d(t, 3, 2, 1); });
  both([](const Tensor& t) { return adaptive_avg_pool2d(t, 4, 4); });
  both([](const Tensor& t) { return max_pool2d(t, 3, 2, 1); });
  both([](const Tensor& t) { return interpolate_nearest(t, 32, 32); });
  both([](const Tensor& t) { return interpolate_nearest(t, 5, 3); });
  // Bilinear computes its sample points in the data type, as PyTorch does: float32's
  // src = scale (o + 0.5) - 0.5 is off by up to ~1e-6 at 37 outputs, and so are the weights.
  both([](const Tensor& t) { return interpolate_bilinear(t, 37, 29); }, 1e-5);
  both([](const Tensor& t) { return interpolate_bilinear(t, 5, 3); }, 1e-5);
}

TEST(Pool, ErrorsNameTheOpAndShapes) {
  EXPECT_ERROR(avg_pool2d(zeros({3, 8, 8}), 2), "avg_pool2d: x must be 4-d (N, C, H, W), got (3, 8, 8)");
  EXPECT_ERROR(avg_pool2d(zeros({1, 1, 8, 8}), 2, 2, 2), "avg_pool2d: padding 2 must be in [0, kernel/2]");
  EXPECT_ERROR(avg_pool2d(zeros({1, 1, 2, 2}), 5, 1, 1), "avg_pool2d: kernel 5 is larger than x (1, 1, 2, 2)");
  EXPECT_ERROR(avg_pool2d(zeros({1, 1, 8, 8}), 0), "avg_pool2d: kernel 0");
  EXPECT_ERROR(max_pool2d(zeros({1, 1, 8, 8}), 3, 2, 2), "max_pool2d: padding 2 must be in [0, kernel/2]");
  EXPECT_ERROR(max_pool2d(zeros({2, 8, 8}), 2), "max_pool2d: x must be 4-d (N, C, H, W), got (2, 8, 8)");
  EXPECT_ERROR(adaptive_avg_pool2d(zeros({1, 1, 8, 8}), 0, 4), "adaptive_avg_pool2d: output size (0, 4)");
  EXPECT_ERROR(adaptive_avg_pool2d(zeros({8, 8}), 4, 4), "adaptive_avg_pool2d: x must be 4-d");
  EXPECT_ERROR(interpolate_nearest(zeros({1, 8, 8}), 4, 4), "interpolate_nearest: x must be 4-d");
  EXPECT_ERROR(interpolate_nearest(zeros({1, 1, 8, 8}), 4, 0), "interpolate_nearest: output size (4, 0)");
  EXPECT_ERROR(upsample_nearest(zeros({1, 1, 8, 8}), 0), "upsample_nearest: factor must be >= 1");
  EXPECT_ERROR(interpolate_bilinear(zeros({1, 8, 8}), 4, 4), "interpolate_bilinear: x must be 4-d");
  EXPECT_ERROR(interpolate_bilinear(zeros({1, 1, 8, 8}), 0, 4), "interpolate_bilinear: output size (0, 4)");
}

}  // namespace
}  // namespace fpa::test
