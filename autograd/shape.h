// shape.h: Shape, a fixed-capacity list of up to 5 dimensions, and helpers on it.
// Tensors in this library are always contiguous row-major, so a shape determines strides.
#pragma once
#include <fmt/format.h>

#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <vector>

namespace fpa {

constexpr int kMaxDims = 5;

struct Shape {
  int ndim = 0;
  int64_t d[kMaxDims] = {0, 0, 0, 0, 0};

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);

  int64_t operator[](int i) const { return d[i]; }
  int64_t& operator[](int i) { return d[i]; }
  int64_t numel() const;
  // Normalises a possibly negative axis; throws naming `op` when out of range.
  int axis(int a, const char* op) const;
  std::vector<int64_t> vec() const { return std::vector<int64_t>(d, d + ndim); }
  std::vector<int64_t> strides() const;  // contiguous row-major, in elements
  std::string str() const;               // "(2, 3, 4)"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
};

std::ostream& operator<<(std::ostream& os, const Shape& s);

// The shape two operands broadcast to (numpy rules); throws naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace fpa

// {fmt} prints a Shape as its str(): fmt::format("{}", Shape{2, 3}) is "(2, 3)".
template <>
struct fmt::formatter<fpa::Shape> : fmt::formatter<std::string> {
  template <typename Context>
  auto format(const fpa::Shape& s, Context& ctx) const {
    return fmt::formatter<std::string>::format(s.str(), ctx);
  }
};
