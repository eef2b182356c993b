// test_backend.cpp: the backend table itself: the stub backend fails with
// "unimplemented: NAME", the CPU backend reports what it supports, and primitives that
// ops do not reach directly (adam_step, also from bias terms in memory, cast) compute the
// right numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/generator.h"
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

TEST(Backend, CpuSupportsEverythingButCapture) {
  const Backend& b = backend(Device::cpu);
  EXPECT_STREQ(b.name, "cpu");
  EXPECT_TRUE(b.supports("gemm"));
  EXPECT_TRUE(b.supports("paint_backward"));
  for (const char* capture : {"capture_begin", "capture_end", "graph_replay", "graph_release"})
    EXPECT_FALSE(b.supports(capture)) << capture;
  EXPECT_ERROR(b.capture_begin(nullptr), "capture_begin: the CPU backend runs eagerly");
}

// free ignores nullptr and reports (never throws, never crashes on) a pointer it did not hand out.
TEST(Backend, CpuFreeIgnoresNullAndUnknownPointers) {
  const Backend& b = backend(Device::cpu);
  b.free(nullptr);
  int not_ours = 0;
  testing::internal::CaptureStderr();
  b.free(&not_ours);
  EXPECT_NE(testing::internal::GetCapturedStderr().find("did not hand out"), std::string::npos);
}

// The bias-corrected terms read from memory (what a captured Adam step does) give the bits of
// the terms computed from the step count, in both dtypes, over several steps.
TEST(Backend, AdamStepFromBiasTermsInMemoryIsTheSameStep) {
  for (DType t : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(t));
    Generator gen(5);
    const int64_t n = 1000;
    Tensor g = randn({n}, t, Device::cpu, &gen);
    Tensor p1 = randn({n}, t, Device::cpu, &gen), m1 = zeros({n}, t), v1 = zeros({n}, t);
    Tensor p2 = p1.clone(), m2 = zeros({n}, t), v2 = zeros({n}, t);
    for (int64_t step = 1; step <= 5; ++step) {
      AdamArgs by_count{2e-4, 0.5, 0.9, 1e-8, 0.01, step};
      double step_size, bc2_sqrt;
      adam_bias_terms(2e-4, 0.5, 0.9, step, &step_size, &bc2_sqrt);
      Tensor terms = from_vector({step_size, bc2_sqrt}, {2}, t);
      AdamArgs from_memory{2e-4, 0.5, 0.9, 1e-8, 0.01, /*step ignored*/ 0, terms.data()};
      backend(Device::cpu).adam_step(t, n, by_count, p1.data(), g.data(), m1.data(), v1.data());
      backend(Device::cpu).adam_step(t, n, from_memory, p2.data(), g.data(), m2.data(), v2.data());
    }
    EXPECT_TRUE(same_bits(p1, p2));
    EXPECT_TRUE(same_bits(v1, v2));
  }
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
