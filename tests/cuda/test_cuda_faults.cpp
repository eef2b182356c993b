// test_cuda_faults.cpp: the CUDA backend after a fault a first GPU run may meet, on the real
// runtime (GPU only: tests/cuda/emulation/run.sh leaves this file out; its fake runtime covers
// the same paths with injected faults in tests/cuda/emulation/test_emulated_faults.cpp). A
// capture invalidated by a wait leaves eager work usable, as the trainer's fallback needs;
// work on the legacy default stream during a capture does not invalidate it (the backend's
// stream is non-blocking).
#include <cuda_runtime.h>

#include <vector>

#include "tests/cuda/cuda_test_util.h"
#include "tests/test_util.h"

namespace fpa::test::cuda {
namespace {

void expect_eager_work_runs() {
  Tensor x = from_vector({-1.0, 2.0, -3.0, 4.0}, {4}, DType::f32, Device::cuda);
  Tensor y;
  EXPECT_NO_THROW(y = relu(x));
  EXPECT_EQ(y.to_vector(), (std::vector<double>{0.0, 2.0, 0.0, 4.0}));
}

TEST(CudaFaults, AnInvalidatedCaptureLeavesEagerWorkUsable) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  if (!b.supports("capture_begin")) GTEST_SKIP() << "this CUDA backend does not capture";
  expect_eager_work_runs();  // cuBLAS, cuDNN and the kernels set up before the capture
  b.capture_begin(nullptr);
  EXPECT_ERROR(cuda_synchronize(), "cudaStreamSynchronize");  // not allowed while capturing
  EXPECT_ERROR(b.capture_end(), "capturing a CUDA graph");
  expect_eager_work_runs();
}

TEST(CudaFaults, LegacyStreamWorkDoesNotInvalidateACapture) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  if (!b.supports("capture_begin")) GTEST_SKIP() << "this CUDA backend does not capture";
  void* scratch = nullptr;
  ASSERT_EQ(cudaMalloc(&scratch, 256), cudaSuccess);
  Tensor x = from_vector({-1.0, 2.0}, {2}, DType::f32, Device::cuda);
  b.capture_begin(nullptr);
  Tensor y = relu(x);
  // What a library might queue on the legacy default stream meanwhile; a blocking capture
  // stream would be joined to it, and the capture invalidated.
  EXPECT_EQ(cudaMemsetAsync(scratch, 0, 256, cudaStreamLegacy), cudaSuccess);
  void* graph = nullptr;
  EXPECT_NO_THROW(graph = b.capture_end());
  if (graph) {
    b.graph_replay(graph);
    EXPECT_EQ(y.to_vector(), (std::vector<double>{0.0, 2.0}));
    b.graph_release(graph);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(scratch);
  expect_eager_work_runs();
}

}  // namespace
}  // namespace fpa::test::cuda
