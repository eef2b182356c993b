// op_util.cpp: raw elementwise maps, broadcast loops and axis helpers.
#include "ops/op_util.h"

#include <algorithm>

namespace fpa {

Tensor unary_map(const Tensor& a, UnaryOp op, double p0, double p1) {
  Tensor y = empty(a.shape(), a.dtype(), a.device());
  backend(a.device()).unary(a.dtype(), op, a.numel(), p0, p1, a.data(), y.data());
  return y;
}

StridedLoop broadcast_loop(const Shape& out, const Shape& a, const Shape& b) {
  StridedLoop L;
  L.ndim = out.ndim;
  std::vector<int64_t> sa = a.strides(), sb = b.strides();
  for (int i = 0; i < out.ndim; ++i) {
    int ia = a.ndim - out.ndim + i, ib = b.ndim - out.ndim + i;
    L.shape[i] = out[i];
    L.a_strides[i] = (ia >= 0 && a[ia] != 1) ? sa[ia] : 0;
    L.b_strides[i] = (ib >= 0 && b[ib] != 1) ? sb[ib] : 0;
  }
  return L;
}

Tensor binary_map(const char* name, BinaryOp op, const Tensor& a, const Tensor& b) {
  check_same_kind(name, a, b);
  Shape out = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = empty(out, a.dtype(), a.device());
  backend(a.device()).binary(a.dtype(), op, broadcast_loop(out, a.shape(), b.shape()), a.data(), b.data(),
                             y.data());
  return y;
}

std::vector<int> normalize_axes(const Axes& axes, const Shape& shape, const char* op) {
  std::vector<int> r;
  if (axes.empty()) {
    for (int i = 0; i < shape.ndim; ++i) r.push_back(i);
    return r;
  }
  for (int a : axes) r.push_back(shape.axis(a, op));
  std::sort(r.begin(), r.end());
  FPA_CHECK(std::adjacent_find(r.begin(), r.end()) == r.end(), op, ": repeated axis for shape ", shape);
  return r;
}

Shape reduced_shape(const Shape& shape, const std::vector<int>& axes, bool keepdim) {
  std::vector<int64_t> d;
  for (int i = 0; i < shape.ndim; ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced) d.push_back(shape[i]);
    else if (keepdim) d.push_back(1);
  }
  return Shape(d);
}

std::vector<Tensor> composed_twin_gradients(const std::function<Tensor(const std::vector<Tensor>&)>& twin,
                                            const std::vector<Tensor>& inputs, const Tensor& grad_out,
                                            const std::vector<bool>& needs, bool create_graph) {
  auto identity = [](const Tensor& x) {  // x itself, seen through a node where grad() can stop
    return record("twin_input", alias(x, x.shape()), {x},
                  [](const Tensor& g, const Tensor&, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
  };
  std::vector<Tensor> x(inputs), asked;
  std::vector<size_t> which;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (needs[i]) x[i] = identity(inputs[i]), asked.push_back(x[i]), which.push_back(i);
  std::vector<Tensor> found = grad({twin(x)}, asked, {grad_out}, /*retain_graph=*/create_graph, create_graph,
                                   /*allow_unused=*/true);
  std::vector<Tensor> r(inputs.size());
  for (size_t j = 0; j < which.size(); ++j) r[which[j]] = found[j];
  return r;
}

}  // namespace fpa
