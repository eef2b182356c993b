// test_backend.cpp: the backend table itself: the stub backend fails with
// "unimplemented: NAME", the CPU backend reports what it supports, and primitives that
// ops do not reach directly (adam_step, cast) compute the right numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/backend.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

TEST(Backend, StubFailsWithTheEntryName) {
  const Backend& b = stub_backend();
  EXPECT_FALSE(b.supports("gemm"));
  EXPECT_ERROR(b.alloc(16), "unimplemented: alloc");
  EXPECT_ERROR(b.fill(DType::f32, 1, 0.0, nullptr), "unimplemented: fill");
  EXPECT_ERROR(b.gemm(DType::f32, false, false, 1, 1, 1, 1, nullptr, 1, 0, nullptr, 1, 0, 0, nullptr, 1, 0, 1),
               "unimplemented: gemm");
  ConvGeom g{};
  EXPECT_ERROR(b.conv2d_forward(DType::f32, g, nullptr, nullptr, nullptr), "unimplemented: conv2d_forward");
}

TEST(Backend, CpuSupportsEverything) {
  const Backend& b = backend(Device::cpu);
  EXPECT_STREQ(b.name, "cpu");
  EXPECT_TRUE(b.supports("gemm"));
}

TEST(Backend, AdamStepMatchesTorchFormula) {
  // torch.optim.Adam, one parameter, two steps, by hand.
  double p = 1.0, m = 0, v = 0, lr = 0.1, b1 = 0.5, b2 = 0.9, eps = 1e-8;
  Tensor P = from_vector({p}, {1}, DType::f64), M = zeros({1}, DType::f64), Vt = zeros({1}, DType::f64);
  for (int step = 1; step <= 2; ++step) {
    double g = 0.3 * step;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    double mhat = m / (1 - std::pow(b1, step)), vhat = v / (1 - std::pow(b2, step));
    p -= lr * mhat / (std::sqrt(vhat) + eps);
    Tensor G = from_vector({g}, {1}, DType::f64);
    backend(Device::cpu).adam_step(DType::f64, 1, AdamArgs{lr, b1, b2, eps, 0.0, step}, P.data(), G.data(),
                                   M.data(), Vt.data());
  }
  EXPECT_NEAR(P.item(), p, 1e-12);
}

}  // namespace
}  // namespace fpa::test
