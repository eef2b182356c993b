// slice.cpp: slice, split, chunk, concat and constant pad. slice and pad are each other's
// adjoints, but a slice's gradient goes to the engine as a gradient_window instead of a pad
// (the engine writes a split's pieces into one buffer); concat's backward slices the gradient.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("slice", {"slice", true}, {"split", true}, {"chunk", true}, {"concat", true}, {"pad", true});

using Grads = std::vector<Tensor>;
using Needs = std::vector<bool>;

void copy_into(const Tensor& src, Tensor& dst, const std::vector<int64_t>& origin) {
  StridedLoop L;
  L.ndim = src.ndim();
  std::vector<int64_t> ss = src.shape().strides(), ds = dst.shape().strides();
  int64_t off = 0;
  for (int i = 0; i < L.ndim; ++i) {
    L.shape[i] = src.shape()[i], L.a_strides[i] = ss[i], L.b_strides[i] = ds[i];
    off += origin[i] * ds[i];
  }
  char* d = static_cast<char*>(dst.data()) + off * dtype_size(dst.dtype());
  backend(src.device()).copy_strided(src.dtype(), L, src.data(), d);
}

Tensor slice(const Tensor& a, int axis, int64_t start, int64_t end) {
  check_defined("slice", a, "input");
  int ax = a.shape().axis(axis, "slice");
  int64_t n = a.shape()[ax];
  FPA_CHECK(0 <= start && start <= end && end <= n, "slice: range [", start, ", ", end, ") out of bounds for axis ",
            axis, " of ", a.shape());
  Shape out = a.shape();
  out[ax] = end - start;
  StridedLoop L;
  L.ndim = a.ndim();
  std::vector<int64_t> st = a.shape().strides(), ost = out.strides();
  for (int i = 0; i < L.ndim; ++i) L.shape[i] = out[i], L.a_strides[i] = st[i], L.b_strides[i] = ost[i];
  Tensor y = empty(out, a.dtype(), a.device());
  const char* src = static_cast<const char*>(a.data()) + start * st[ax] * dtype_size(a.dtype());
  backend(a.device()).copy_strided(a.dtype(), L, src, y.data());
  int nd = a.ndim();
  Shape full = a.shape();
  return record("slice", y, {a}, [ax, nd, start, full](const Tensor& g, const Tensor&, const Needs&) {
    std::vector<int64_t> origin(nd, 0);  // the engine writes it into the input's gradient, no padding
    origin[ax] = start;
    return Grads{gradient_window(g, full, origin)};
  });
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int axis) {
  check_defined("split", a, "input");
  int ax = a.shape().axis(axis, "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  FPA_CHECK(total == a.shape()[ax], "split: sizes add up to ", total, " but axis ", axis, " of ", a.shape(),
            " has ", a.shape()[ax]);
  std::vector<Tensor> parts;
  int64_t at = 0;
  for (int64_t s : sizes) parts.push_back(slice(a, ax, at, at + s)), at += s;
  return parts;
}

std::vector<Tensor> chunk(const Tensor& a, int chunks, int axis) {
  check_defined("chunk", a, "input");
  int ax = a.shape().axis(axis, "chunk");
  FPA_CHECK(chunks > 0 && a.shape()[ax] % chunks == 0, "chunk: axis ", axis, " of ", a.shape(),
            " does not divide into ", chunks, " equal chunks");
  return split(a, std::vector<int64_t>(chunks, a.shape()[ax] / chunks), ax);
}

Tensor concat(const std::vector<Tensor>& parts, int axis) {
  FPA_CHECK(!parts.empty(), "concat: no tensors given");
  const Tensor& first = parts[0];
  check_defined("concat", first, "input 0");
  int ax = first.shape().axis(axis, "concat");
  Shape out = first.shape();
  out[ax] = 0;
  std::vector<int64_t> sizes;
  for (const Tensor& p : parts) {
    check_same_kind("concat", first, p);
    bool ok = p.ndim() == first.ndim();
    for (int i = 0; ok && i < p.ndim(); ++i) ok = i == ax || p.shape()[i] == first.shape()[i];
    FPA_CHECK(ok, "concat: ", p.shape(), " does not match ", first.shape(), " outside axis ", axis);
    out[ax] += p.shape()[ax];
    sizes.push_back(p.shape()[ax]);
  }
  Tensor y = empty(out, first.dtype(), first.device());
  std::vector<int64_t> origin(out.ndim, 0);
  for (const Tensor& p : parts) copy_into(p, y, origin), origin[ax] += p.shape()[ax];
  return record("concat", y, parts, [sizes, ax](const Tensor& g, const Tensor&, const Needs& needs) {
    Grads gs = split(g, sizes, ax);
    for (size_t i = 0; i < gs.size(); ++i)
      if (!needs[i]) gs[i] = Tensor();
    return gs;
  });
}

Tensor pad(const Tensor& a, const std::vector<std::pair<int64_t, int64_t>>& pads, double value) {
  check_defined("pad", a, "input");
  FPA_CHECK(int(pads.size()) <= a.ndim(), "pad: ", pads.size(), " padded dims for ", a.shape());
  Shape out = a.shape();
  std::vector<int64_t> origin(a.ndim(), 0);
  for (size_t k = 0; k < pads.size(); ++k) {
    int ax = a.ndim() - 1 - int(k);
    FPA_CHECK(pads[k].first >= 0 && pads[k].second >= 0, "pad: negative padding for ", a.shape());
    out[ax] += pads[k].first + pads[k].second;
    origin[ax] = pads[k].first;
  }
  Tensor y = full(out, value, a.dtype(), a.device());
  copy_into(a, y, origin);
  Shape in = a.shape();
  return record("pad", y, {a}, [in, origin](const Tensor& g, const Tensor&, const Needs&) {
    Tensor r = g;
    for (int ax = 0; ax < in.ndim; ++ax)
      if (r.shape()[ax] != in[ax]) r = slice(r, ax, origin[ax], origin[ax] + in[ax]);
    return Grads{r};
  });
}

}  // namespace fpa
