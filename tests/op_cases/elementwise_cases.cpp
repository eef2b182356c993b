// elementwise_cases.cpp: the op cases of arithmetic, pointwise math, activations and masks
// (ops/elementwise.cpp, unary.cpp, activation.cpp, compare.cpp): broadcasting both ways, the
// scalar ops, inputs kept off the kinks, and the CPU binary kernel's fast paths. Their other
// tests are in tests/test_elementwise.cpp.
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

// Binary ops with broadcasting in both directions and an odd shape.
FPA_OP_CASE("add", "add_broadcast", {{2, 3, 4}, {3, 1}}, [](const V& x) { return add(x[0], x[1]); });
FPA_OP_CASE("add", "add_same", {{5, 3}, {5, 3}}, [](const V& x) { return x[0] + x[1]; });
FPA_OP_CASE("sub", "sub_broadcast", {{4, 1}, {2, 4, 3}}, [](const V& x) { return sub(x[0], x[1]); });
FPA_OP_CASE("mul", "mul_broadcast", {{2, 3, 4}, {4}}, [](const V& x) { return mul(x[0], x[1]); });
FPA_OP_CASE("mul", "mul_self", {{3, 5}}, [](const V& x) { return mul(x[0], x[0]); });
FPA_OP_CASE("div", "div_broadcast", {{2, 3, 4}, {1, 3, 1}}, [](const V& x) { return div(x[0], x[1]); }, 0.5, 2.0);
FPA_OP_CASE("add_scalar", "add_scalar", {{3, 4}}, [](const V& x) { return add_scalar(x[0], 2.5); });
FPA_OP_CASE("mul_scalar", "mul_scalar", {{3, 4}}, [](const V& x) { return mul_scalar(x[0], -1.5); });
FPA_OP_CASE("neg", "neg", {{7}}, [](const V& x) { return neg(x[0]); });
FPA_OP_CASE("sum_to", "sum_to", {{2, 3, 4}}, [](const V& x) { return sum_to(x[0], Shape{3, 1}); });

FPA_OP_CASE("pow", "pow_2p5", {{3, 4}}, [](const V& x) { return pow(x[0], 2.5); }, 0.5, 2.0);
FPA_OP_CASE("pow", "pow_int", {{3, 4}}, [](const V& x) { return pow(x[0], 3.0); });
FPA_OP_CASE("exp", "exp", {{3, 4}}, [](const V& x) { return exp(x[0]); });
FPA_OP_CASE("log", "log", {{3, 4}}, [](const V& x) { return log(x[0]); }, 0.5, 3.0);
FPA_OP_CASE("sqrt", "sqrt", {{3, 4}}, [](const V& x) { return sqrt(x[0]); }, 0.5, 3.0);
FPA_OP_CASE("rsqrt", "rsqrt", {{3, 4}}, [](const V& x) { return rsqrt(x[0]); }, 0.5, 3.0);
FPA_OP_CASE("abs", "abs", {{3, 4}}, [](const V& x) { return abs(x[0]); }, -1.0, 1.0, 0.05);
FPA_OP_CASE("square", "square", {{3, 4}}, [](const V& x) { return square(x[0]); });
// Bounds away from the sampled values' grid so no element sits at a kink.
FPA_OP_CASE("clamp", "clamp", {{4, 5}}, [](const V& x) { return clamp(x[0], -0.3517, 0.4123); }, -1.0, 1.0);
FPA_OP_CASE("erf", "erf", {{3, 4}}, [](const V& x) { return erf(x[0]); }, -2.0, 2.0);

FPA_OP_CASE("tanh", "tanh", {{3, 4}}, [](const V& x) { return tanh(x[0]); }, -2.0, 2.0);
FPA_OP_CASE("sigmoid", "sigmoid", {{3, 4}}, [](const V& x) { return sigmoid(x[0]); }, -3.0, 3.0);
FPA_OP_CASE("relu", "relu", {{3, 4}}, [](const V& x) { return relu(x[0]); }, -1.0, 1.0, 0.05);
FPA_OP_CASE("leaky_relu", "leaky_relu", {{3, 4}}, [](const V& x) { return leaky_relu(x[0], 0.1); }, -1.0, 1.0, 0.05);
FPA_OP_CASE("silu", "silu", {{3, 4}}, [](const V& x) { return silu(x[0]); }, -3.0, 3.0);
FPA_OP_CASE("gelu", "gelu", {{3, 4}}, [](const V& x) { return gelu(x[0]); }, -3.0, 3.0);
FPA_OP_CASE("glu", "glu_channels", {{2, 6, 3}}, [](const V& x) { return glu(x[0], 1); }, -2.0, 2.0);
// Fast paths of the CPU binary kernel: size-1 dims in the middle, a scalar per inner run,
// operands read through a flip (negative strides in the copy).
FPA_OP_CASE("mul", "mul_broadcast_middle_ones", {{2, 3, 1, 4}, {1, 3, 5, 1}}, [](const V& x) { return mul(x[0], x[1]); });
FPA_OP_CASE("div", "div_scalar_per_run", {{2, 3, 4, 5}, {1, 3, 1, 1}}, [](const V& x) { return div(x[0], x[1]); }, 0.5, 2.0);
FPA_OP_CASE("sub", "sub_of_flips", {{3, 4, 5}, {3, 1, 5}},
            [](const V& x) { return sub(flip(x[0], {0, 2}), flip(x[1], {-1})); });
FPA_OP_CASE("where", "where_broadcast", {{2, 3}, {3}}, [](const V& x) {
  Tensor mask = from_vector({1, 0, 1, 0, 0, 1}, {2, 3}, x[0].dtype(), x[0].device());
  return where(mask, x[0], x[1]);
});

}  // namespace
}  // namespace fpa::test
