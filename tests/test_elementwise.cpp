// test_elementwise.cpp: arithmetic, pointwise math, activations and masks: forward values
// against std:: math, broadcasting, error messages, and their gradcheck cases.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;
Shape s23{2, 3}, s234{2, 3, 4};

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
FPA_OP_CASE("where", "where_broadcast", {{2, 3}, {3}}, [](const V& x) {
  Tensor mask = from_vector({1, 0, 1, 0, 0, 1}, {2, 3}, DType::f64);
  return where(mask, x[0], x[1]);
});

double ref_gelu(double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }

TEST(Elementwise, UnaryForwardMatchesStdMath) {
  Tensor x = from_vector({-1.5, -0.2, 0.3, 2.0}, {4}, DType::f64);
  Tensor p = from_vector({0.5, 1.0, 2.0, 3.0}, {4}, DType::f64);
  auto each = [](const Tensor& t, double (*f)(double)) {
    std::vector<double> v = t.to_vector();
    for (double& e : v) e = f(e);
    return from_vector(v, t.shape(), DType::f64);
  };
  EXPECT_CLOSE(exp(x), each(x, [](double v) { return std::exp(v); }));
  EXPECT_CLOSE(log(p), each(p, [](double v) { return std::log(v); }));
  EXPECT_CLOSE(sqrt(p), each(p, [](double v) { return std::sqrt(v); }));
  EXPECT_CLOSE(rsqrt(p), each(p, [](double v) { return 1 / std::sqrt(v); }));
  EXPECT_CLOSE(pow(p, 1.5), each(p, [](double v) { return std::pow(v, 1.5); }));
  EXPECT_CLOSE(abs(x), each(x, [](double v) { return std::abs(v); }));
  EXPECT_CLOSE(square(x), each(x, [](double v) { return v * v; }));
  EXPECT_CLOSE(erf(x), each(x, [](double v) { return std::erf(v); }));
  EXPECT_CLOSE(tanh(x), each(x, [](double v) { return std::tanh(v); }));
  EXPECT_CLOSE(sigmoid(x), each(x, [](double v) { return 1 / (1 + std::exp(-v)); }));
  EXPECT_CLOSE(relu(x), each(x, [](double v) { return v > 0 ? v : 0.0; }));
  EXPECT_CLOSE(leaky_relu(x, 0.1), each(x, [](double v) { return v > 0 ? v : 0.1 * v; }));
  EXPECT_CLOSE(silu(x), each(x, [](double v) { return v / (1 + std::exp(-v)); }));
  EXPECT_CLOSE(gelu(x), each(x, ref_gelu));
  EXPECT_CLOSE(clamp(x, -1.0, 0.5), each(x, [](double v) { return std::min(std::max(v, -1.0), 0.5); }));
}

TEST(Elementwise, BroadcastingFollowsNumpyRules) {
  Tensor a = from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64);
  Tensor b = from_vector({10, 20, 30}, {3}, DType::f64);
  Tensor c = from_vector({100, 200}, {2, 1}, DType::f64);
  EXPECT_CLOSE(a + b, from_vector({11, 22, 33, 14, 25, 36}, {2, 3}, DType::f64));
  EXPECT_CLOSE(b * c, from_vector({1000, 2000, 3000, 2000, 4000, 6000}, {2, 3}, DType::f64));
  EXPECT_CLOSE(a - c, from_vector({-99, -98, -97, -196, -195, -194}, {2, 3}, DType::f64));
  EXPECT_CLOSE(a / b, from_vector({0.1, 0.1, 0.1, 0.4, 0.25, 0.2}, {2, 3}, DType::f64));
}

TEST(Elementwise, GluAndWhere) {
  Tensor x = from_vector({1, 2, 0, 3}, {1, 4}, DType::f64);
  std::vector<double> g = glu(x, 1).to_vector();
  EXPECT_NEAR(g[0], 1 / (1 + std::exp(-0.0)), 1e-12);
  EXPECT_NEAR(g[1], 2 / (1 + std::exp(-3.0)), 1e-12);
  Tensor m = from_vector({1, 0}, {2}, DType::f64);
  EXPECT_CLOSE(where(m, from_vector({1, 2}, {2}, DType::f64), from_vector({3, 4}, {2}, DType::f64)),
               from_vector({1, 4}, {2}, DType::f64));
  EXPECT_CLOSE(gt(from_vector({1, 2}, {2}, DType::f64), from_vector({2, 1}, {2}, DType::f64)),
               from_vector({0, 1}, {2}, DType::f64));
}

TEST(Elementwise, Float32MatchesFloat64) {
  Tensor x = randn({64}, DType::f64);
  Tensor y = gelu(tanh(x) * sigmoid(x) + exp(x));
  EXPECT_CLOSE_TOL(gelu(tanh(x.to(DType::f32)) * sigmoid(x.to(DType::f32)) + exp(x.to(DType::f32))).to(DType::f64),
                   y, 1e-5, 1e-5);
}

TEST(Elementwise, MismatchesRaiseNamedErrors) {
  Tensor a = zeros({2, 3}), b = zeros({4});
  EXPECT_ERROR(add(a, b), "add: shapes (2, 3) and (4) do not broadcast");
  EXPECT_ERROR(mul(a, zeros({2, 3}, DType::f64)), "mul: dtype mismatch");
  EXPECT_ERROR(clamp(a, 1.0, 0.0), "clamp");
  EXPECT_ERROR(glu(zeros({2, 3}), 1), "glu: dimension 1 of (2, 3) is odd");
  EXPECT_ERROR(add(a, Tensor()), "add: second operand is an undefined tensor");
}

}  // namespace
}  // namespace fpa::test
