// activation.cpp: tanh, sigmoid, relu, leaky_relu, silu, gelu (erf form) and glu.
#include <cmath>

#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("activation", {"tanh", true}, {"sigmoid", true}, {"relu", true}, {"leaky_relu", true}, {"silu", true},
                 {"gelu", true}, {"glu", true});

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

Tensor tanh(const Tensor& a) {
  check_defined("tanh", a, "input");
  Tensor y = unary_map(a, UnaryOp::tanh);
  return record("tanh", y, {a}, [](const Tensor& g, const Tensor& out, const Needs&) {
    return Grads{mul(g, 1.0 - square(out))};  // 1 - tanh^2
  }, true);
}

Tensor sigmoid(const Tensor& a) {
  check_defined("sigmoid", a, "input");
  Tensor y = unary_map(a, UnaryOp::sigmoid);
  return record("sigmoid", y, {a}, [](const Tensor& g, const Tensor& out, const Needs&) {
    return Grads{mul(g, mul(out, 1.0 - out))};  // s (1 - s)
  }, true);
}

Tensor relu(const Tensor& a) {
  check_defined("relu", a, "input");
  Tensor y = unary_map(a, UnaryOp::relu);
  return record("relu", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    // PyTorch's threshold_backward: 0 where x <= 0, else g, also at a NaN x (where a mask of
    // x > 0 would drop the gradient). The mask is 1 - [-inf <= x <= 0], exactly 0 or 1.
    Tensor at_most_zero = unary_map(a, UnaryOp::inside_mask, -INFINITY, 0.0);
    return Grads{mul(g, unary_map(at_most_zero, UnaryOp::affine, -1.0, 1.0))};
  });
}

Tensor leaky_relu(const Tensor& a, double slope) {
  check_defined("leaky_relu", a, "input");
  Tensor y = unary_map(a, UnaryOp::leaky_relu, slope);
  return record("leaky_relu", y, {a}, [a, slope](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{mul(g, unary_map(a, UnaryOp::leaky_relu_grad, slope))};  // 1 where x > 0, slope elsewhere
  });
}

Tensor silu(const Tensor& a) {
  check_defined("silu", a, "input");
  Tensor y = unary_map(a, UnaryOp::silu);
  return record("silu", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    Tensor s = sigmoid(a);  // silu' = s (1 + x (1 - s))
    return Grads{mul(g, mul(s, 1.0 + mul(a, 1.0 - s)))};
  });
}

Tensor gelu(const Tensor& a) {
  check_defined("gelu", a, "input");
  Tensor y = unary_map(a, UnaryOp::gelu);
  return record("gelu", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    // gelu' = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2/2) / sqrt(2 pi):
    // one unary map, or, when the gradient is recorded (create_graph), composed ops to differentiate.
    if (!grad_enabled()) return Grads{mul(g, unary_map(a, UnaryOp::gelu_grad))};
    Tensor cdf = mul_scalar(1.0 + erf(mul_scalar(a, 0.70710678118654752440)), 0.5);
    Tensor pdf = mul_scalar(exp(mul_scalar(square(a), -0.5)), 0.3989422804014327);
    return Grads{mul(g, cdf + mul(a, pdf))};
  });
}

Tensor glu(const Tensor& a, int axis) {
  check_defined("glu", a, "input");
  int ax = a.shape().axis(axis, "glu");
  FPA_CHECK(a.shape()[ax] % 2 == 0, "glu: dimension ", axis, " of ", a.shape(), " is odd");
  std::vector<Tensor> halves = chunk(a, 2, ax);
  return mul(halves[0], sigmoid(halves[1]));
}

}  // namespace fpa
