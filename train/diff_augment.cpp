// diff_augment.cpp: DiffAugment's draws on the host, its choices as 0/1 tensors, and the
// augmentation from differentiable device ops (the gates and masks are constants).
#include "train/diff_augment.h"

#include <cmath>

#include "autograd/error.h"
#include "ops/ops.h"

namespace fpa {
namespace {

// Uniform integers in [lo, hi] from the generator (one counter each).
std::vector<int64_t> random_ints(int64_t n, int64_t lo, int64_t hi, Philox& gen) {
  std::vector<double> u = rand({n}, DType::f64, Device::cpu, &gen).to_vector();
  std::vector<int64_t> r(n);
  for (int64_t i = 0; i < n; ++i) r[i] = lo + std::min<int64_t>(int64_t(u[i] * double(hi - lo + 1)), hi - lo);
  return r;
}

int64_t cutout_size(int64_t S) { return int64_t(double(S) * 0.5 + 0.5); }
int64_t max_shift(int64_t S) { return int64_t(double(S) * 0.125 + 0.5); }

}  // namespace

AugmentChoice draw_augment(int64_t B, int64_t S, double prob, Philox& gen) {
  AugmentChoice c;
  if (prob <= 0) return c;
  std::vector<double> coins = rand({2}, DType::f64, Device::cpu, &gen).to_vector();
  if (coins[0] >= prob) return c;
  c.apply = true;
  c.flip = coins[1] < 0.5;
  const int64_t size = cutout_size(S), shift = max_shift(S);
  c.centre_y = random_ints(B, 0, S - size % 2, gen);
  c.centre_x = random_ints(B, 0, S - size % 2, gen);
  c.shift_y = random_ints(B, -shift, shift, gen);
  c.shift_x = random_ints(B, -shift, shift, gen);
  return c;
}

AugmentInputs augment_inputs(const AugmentChoice& c, int64_t B, int64_t S, DType dtype, Device device) {
  std::vector<double> keep(B * S * S, 1.0), rows(B * S * S, 0.0), cols(B * S * S, 0.0);
  if (c.apply) {
    FPA_CHECK(int64_t(c.centre_y.size()) == B && int64_t(c.shift_x.size()) == B, "augment_inputs: choices for ",
              c.centre_y.size(), " images, expected ", B);
    const int64_t size = cutout_size(S);
    for (int64_t b = 0; b < B; ++b) {
      double* k = &keep[b * S * S];
      for (int64_t y = c.centre_y[b] - size / 2; y < c.centre_y[b] - size / 2 + size; ++y)
        for (int64_t x = c.centre_x[b] - size / 2; x < c.centre_x[b] - size / 2 + size; ++x)
          if (y >= 0 && y < S && x >= 0 && x < S) k[y * S + x] = 0.0;
      for (int64_t out = 0; out < S; ++out) {
        const int64_t from_y = out - c.shift_y[b], from_x = out - c.shift_x[b];
        if (from_y >= 0 && from_y < S) rows[(b * S + out) * S + from_y] = 1.0;
        if (from_x >= 0 && from_x < S) cols[(b * S + from_x) * S + out] = 1.0;
      }
    }
  }
  return {from_vector({c.apply ? 1.0 : 0.0}, {1}, dtype, device), from_vector({c.flip ? 1.0 : 0.0}, {1}, dtype, device),
          from_vector(keep, {B, 1, S, S}, dtype, device), from_vector(rows, {B, 1, S, S}, dtype, device),
          from_vector(cols, {B, 1, S, S}, dtype, device)};
}

AugmentInputs empty_augment_inputs(int64_t B, int64_t S, DType dtype, Device device) {
  return {empty({1}, dtype, device), empty({1}, dtype, device), empty({B, 1, S, S}, dtype, device),
          empty({B, 1, S, S}, dtype, device), empty({B, 1, S, S}, dtype, device)};
}

Tensor apply_augment(const Tensor& images, const AugmentInputs& in) {
  FPA_CHECK(images.ndim() == 4 && images.dim(2) == images.dim(3) && in.keep.defined() &&
                images.dim(0) == in.keep.dim(0) && images.dim(2) == in.keep.dim(2),
            "apply_augment: images ", images.shape(), " do not match the augmentation's ",
            in.keep.defined() ? in.keep.shape() : Shape{});
  Tensor x = where(in.flip, flip(images, {3}), images);
  x = mul(x, in.keep);
  x = matmul(matmul(in.rows, x), in.cols);  // (B, 1, S, S) @ (B, C, S, S) @ (B, 1, S, S)
  return where(in.apply, x, images);
}

Tensor diff_augment(const Tensor& images, double prob, Philox& gen) {
  if (prob <= 0) return images;
  FPA_CHECK(images.ndim() == 4 && images.dim(2) == images.dim(3), "diff_augment: images ", images.shape(),
            " should be (B, C, S, S)");
  const int64_t B = images.dim(0), S = images.dim(2);
  AugmentChoice c = draw_augment(B, S, prob, gen);
  if (!c.apply) return images;
  return apply_augment(images, augment_inputs(c, B, S, images.dtype(), images.device()));
}

}  // namespace fpa
