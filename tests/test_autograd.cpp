// test_autograd.cpp: the tape itself: accumulation, a tensor used twice, no-grad,
// retain_graph and freeing, grad() with and without create_graph, non-leaf inputs, slices'
// gradients gathered as windows, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/test_util.h"

namespace fpa::test {
namespace {

Tensor scalar(double v) { return from_vector({v}, {1}, DType::f64).requires_grad_(); }

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = scalar(3.0);
  backward(sum(x * x));
  EXPECT_DOUBLE_EQ(x.grad().item(), 6.0);
  backward(sum(x * 2.0));
  EXPECT_DOUBLE_EQ(x.grad().item(), 8.0);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, TensorReusedInTwoPlacesSumsBothPaths) {
  Tensor x = scalar(2.0);
  Tensor y = exp(x);
  Tensor z = sum(y * y + y * 3.0);  // d/dx = 2 e^2x + 3 e^x
  backward(z);
  EXPECT_NEAR(x.grad().item(), 2 * std::exp(4.0) + 3 * std::exp(2.0), 1e-9);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor x = scalar(1.0);
  {
    NoGradGuard ng;
    Tensor y = x * 2.0;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_TRUE((x * 2.0).requires_grad());
  EXPECT_FALSE((from_vector({1}, {1}) * 2.0).requires_grad());
}

TEST(Autograd, GraphIsFreedUnlessRetained) {
  Tensor x = scalar(1.5);
  Tensor y = sum(tanh(x) * x);
  backward(y, Tensor(), /*retain_graph=*/true);
  double g1 = x.grad().item();
  backward(y);  // still there
  EXPECT_NEAR(x.grad().item(), 2 * g1, 1e-12);
  EXPECT_ERROR(backward(y), "already freed");
}

TEST(Autograd, GradFunctionLeavesDotGradAlone) {
  Tensor x = scalar(2.0), w = scalar(-1.0);
  Tensor y = sum(x * x * w);
  std::vector<Tensor> g = grad({y}, {x, w});
  EXPECT_DOUBLE_EQ(g[0].item(), -4.0);
  EXPECT_DOUBLE_EQ(g[1].item(), 4.0);
  EXPECT_FALSE(x.grad().defined());
  EXPECT_FALSE(g[0].requires_grad());
}

TEST(Autograd, CreateGraphGivesDifferentiableGradients) {
  // f = x^3 -> f' = 3x^2 -> f'' = 6x, through the engine twice.
  Tensor x = scalar(1.7);
  Tensor f = sum(x * x * x);
  Tensor g = grad({f}, {x}, {}, true, true)[0];
  EXPECT_TRUE(g.requires_grad());
  EXPECT_NEAR(g.item(), 3 * 1.7 * 1.7, 1e-12);
  Tensor h = grad({sum(g)}, {x})[0];
  EXPECT_NEAR(h.item(), 6 * 1.7, 1e-12);
}

TEST(Autograd, GradientPenaltyShapeOfComputation) {
  // d/dw of ||d(sum(w * x^2))/dx||^2 = d/dw ||2 w x||^2 = 8 w sum(x^2)
  Tensor x = from_vector({0.5, -1.0, 2.0}, {3}, DType::f64).requires_grad_();
  Tensor w = scalar(0.7);
  Tensor out = sum(w * square(x));
  Tensor gx = grad({out}, {x}, {}, true, true)[0];
  backward(sum(square(gx)));
  EXPECT_NEAR(w.grad().item(), 8 * 0.7 * (0.25 + 1 + 4), 1e-12);
}

TEST(Autograd, GradWithRespectToIntermediateTensor) {
  Tensor x = scalar(0.3);
  Tensor h = x * 4.0;
  Tensor y = sum(square(h));
  std::vector<Tensor> g = grad({y}, {h, x});
  EXPECT_NEAR(g[0].item(), 2 * 1.2, 1e-12);
  EXPECT_NEAR(g[1].item(), 8 * 1.2, 1e-12);
}

TEST(Autograd, UnusedInputsAreReported) {
  Tensor x = scalar(1.0), z = scalar(2.0);
  Tensor y = sum(x * 3.0);
  EXPECT_ERROR(grad({y}, {z}, {}, true), "not reachable from the outputs");
  std::vector<Tensor> g = grad({y}, {z, x}, {}, false, false, true);
  EXPECT_FALSE(g[0].defined());
  EXPECT_DOUBLE_EQ(g[1].item(), 3.0);
}

TEST(Autograd, ClearErrors) {
  Tensor c = from_vector({1, 2}, {2}, DType::f64);
  EXPECT_ERROR(backward(sum(c)), "does not require grad");
  Tensor x = from_vector({1, 2}, {2}, DType::f64).requires_grad_();
  EXPECT_ERROR(backward(x * 2.0), "grad_output may be omitted only for a single-element output");
  EXPECT_ERROR((x * 2.0).requires_grad_(false), "only leaf tensors");
  EXPECT_ERROR(grad({x * 2.0}, {x}, {ones({3}, DType::f64)}), "grad_output 0 has shape (3)");
}

// Slices of one tensor hand their gradients back as windows, written into one buffer: pieces
// that tile part of it (the gap must be zero), a slice overlapping them (padded and added),
// the tensor also used whole (a dense part), and a slice of a leaf. Every path must give the
// padded sum, with and without a recorded gradient.
TEST(Autograd, SliceGradientsAreWrittenIntoOneBuffer) {
  std::vector<double> xv(12), coef(12 * 5);
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = 0.5 + double(i);
  for (size_t i = 0; i < coef.size(); ++i) coef[i] = std::sin(1.0 + double(i));
  auto c = [&](int k, const Shape& s) {  // coefficients k, shape s
    std::vector<double> v(coef.begin() + 12 * k, coef.begin() + 12 * k + s.numel());
    return from_vector(v, s, DType::f64);
  };
  Tensor x = from_vector(xv, {2, 6}, DType::f64).requires_grad_();
  auto loss = [&] {
    Tensor h = mul_scalar(x, 2.0);  // a node: its slices' windows gather in its pending gradient
    std::vector<Tensor> parts = chunk(h, 3, 1);  // (2, 2) each; parts[1] unused: a gap
    Tensor l = add(sum(mul(parts[0], c(0, {2, 2}))), sum(mul(parts[2], c(1, {2, 2}))));
    l = add(l, sum(mul(slice(h, 1, 1, 4), c(2, {2, 3}))));  // overlaps parts 0 and 1
    l = add(l, sum(mul(h, c(3, {2, 6}))));                   // dense
    return add(l, sum(mul(slice(x, 0, 1, 2), c(4, {1, 6}))));  // a leaf's window
  };
  // d loss / dx by hand: 2 * (dL/dh) + the leaf slice's coefficients in row 1.
  std::vector<double> want(12, 0.0);
  for (int r = 0; r < 2; ++r)
    for (int k = 0; k < 6; ++k) {
      double dh = coef[12 * 3 + r * 6 + k];
      if (k < 2) dh += coef[12 * 0 + r * 2 + k];
      if (k >= 4) dh += coef[12 * 1 + r * 2 + (k - 4)];
      if (k >= 1 && k < 4) dh += coef[12 * 2 + r * 3 + (k - 1)];
      want[r * 6 + k] = 2.0 * dh + (r == 1 ? coef[12 * 4 + k] : 0.0);
    }
  Tensor expected = from_vector(want, {2, 6}, DType::f64);
  backward(loss());
  EXPECT_CLOSE_TOL(x.grad(), expected, 1e-14, 0.0);
  EXPECT_CLOSE_TOL(grad({loss()}, {x})[0], expected, 1e-14, 0.0);
  Tensor recorded = grad({loss()}, {x}, {}, false, /*create_graph=*/true)[0];  // windows, recorded
  EXPECT_CLOSE_TOL(recorded.detach(), expected, 1e-14, 0.0);
}

TEST(Autograd, DeepChainRunsWithoutRecursion) {
  Tensor x = scalar(1.0);
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0001;  // the engine walks it iteratively
  backward(sum(y));
  EXPECT_NEAR(x.grad().item(), std::pow(1.0001, 20000), 1e-6);
}

}  // namespace
}  // namespace fpa::test
