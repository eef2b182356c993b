// reduce_cases.cpp: the op cases of the reductions, softmax, group_norm and the losses
// (ops/reduce.cpp, softmax.cpp, norm.cpp, loss.cpp): kept and reduced dims interleaved, max
// with distinct values. Their other tests are in tests/test_reduce.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("sum", "sum_all", {{2, 3, 4}}, [](const V& x) { return sum(x[0]); });
FPA_OP_CASE("sum", "sum_axes_keepdim", {{2, 3, 4}}, [](const V& x) { return sum(x[0], {0, 2}, true); });
FPA_OP_CASE("sum", "sum_last", {{3, 5}}, [](const V& x) { return sum(x[0], {-1}); });
FPA_OP_CASE("mean", "mean_axis", {{2, 3, 4}}, [](const V& x) { return mean(x[0], {1}); });
FPA_OP_CASE("max", "max_axis", {{3, 5}}, [](const V& x) { return max(x[0], {1}); });
FPA_OP_CASE("max", "max_all_keepdim", {{2, 3, 2}}, [](const V& x) { return max(x[0], {}, true); });
// Kept and reduced dims interleaved, size-1 dims in between, the innermost kept.
FPA_OP_CASE("sum", "sum_interleaved_axes", {{3, 1, 4, 2, 5}}, [](const V& x) { return sum(x[0], {0, 3}); });
FPA_OP_CASE("sum", "sum_inner_and_outer", {{2, 3, 1, 4}}, [](const V& x) { return sum(x[0], {0, 2, 3}, true); });
FPA_OP_CASE("max", "max_middle_axis", {{3, 4, 5}}, [](const V& x) { return max(x[0], {1}); });
FPA_OP_CASE("softmax", "softmax_middle_wide", {{2, 3, 20}}, [](const V& x) { return softmax(x[0], 1); }, -2.0, 2.0);
FPA_OP_CASE("var", "var_axes", {{2, 3, 4}}, [](const V& x) { return var(x[0], {1, 2}); });
FPA_OP_CASE("norm", "norm_axis", {{3, 4}}, [](const V& x) { return norm(x[0], {1}, true); });
FPA_OP_CASE("softmax", "softmax_last", {{3, 5}}, [](const V& x) { return softmax(x[0], -1); }, -2.0, 2.0);
FPA_OP_CASE("softmax", "softmax_middle", {{2, 4, 3}}, [](const V& x) { return softmax(x[0], 1); }, -2.0, 2.0);
FPA_OP_CASE("group_norm", "group_norm_affine", {{2, 4, 3, 2}, {4}, {4}},
            [](const V& x) { return group_norm(x[0], 2, x[1], x[2]); });
FPA_OP_CASE("group_norm", "group_norm_plain", {{2, 6, 5}}, [](const V& x) { return group_norm(x[0], 3, Tensor(), Tensor()); });
FPA_OP_CASE("mse_loss", "mse_loss", {{2, 3, 4}, {2, 3, 4}}, [](const V& x) { return mse_loss(x[0], x[1]); });
FPA_OP_CASE("hinge_real", "hinge_real", {{6, 1}}, [](const V& x) { return hinge_real(x[0]); }, -2.0, 0.5);
FPA_OP_CASE("hinge_fake", "hinge_fake", {{6, 1}}, [](const V& x) { return hinge_fake(x[0]); }, -0.5, 2.0);

}  // namespace
}  // namespace fpa::test
