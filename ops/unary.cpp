// unary.cpp: pointwise math: pow (scalar exponent), exp, log, sqrt, rsqrt, abs, square,
// clamp, erf. Each backward is written with differentiable ops (masks are constants).
#include <cmath>

#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("unary", {"pow", true}, {"exp", true}, {"log", true}, {"sqrt", true}, {"rsqrt", true}, {"abs", true},
                 {"square", true}, {"clamp", true}, {"erf", true});

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

Tensor pow(const Tensor& a, double p) {
  check_defined("pow", a, "input");
  Tensor y = unary_map(a, UnaryOp::pow, p);
  return record("pow", y, {a}, [a, p](const Tensor& g, const Tensor&, const Needs&) {
    if (p == 0.0) return Grads{mul_scalar(g, 0.0)};
    return Grads{mul(g, mul_scalar(pow(a, p - 1.0), p))};  // p x^(p-1)
  });
}

Tensor exp(const Tensor& a) {
  check_defined("exp", a, "input");
  Tensor y = unary_map(a, UnaryOp::exp);
  return record("exp", y, {a}, [](const Tensor& g, const Tensor& out, const Needs&) {
    return Grads{mul(g, out)};  // exp' = exp
  }, true);
}

Tensor log(const Tensor& a) {
  check_defined("log", a, "input");
  Tensor y = unary_map(a, UnaryOp::log);
  return record("log", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{div(g, a)};
  });
}

Tensor sqrt(const Tensor& a) {
  check_defined("sqrt", a, "input");
  Tensor y = unary_map(a, UnaryOp::sqrt);
  return record("sqrt", y, {a}, [](const Tensor& g, const Tensor& out, const Needs&) {
    return Grads{div(mul_scalar(g, 0.5), out)};  // 1 / (2 sqrt x)
  }, true);
}

Tensor rsqrt(const Tensor& a) {
  check_defined("rsqrt", a, "input");
  Tensor y = unary_map(a, UnaryOp::rsqrt);
  return record("rsqrt", y, {a}, [](const Tensor& g, const Tensor& out, const Needs&) {
    return Grads{mul(g, mul_scalar(pow(out, 3.0), -0.5))};  // -x^(-3/2) / 2
  }, true);
}

Tensor abs(const Tensor& a) {
  check_defined("abs", a, "input");
  Tensor y = unary_map(a, UnaryOp::abs);
  return record("abs", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{mul(g, unary_map(a, UnaryOp::sign))};
  });
}

Tensor square(const Tensor& a) {
  check_defined("square", a, "input");
  Tensor y = unary_map(a, UnaryOp::square);
  return record("square", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{mul(g, mul_scalar(a, 2.0))};
  });
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  check_defined("clamp", a, "input");
  FPA_CHECK(lo <= hi, "clamp: lower bound ", lo, " is above upper bound ", hi);
  Tensor y = unary_map(a, UnaryOp::clamp, lo, hi);
  return record("clamp", y, {a}, [a, lo, hi](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{mul(g, unary_map(a, UnaryOp::inside_mask, lo, hi))};
  });
}

Tensor erf(const Tensor& a) {
  check_defined("erf", a, "input");
  Tensor y = unary_map(a, UnaryOp::erf);
  return record("erf", y, {a}, [a](const Tensor& g, const Tensor&, const Needs&) {
    // 2/sqrt(pi) exp(-x^2)
    return Grads{mul(g, mul_scalar(exp(neg(square(a))), 1.1283791670955126))};
  });
}

}  // namespace fpa
