// elementwise.cpp: add, sub, mul, div (broadcasting), scalar add/mul, neg, and sum_to,
// the adjoint of broadcasting that every broadcasting backward ends with.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("elementwise", {"add", true}, {"sub", true}, {"mul", true}, {"div", true}, {"add_scalar", true},
                 {"mul_scalar", true}, {"neg", true}, {"sum_to", true});

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_map("add", BinaryOp::add, a, b);
  Shape sa = a.shape(), sb = b.shape();
  return record("add", y, {a, b}, [sa, sb](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? sum_to(g, sa) : Tensor(), needs[1] ? sum_to(g, sb) : Tensor()};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_map("sub", BinaryOp::sub, a, b);
  Shape sa = a.shape(), sb = b.shape();
  return record("sub", y, {a, b}, [sa, sb](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? sum_to(g, sa) : Tensor(), needs[1] ? sum_to(neg(g), sb) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_map("mul", BinaryOp::mul, a, b);
  return record("mul", y, {a, b}, [a, b](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? sum_to(mul(g, b), a.shape()) : Tensor(),
                               needs[1] ? sum_to(mul(g, a), b.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_map("div", BinaryOp::div, a, b);
  return record("div", y, {a, b}, [a, b](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    // d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2
    Tensor ga = needs[0] ? sum_to(div(g, b), a.shape()) : Tensor();
    Tensor gb = needs[1] ? sum_to(neg(div(mul(g, a), square(b))), b.shape()) : Tensor();
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor add_scalar(const Tensor& a, double s) {
  check_defined("add_scalar", a, "input");
  Tensor y = unary_map(a, UnaryOp::affine, 1.0, s);
  return record("add_scalar", y, {a}, [](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{g};
  });
}

Tensor mul_scalar(const Tensor& a, double s) {
  check_defined("mul_scalar", a, "input");
  Tensor y = unary_map(a, UnaryOp::affine, s, 0.0);
  return record("mul_scalar", y, {a}, [s](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{mul_scalar(g, s)};
  });
}

Tensor neg(const Tensor& a) {
  check_defined("neg", a, "input");
  Tensor y = unary_map(a, UnaryOp::neg);
  return record("neg", y, {a}, [](const Tensor& g, const Tensor&, const std::vector<bool>&) {
    return std::vector<Tensor>{neg(g)};
  });
}

Tensor sum_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  // Axes to reduce: the leading extra ones and those where `shape` has 1.
  int lead = a.ndim() - shape.ndim;
  FPA_CHECK(lead >= 0, "sum_to: cannot reduce ", a.shape(), " to ", shape);
  Axes axes;
  for (int i = 0; i < a.ndim(); ++i) {
    if (i < lead) axes.push_back(i);
    else if (shape[i - lead] == 1 && a.shape()[i] != 1) axes.push_back(i);
    else FPA_CHECK(shape[i - lead] == a.shape()[i], "sum_to: cannot reduce ", a.shape(), " to ", shape);
  }
  Tensor s = sum(a, axes, true);
  return reshape(s, shape);
}

}  // namespace fpa
