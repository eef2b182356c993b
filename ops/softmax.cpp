// softmax.cpp: softmax over one axis (max-subtracted in the kernel). Its backward,
// dx = y (g - sum(g y, axis)), is one primitive (Backend::softmax_backward), also while the
// gradient itself is recorded (create_graph): then as a node of its own, whose backward is
//   dg = y (u - sum(u y)),  dy = u (g - sum(g y)) - g sum(u y),
// the same primitive for both (with u for dy), so a recorded gradient keeps y and g only, not
// the composed form's intermediate maps, and its second order is two kernels.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("softmax", {"softmax", true});

namespace {

// (outer, dim, inner) of a softmax over axis ax of `shape`.
void softmax_layout(const Shape& shape, int ax, int64_t& outer, int64_t& inner) {
  outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= shape[i];
  for (int i = ax + 1; i < shape.ndim; ++i) inner *= shape[i];
}

// The primitive: dx = y (g - sum g y), or with u: u (g - sum g y) - g sum(u y). Unrecorded.
Tensor softmax_backward_primitive(const Tensor& y, const Tensor& g, const Tensor& u, int ax) {
  int64_t outer = 0, inner = 0;
  softmax_layout(y.shape(), ax, outer, inner);
  Tensor dx = empty(y.shape(), y.dtype(), y.device());
  backend(y.device()).softmax_backward(y.dtype(), outer, y.shape()[ax], inner, y.data(), g.data(),
                                       u.defined() ? u.data() : nullptr, dx.data());
  return dx;
}

// The backward of softmax_grad(y, g) along u with respect to y: u (g - sum g y) - g sum(u y).
// The primitive, unless this gradient is recorded too (a third order): then composed.
Tensor softmax_grad_dy(const Tensor& y, const Tensor& g, const Tensor& u, int ax) {
  if (grad_enabled() || !backend(y.device()).supports("softmax_backward"))
    return sub(mul(u, sub(g, sum(mul(g, y), {ax}, true))), mul(g, sum(mul(u, y), {ax}, true)));
  return softmax_backward_primitive(y, g, u, ax);
}

// dx = y (g - sum(g y, axis)), through the primitive where the backend has it; recorded (with
// the backward above) when grad mode is on.
Tensor softmax_grad(const Tensor& y, const Tensor& g, int ax) {
  if (!backend(y.device()).supports("softmax_backward")) return mul(y, sub(g, sum(mul(g, y), {ax}, true)));
  Tensor dx = softmax_backward_primitive(y, g, Tensor(), ax);
  return record("softmax_grad", dx, {y, g}, [y, g, ax](const Tensor& u, const Tensor&, const std::vector<bool>& needs) {
    Tensor dy, dg;
    if (needs[0]) dy = softmax_grad_dy(y, g, u, ax);
    if (needs[1]) dg = softmax_grad(y, u, ax);
    return std::vector<Tensor>{dy, dg};
  });
}

}  // namespace

Tensor softmax(const Tensor& a, int axis) {
  check_defined("softmax", a, "input");
  int ax = a.shape().axis(axis, "softmax");
  int64_t outer = 0, inner = 0;
  softmax_layout(a.shape(), ax, outer, inner);
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).softmax(a.dtype(), outer, a.shape()[ax], inner, a.data(), y.data());
  return record("softmax", y, {a}, [ax](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return std::vector<Tensor>{softmax_grad(out, g, ax)};
  }, true);
}

}  // namespace fpa
