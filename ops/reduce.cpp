// reduce.cpp: sum, mean, max, var (biased) and norm (p = 2) over axes, with keepdim.
// sum and max run on the backend's reduce primitive; the rest are composed from them (norm
// with a backward of its own, finite at 0).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("reduce", {"sum", true}, {"mean", true}, {"max", true}, {"var", true}, {"norm", true});

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

static Tensor reduce_raw(const char* name, ReduceOp op, const Tensor& a, const std::vector<int>& axes,
                         bool keepdim) {
  unsigned mask = 0;
  for (int ax : axes) mask |= 1u << ax;
  Tensor y = empty(reduced_shape(a.shape(), axes, keepdim), a.dtype(), a.device());
  FPA_CHECK(a.numel() > 0 || op == ReduceOp::sum, name, ": empty input ", a.shape());
  backend(a.device()).reduce(a.dtype(), op, a.shape(), mask, a.data(), y.data());
  return y;
}

static int64_t reduced_count(const Shape& s, const std::vector<int>& axes) {
  int64_t n = 1;
  for (int ax : axes) n *= s[ax];
  return n;
}

Tensor sum(const Tensor& a, const Axes& axes_in, bool keepdim) {
  check_defined("sum", a, "input");
  std::vector<int> axes = normalize_axes(axes_in, a.shape(), "sum");
  Tensor y = reduce_raw("sum", ReduceOp::sum, a, axes, keepdim);
  Shape in = a.shape(), kept = reduced_shape(in, axes, true);
  return record("sum", y, {a}, [in, kept](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{expand(reshape(g, kept), in)};
  });
}

Tensor mean(const Tensor& a, const Axes& axes_in, bool keepdim) {
  check_defined("mean", a, "input");
  std::vector<int> axes = normalize_axes(axes_in, a.shape(), "mean");
  return mul_scalar(sum(a, axes_in, keepdim), 1.0 / double(reduced_count(a.shape(), axes)));
}

Tensor max(const Tensor& a, const Axes& axes_in, bool keepdim) {
  check_defined("max", a, "input");
  std::vector<int> axes = normalize_axes(axes_in, a.shape(), "max");
  Tensor y = reduce_raw("max", ReduceOp::max, a, axes, keepdim);
  Shape in = a.shape(), kept = reduced_shape(in, axes, true);
  std::vector<int> ax(axes);
  return record("max", y, {a}, [a, in, kept, ax](const Tensor& g, const Tensor& out, const Needs&) {
    // The gradient is shared evenly among the maxima (the mask is a constant).
    Tensor top = expand(reshape(out.detach(), kept), in);
    Tensor mask = eq(a.detach(), top);
    Tensor count = sum(mask, Axes(ax.begin(), ax.end()), true);
    return Grads{mul(expand(reshape(g, kept), in), div(mask, count))};
  }, true);
}

Tensor var(const Tensor& a, const Axes& axes, bool keepdim) {
  check_defined("var", a, "input");
  Tensor centered = sub(a, mean(a, axes, true));
  return mean(square(centered), axes, keepdim);
}

Tensor norm(const Tensor& a, const Axes& axes_in, bool keepdim) {
  check_defined("norm", a, "input");
  std::vector<int> axes = normalize_axes(axes_in, a.shape(), "norm");
  Tensor y;
  {
    NoGradGuard ng;
    y = sqrt(sum(square(a), axes_in, keepdim));
  }
  Shape in = a.shape(), kept = reduced_shape(in, axes, true);
  return record("norm", y, {a}, [a, in, kept](const Tensor& g, const Tensor& out, const Needs&) {
    // d||a||/da = a / ||a||; 0 where ||a|| = 0 (there a = 0: divided by 1 instead, a constant
    // mask), as PyTorch does, where sqrt's own gradient would give 0 * inf = NaN.
    Tensor at_zero = eq(out.detach(), zeros(out.shape(), out.dtype(), out.device()));
    Tensor safe = expand(reshape(add(out, at_zero), kept), in);
    return Grads{mul(expand(reshape(g, kept), in), div(a, safe))};
  }, true);
}

}  // namespace fpa
