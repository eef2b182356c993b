// conv_cases.cpp: the op cases of the convolution family (ops/conv.cpp, ops/unfold.cpp): conv2d
// (groups, depthwise, strides, 1x1, the discriminator's 4x4, Inception's rectangular kernels
// with rectangular padding), conv_transpose2d,
// conv2d_weight_grad, unfold and fold. Their other tests are in tests/test_conv.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// ---- gradcheck / gradgradcheck cases (float64, small)

FPA_OP_CASE("conv2d", "conv2d_groups2_stride2_pad1_bias", {{2, 4, 5, 5}, {4, 2, 3, 3}, {4}},
            [](const V& x) { return conv2d(x[0], x[1], x[2], {2, 1, 2}); });
FPA_OP_CASE("conv2d", "conv2d_depthwise_multiplier2", {{2, 3, 5, 5}, {6, 1, 3, 3}},
            [](const V& x) { return conv2d(x[0], x[1], Tensor(), {1, 1, 3}); });
FPA_OP_CASE("conv2d", "conv2d_depthwise_stride2", {{1, 4, 6, 6}, {4, 1, 3, 3}},
            [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 1, 4}); });
FPA_OP_CASE("conv2d", "conv2d_pointwise", {{2, 4, 3, 3}, {3, 4, 1, 1}, {3}},
            [](const V& x) { return conv2d(x[0], x[1], x[2]); });
FPA_OP_CASE("conv2d", "conv2d_4x4_stride2_pad1", {{1, 2, 6, 6}, {3, 2, 4, 4}},
            [](const V& x) { return conv2d(x[0], x[1], Tensor(), {2, 1, 1}); });
FPA_OP_CASE("conv2d", "conv2d_1x3_pad0x1_bias", {{2, 2, 4, 5}, {3, 2, 1, 3}, {3}},
            [](const V& x) { return conv2d(x[0], x[1], x[2], {1, 0, 1, 1}); });
FPA_OP_CASE("conv_transpose2d", "conv_transpose2d_4x4_stride2_pad1_bias", {{2, 3, 3, 3}, {3, 2, 4, 4}, {2}},
            [](const V& x) { return conv_transpose2d(x[0], x[1], x[2], {2, 1, 1}); });
FPA_OP_CASE("conv_transpose2d", "conv_transpose2d_groups2_outpad1", {{1, 4, 3, 3}, {4, 1, 3, 3}},
            [](const V& x) { return conv_transpose2d(x[0], x[1], Tensor(), {2, 1, 2}, 1); });
FPA_OP_CASE("conv_transpose2d", "conv_transpose2d_depthwise", {{1, 3, 4, 4}, {3, 1, 3, 3}},
            [](const V& x) { return conv_transpose2d(x[0], x[1], Tensor(), {1, 1, 3}); });
FPA_OP_CASE("conv2d_weight_grad", "conv2d_weight_grad_groups2_stride2", {{2, 4, 5, 5}, {2, 4, 3, 3}},
            [](const V& x) { return conv2d_weight_grad(x[0], x[1], {4, 2, 3, 3}, {2, 1, 2}); });
FPA_OP_CASE("conv2d_weight_grad", "conv2d_weight_grad_depthwise", {{2, 3, 4, 4}, {2, 3, 4, 4}},
            [](const V& x) { return conv2d_weight_grad(x[0], x[1], {3, 1, 3, 3}, {1, 1, 3}); });
FPA_OP_CASE("conv2d_weight_grad", "conv2d_weight_grad_3x1_pad1x0", {{2, 2, 5, 4}, {2, 3, 5, 4}},
            [](const V& x) { return conv2d_weight_grad(x[0], x[1], {3, 2, 3, 1}, {1, 1, 1, 0}); });
FPA_OP_CASE("unfold", "unfold_3x3_pad1", {{2, 2, 4, 4}}, [](const V& x) { return unfold(x[0], 3, 1, 1); });
FPA_OP_CASE("unfold", "unfold_3x3_stride2", {{1, 2, 5, 5}}, [](const V& x) { return unfold(x[0], 3, 2, 1); });
FPA_OP_CASE("fold", "fold_3x3_pad1", {{2, 9, 16}}, [](const V& x) { return fold(x[0], 4, 4, 3, 1, 1); });
FPA_OP_CASE("fold", "fold_3x3_stride2", {{1, 18, 9}}, [](const V& x) { return fold(x[0], 5, 5, 3, 2, 1); });

}  // namespace
}  // namespace fpa::test
