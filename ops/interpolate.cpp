// interpolate.cpp: resizing (N, C, H, W) images: interpolate_nearest (to any size) and
// upsample_nearest (by an integer factor), PyTorch's legacy "nearest" rule
// src = min(floor(dst * float(in/out)), in - 1); and interpolate_bilinear, PyTorch's bilinear
// rule without aligned corners (ops/backend/bilinear_taps.h), as FID resizes to 299x299.
//
// Resizing is linear: each resize's backward is its adjoint, the internal op
// "interpolate_<rule>_backward" (each output gradient added back onto the pixels it read, with
// their weights), whose own backward is the resize again, so gradients of any order follow.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("interpolate", {"interpolate_nearest", true}, {"upsample_nearest", true},
                 {"interpolate_nearest_backward", true}, {"interpolate_bilinear", true},
                 {"interpolate_bilinear_backward", true});

namespace {

using ResizePrimitive = void (*Backend::*)(DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*);

// One resize rule: its two ops and the backend primitives that run them.
struct ResizeRule {
  const char* op;
  const char* backward_op;
  ResizePrimitive forward, backward;
};

const ResizeRule kNearest{"interpolate_nearest", "interpolate_nearest_backward", &Backend::resize_nearest,
                          &Backend::resize_nearest_backward};
const ResizeRule kBilinear{"interpolate_bilinear", "interpolate_bilinear_backward", &Backend::resize_bilinear,
                           &Backend::resize_bilinear_backward};

Tensor resize_node(const ResizeRule& rule, const Tensor& x, int64_t out_h, int64_t out_w);
Tensor resize_backward_node(const ResizeRule& rule, const Tensor& dy, int64_t H, int64_t W);

// y (N, C, out_h, out_w) from x (N, C, H, W).
Tensor resize_node(const ResizeRule& rule, const Tensor& x, int64_t out_h, int64_t out_w) {
  const int64_t H = x.dim(2), W = x.dim(3);
  Tensor y = empty({x.dim(0), x.dim(1), out_h, out_w}, x.dtype(), x.device());
  (backend(x.device()).*rule.forward)(x.dtype(), x.dim(0) * x.dim(1), H, W, out_h, out_w, x.data(), y.data());
  return record(rule.op, y, {x}, [&rule, H, W](const Tensor& gy, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{resize_backward_node(rule, gy, H, W)};
  });
}

// dx (N, C, H, W): the adjoint of the resize applied to dy (N, C, OH, OW).
Tensor resize_backward_node(const ResizeRule& rule, const Tensor& dy, int64_t H, int64_t W) {
  const int64_t OH = dy.dim(2), OW = dy.dim(3);
  Tensor dx = empty({dy.dim(0), dy.dim(1), H, W}, dy.dtype(), dy.device());
  (backend(dy.device()).*rule.backward)(dy.dtype(), dy.dim(0) * dy.dim(1), H, W, OH, OW, dy.data(), dx.data());
  return record(rule.backward_op, dx, {dy},
                [&rule, OH, OW](const Tensor& gdx, const Tensor&, const std::vector<bool>&) {
                  return std::vector<Tensor>{resize_node(rule, gdx, OH, OW)};
                });
}

Tensor checked_resize(const ResizeRule& rule, const Tensor& x, int64_t out_h, int64_t out_w) {
  check_defined(rule.op, x, "x");
  FPA_CHECK(x.ndim() == 4, rule.op, ": x must be 4-d (N, C, H, W), got ", x.shape());
  FPA_CHECK(x.dim(2) >= 1 && x.dim(3) >= 1, rule.op, ": x ", x.shape(), " has an empty plane");
  FPA_CHECK(out_h >= 1 && out_w >= 1, rule.op, ": output size (", out_h, ", ", out_w, ") must be positive, x ",
            x.shape());
  return resize_node(rule, x, out_h, out_w);
}

}  // namespace

Tensor interpolate_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  return checked_resize(kNearest, x, out_h, out_w);
}

Tensor upsample_nearest(const Tensor& x, int64_t factor) {
  check_defined("upsample_nearest", x, "x");
  FPA_CHECK(x.ndim() == 4, "upsample_nearest: x must be 4-d (N, C, H, W), got ", x.shape());
  FPA_CHECK(factor >= 1, "upsample_nearest: factor must be >= 1, got ", factor);
  return interpolate_nearest(x, x.dim(2) * factor, x.dim(3) * factor);
}

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w) {
  return checked_resize(kBilinear, x, out_h, out_w);
}

}  // namespace fpa
