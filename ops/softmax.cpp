// softmax.cpp: softmax over one axis (max-subtracted in the kernel).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OP("softmax", true, "softmax");

Tensor softmax(const Tensor& a, int axis) {
  check_defined("softmax", a, "input");
  int ax = a.shape().axis(axis, "softmax");
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= a.shape()[i];
  for (int i = ax + 1; i < a.ndim(); ++i) inner *= a.shape()[i];
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).softmax(a.dtype(), outer, a.shape()[ax], inner, a.data(), y.data());
  return record("softmax", y, {a}, [ax](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    // dx = y * (g - sum(g * y, axis))
    return std::vector<Tensor>{mul(out, sub(g, sum(mul(g, out), {ax}, true)))};
  }, true);
}

}  // namespace fpa
