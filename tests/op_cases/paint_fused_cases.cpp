// paint_fused_cases.cpp: the op cases of the fused painting op (ops/paint.cpp): delta, hebb and
// oja, rates per matrix and per row, with and without a start matrix and the front end, and
// values computed from the keys; the second order runs the composed fallback. Its other tests
// are in tests/test_paint_fused.cpp; front_end is in case_helpers.h.
#include "tests/op_cases.h"
#include "tests/op_cases/case_helpers.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Gradcheck / gradgradcheck cases (tests/test_gradcheck.cpp runs them): T 3, N 2, S 3.
FPA_OP_CASE("paint_fused", "paint_fused_delta_front_end", {{3, 2, 3}, {3, 2, 3}, {3, 2, 1}}, [](const V& x) {
  return paint_fused(PaintRule::delta, x[0], x[1], x[2], Tensor(), front_end(true));
});
FPA_OP_CASE("paint_fused", "paint_fused_delta_w0_vect", {{3, 2, 3}, {3, 2, 3}, {3, 2, 3}, {2, 3, 3}}, [](const V& x) {
  return paint_fused(PaintRule::delta, x[0], x[1], x[2], x[3]);
});
FPA_OP_CASE("paint_fused", "paint_fused_hebb", {{3, 2, 3}, {3, 2, 3}}, [](const V& x) {
  return paint_fused(PaintRule::hebb, x[0], x[1], Tensor());
});
FPA_OP_CASE("paint_fused", "paint_fused_oja_front_end_vect", {{3, 2, 3}, {3, 2, 3}, {3, 2, 3}}, [](const V& x) {
  return paint_fused(PaintRule::oja, x[0], x[1], x[2], Tensor(), front_end(true));
});
FPA_OP_CASE("paint_fused", "paint_fused_oja_w0", {{3, 2, 3}, {3, 2, 3}, {3, 2, 1}, {2, 3, 3}}, [](const V& x) {
  return paint_fused(PaintRule::oja, x[0], x[1], x[2], x[3], front_end(true));
});
// Values computed from the keys: the second-order fallback must still take partial derivatives.
FPA_OP_CASE("paint_fused", "paint_fused_values_from_keys", {{3, 2, 3}, {3, 2, 1}}, [](const V& x) {
  return paint_fused(PaintRule::delta, x[0], tanh(x[0]), x[1], Tensor(), front_end(true));
});

}  // namespace
}  // namespace fpa::test
