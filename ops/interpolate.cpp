// interpolate.cpp: nearest-neighbour resizing, interpolate_nearest (to any size) and
// upsample_nearest (by an integer factor), PyTorch's legacy "nearest" rule
// src = min(floor(dst * float(in/out)), in - 1).
//
// Resizing is linear: its backward is the internal op "interpolate_nearest_backward" (each
// output gradient added back onto its source pixel), whose own backward is the resize again.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("interpolate", {"interpolate_nearest", true}, {"upsample_nearest", true},
                 {"interpolate_nearest_backward", true});

namespace {

Tensor resize_node(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor resize_backward_node(const Tensor& dy, int64_t H, int64_t W);

// y (N, C, out_h, out_w) picks x (N, C, H, W) pixels.
Tensor resize_node(const Tensor& x, int64_t out_h, int64_t out_w) {
  const int64_t H = x.dim(2), W = x.dim(3);
  Tensor y = empty({x.dim(0), x.dim(1), out_h, out_w}, x.dtype(), x.device());
  backend(x.device()).resize_nearest(x.dtype(), x.dim(0) * x.dim(1), H, W, out_h, out_w, x.data(), y.data());
  return record("interpolate_nearest", y, {x}, [H, W](const Tensor& gy, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{resize_backward_node(gy, H, W)};
  });
}

// dx (N, C, H, W) sums the dy (N, C, OH, OW) elements that picked each pixel.
Tensor resize_backward_node(const Tensor& dy, int64_t H, int64_t W) {
  const int64_t OH = dy.dim(2), OW = dy.dim(3);
  Tensor dx = empty({dy.dim(0), dy.dim(1), H, W}, dy.dtype(), dy.device());
  backend(dy.device()).resize_nearest_backward(dy.dtype(), dy.dim(0) * dy.dim(1), H, W, OH, OW, dy.data(),
                                               dx.data());
  return record("interpolate_nearest_backward", dx, {dy},
                [OH, OW](const Tensor& gdx, const Tensor&, const std::vector<bool>&) {
                  return std::vector<Tensor>{resize_node(gdx, OH, OW)};
                });
}

}  // namespace

Tensor interpolate_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_defined("interpolate_nearest", x, "x");
  FPA_CHECK(x.ndim() == 4, "interpolate_nearest: x must be 4-d (N, C, H, W), got ", x.shape());
  FPA_CHECK(x.dim(2) >= 1 && x.dim(3) >= 1, "interpolate_nearest: x ", x.shape(), " has an empty plane");
  FPA_CHECK(out_h >= 1 && out_w >= 1, "interpolate_nearest: output size (", out_h, ", ", out_w,
            ") must be positive, x ", x.shape());
  return resize_node(x, out_h, out_w);
}

Tensor upsample_nearest(const Tensor& x, int64_t factor) {
  check_defined("upsample_nearest", x, "x");
  FPA_CHECK(x.ndim() == 4, "upsample_nearest: x must be 4-d (N, C, H, W), got ", x.shape());
  FPA_CHECK(factor >= 1, "upsample_nearest: factor must be >= 1, got ", factor);
  return interpolate_nearest(x, x.dim(2) * factor, x.dim(3) * factor);
}

}  // namespace fpa
