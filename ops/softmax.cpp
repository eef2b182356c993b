// softmax.cpp: softmax over one axis (max-subtracted in the kernel); its backward is one primitive
// (Backend::softmax_backward) unless the gradient itself is being recorded.
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
  return record("softmax", y, {a}, [ax, outer, inner](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    // dx = y * (g - sum(g * y, axis)): one primitive, or composed ops when the gradient is
    // recorded (create_graph) or the backend lacks it.
    const Backend& be = backend(out.device());
    if (grad_enabled() || !be.supports("softmax_backward"))
      return std::vector<Tensor>{mul(out, sub(g, sum(mul(g, out), {ax}, true)))};
    Tensor dx = empty(out.shape(), out.dtype(), out.device());
    be.softmax_backward(out.dtype(), outer, out.shape()[ax], inner, out.data(), g.data(), dx.data());
    return std::vector<Tensor>{dx};
  }, true);
}

}  // namespace fpa
