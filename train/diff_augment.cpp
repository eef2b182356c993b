// diff_augment.cpp: flip, cutout and translation from differentiable ops (masks are constants;
// a translation is a zero pad followed by a crop, per sample).
#include "train/diff_augment.h"

#include <cmath>

#include "autograd/error.h"
#include "ops/ops.h"

namespace fpa {
namespace {

// Uniform integers in [lo, hi] from the generator (one counter each).
std::vector<int64_t> random_ints(int64_t n, int64_t lo, int64_t hi, Generator& gen) {
  std::vector<double> u = rand({n}, DType::f64, Device::cpu, &gen).to_vector();
  std::vector<int64_t> r(n);
  for (int64_t i = 0; i < n; ++i) r[i] = lo + std::min<int64_t>(int64_t(u[i] * double(hi - lo + 1)), hi - lo);
  return r;
}

}  // namespace

Tensor cutout(const Tensor& images, const std::vector<int64_t>& cy, const std::vector<int64_t>& cx) {
  int64_t B = images.dim(0), H = images.dim(2), W = images.dim(3);
  int64_t size = int64_t(H * 0.5 + 0.5);
  std::vector<double> mask(B * H * W, 1.0);  // (B, 1, H, W)
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = cy[b] - size / 2; y < cy[b] - size / 2 + size; ++y)
      for (int64_t x = cx[b] - size / 2; x < cx[b] - size / 2 + size; ++x)
        if (y >= 0 && y < H && x >= 0 && x < W) mask[(b * H + y) * W + x] = 0.0;
  return mul(images, from_vector(mask, {B, 1, H, W}, images.dtype(), images.device()));
}

Tensor translate(const Tensor& images, const std::vector<int64_t>& sy, const std::vector<int64_t>& sx) {
  int64_t B = images.dim(0), H = images.dim(2), W = images.dim(3);
  int64_t m = 0;
  for (int64_t b = 0; b < B; ++b) m = std::max({m, std::abs(sy[b]), std::abs(sx[b])});
  if (m == 0) return images;
  Tensor padded = pad(images, {{m, m}, {m, m}});  // (B, C, H + 2m, W + 2m)
  std::vector<Tensor> out;
  for (int64_t b = 0; b < B; ++b) {
    // Output pixel (y, x) shows input (y - sy, x - sx): the window starts at m - sy.
    Tensor s = slice(padded, 0, b, b + 1);
    s = slice(s, 2, m - sy[b], m - sy[b] + H);
    out.push_back(slice(s, 3, m - sx[b], m - sx[b] + W));
  }
  return concat(out, 0);
}

Tensor diff_augment(const Tensor& images, double prob, Generator& gen) {
  if (prob <= 0) return images;
  FPA_CHECK(images.ndim() == 4, "diff_augment: images ", images.shape(), " should be (B, C, S, S)");
  std::vector<double> coins = rand({2}, DType::f64, Device::cpu, &gen).to_vector();
  if (coins[0] >= prob) return images;
  Tensor x = coins[1] < 0.5 ? flip(images, {3}) : images;
  int64_t B = x.dim(0), H = x.dim(2), W = x.dim(3);
  int64_t size = int64_t(H * 0.5 + 0.5);
  x = cutout(x, random_ints(B, 0, H - size % 2, gen), random_ints(B, 0, W - size % 2, gen));
  int64_t shift = int64_t(H * 0.125 + 0.5);
  return translate(x, random_ints(B, -shift, shift, gen), random_ints(B, -shift, shift, gen));
}

}  // namespace fpa
