// shape.cpp: Shape construction, printing and broadcasting rules.
#include "autograd/shape.h"

#include <fmt/format.h>

#include <algorithm>

#include "autograd/error.h"

namespace fpa {

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  FPA_CHECK(dims.size() <= kMaxDims, "shape: at most ", kMaxDims, " dimensions, got ", dims.size());
  ndim = static_cast<int>(dims.size());
  for (int i = 0; i < ndim; ++i) {
    FPA_CHECK(dims[i] >= 0, "shape: negative dimension ", dims[i]);
    d[i] = dims[i];
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= d[i];
  return n;
}

int Shape::axis(int a, const char* op) const {
  int r = a < 0 ? a + ndim : a;
  FPA_CHECK(r >= 0 && r < ndim, op, ": axis ", a, " out of range for shape ", str());
  return r;
}

std::vector<int64_t> Shape::strides() const {
  std::vector<int64_t> s(ndim);
  int64_t acc = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= d[i];
  }
  return s;
}

std::string Shape::str() const {
  return fmt::format("({})", fmt::join(d, d + ndim, ", "));
}

bool Shape::operator==(const Shape& o) const {
  return ndim == o.ndim && std::equal(d, d + ndim, o.d);
}

std::ostream& operator<<(std::ostream& os, const Shape& s) { return os << s.str(); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  Shape r;
  r.ndim = std::max(a.ndim, b.ndim);
  for (int i = 0; i < r.ndim; ++i) {
    int ia = a.ndim - r.ndim + i, ib = b.ndim - r.ndim + i;
    int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
    FPA_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a.str(), " and ", b.str(),
              " do not broadcast");
    r.d[i] = da == 1 ? db : da;
  }
  return r;
}

}  // namespace fpa
