// image_grid.cpp: tiles (B, C, H, W) floats into one uint8 RGB picture.
#include "data/image_grid.h"

#include <algorithm>
#include <cmath>

#include "autograd/error.h"

namespace fpa {

namespace {

// torchvision's save_image: x.mul(255).add(0.5).clamp(0, 255) truncated to uint8.
uint8_t to_byte(float x) {
  if (!(x > 0.0f)) return 0;  // also NaN
  if (x >= 1.0f) return 255;
  return uint8_t(x * 255.0f + 0.5f);
}

}  // namespace

Image make_image_grid(const std::vector<float>& batch, int64_t B, int64_t C, int64_t H, int64_t W,
                      int nrow, int padding, uint8_t pad_value) {
  FPA_CHECK(B > 0 && (C == 1 || C == 3) && H > 0 && W > 0, "make_image_grid: batch (", B, ", ", C,
            ", ", H, ", ", W, "): expected (B, C, H, W) with B >= 1 and C = 1 or 3");
  FPA_CHECK(int64_t(batch.size()) == B * C * H * W, "make_image_grid: ", batch.size(),
            " values for (", B, ", ", C, ", ", H, ", ", W, ")");
  FPA_CHECK(nrow > 0 && padding >= 0, "make_image_grid: nrow ", nrow, ", padding ", padding);
  const int64_t cols = std::min<int64_t>(nrow, B), rows = (B + cols - 1) / cols;
  const int64_t cell_h = H + padding, cell_w = W + padding;
  FPA_CHECK(rows * cell_h + padding <= 65535 && cols * cell_w + padding <= 65535,
            "make_image_grid: grid of ", rows, "x", cols, " tiles of ", H, "x", W, " is too large");
  Image grid(int(cols * cell_w + padding), int(rows * cell_h + padding), 3, pad_value);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t y0 = (b / cols) * cell_h + padding, x0 = (b % cols) * cell_w + padding;
    const float* tile = &batch[size_t(b * C * H * W)];  // (C, H, W)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int c = 0; c < 3; ++c)
          grid.at(int(y0 + y), int(x0 + x), c) = to_byte(tile[((C == 1 ? 0 : c) * H + y) * W + x]);
  }
  return grid;
}

Image make_image_grid(const Tensor& batch, int nrow, int padding, uint8_t pad_value) {
  check_defined("make_image_grid", batch, "batch");
  FPA_CHECK(batch.ndim() == 4, "make_image_grid: batch ", batch.shape(), ": expected (B, C, H, W)");
  return make_image_grid(batch.to_floats(), batch.dim(0), batch.dim(1), batch.dim(2), batch.dim(3),
                         nrow, padding, pad_value);
}

void save_image_grid(const std::string& path, const Tensor& batch, int nrow, int padding) {
  write_png(path, make_image_grid(batch, nrow, padding));
}

}  // namespace fpa
