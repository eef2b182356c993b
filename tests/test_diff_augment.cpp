// test_diff_augment.cpp: DiffAugment against a loop that flips, cuts out and shifts pixel by
// pixel; the gradient is the map's adjoint; the draws are the reference's (none at p = 0, two
// coins when not applied); and the tensor form a captured step uploads gives the same values
// as the eager call from the same generator state.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/engine.h"
#include "ops/ops.h"
#include "tests/test_util.h"
#include "train/diff_augment.h"

namespace fpa::test {
namespace {

// out[b, c, y, x] = in'[b, c, y - sy, x - sx] (0 outside), in' the flipped (if so) input with
// the cutout square zeroed: DiffAugment written out pixel by pixel.
std::vector<double> augment_by_loops(const std::vector<double>& in, const AugmentChoice& ch, int64_t B, int64_t C,
                                     int64_t S) {
  if (!ch.apply) return in;
  std::vector<double> out(in.size(), 0.0);
  const int64_t size = int64_t(double(S) * 0.5 + 0.5);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < S; ++y)
        for (int64_t x = 0; x < S; ++x) {
          const int64_t fy = y - ch.shift_y[b], fx = x - ch.shift_x[b];
          if (fy < 0 || fy >= S || fx < 0 || fx >= S) continue;
          const int64_t y0 = ch.centre_y[b] - size / 2, x0 = ch.centre_x[b] - size / 2;
          if (fy >= y0 && fy < y0 + size && fx >= x0 && fx < x0 + size) continue;  // cut out
          const int64_t sx = ch.flip ? S - 1 - fx : fx;
          out[((b * C + c) * S + y) * S + x] = in[((b * C + c) * S + fy) * S + sx];
        }
  return out;
}

// A choice that is applied: generator seeds are tried until the coin says so.
AugmentChoice applied_choice(int64_t B, int64_t S, bool flip) {
  for (uint64_t seed = 1;; ++seed) {
    Philox g(seed);
    AugmentChoice c = draw_augment(B, S, 0.5, g);
    if (c.apply && c.flip == flip) return c;
  }
}

TEST(DiffAugment, MatchesThePixelLoop) {
  const int64_t B = 4, C = 3, S = 16;
  for (DType t : {DType::f32, DType::f64})
    for (bool flip : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(t)) + (flip ? " flipped" : ""));
      AugmentChoice ch = applied_choice(B, S, flip);
      Philox g(3);
      Tensor x = randn({B, C, S, S}, t, Device::cpu, &g);
      std::vector<double> got = apply_augment(x, augment_inputs(ch, B, S, t, Device::cpu)).to_vector();
      EXPECT_TRUE(got == augment_by_loops(x.to_vector(), ch, B, C, S));
      AugmentChoice off = ch;
      off.apply = false;
      EXPECT_TRUE(apply_augment(x, augment_inputs(off, B, S, t, Device::cpu)).to_vector() == x.to_vector());
    }
}

// The map is linear, so its gradient is its adjoint: <A x, w> = <x, A^T w> with A^T w the
// gradient of sum(A(x) * w). That gradient is recorded too (the gradient penalty
// differentiates it again): d/dw sum((A^T w)^2) = 2 A A^T w.
TEST(DiffAugment, GradientIsTheAdjoint) {
  const int64_t B = 3, C = 2, S = 8;
  AugmentChoice ch = applied_choice(B, S, true);
  AugmentInputs in = augment_inputs(ch, B, S, DType::f64, Device::cpu);
  Philox g(4);
  Tensor x = randn({B, C, S, S}, DType::f64, Device::cpu, &g).requires_grad_();
  Tensor w = randn({B, C, S, S}, DType::f64, Device::cpu, &g).requires_grad_();
  Tensor y = apply_augment(x, in);
  std::vector<Tensor> gx = grad({sum(mul(y, w))}, {x}, {}, true, true);
  EXPECT_NEAR(sum(mul(y, w)).item(), sum(mul(x, gx[0])).item(), 1e-12);
  std::vector<Tensor> gw = grad({sum(square(gx[0]))}, {w});
  EXPECT_CLOSE(gw[0], mul_scalar(apply_augment(gx[0].detach(), in), 2.0));
}

TEST(DiffAugment, DrawsAsTheReference) {
  Philox none(5);
  EXPECT_FALSE(draw_augment(4, 16, 0.0, none).apply);
  EXPECT_EQ(none.offset(), 0u) << "p = 0 draws nothing";
  for (uint64_t seed = 1; seed < 20; ++seed) {
    Philox g(seed);
    AugmentChoice c = draw_augment(4, 16, 0.5, g);
    const uint64_t after = g.offset();
    Philox coins(seed);
    std::vector<double> u = rand({2}, DType::f64, Device::cpu, &coins).to_vector();
    EXPECT_EQ(c.apply, u[0] < 0.5) << "seed " << seed;
    EXPECT_EQ(after, c.apply ? coins.offset() + 4 * 4 : coins.offset()) << "seed " << seed;
    for (int64_t b = 0; b < 4 && c.apply; ++b) {
      EXPECT_TRUE(c.shift_y[b] >= -2 && c.shift_y[b] <= 2 && c.centre_x[b] >= 0 && c.centre_x[b] <= 16);
    }
  }
}

// The eager call and the uploaded tensors from the same generator state: the same images and
// the same state afterwards.
TEST(DiffAugment, EagerCallIsTheTensorForm) {
  const int64_t B = 2, C = 1, S = 8;
  Philox data(6);
  Tensor x = randn({B, C, S, S}, DType::f32, Device::cpu, &data);
  for (uint64_t seed = 1; seed < 10; ++seed) {
    Philox a(seed), b(seed);
    Tensor eager = diff_augment(x, 0.7, a);
    Tensor tensors = apply_augment(x, augment_inputs(draw_augment(B, S, 0.7, b), B, S, DType::f32, Device::cpu));
    EXPECT_TRUE(eager.to_vector() == tensors.to_vector()) << "seed " << seed;
    EXPECT_EQ(a.offset(), b.offset());
  }
  EXPECT_ERROR(apply_augment(x, augment_inputs(AugmentChoice{}, 3, S, DType::f32, Device::cpu)),
               "apply_augment: images (2, 1, 8, 8) do not match the augmentation's (3, 1, 8, 8)");
}

}  // namespace
}  // namespace fpa::test
