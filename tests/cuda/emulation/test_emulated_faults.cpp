// test_emulated_faults.cpp: the CUDA backend's error handling on the fake runtime
// (fake_cuda_runtime.h), where faults a GPU rarely shows on demand can be injected: a capture
// that cannot begin, or is invalidated, leaves no error behind for the eager steps the trainer
// falls back to; so does a staging buffer still in flight; FPA_CUDA_SYNC=1 reports a device
// fault under the kernel that caused it. Built and run only by tests/cuda/emulation/run.sh.
#include <gtest/gtest.h>

#include <vector>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"
#include "ops/ops.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

class EmulatedFaults : public ::testing::Test {
 protected:
  void SetUp() override { emu::reset(); }
  void TearDown() override {
    set_cuda_sync_launches(false);
    emu::reset();
  }
  // An eager kernel after the fault: it must run and report nothing.
  static void expect_eager_work_runs() {
    Tensor x = from_vector({-1.0, 2.0, -3.0, 4.0}, {4}, DType::f32, Device::cuda);
    Tensor y;
    EXPECT_NO_THROW(y = relu(x));
    EXPECT_EQ(y.to_vector(), (std::vector<double>{0.0, 2.0, 0.0, 4.0}));
  }
};

TEST_F(EmulatedFaults, ACaptureThatCannotBeginLeavesNoErrorBehind) {
  emu::fail_next["cudaStreamBeginCapture"] = cudaErrorStreamCaptureUnsupported;
  EXPECT_ERROR(gpu::capture_begin(nullptr), "cudaStreamBeginCapture");
  expect_eager_work_runs();
  gpu::capture_begin(nullptr);  // the capture pool was closed again
  gpu::graph_release(gpu::capture_end());
}

TEST_F(EmulatedFaults, AnInvalidatedCaptureLeavesNoErrorBehind) {
  gpu::capture_begin(nullptr);
  EXPECT_ERROR(cuda_synchronize(), "cudaStreamSynchronize");  // waiting while capturing invalidates it
  EXPECT_ERROR(gpu::capture_end(), "capturing a CUDA graph");
  expect_eager_work_runs();
  emu::fail_next["cudaGraphInstantiate"] = cudaErrorInvalidValue;
  gpu::capture_begin(nullptr);
  EXPECT_ERROR(gpu::capture_end(), "capturing a CUDA graph");
  expect_eager_work_runs();
}

// A staging buffer whose copy is still in flight ("not ready") is passed over for one that is
// done; the query's "not ready" must not stay behind as the thread's last error.
TEST_F(EmulatedFaults, AStagingBufferInFlightLeavesNoErrorBehind) {
  std::vector<float> host(16, 1.0f);
  Tensor dst = zeros({16}, DType::f32, Device::cuda);
  emu::busy = true;
  gpu::from_host(dst.data(), host.data(), 64);  // its buffer stays in flight
  emu::busy = false;
  gpu::from_host(dst.data(), host.data(), 64);  // a second buffer, done at once
  gpu::from_host(dst.data(), host.data(), 64);  // takes the second, after querying the first
  expect_eager_work_runs();
}

TEST_F(EmulatedFaults, SyncLaunchesReportAFaultUnderItsKernel) {
  Tensor x = from_vector({-1.0, 2.0}, {2}, DType::f32, Device::cuda);
  set_cuda_sync_launches(true);
  emu::fault_after_kernel = "unary";
  EXPECT_ERROR(relu(x), "cuda: unary failed on the device: an illegal memory access");
  set_cuda_sync_launches(false);  // by default, the fault surfaces at the next wait
  emu::fault_after_kernel = "unary";
  EXPECT_NO_THROW(relu(x));
  EXPECT_ERROR(cuda_synchronize(), "an illegal memory access");
  set_cuda_sync_launches(true);  // no waiting while capturing
  gpu::capture_begin(nullptr);
  EXPECT_NO_THROW(relu(x));
  gpu::graph_release(gpu::capture_end());
}

}  // namespace
}  // namespace fpa::test
