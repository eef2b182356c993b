// test_shape.cpp: reshape, permute, transpose, expand, flip, slice, split, chunk, concat and
// pad: forward layouts, storage sharing of reshape, errors. Their op cases:
// tests/op_cases/shape_cases.cpp.
#include <gtest/gtest.h>

#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

Tensor iota(const Shape& s) { return reshape(arange(s.numel(), DType::f64), s); }

TEST(Shape, ReshapeSharesStorage) {
  Tensor x = iota({2, 6});
  Tensor y = reshape(x, {3, -1});
  EXPECT_EQ(y.shape(), Shape({3, 4}));
  EXPECT_EQ(x.data(), y.data());
}

TEST(Shape, PermuteTransposeFlipLayouts) {
  Tensor x = iota({2, 3});
  EXPECT_CLOSE(transpose(x, 0, 1), from_vector({0, 3, 1, 4, 2, 5}, {3, 2}, DType::f64));
  EXPECT_CLOSE(flip(x, {1}), from_vector({2, 1, 0, 5, 4, 3}, {2, 3}, DType::f64));
  EXPECT_CLOSE(flip(x, {0, 1}), from_vector({5, 4, 3, 2, 1, 0}, {2, 3}, DType::f64));
  Tensor p = permute(iota({2, 3, 4}), {1, 2, 0});
  EXPECT_EQ(p.shape(), Shape({3, 4, 2}));
  EXPECT_EQ(p.to_vector()[1], 12.0);  // p[0,0,1] = x[1,0,0]
  EXPECT_CLOSE(expand(from_vector({1, 2}, {2, 1}, DType::f64), Shape{2, 2, 3}),
               from_vector({1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2}, {2, 2, 3}, DType::f64));
}

TEST(Shape, SliceSplitConcatPad) {
  Tensor x = iota({3, 4});
  EXPECT_CLOSE(slice(x, 1, 1, 3), from_vector({1, 2, 5, 6, 9, 10}, {3, 2}, DType::f64));
  V parts = split(x, {1, 2}, 0);
  EXPECT_CLOSE(parts[1], from_vector({4, 5, 6, 7, 8, 9, 10, 11}, {2, 4}, DType::f64));
  EXPECT_CLOSE(concat({parts[1], parts[0]}, 0), from_vector({4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3}, {3, 4}, DType::f64));
  EXPECT_CLOSE(pad(iota({1, 2}), {{1, 0}, {0, 1}}, -1),
               from_vector({-1, 0, 1, -1, -1, -1}, {2, 3}, DType::f64));
  EXPECT_EQ(chunk(x, 2, 1)[1].shape(), Shape({3, 2}));
}

TEST(Shape, BadShapesRaiseNamedErrors) {
  Tensor x = zeros({2, 3});
  EXPECT_ERROR(reshape(x, {4, 2}), "reshape: cannot reshape (2, 3) (6 elements) to (4, 2)");
  EXPECT_ERROR(permute(x, {0, 0}), "permute: axis 0 repeated");
  EXPECT_ERROR(expand(x, Shape{2, 4}), "expand: cannot expand (2, 3) to (2, 4)");
  EXPECT_ERROR(slice(x, 1, 2, 5), "slice: range [2, 5) out of bounds for axis 1 of (2, 3)");
  EXPECT_ERROR(concat({x, zeros({3, 3})}, 1), "concat: (3, 3) does not match (2, 3)");
  EXPECT_ERROR(chunk(x, 2, 1), "chunk: axis 1 of (2, 3) does not divide into 2");
  EXPECT_ERROR(zeros({1, 2, 3, 4, 5, 6}), "at most 5 dimensions");
}

}  // namespace
}  // namespace fpa::test
