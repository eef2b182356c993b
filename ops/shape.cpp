// shape.cpp: reshape (a view of the same storage), permute/transpose, expand and flip
// (strided copies). Each backward is the inverse rearrangement.
#include <algorithm>

#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("shape", {"reshape", true}, {"permute", true}, {"transpose", true}, {"expand", true}, {"flip", true});

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

Tensor reshape(const Tensor& a, const Shape& shape) {
  check_defined("reshape", a, "input");
  FPA_CHECK(shape.numel() == a.numel(), "reshape: cannot reshape ", a.shape(), " (", a.numel(),
            " elements) to ", shape);
  if (shape == a.shape()) return a;
  Shape in = a.shape();
  return record("reshape", alias(a, shape), {a}, [in](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{reshape(g, in)};
  });
}

Tensor reshape(const Tensor& a, const std::vector<int64_t>& dims) {
  check_defined("reshape", a, "input");
  std::vector<int64_t> d(dims);
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < d.size(); ++i) {
    if (d[i] == -1) {
      FPA_CHECK(infer < 0, "reshape: more than one -1 in the target shape for ", a.shape());
      infer = int(i);
    } else {
      known *= d[i];
    }
  }
  if (infer >= 0) {
    FPA_CHECK(known > 0 && a.numel() % known == 0, "reshape: cannot infer -1 reshaping ", a.shape());
    d[infer] = a.numel() / known;
  }
  return reshape(a, Shape(d));
}

Tensor permute(const Tensor& a, const std::vector<int>& order) {
  check_defined("permute", a, "input");
  FPA_CHECK(int(order.size()) == a.ndim(), "permute: order has ", order.size(), " axes for ", a.shape());
  std::vector<int> ord(order.size()), inverse(order.size());
  std::vector<bool> seen(order.size(), false);
  for (size_t i = 0; i < order.size(); ++i) {
    ord[i] = a.shape().axis(order[i], "permute");
    FPA_CHECK(!seen[ord[i]], "permute: axis ", order[i], " repeated for ", a.shape());
    seen[ord[i]] = true;
    inverse[ord[i]] = int(i);
  }
  std::vector<int64_t> st = a.shape().strides();
  Shape out;
  StridedLoop L;
  out.ndim = L.ndim = a.ndim();
  std::vector<int64_t> ost;
  for (int i = 0; i < a.ndim(); ++i) out[i] = a.shape()[ord[i]];
  ost = out.strides();
  for (int i = 0; i < a.ndim(); ++i) L.shape[i] = out[i], L.a_strides[i] = st[ord[i]], L.b_strides[i] = ost[i];
  Tensor y = empty(out, a.dtype(), a.device());
  backend(a.device()).copy_strided(a.dtype(), L, a.data(), y.data());
  return record("permute", y, {a}, [inverse](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{permute(g, inverse)};
  });
}

Tensor transpose(const Tensor& a, int axis0, int axis1) {
  check_defined("transpose", a, "input");
  std::vector<int> order(a.ndim());
  for (int i = 0; i < a.ndim(); ++i) order[i] = i;
  std::swap(order[a.shape().axis(axis0, "transpose")], order[a.shape().axis(axis1, "transpose")]);
  return permute(a, order);
}

Tensor expand(const Tensor& a, const Shape& shape) {
  check_defined("expand", a, "input");
  FPA_CHECK(shape.ndim >= a.ndim(), "expand: cannot expand ", a.shape(), " to fewer dims ", shape);
  int lead = shape.ndim - a.ndim();
  for (int i = 0; i < a.ndim(); ++i)
    FPA_CHECK(a.shape()[i] == shape[lead + i] || a.shape()[i] == 1, "expand: cannot expand ", a.shape(),
              " to ", shape, " (only size-1 dims expand)");
  if (shape == a.shape()) return a;
  StridedLoop L = broadcast_loop(shape, a.shape(), a.shape());
  std::vector<int64_t> ost = shape.strides();
  for (int i = 0; i < shape.ndim; ++i) L.b_strides[i] = ost[i];
  Tensor y = empty(shape, a.dtype(), a.device());
  backend(a.device()).copy_strided(a.dtype(), L, a.data(), y.data());
  Shape in = a.shape();
  return record("expand", y, {a}, [in](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{sum_to(g, in)};
  });
}

Tensor flip(const Tensor& a, const Axes& axes_in) {
  check_defined("flip", a, "input");
  std::vector<int> axes = normalize_axes(axes_in, a.shape(), "flip");
  StridedLoop L;
  L.ndim = a.ndim();
  std::vector<int64_t> st = a.shape().strides();
  int64_t src_offset = 0;
  for (int i = 0; i < a.ndim(); ++i) {
    bool flipped = std::find(axes.begin(), axes.end(), i) != axes.end();
    L.shape[i] = a.shape()[i];
    L.a_strides[i] = flipped ? -st[i] : st[i];
    L.b_strides[i] = st[i];
    if (flipped && a.shape()[i] > 0) src_offset += (a.shape()[i] - 1) * st[i];
  }
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  const char* src = static_cast<const char*>(a.data()) + src_offset * dtype_size(a.dtype());
  backend(a.device()).copy_strided(a.dtype(), L, src, y.data());
  Axes ax(axes.begin(), axes.end());
  return record("flip", y, {a}, [ax](const Tensor& g, const Tensor&, const Needs&) {
    return Grads{flip(g, ax)};
  });
}

}  // namespace fpa
