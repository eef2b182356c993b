// compare.cpp: masks (gt, eq; constants, not differentiable) and where(mask, a, b).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("compare", {"gt", false}, {"eq", false}, {"where", true});

Tensor gt(const Tensor& a, const Tensor& b) { return binary_map("gt", BinaryOp::gt_mask, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_map("eq", BinaryOp::eq_mask, a, b); }

Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b) {
  check_same_kind("where", mask, a);
  check_same_kind("where", a, b);
  Tensor m = mask.detach();
  // mask * a + (1 - mask) * b, differentiable in a and b.
  return add(mul(m, a), mul(1.0 - m, b));
}

}  // namespace fpa
