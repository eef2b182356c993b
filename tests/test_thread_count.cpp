// test_thread_count.cpp: the CPU backend gives the same bits on any thread count, whatever
// kernels OpenBLAS picked (make test-blas runs these under each kernel set the CPU can execute,
// and the portable kernel): GEMMs of every shape class, convolution gradients with any batch,
// and whole training steps with the penalty.
#include <gtest/gtest.h>

#include <vector>

#include "autograd/engine.h"
#include "ops/backend/backend.h"
#include "ops/backend/cpu/cpu_kernels.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"

namespace fpa::test {
namespace {

const int kThreadCounts[] = {2, 3, 5};

struct GemmShape {
  int64_t M, N, K, batch;
  bool ta, tb;
};

// C = op(A) op(B) + 0.5 C for a batch, through the backend's gemm, as host floats.
std::vector<float> gemm_bits(const GemmShape& s) {
  Philox gen(11);
  Tensor a = randn({s.batch, s.M * s.K}, DType::f32, Device::cpu, &gen);
  Tensor b = randn({s.batch, s.K * s.N}, DType::f32, Device::cpu, &gen);
  Tensor c = randn({s.batch, s.M * s.N}, DType::f32, Device::cpu, &gen);
  const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
  backend(Device::cpu).gemm(DType::f32, s.ta, s.tb, s.M, s.N, s.K, 1.0, a.data(), lda, s.M * s.K, b.data(), ldb,
                            s.K * s.N, 0.5, c.data(), s.N, s.M * s.N, s.batch);
  return c.to_floats();
}

TEST(ThreadCount, GemmBitsDoNotDependOnIt) {
  const GemmShape shapes[] = {
      {6, 4096, 1024, 1, false, true},  // an LSTM step's gates: few rows, cut into columns
      {300, 200, 500, 1, false, false}, // rows and columns cut
      {37, 130, 700, 3, true, false},   // fewer products than threads
      {64, 256, 576, 9, false, true},   // a convolution's products
      {5, 7, 3, 2, true, true},         // tiny: one tile
  };
  for (const GemmShape& s : shapes) {
    std::vector<float> one = with_threads(1, [&] { return gemm_bits(s); });
    for (int n : kThreadCounts)
      EXPECT_TRUE(one == with_threads(n, [&] { return gemm_bits(s); }))
          << "M " << s.M << " N " << s.N << " K " << s.K << " batch " << s.batch << ", " << n << " threads vs 1";
  }
}

TEST(ThreadCount, GemmTilesComeFromTheShapeAlone) {
  cpu::GemmTiling small = cpu::gemm_tiling(5, 7, 3);
  EXPECT_EQ(small.rows * small.cols, 1);
  cpu::GemmTiling gates = cpu::gemm_tiling(6, 4096, 1024);
  EXPECT_EQ(gates.rows, 1);  // 6 rows are never cut
  EXPECT_GT(gates.cols, 1);
  cpu::GemmTiling big = cpu::gemm_tiling(1024, 1024, 1024);
  EXPECT_EQ(big.rows * big.cols, cpu::kGemmMaxTiles);
  // Products that run together share kGemmBatchTiles, at least one tile each.
  cpu::GemmTiling shared = cpu::gemm_tiling(1024, 1024, 1024, 8);
  EXPECT_EQ(shared.rows * shared.cols, cpu::kGemmBatchTiles / 8);
  cpu::GemmTiling many = cpu::gemm_tiling(1024, 1024, 1024, 36);
  EXPECT_EQ(many.rows * many.cols, 1);
}

// Input and weight gradients of a 3x3 convolution over a batch of `n` images.
std::vector<std::vector<float>> conv_grads(int64_t n, int64_t groups) {
  Philox gen(5);
  Tensor x = randn({n, 8, 12, 12}, DType::f32, Device::cpu, &gen).requires_grad_(true);
  Tensor w = randn({16, 8 / groups, 3, 3}, DType::f32, Device::cpu, &gen).requires_grad_(true);
  Tensor up = randn({n, 16, 6, 6}, DType::f32, Device::cpu, &gen);
  Tensor y = conv2d(x, w, Tensor(), {2, 1, groups});
  std::vector<Tensor> g = grad({y}, {x, w}, {up});
  return {y.to_floats(), g[0].to_floats(), g[1].to_floats()};
}

TEST(ThreadCount, ConvolutionGradientsDoNotDependOnIt) {
  for (int64_t n : {1, 2, 3, 9, 17})
    for (int64_t groups : {1, 2}) {
      auto one = with_threads(1, [&] { return conv_grads(n, groups); });
      for (int t : kThreadCounts)
        EXPECT_TRUE(one == with_threads(t, [&] { return conv_grads(n, groups); }))
            << n << " images, groups " << groups << ", " << t << " threads vs 1";
    }
}

// A convolution that runs forward by Winograd's algorithm (wide, 3x3, stride 1), on `n` images.
std::vector<float> winograd_conv(int64_t n) {
  Philox gen(6);
  Tensor x = randn({n, 16, 21, 23}, DType::f32, Device::cpu, &gen);
  Tensor w = randn({24, 16, 3, 3}, DType::f32, Device::cpu, &gen);
  return conv2d(x, w, Tensor(), {1, 1}).to_floats();
}

TEST(ThreadCount, WinogradConvolutionDoesNotDependOnIt) {
  for (int64_t n : {1, 3}) {
    const std::vector<float> one = with_threads(1, [&] { return winograd_conv(n); });
    for (int t : kThreadCounts)
      EXPECT_TRUE(one == with_threads(t, [&] { return winograd_conv(n); })) << n << " images, " << t << " threads vs 1";
  }
}

// Losses and parameters after a step with the penalty and one without.
std::vector<std::vector<float>> two_steps(const std::string& out) {
  TrainOptions o = tiny(out, 2);
  o.gp_every = 2;
  Trainer t(o, std::make_shared<const ImageDataset>(random_dataset(16, 1, 32)));
  StepStats a = t.step(), b = t.step();
  std::vector<std::vector<float>> r = all_parameters(t);
  r.push_back({float(a.d_loss), float(a.g_loss), float(a.gp), float(b.d_loss), float(b.g_loss)});
  return r;
}

TEST(ThreadCount, TrainingStepsDoNotDependOnIt) {
  const std::string out = temp_dir("thread_count");
  auto one = with_threads(1, [&] { return two_steps(out); });
  EXPECT_TRUE(one == with_threads(3, [&] { return two_steps(out); })) << "3 threads vs 1";
}

}  // namespace
}  // namespace fpa::test
