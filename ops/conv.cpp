// conv.cpp: conv2d, conv_transpose2d and conv2d_weight_grad: three linear/bilinear ops whose
// backward formulas are written with each other, so gradients of any order (the GAN gradient
// penalty needs the second) come without extra code.
//
// With A_w the convolution operator of weight w (y = A_w x) and W(x, dy) = d<dy, A_w x>/dw:
//   conv2d              y = A_w x        dx = A_w^T dy        dw = W(x, dy)
//   conv_transpose2d    y = A_w^T x      dx = A_w dy          dw = W(dy, x)
//   conv2d_weight_grad  G = W(x, dy)     dx = A_dG^T dy       d(dy) = A_dG x
// A transposed-conv weight (Cin, Cout/groups, KH, KW) is the weight of the convolution going the
// other way, so all three run on the backend's conv2d_forward / backward_data / backward_filter.
// Bias is added with the broadcasting `add` on a (1, C, 1, 1) view, which keeps it differentiable.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("conv", {"conv2d", true}, {"conv_transpose2d", true}, {"conv2d_weight_grad", true});

namespace {

// The convolution of `in` (N, Cin, H, W) with weight `w` (Cout, Cin/groups, KH, KW) to (OH, OW).
ConvGeom geom_of(const Shape& in, const Shape& w, int64_t OH, int64_t OW, const Conv2dOptions& o) {
  return {in[0], in[1], in[2], in[3], w[0], w[2], w[3], OH, OW, o.stride, o.stride, o.pad_h(), o.pad_w(), o.groups};
}

Tensor conv_node(const Tensor& x, const Tensor& w, const Conv2dOptions& o);
Tensor conv_transpose_node(const Tensor& x, const Tensor& w, const Conv2dOptions& o, int64_t out_h, int64_t out_w);
Tensor weight_grad_node(const Tensor& x, const Tensor& dy, const Shape& w_shape, const Conv2dOptions& o);

// y = A_w x: x (N, Cin, H, W), w (Cout, Cin/groups, KH, KW) -> y (N, Cout, OH, OW).
Tensor conv_node(const Tensor& x, const Tensor& w, const Conv2dOptions& o) {
  const int64_t OH = (x.dim(2) + 2 * o.pad_h() - w.dim(2)) / o.stride + 1;
  const int64_t OW = (x.dim(3) + 2 * o.pad_w() - w.dim(3)) / o.stride + 1;
  Tensor y = empty({x.dim(0), w.dim(0), OH, OW}, x.dtype(), x.device());
  backend(x.device()).conv2d_forward(x.dtype(), geom_of(x.shape(), w.shape(), OH, OW, o), x.data(), w.data(),
                                     y.data());
  return record("conv2d", y, {x, w}, [x, w, o](const Tensor& gy, const Tensor&, const std::vector<bool>& needs) {
    Tensor gx = needs[0] ? conv_transpose_node(gy, w, o, x.dim(2), x.dim(3)) : Tensor();
    Tensor gw = needs[1] ? weight_grad_node(x, gy, w.shape(), o) : Tensor();
    return std::vector<Tensor>{gx, gw};
  });
}

// y = A_w^T x: x (N, Cin, IH, IW), w (Cin, Cout/groups, KH, KW) -> y (N, Cout, out_h, out_w),
// where the convolution of y's size with w gives back (IH, IW).
Tensor conv_transpose_node(const Tensor& x, const Tensor& w, const Conv2dOptions& o, int64_t out_h, int64_t out_w) {
  const Shape out{x.dim(0), w.dim(1) * o.groups, out_h, out_w};
  Tensor y = empty(out, x.dtype(), x.device());
  backend(x.device()).conv2d_backward_data(x.dtype(), geom_of(out, w.shape(), x.dim(2), x.dim(3), o), x.data(),
                                           w.data(), y.data());
  return record("conv_transpose2d", y, {x, w},
                [x, w, o](const Tensor& gy, const Tensor&, const std::vector<bool>& needs) {
                  Tensor gx = needs[0] ? conv_node(gy, w, o) : Tensor();
                  Tensor gw = needs[1] ? weight_grad_node(gy, x, w.shape(), o) : Tensor();
                  return std::vector<Tensor>{gx, gw};
                });
}

// G = W(x, dy): x (N, Cin, H, W), dy (N, Cout, OH, OW) -> G of w_shape (Cout, Cin/groups, KH, KW).
Tensor weight_grad_node(const Tensor& x, const Tensor& dy, const Shape& w_shape, const Conv2dOptions& o) {
  Tensor G = empty(w_shape, x.dtype(), x.device());
  backend(x.device()).conv2d_backward_filter(x.dtype(), geom_of(x.shape(), w_shape, dy.dim(2), dy.dim(3), o),
                                             x.data(), dy.data(), G.data());
  return record("conv2d_weight_grad", G, {x, dy},
                [x, dy, o](const Tensor& gG, const Tensor&, const std::vector<bool>& needs) {
                  Tensor gx = needs[0] ? conv_transpose_node(dy, gG, o, x.dim(2), x.dim(3)) : Tensor();
                  Tensor gdy = needs[1] ? conv_node(x, gG, o) : Tensor();
                  return std::vector<Tensor>{gx, gdy};
                });
}

void check_options(const char* op, const Conv2dOptions& o) {
  FPA_CHECK(o.groups >= 1, op, ": groups must be >= 1, got ", o.groups);
  FPA_CHECK(o.stride >= 1, op, ": stride must be >= 1, got ", o.stride);
  FPA_CHECK(o.padding >= 0, op, ": padding must be >= 0, got ", o.padding);
  FPA_CHECK(o.padding_w >= -1, op, ": padding_w must be >= 0 (or -1: the same as padding), got ", o.padding_w);
}

void check_4d(const char* op, const Tensor& t, const char* what, const char* layout) {
  check_defined(op, t, what);
  FPA_CHECK(t.ndim() == 4, op, ": ", what, " must be 4-d ", layout, ", got ", t.shape());
}

// Checks x against a conv weight shape (Cout, Cin/groups, KH, KW); returns the output size.
std::pair<int64_t, int64_t> check_conv_geometry(const char* op, const Shape& x, const Shape& w,
                                                const Conv2dOptions& o) {
  check_options(op, o);
  FPA_CHECK(w[0] % o.groups == 0, op, ": weight ", w, " has ", w[0], " output channels, not divisible by groups ",
            o.groups);
  FPA_CHECK(x[1] == w[1] * o.groups, op, ": x ", x, " has ", x[1], " channels but weight ", w, " with groups ",
            o.groups, " expects ", w[1] * o.groups);
  FPA_CHECK(w[2] >= 1 && w[3] >= 1, op, ": weight ", w, " has an empty kernel");
  const int64_t ph = o.pad_h(), pw = o.pad_w();
  FPA_CHECK(x[2] + 2 * ph >= w[2] && x[3] + 2 * pw >= w[3], op, ": kernel ", w[2], "x", w[3], " is larger than x ",
            x, " padded by (", ph, ", ", pw, ")");
  return {(x[2] + 2 * ph - w[2]) / o.stride + 1, (x[3] + 2 * pw - w[3]) / o.stride + 1};
}

Tensor add_channel_bias(const char* op, const Tensor& y, const Tensor& bias) {
  if (!bias.defined()) return y;
  check_same_kind(op, y, bias);
  FPA_CHECK(bias.ndim() == 1 && bias.dim(0) == y.dim(1), op, ": bias must be (", y.dim(1), ") for output ",
            y.shape(), ", got ", bias.shape());
  return add(y, reshape(bias, Shape{1, y.dim(1), 1, 1}));
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions o) {
  check_4d("conv2d", x, "x", "(N, C, H, W)");
  check_4d("conv2d", weight, "weight", "(Cout, Cin/groups, KH, KW)");
  check_same_kind("conv2d", x, weight);
  check_conv_geometry("conv2d", x.shape(), weight.shape(), o);
  return add_channel_bias("conv2d", conv_node(x, weight, o), bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions o,
                        int64_t output_padding) {
  const char* op = "conv_transpose2d";
  check_4d(op, x, "x", "(N, C, H, W)");
  check_4d(op, weight, "weight", "(Cin, Cout/groups, KH, KW)");
  check_same_kind(op, x, weight);
  check_options(op, o);
  const Shape& w = weight.shape();
  FPA_CHECK(x.dim(1) == w[0], op, ": x ", x.shape(), " has ", x.dim(1), " channels but weight ", w,
            " (Cin, Cout/groups, KH, KW) expects ", w[0]);
  FPA_CHECK(w[0] % o.groups == 0, op, ": weight ", w, " has ", w[0], " input channels, not divisible by groups ",
            o.groups);
  FPA_CHECK(output_padding >= 0 && output_padding < o.stride, op, ": output_padding ", output_padding,
            " must be in [0, stride ", o.stride, ")");
  const int64_t out_h = (x.dim(2) - 1) * o.stride - 2 * o.pad_h() + w[2] + output_padding;
  const int64_t out_w = (x.dim(3) - 1) * o.stride - 2 * o.pad_w() + w[3] + output_padding;
  FPA_CHECK(out_h >= 1 && out_w >= 1 && w[1] >= 1, op, ": output size (", out_h, ", ", out_w, ") of x ",
            x.shape(), " with weight ", w, ", stride ", o.stride, ", padding (", o.pad_h(), ", ", o.pad_w(),
            ") is empty");
  return add_channel_bias(op, conv_transpose_node(x, weight, o, out_h, out_w), bias);
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const Shape& weight_shape, Conv2dOptions o) {
  const char* op = "conv2d_weight_grad";
  check_4d(op, x, "x", "(N, C, H, W)");
  check_4d(op, dy, "dy", "(N, Cout, OH, OW)");
  check_same_kind(op, x, dy);
  FPA_CHECK(weight_shape.ndim == 4, op, ": weight shape must be 4-d (Cout, Cin/groups, KH, KW), got ",
            weight_shape);
  auto [OH, OW] = check_conv_geometry(op, x.shape(), weight_shape, o);
  FPA_CHECK(dy.dim(0) == x.dim(0) && dy.dim(1) == weight_shape[0] && dy.dim(2) == OH && dy.dim(3) == OW, op,
            ": dy ", dy.shape(), " does not match the output (", x.dim(0), ", ", weight_shape[0], ", ", OH, ", ",
            OW, ") of x ", x.shape(), " with weight ", weight_shape);
  return weight_grad_node(x, dy, weight_shape, o);
}

}  // namespace fpa
