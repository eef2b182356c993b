// unfold.cpp: unfold (im2col) and fold (col2im), PyTorch's F.unfold / F.fold for square
// kernels. They are mutual adjoints, so each one's backward is the other; the U-Net's local
// attention uses unfold (3x3, padding 1) to gather every position's neighbourhood.
// Column layout: cols (N, C*k*k, L), row c*k*k + kh*k + kw, L = OH*OW output positions.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("unfold", {"unfold", true}, {"fold", true});

namespace {

void check_window(const char* op, int64_t kernel, int64_t stride, int64_t padding) {
  FPA_CHECK(kernel >= 1, op, ": kernel must be >= 1, got ", kernel);
  FPA_CHECK(stride >= 1, op, ": stride must be >= 1, got ", stride);
  FPA_CHECK(padding >= 0, op, ": padding must be >= 0, got ", padding);
}

// The im2col geometry of x (N, C, H, W) with a k x k window; Cout is unused by im2col/col2im.
ConvGeom window_geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, int64_t p, const char* op) {
  FPA_CHECK(H + 2 * p >= k && W + 2 * p >= k, op, ": kernel ", k, " is larger than the input (", H, ", ", W,
            ") padded by ", p);
  const int64_t OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
  return {N, C, H, W, C * k * k, k, k, OH, OW, s, s, p, p, 1};
}

}  // namespace

Tensor unfold(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  check_defined("unfold", x, "x");
  FPA_CHECK(x.ndim() == 4, "unfold: x must be 4-d (N, C, H, W), got ", x.shape());
  check_window("unfold", kernel, stride, padding);
  const ConvGeom g = window_geom(x.dim(0), x.dim(1), x.dim(2), x.dim(3), kernel, stride, padding, "unfold");
  Tensor cols = empty({g.N, g.Cin * kernel * kernel, g.OH * g.OW}, x.dtype(), x.device());
  backend(x.device()).im2col(x.dtype(), g, x.data(), cols.data());
  const int64_t H = g.H, W = g.W;
  return record("unfold", cols, {x}, [=](const Tensor& gy, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{fold(gy, H, W, kernel, stride, padding)};
  });
}

Tensor fold(const Tensor& cols, int64_t H, int64_t W, int64_t kernel, int64_t stride, int64_t padding) {
  check_defined("fold", cols, "cols");
  FPA_CHECK(cols.ndim() == 3, "fold: cols must be 3-d (N, C*k*k, L), got ", cols.shape());
  check_window("fold", kernel, stride, padding);
  FPA_CHECK(H >= 1 && W >= 1, "fold: output size (", H, ", ", W, ") must be positive");
  FPA_CHECK(cols.dim(1) % (kernel * kernel) == 0, "fold: cols ", cols.shape(), " has ", cols.dim(1),
            " rows, not a multiple of kernel*kernel = ", kernel * kernel);
  const ConvGeom g = window_geom(cols.dim(0), cols.dim(1) / (kernel * kernel), H, W, kernel, stride, padding, "fold");
  FPA_CHECK(cols.dim(2) == g.OH * g.OW, "fold: cols ", cols.shape(), " has ", cols.dim(2), " positions but (", H,
            ", ", W, ") with kernel ", kernel, ", stride ", stride, ", padding ", padding, " gives ", g.OH, "x",
            g.OW);
  Tensor x = empty({g.N, g.Cin, H, W}, cols.dtype(), cols.device());
  backend(cols.device()).col2im(cols.dtype(), g, cols.data(), x.data());
  return record("fold", x, {cols}, [=](const Tensor& gx, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{unfold(gx, kernel, stride, padding)};
  });
}

}  // namespace fpa
