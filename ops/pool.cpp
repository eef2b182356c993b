// pool.cpp: avg_pool2d, adaptive_avg_pool2d and max_pool2d (PyTorch semantics: the padding
// counted in the average's divisor or not (count_include_pad), adaptive bins
// [floor(o*H/OH), ceil((o+1)*H/OH)), a max window's first largest entry or its last NaN).
//
// Average pooling is linear, so its backward is its adjoint, the internal op
// "avg_pool2d_backward" (spread each output gradient evenly over its window), and that op's
// backward is the forward pool again: gradients of every order use the two primitives only.
// Max pooling is the same once its argmax is fixed, which it is wherever x has a derivative:
// y = v at x's argmax (recorded as "max_pool2d" w.r.t. v, with v = x) and its adjoint
// "max_pool2d_backward" (each gradient to its window's argmax) are each other's backward, and
// neither passes a gradient to x.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("pool", {"avg_pool2d", true}, {"adaptive_avg_pool2d", true}, {"avg_pool2d_backward", true},
                 {"max_pool2d", true}, {"max_pool2d_backward", true});

namespace {

Tensor pool_node(const Tensor& x, const PoolGeom& g);
Tensor pool_backward_node(const Tensor& dy, const PoolGeom& g, const Shape& x_shape);

// y (N, C, OH, OW) = the windowed means of x (N, C, H, W).
Tensor pool_node(const Tensor& x, const PoolGeom& g) {
  Tensor y = empty({x.dim(0), x.dim(1), g.OH, g.OW}, x.dtype(), x.device());
  backend(x.device()).avg_pool2d(x.dtype(), g, x.data(), y.data());
  const Shape x_shape = x.shape();
  return record(g.adaptive ? "adaptive_avg_pool2d" : "avg_pool2d", y, {x},
                [g, x_shape](const Tensor& gy, const Tensor&, const std::vector<bool>&) {
                  return std::vector<Tensor>{pool_backward_node(gy, g, x_shape)};
                });
}

// dx (N, C, H, W) = each dy (N, C, OH, OW) element spread over its window / window size.
Tensor pool_backward_node(const Tensor& dy, const PoolGeom& g, const Shape& x_shape) {
  Tensor dx = empty(x_shape, dy.dtype(), dy.device());
  backend(dy.device()).avg_pool2d_backward(dy.dtype(), g, dy.data(), dx.data());
  return record("avg_pool2d_backward", dx, {dy}, [g](const Tensor& gdx, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{pool_node(gdx, g)};
  });
}

Tensor max_select_node(const Tensor& x, const Tensor& v, const PoolGeom& g);
Tensor max_backward_node(const Tensor& x, const Tensor& dy, const PoolGeom& g);

// y (N, C, OH, OW) = v (N, C, H, W) at each window's argmax of x; recorded w.r.t. v only.
Tensor max_select_node(const Tensor& x, const Tensor& v, const PoolGeom& g) {
  Tensor y = empty({x.dim(0), x.dim(1), g.OH, g.OW}, x.dtype(), x.device());
  backend(x.device()).max_pool2d(x.dtype(), g, x.data(), v.data(), y.data());
  const Tensor argmax_source = x.detach();
  return record("max_pool2d", y, {v}, [g, argmax_source](const Tensor& gy, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{max_backward_node(argmax_source, gy, g)};
  });
}

// dx (N, C, H, W) = each dy (N, C, OH, OW) element added at its window's argmax of x.
Tensor max_backward_node(const Tensor& x, const Tensor& dy, const PoolGeom& g) {
  Tensor dx = empty(x.shape(), dy.dtype(), dy.device());
  backend(dy.device()).max_pool2d_backward(dy.dtype(), g, x.data(), dy.data(), dx.data());
  return record("max_pool2d_backward", dx, {dy}, [g, x](const Tensor& gdx, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{max_select_node(x, gdx, g)};
  });
}

// The fixed-window geometry of avg_pool2d and max_pool2d, checked (stride -1: the kernel).
PoolGeom window_geometry(const char* op, const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  if (stride == -1) stride = kernel;
  FPA_CHECK(kernel >= 1 && stride >= 1, op, ": kernel ", kernel, " and stride ", stride, " must be >= 1");
  FPA_CHECK(padding >= 0 && 2 * padding <= kernel, op, ": padding ", padding, " must be in [0, kernel/2] for kernel ",
            kernel);
  FPA_CHECK(x.dim(2) + 2 * padding >= kernel && x.dim(3) + 2 * padding >= kernel, op, ": kernel ", kernel,
            " is larger than x ", x.shape(), " padded by ", padding);
  PoolGeom g;
  g.planes = x.dim(0) * x.dim(1), g.H = x.dim(2), g.W = x.dim(3);
  g.OH = (g.H + 2 * padding - kernel) / stride + 1, g.OW = (g.W + 2 * padding - kernel) / stride + 1;
  g.kernel = kernel, g.stride = stride, g.pad = padding, g.adaptive = false;
  return g;
}

void check_input(const char* op, const Tensor& x) {
  check_defined(op, x, "x");
  FPA_CHECK(x.ndim() == 4, op, ": x must be 4-d (N, C, H, W), got ", x.shape());
  FPA_CHECK(x.dim(2) >= 1 && x.dim(3) >= 1, op, ": x ", x.shape(), " has an empty plane");
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad) {
  check_input("avg_pool2d", x);
  PoolGeom g = window_geometry("avg_pool2d", x, kernel, stride, padding);
  g.count_include_pad = count_include_pad;
  return pool_node(x, g);
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_input("max_pool2d", x);
  return max_select_node(x, x, window_geometry("max_pool2d", x, kernel, stride, padding));
}

Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_input("adaptive_avg_pool2d", x);
  FPA_CHECK(out_h >= 1 && out_w >= 1, "adaptive_avg_pool2d: output size (", out_h, ", ", out_w,
            ") must be positive, x ", x.shape());
  PoolGeom g;
  g.planes = x.dim(0) * x.dim(1), g.H = x.dim(2), g.W = x.dim(3), g.OH = out_h, g.OW = out_w;
  g.kernel = 0, g.stride = 0, g.pad = 0, g.adaptive = true;
  return pool_node(x, g);
}

}  // namespace fpa
