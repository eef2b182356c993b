// test_reduce.cpp: sum, mean, max, var, norm, softmax, group_norm and the losses: forward
// against loops, keepdim shapes, and their gradcheck cases (max with distinct values).
#include <gtest/gtest.h>

#include <cmath>

#include "tests/op_cases.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

FPA_OP_CASE("sum", "sum_all", {{2, 3, 4}}, [](const V& x) { return sum(x[0]); });
FPA_OP_CASE("sum", "sum_axes_keepdim", {{2, 3, 4}}, [](const V& x) { return sum(x[0], {0, 2}, true); });
FPA_OP_CASE("sum", "sum_last", {{3, 5}}, [](const V& x) { return sum(x[0], {-1}); });
FPA_OP_CASE("mean", "mean_axis", {{2, 3, 4}}, [](const V& x) { return mean(x[0], {1}); });
FPA_OP_CASE("max", "max_axis", {{3, 5}}, [](const V& x) { return max(x[0], {1}); });
FPA_OP_CASE("max", "max_all_keepdim", {{2, 3, 2}}, [](const V& x) { return max(x[0], {}, true); });
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

Tensor t234() {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[i] = std::sin(1.3 * i) * 3;
  return from_vector(v, {2, 3, 4}, DType::f64);
}

TEST(Reduce, SumMeanMaxMatchLoops) {
  Tensor x = t234();
  std::vector<double> v = x.to_vector();
  std::vector<double> s(3, 0), m(3, -1e300);
  for (int a = 0; a < 2; ++a)
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 4; ++c) s[b] += v[a * 12 + b * 4 + c], m[b] = std::max(m[b], v[a * 12 + b * 4 + c]);
  EXPECT_CLOSE(sum(x, {0, 2}), from_vector(s, {3}, DType::f64));
  EXPECT_EQ(sum(x, {0, 2}, true).shape(), Shape({1, 3, 1}));
  EXPECT_CLOSE(mean(x, {0, -1}), from_vector({s[0] / 8, s[1] / 8, s[2] / 8}, {3}, DType::f64));
  EXPECT_CLOSE(max(x, {2, 0}), from_vector(m, {3}, DType::f64));
  double total = 0;
  for (double e : v) total += e;
  EXPECT_NEAR(sum(x).item(), total, 1e-12);
  EXPECT_EQ(sum(x).shape().ndim, 0);
}

TEST(Reduce, VarNormSoftmax) {
  Tensor x = from_vector({1, 2, 3, 4, 6, 8}, {2, 3}, DType::f64);
  EXPECT_CLOSE(var(x, {1}), from_vector({2.0 / 3, 8.0 / 3}, {2}, DType::f64));
  EXPECT_CLOSE(norm(x, {1}), from_vector({std::sqrt(14.0), std::sqrt(116.0)}, {2}, DType::f64));
  std::vector<double> sm = softmax(x, 1).to_vector();
  double z = std::exp(1) + std::exp(2) + std::exp(3);
  EXPECT_NEAR(sm[0], std::exp(1) / z, 1e-12);
  EXPECT_NEAR(sm[2], std::exp(3) / z, 1e-12);
  // Large logits are max-subtracted (no overflow).
  std::vector<double> big = softmax(from_vector({1000, 1001}, {2}, DType::f64), 0).to_vector();
  EXPECT_NEAR(big[1], 1 / (1 + std::exp(-1.0)), 1e-12);
}

TEST(Reduce, MaxTiesShareTheGradient) {
  Tensor x = from_vector({1, 3, 3, 0}, {4}, DType::f64).requires_grad_();
  backward(max(x));
  EXPECT_CLOSE(x.grad(), from_vector({0, 0.5, 0.5, 0}, {4}, DType::f64));
}

TEST(Reduce, GroupNormNormalisesEachGroup) {
  Tensor x = randn({2, 4, 3, 3}, DType::f64);
  Tensor y = reshape(group_norm(x, 2, Tensor(), Tensor(), 0.0), {2, 2, 18});
  EXPECT_CLOSE_TOL(mean(y, {2}), zeros({2, 2}, DType::f64), 1e-12, 0);
  EXPECT_CLOSE_TOL(var(y, {2}), ones({2, 2}, DType::f64), 1e-10, 0);
}

TEST(Reduce, LossesMatchFormulas) {
  Tensor a = from_vector({1, 2, 3}, {3}, DType::f64), b = from_vector({1, 0, 5}, {3}, DType::f64);
  EXPECT_NEAR(mse_loss(a, b).item(), (0 + 4 + 4) / 3.0, 1e-12);
  Tensor l = from_vector({-2, 0.5, -0.5}, {3}, DType::f64);
  EXPECT_NEAR(hinge_real(l).item(), (0 + 1.5 + 0.5) / 3, 1e-12);
  EXPECT_NEAR(hinge_fake(l).item(), (3 + 0.5 + 1.5) / 3, 1e-12);
}

TEST(Reduce, BadAxesRaiseNamedErrors) {
  EXPECT_ERROR(sum(zeros({2, 3}), {2}), "sum: axis 2 out of range for shape (2, 3)");
  EXPECT_ERROR(softmax(zeros({2, 3}), -3), "softmax: axis -3 out of range");
  EXPECT_ERROR(max(zeros({2, 3}), {1, 1}), "max: repeated axis");
  EXPECT_ERROR(group_norm(zeros({2, 6, 4}), 4, Tensor(), Tensor()), "group_norm: 6 channels");
  EXPECT_ERROR(mse_loss(zeros({2, 3}), zeros({3})), "mse_loss: input (2, 3) and target (3) differ");
}

}  // namespace
}  // namespace fpa::test
