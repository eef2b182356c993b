// cuda_errors.cu: how the CUDA backend reports what the runtime says went wrong: check_cuda
// (every runtime call's result), check_launch (after each kernel launch), and the
// FPA_CUDA_SYNC switch of cuda_flags.h.
//
// A failing runtime call also leaves its error as the thread's "last error", which the next
// launch's cudaGetLastError would report again under an innocent kernel's name. So check_cuda
// clears it as it throws. Errors of that kind (a bad argument, a capture that could not
// begin) are not sticky: the stream stays usable, and the trainer falls back to eager steps
// when a capture fails. A fault inside a kernel is sticky: every later call reports it.
//
// Kernels run asynchronously, so such a fault surfaces at the next synchronising call, named
// after that call. With FPA_CUDA_SYNC=1 in the environment (or set_cuda_sync_launches), each
// launch and library call outside a capture waits for the stream, and a fault is reported
// under the call that caused it (slow: for finding a fault). CUDA_LAUNCH_BLOCKING=1 would do
// the same, but makes every capture fail.
#include <cstdlib>
#include <cstring>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

namespace fpa {
namespace {

bool& sync_launches() {
  static bool on = [] {
    const char* env = std::getenv("FPA_CUDA_SYNC");
    return env && std::strcmp(env, "1") == 0;
  }();
  return on;
}

}  // namespace

void set_cuda_sync_launches(bool on) { sync_launches() = on; }
bool cuda_sync_launches() { return sync_launches(); }

namespace gpu {

void check_cuda(cudaError_t e, const char* what, const char* file, int line) {
  if (e == cudaSuccess) return;
  (void)cudaGetLastError();  // cleared: reported here, not again by the next launch
  fail("cuda: ", what, ": ", cudaGetErrorString(e), " (", file, ":", line, ")");
}

void sync_if_requested(const char* what) {
  if (!sync_launches()) return;
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  FPA_CUDA_CHECK(cudaStreamIsCapturing(stream(), &capturing));
  if (capturing != cudaStreamCaptureStatusNone) return;  // waiting would end the capture
  const cudaError_t e = cudaStreamSynchronize(stream());
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    fail("cuda: ", what, " failed on the device: ", cudaGetErrorString(e),
         " (FPA_CUDA_SYNC=1: the stream was idle before this call)");
  }
}

void check_launch(const char* kernel) {
  check_cuda(cudaGetLastError(), kernel, __FILE__, __LINE__);
  sync_if_requested(kernel);
}

}  // namespace gpu
}  // namespace fpa
