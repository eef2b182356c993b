// softmax.cpp: softmax over one axis (max-subtracted in the kernel). Its backward,
// dx = y (g - sum(g y, axis)), is one primitive (Backend::softmax_backward), also while the
// gradient itself is recorded (create_graph): then as a node of its own, whose backward is
//   dg = y (u - sum(u y)) (the same primitive),  dy = u (g - sum(g y)) - g sum(u y),
// so a recorded gradient keeps y and g only, not the composed form's intermediate maps.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OP("softmax", true, "softmax");

namespace {

// dx = y (g - sum(g y, axis)), through the primitive where the backend has it; recorded (with
// the backward above) when grad mode is on.
Tensor softmax_grad(const Tensor& y, const Tensor& g, int ax) {
  const Backend& be = backend(y.device());
  if (!be.supports("softmax_backward")) return mul(y, sub(g, sum(mul(g, y), {ax}, true)));
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= y.shape()[i];
  for (int i = ax + 1; i < y.ndim(); ++i) inner *= y.shape()[i];
  Tensor dx = empty(y.shape(), y.dtype(), y.device());
  be.softmax_backward(y.dtype(), outer, y.shape()[ax], inner, y.data(), g.data(), dx.data());
  return record("softmax_grad", dx, {y, g}, [y, g, ax](const Tensor& u, const Tensor&, const std::vector<bool>& needs) {
    Tensor dy, dg;
    if (needs[0]) dy = sub(mul(u, sub(g, sum(mul(g, y), {ax}, true))), mul(g, sum(mul(u, y), {ax}, true)));
    if (needs[1]) dg = softmax_grad(y, u, ax);
    return std::vector<Tensor>{dy, dg};
  });
}

}  // namespace

Tensor softmax(const Tensor& a, int axis) {
  check_defined("softmax", a, "input");
  int ax = a.shape().axis(axis, "softmax");
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < ax; ++i) outer *= a.shape()[i];
  for (int i = ax + 1; i < a.ndim(); ++i) inner *= a.shape()[i];
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).softmax(a.dtype(), outer, a.shape()[ax], inner, a.data(), y.data());
  return record("softmax", y, {a}, [ax](const Tensor& g, const Tensor& out, const std::vector<bool>&) {
    return std::vector<Tensor>{softmax_grad(out, g, ax)};
  }, true);
}

}  // namespace fpa
