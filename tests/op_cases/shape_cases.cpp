// shape_cases.cpp: the op cases of the shape ops (ops/shape.cpp, ops/slice.cpp): reshape,
// permute, transpose, expand, flip, slice, split, chunk, concat and pad. Their other tests are
// in tests/test_shape.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("reshape", "reshape", {{2, 3, 4}}, [](const V& x) { return reshape(x[0], {4, -1}) * 2.0; });
FPA_OP_CASE("permute", "permute", {{2, 3, 4}}, [](const V& x) { return permute(x[0], {2, 0, 1}); });
FPA_OP_CASE("transpose", "transpose", {{2, 3, 4}}, [](const V& x) { return transpose(x[0], 0, -1); });
FPA_OP_CASE("expand", "expand", {{3, 1}}, [](const V& x) { return expand(x[0], Shape{2, 3, 4}); });
FPA_OP_CASE("flip", "flip", {{2, 3, 4}}, [](const V& x) { return flip(x[0], {0, 2}); });
FPA_OP_CASE("slice", "slice", {{4, 5}}, [](const V& x) { return slice(x[0], 1, 1, 4); });
FPA_OP_CASE("split", "split", {{5, 3}}, [](const V& x) {
  V p = split(x[0], {2, 3}, 0);
  return concat({mul_scalar(p[1], 2.0), p[0]}, 0);
});
FPA_OP_CASE("chunk", "chunk", {{2, 6}}, [](const V& x) {
  V p = chunk(x[0], 3, 1);
  return p[0] * p[2] + p[1];
});
FPA_OP_CASE("concat", "concat", {{2, 3}, {2, 1}, {2, 2}}, [](const V& x) { return concat({x[0], x[1], x[2]}, 1); });
FPA_OP_CASE("pad", "pad", {{2, 3, 3}}, [](const V& x) { return pad(x[0], {{1, 2}, {0, 1}}, 0.5); });

}  // namespace
}  // namespace fpa::test
