// test_gradcheck.cpp: runs every case of the op table through gradcheck and gradgradcheck
// in float64, and checks that every differentiable registered op has both.
#include <gtest/gtest.h>

#include <set>

#include "ops/op_util.h"
#include "tests/op_cases.h"

namespace fpa::test {
namespace {

class GradCheck : public ::testing::TestWithParam<OpCase> {};

TEST_P(GradCheck, FirstOrder) {
  const OpCase& c = GetParam();
  CheckResult r = gradcheck(c.fn, make_inputs(c, 42));
  EXPECT_TRUE(r.ok) << c.op << " (" << c.label << "): " << r.message;
}

TEST_P(GradCheck, SecondOrder) {
  const OpCase& c = GetParam();
  if (!c.second_order) GTEST_SKIP() << "second order not checked for " << c.label;
  CheckResult r = gradgradcheck(c.fn, make_inputs(c, 43));
  EXPECT_TRUE(r.ok) << c.op << " (" << c.label << "): " << r.message;
}

INSTANTIATE_TEST_SUITE_P(Ops, GradCheck, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& info) { return info.param.label; });

TEST(GradCheckCoverage, EveryDifferentiableOpHasFirstAndSecondOrderCases) {
  std::set<std::string> first, second;
  for (const OpCase& c : op_cases()) {
    first.insert(c.op);
    if (c.second_order) second.insert(c.op);
  }
  for (const OpInfo& op : registered_ops()) {
    if (!op.differentiable) continue;
    EXPECT_TRUE(first.count(op.name)) << "op " << op.name << " (" << op.family << ") has no gradcheck case";
    EXPECT_TRUE(second.count(op.name)) << "op " << op.name << " (" << op.family << ") has no gradgradcheck case";
  }
  for (const OpCase& c : op_cases()) {
    bool known = false;
    for (const OpInfo& op : registered_ops()) known = known || op.name == c.op;
    EXPECT_TRUE(known) << "case " << c.label << " names unregistered op " << c.op;
  }
}

// The checks themselves must be able to fail: an op with a wrong first derivative, and one
// whose first derivative is right but detached (so its second derivative is wrong).
Tensor square_with_backward(const Tensor& x, bool detach_in_backward) {
  return record("bad_square", unary_map(x, UnaryOp::square), {x},
                [x, detach_in_backward](const Tensor& g, const Tensor&, const std::vector<bool>&) {
                  if (detach_in_backward) return std::vector<Tensor>{mul(g, mul_scalar(x.detach(), 2.0))};
                  return std::vector<Tensor>{mul(g, x)};  // missing the factor 2
                });
}

TEST(GradCheckHarness, DetectsWrongFirstAndSecondDerivatives) {
  OpCase c{"square", "bad", {{3, 2}}, nullptr};
  std::vector<Tensor> xs = make_inputs(c, 5);
  auto wrong = [](const std::vector<Tensor>& x) { return square_with_backward(x[0], false); };
  auto detached = [](const std::vector<Tensor>& x) { return square_with_backward(x[0], true); };
  EXPECT_FALSE(gradcheck(wrong, xs).ok);
  EXPECT_TRUE(gradcheck(detached, xs).ok);
  EXPECT_FALSE(gradgradcheck(detached, xs).ok);
  EXPECT_TRUE(gradgradcheck([](const std::vector<Tensor>& x) { return square(x[0]); }, xs).ok);
}

}  // namespace
}  // namespace fpa::test
