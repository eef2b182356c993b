// norm.cpp: group normalisation, composed from differentiable reductions (so its second
// derivative comes for free).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("norm", {"group_norm", true});

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  check_defined("group_norm", x, "input");
  FPA_CHECK(x.ndim() >= 2, "group_norm: input ", x.shape(), " needs (N, C, ...)");
  int64_t N = x.dim(0), C = x.dim(1);
  FPA_CHECK(groups > 0 && C % groups == 0, "group_norm: ", C, " channels of ", x.shape(),
            " do not divide into ", groups, " groups");
  Tensor g = reshape(x, {N, groups, -1});                      // (N, G, C/G * spatial)
  Tensor centered = sub(g, mean(g, {2}, true));
  Tensor normed = mul(centered, rsqrt(add_scalar(mean(square(centered), {2}, true), eps)));
  Tensor y = reshape(normed, x.shape());
  std::vector<int64_t> param_shape(x.ndim(), 1);                // (1, C, 1, ...)
  param_shape[1] = C;
  if (weight.defined()) {
    check_same_kind("group_norm", x, weight);
    FPA_CHECK(weight.numel() == C, "group_norm: weight ", weight.shape(), " for ", C, " channels");
    y = mul(y, reshape(weight, param_shape));
  }
  if (bias.defined()) {
    check_same_kind("group_norm", x, bias);
    FPA_CHECK(bias.numel() == C, "group_norm: bias ", bias.shape(), " for ", C, " channels");
    y = add(y, reshape(bias, param_shape));
  }
  return y;
}

}  // namespace fpa
