// pool_cases.cpp: the op cases of pooling and resizing (ops/pool.cpp, ops/interpolate.cpp):
// avg_pool2d, adaptive_avg_pool2d, max_pool2d, interpolate_nearest, upsample_nearest,
// interpolate_bilinear, and the
// internal backward ops (through backward_of; max_pool2d_backward's x is zeros there: every
// window ties, and its first entry takes the gradient). Their other tests are in
// tests/test_pool.cpp.
#include <functional>

#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// The gradient of `op` at a zero input of x_shape for upstream gy, with create_graph: a
// function of gy made of the op's internal backward node (grad mode forced on, since
// gradgradcheck evaluates the case once under NoGradGuard for its output shape).
Tensor backward_of(const std::function<Tensor(const Tensor&)>& op, const Shape& x_shape, const Tensor& gy) {
  GradModeGuard on(true);
  Tensor x = zeros(x_shape, gy.dtype(), gy.device()).requires_grad_();
  return grad({op(x)}, {x}, {gy}, false, true)[0];
}

// ---- gradcheck / gradgradcheck cases (float64, small)

FPA_OP_CASE("avg_pool2d", "avg_pool2d_2x2", {{2, 3, 4, 6}}, [](const V& x) { return avg_pool2d(x[0], 2); });
FPA_OP_CASE("avg_pool2d", "avg_pool2d_3x3_stride2_pad1", {{1, 2, 5, 5}},
            [](const V& x) { return avg_pool2d(x[0], 3, 2, 1); });
FPA_OP_CASE("avg_pool2d", "avg_pool2d_3x3_stride1_pad1_padding_not_counted", {{1, 2, 4, 5}},
            [](const V& x) { return avg_pool2d(x[0], 3, 1, 1, false); });
FPA_OP_CASE("adaptive_avg_pool2d", "adaptive_avg_pool2d_5x7_to_3x4", {{2, 2, 5, 7}},
            [](const V& x) { return adaptive_avg_pool2d(x[0], 3, 4); });
FPA_OP_CASE("adaptive_avg_pool2d", "adaptive_avg_pool2d_3x3_to_4x4", {{1, 2, 3, 3}},
            [](const V& x) { return adaptive_avg_pool2d(x[0], 4, 4); });
FPA_OP_CASE("avg_pool2d_backward", "avg_pool2d_backward_3x3_stride2_pad1", {{1, 2, 3, 3}}, [](const V& x) {
  return backward_of([](const Tensor& t) { return avg_pool2d(t, 3, 2, 1); }, {1, 2, 5, 5}, x[0]);
});
FPA_OP_CASE("avg_pool2d_backward", "avg_pool2d_backward_padding_not_counted", {{1, 2, 3, 3}}, [](const V& x) {
  return backward_of([](const Tensor& t) { return avg_pool2d(t, 3, 2, 1, false); }, {1, 2, 5, 5}, x[0]);
});
FPA_OP_CASE("avg_pool2d_backward", "avg_pool2d_backward_adaptive", {{2, 2, 3, 4}}, [](const V& x) {
  return backward_of([](const Tensor& t) { return adaptive_avg_pool2d(t, 3, 4); }, {2, 2, 5, 7}, x[0]);
});
FPA_OP_CASE("max_pool2d", "max_pool2d_2x2", {{2, 3, 4, 6}}, [](const V& x) { return max_pool2d(x[0], 2); });
FPA_OP_CASE("max_pool2d", "max_pool2d_3x3_stride2_pad1", {{1, 2, 5, 6}},
            [](const V& x) { return max_pool2d(x[0], 3, 2, 1); });
FPA_OP_CASE("max_pool2d", "max_pool2d_3x3_stride1_pad1", {{1, 2, 4, 4}},
            [](const V& x) { return max_pool2d(x[0], 3, 1, 1); });
FPA_OP_CASE("max_pool2d_backward", "max_pool2d_backward_3x3_stride2", {{1, 2, 2, 3}}, [](const V& x) {
  return backward_of([](const Tensor& t) { return max_pool2d(t, 3, 2); }, {1, 2, 5, 7}, x[0]);
});
FPA_OP_CASE("interpolate_nearest", "interpolate_nearest_5x5_to_3x7", {{2, 2, 5, 5}},
            [](const V& x) { return interpolate_nearest(x[0], 3, 7); });
FPA_OP_CASE("interpolate_nearest", "interpolate_nearest_4x4_to_8x8", {{1, 2, 4, 4}},
            [](const V& x) { return interpolate_nearest(x[0], 8, 8); });
FPA_OP_CASE("upsample_nearest", "interp_upsample_nearest_x2", {{2, 2, 3, 3}},
            [](const V& x) { return upsample_nearest(x[0], 2); });
FPA_OP_CASE("interpolate_nearest_backward", "interpolate_nearest_backward_5x5_to_3x7", {{2, 2, 3, 7}},
            [](const V& x) {
              return backward_of([](const Tensor& t) { return interpolate_nearest(t, 3, 7); }, {2, 2, 5, 5}, x[0]);
            });
FPA_OP_CASE("interpolate_bilinear", "interpolate_bilinear_3x4_to_5x7", {{2, 2, 3, 4}},
            [](const V& x) { return interpolate_bilinear(x[0], 5, 7); });
FPA_OP_CASE("interpolate_bilinear", "interpolate_bilinear_6x5_to_4x2", {{1, 2, 6, 5}},
            [](const V& x) { return interpolate_bilinear(x[0], 4, 2); });
FPA_OP_CASE("interpolate_bilinear_backward", "interpolate_bilinear_backward_3x4_to_8x9", {{1, 2, 8, 9}},
            [](const V& x) {
              return backward_of([](const Tensor& t) { return interpolate_bilinear(t, 8, 9); }, {1, 2, 3, 4}, x[0]);
            });

}  // namespace
}  // namespace fpa::test
