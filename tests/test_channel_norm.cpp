// test_channel_norm.cpp: the fused channel norm (ops/channel_norm.cpp,
// ops/backend/cpu/cpu_channel_norm.cpp) against its composed twin: the output and the gradients of
// x, g and b in float64 to 1e-10 of max|ref|, for one channel, many channels and 1x1 maps; float32
// against float64; the second order's composed fallback against the fused first order; the same
// bits on 1 and 2 threads; bad shapes named; and that nn::ChanNorm runs it. Its op cases:
// tests/op_cases/channel_norm_cases.cpp.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "autograd/philox.h"
#include "nn/layers.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

using V = std::vector<Tensor>;

struct Inputs {
  Tensor x, g, b;
  V list() const { return {x, g, b}; }
};

Inputs make_inputs(int64_t N, int64_t C, int64_t H, int64_t W, DType dt, uint64_t seed) {
  Philox gen(seed);
  Inputs in;
  in.x = add_scalar(mul_scalar(randn({N, C, H, W}, DType::f64, Device::cpu, &gen), 2.0), 0.7);
  in.g = add_scalar(randn({1, C, 1, 1}, DType::f64, Device::cpu, &gen), 1.0);
  in.b = randn({1, C, 1, 1}, DType::f64, Device::cpu, &gen);
  for (Tensor* t : {&in.x, &in.g, &in.b}) *t = t->to(dt).detach().requires_grad_();
  return in;
}

// Output, then the gradients of x, g, b for one random upstream gradient.
V forward_and_grads(const Inputs& in, bool fused, double eps = 1e-5) {
  Tensor y = fused ? channel_norm(in.x, in.g, in.b, eps) : channel_norm_composed(in.x, in.g, in.b, eps);
  Philox gen(99);
  Tensor up = randn(y.shape(), DType::f64, Device::cpu, &gen).to(y.dtype());
  V r = grad({y}, in.list(), {up});
  r.insert(r.begin(), y);
  return r;
}

const char* kNames[] = {"y", "dx", "dg", "db"};

TEST(ChannelNorm, MatchesComposedTwinFloat64) {
  for (auto [N, C, H, W] : {std::array<int64_t, 4>{2, 1, 3, 3}, {3, 7, 4, 5}, {2, 64, 1, 1}, {1, 130, 6, 2}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " C=" + std::to_string(C) + " H=" + std::to_string(H));
    Inputs in = make_inputs(N, C, H, W, DType::f64, 7 + C);
    V got = forward_and_grads(in, true), want = forward_and_grads(in, false);
    for (size_t i = 0; i < got.size(); ++i) expect_near_max(got[i], want[i], 1e-10, kNames[i]);
  }
}

TEST(ChannelNorm, Float32MatchesFloat64) {
  Inputs in64 = make_inputs(2, 48, 5, 3, DType::f64, 3);
  Inputs in32{in64.x.to(DType::f32).detach().requires_grad_(), in64.g.to(DType::f32).detach().requires_grad_(),
              in64.b.to(DType::f32).detach().requires_grad_()};
  V got = forward_and_grads(in32, true), want = forward_and_grads(in64, true);
  for (size_t i = 0; i < got.size(); ++i) expect_near_max(got[i], want[i], 2e-6, kNames[i]);
}

TEST(ChannelNorm, SecondOrderFallbackMatchesFusedFirstOrder) {
  Inputs in = make_inputs(2, 6, 3, 3, DType::f64, 11);
  Tensor y = channel_norm(in.x, in.g, in.b, 1e-5);
  Philox gen(5);
  Tensor up = randn(y.shape(), DType::f64, Device::cpu, &gen);
  V recorded = grad({y}, in.list(), {up}, /*retain_graph=*/true, /*create_graph=*/true);
  V fused = grad({y}, in.list(), {up});
  for (size_t i = 0; i < fused.size(); ++i) {
    if (i < 2) {  // db = sum dy: no input in it
      EXPECT_TRUE(recorded[i].requires_grad()) << kNames[i + 1];
    }
    expect_near_max(recorded[i].detach(), fused[i], 1e-12, kNames[i + 1]);
  }
}

TEST(ChannelNorm, ResultDoesNotDependOnThreadCount) {
  Inputs in = make_inputs(4, 96, 16, 16, DType::f32, 21);
  V one = with_threads(1, [&] { return forward_and_grads(in, true); });
  V two = with_threads(2, [&] { return forward_and_grads(in, true); });
  for (size_t i = 0; i < one.size(); ++i) {
    SCOPED_TRACE(kNames[i]);
    EXPECT_CLOSE_TOL(one[i], two[i], 0.0, 0.0);
  }
}

TEST(ChannelNorm, BadShapesAreNamed) {
  Tensor x = zeros({2, 3, 4, 4}), g = ones({1, 3, 1, 1}), b = zeros({1, 3, 1, 1});
  EXPECT_ERROR(channel_norm(zeros({2, 3, 4}), g, b, 1e-5), "channel_norm: input must be (N, C, H, W), got (2, 3, 4)");
  EXPECT_ERROR(channel_norm(x, ones({3}), b, 1e-5), "channel_norm: g and b must be (1, 3, 1, 1), got (3)");
}

TEST(ChannelNorm, ChanNormModuleUsesTheFusedOp) {
  nn::ChanNorm norm(5);
  Tensor x = make_inputs(2, 5, 3, 3, DType::f32, 4).x;
  Tensor y = norm.forward(x);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_STREQ(y.grad_fn()->name, "channel_norm");
  EXPECT_CLOSE_TOL(y, channel_norm_composed(x, norm.g, norm.b, norm.eps), 1e-5, 1e-5);
}

}  // namespace
}  // namespace fpa::test
