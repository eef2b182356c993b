// image_grid.h: a batch of images tiled into one picture, like torchvision.utils.make_grid
// followed by save_image: what the trainer writes for sample grids and for the painting-steps
// picture (2 rows of T tiles: the rank-1 update and the partial image at every step).
//
// Values are clamped to [0, 1] and stored as round(255 x) (NaN becomes 0); grey batches are
// repeated to RGB. The grid has min(nrow, B) tiles per row and ceil(B / nrow) rows, with
// `padding` pixels of `pad_value` around and between tiles.
#pragma once
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/image_io.h"

namespace fpa {

// batch: (B, C, S, S) with C = 1 or 3, float32 or float64, any device. Result: uint8 RGB.
Image make_image_grid(const Tensor& batch, int nrow = 8, int padding = 2, uint8_t pad_value = 0);
// The same from host values, (B, C, H, W) row-major.
Image make_image_grid(const std::vector<float>& batch, int64_t B, int64_t C, int64_t H, int64_t W,
                      int nrow = 8, int padding = 2, uint8_t pad_value = 0);

// make_image_grid, written as PNG.
void save_image_grid(const std::string& path, const Tensor& batch, int nrow = 8, int padding = 2);

}  // namespace fpa
