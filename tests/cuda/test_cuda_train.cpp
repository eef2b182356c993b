// test_cuda_train.cpp: training on the GPU, end to end at a tiny size on random images: the
// CUDA step against the CPU step, the CUDA graph replays against eager CUDA steps (--no-graph),
// the step a graph records run directly, and the steady state of a graph run (no cudaMalloc,
// the losses finite). TF32 is off, as in the whole suite, so CPU and GPU arithmetic compare.
#include <cmath>
#include <optional>

#include "tests/cuda/cuda_test_util.h"
#include "tests/train_test_util.h"
#include "train/trainer.h"

namespace fpa::test::cuda {
namespace {

// The trainer tests' tiny configuration (train_test_util.h, DiffAugment at p 0.5) with the
// penalty every 2 steps and the EMA from step 2; steps are taken one by one (no run folder).
Trainer make_trainer(Device device, bool graph) {
  TrainOptions o = tiny("", 100);  // o.steps: checked (at least 1), not used here
  o.gp_every = 2, o.ema_start = 2;
  o.device = device, o.graph = graph;
  const int64_t C = o.model.g.channels, S = o.model.g.image_size;
  return Trainer(o, std::make_shared<const ImageDataset>(random_dataset(32, C, S)));
}

// |a - b| <= atol + rtol |b| for every parameter element but a few: Adam moves a parameter by
// about lr whatever the size of its gradient, so one whose gradient is at the rounding level
// may move either way on the two sides. At most 0.1% of the elements may be such outliers,
// and none by more than 2 lr per step (what opposite moves can add up to).
::testing::AssertionResult parameters_close(Trainer& a, Trainer& b, int steps, double atol, double rtol) {
  std::vector<std::vector<float>> pa = all_parameters(a), pb = all_parameters(b);
  if (pa.size() != pb.size()) return ::testing::AssertionFailure() << "parameter counts differ";
  const double outlier_bound = 2.0 * a.options().lr * steps;
  int64_t elements = 0, outliers = 0;
  for (size_t i = 0; i < pa.size(); ++i) {
    const std::vector<float>&x = pa[i], &y = pb[i];
    for (size_t j = 0; j < x.size(); ++j, ++elements) {
      const double diff = std::abs(double(x[j]) - double(y[j]));
      if (diff <= atol + rtol * std::abs(y[j])) continue;
      ++outliers;
      if (!(diff <= outlier_bound))
        return ::testing::AssertionFailure() << "parameter " << i << " element " << j << ": "
                                             << x[j] << " vs " << y[j] << ", more than " << outlier_bound << " apart";
    }
  }
  if (outliers * 1000 > elements)
    return ::testing::AssertionFailure() << outliers << " of " << elements << " parameter elements differ by more than "
                                         << atol << " + " << rtol << " |ref|";
  return ::testing::AssertionSuccess();
}

// Four steps on each device from the same seed: the same losses and parameters up to float32
// rounding (summation orders differ; four steps at lr 2e-4 keep the GAN from amplifying it).
TEST(CudaTrain, StepsMatchTheCpu) {
  REQUIRE_CUDA();
  run_case("4 steps", [&] {
    Trainer cpu = make_trainer(Device::cpu, false), gpu = make_trainer(Device::cuda, false);
    for (int s = 0; s < 4; ++s) {
      StepStats a = cpu.step(), b = gpu.step();
      EXPECT_NEAR(a.d_loss, b.d_loss, 1e-4 * (1 + std::abs(a.d_loss))) << "step " << s;
      EXPECT_NEAR(a.g_loss, b.g_loss, 1e-4 * (1 + std::abs(a.g_loss))) << "step " << s;
      EXPECT_NEAR(a.gp, b.gp, 1e-4 * (1 + std::abs(a.gp))) << "step " << s;
    }
    EXPECT_TRUE(parameters_close(gpu, cpu, 4, 1e-5, 1e-4));
  });
}

// Graph replays (steps 2 on: the first step of each kind is eager, the second captured; the
// EMA update from step 3, captured at its first use), each queued before the previous one's
// losses are read (as train_run does), give what eager CUDA steps give, and the replays
// allocate nothing.
TEST(CudaTrain, GraphReplaysMatchEagerSteps) {
  REQUIRE_CUDA();
  if (!backend(Device::cuda).supports("capture_begin"))
    GTEST_SKIP() << "this CUDA backend does not capture (emulation)";
  run_case("8 steps", [&] {
    Trainer eager = make_trainer(Device::cuda, false), graph = make_trainer(Device::cuda, true);
    EXPECT_FALSE(eager.uses_graphs());
    ASSERT_TRUE(graph.uses_graphs());
    int64_t mallocs = 0;
    std::optional<PendingStats> pending = graph.step_async();
    for (int s = 0; s < 8; ++s) {
      if (s == 5) mallocs = cuda_memory_stats().device_mallocs;
      StepStats a = eager.step();
      std::optional<PendingStats> next;
      if (s + 1 < 8) next = graph.step_async();
      StepStats b = pending->wait();
      pending = std::move(next);
      EXPECT_NEAR(a.d_loss, b.d_loss, 1e-5 * (1 + std::abs(a.d_loss))) << "step " << s;
      EXPECT_NEAR(a.g_loss, b.g_loss, 1e-5 * (1 + std::abs(a.g_loss))) << "step " << s;
      EXPECT_NEAR(a.gp, b.gp, 1e-5 * (1 + std::abs(a.gp))) << "step " << s;
      EXPECT_NEAR(a.aux_loss, b.aux_loss, 1e-5 * (1 + std::abs(a.aux_loss))) << "step " << s;
      EXPECT_TRUE(std::isfinite(b.d_loss) && std::isfinite(b.g_loss)) << "step " << s;
    }
    EXPECT_TRUE(graph.uses_graphs()) << "a capture failed and the trainer fell back to eager steps (see stderr)";
    EXPECT_EQ(cuda_memory_stats().device_mallocs, mallocs) << "steps 5 to 7 called cudaMalloc";
    EXPECT_TRUE(parameters_close(graph, eager, 8, 1e-6, 1e-5));
  });
}

// The recorded step run directly on the GPU (no host traffic inside, enforced) equals the
// eager GPU step up to the latents' generation (CPU vs GPU Philox normals, equal but for rare
// last-bit differences of the float64 log/cos).
TEST(CudaTrain, CaptureReadyStepMatchesTheEagerStep) {
  REQUIRE_CUDA();
  run_case("4 steps", [&] {
    Trainer eager = make_trainer(Device::cuda, false), ready = make_trainer(Device::cuda, false);
    for (int s = 0; s < 4; ++s) {
      StepStats a = eager.step(), b = ready.step_capture_ready();
      EXPECT_NEAR(a.d_loss, b.d_loss, 1e-5 * (1 + std::abs(a.d_loss))) << "step " << s;
    }
    EXPECT_TRUE(parameters_close(ready, eager, 4, 1e-6, 1e-5));
  });
}

}  // namespace
}  // namespace fpa::test::cuda
