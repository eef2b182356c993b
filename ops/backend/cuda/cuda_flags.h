// cuda_flags.h: the CUDA backend's host-side switches and counters, for callers that know
// they run on CUDA (the trainer's flags, benchmarks, tests). Plain C++: no CUDA header needed.
// Only linked when the CUDA backend is built (nvcc found); a CPU-only build has no definitions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace fpa {

// TF32 tensor-core math for float32 convolutions (cuDNN) and the LSTM's GEMMs (PyTorch's
// nn.LSTM runs in cuDNN: GemmPrecision::recurrent in ops/backend/backend.h). On by default, as in
// PyTorch (torch.backends.cudnn.allow_tf32); parity tests against the CPU turn it off.
void set_cuda_tf32(bool on);
bool cuda_tf32();

// TF32 for the other float32 GEMMs (cuBLAS). Off by default, as in PyTorch
// (torch.backends.cuda.matmul.allow_tf32).
void set_cuda_matmul_tf32(bool on);
bool cuda_matmul_tf32();

// Waiting for the stream after every kernel launch, cuBLAS or cuDNN call and device copy
// outside a capture, so a fault inside a kernel is reported under the call that caused it
// (cuda_errors.cu). Off by default (slow: for finding a fault); FPA_CUDA_SYNC=1 in the
// environment turns it on (CUDA_LAUNCH_BLOCKING=1 would make every capture fail).
void set_cuda_sync_launches(bool on);
bool cuda_sync_launches();

// "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB), driver 13.0, runtime 13.0, cuBLAS 13.0.0, cuDNN 9.13.0".
std::string cuda_device_summary();

// Waits until every queued kernel and copy has finished; throws on a device fault.
void cuda_synchronize();

// The caching allocator (ops/backend/block_cache.h): cudaMalloc calls and growths of its address
// range so far (a steady training step adds none), bytes handed out and not freed, bytes held in
// the free lists (the CUDA graphs' pools included), and the most bytes in use at any moment since
// the start or cuda_reset_peak_memory (as torch.cuda.max_memory_allocated); the most bytes held
// from the driver, in use or cached, over the same time (as torch.cuda.max_memory_reserved: the
// device memory training really takes).
struct CudaMemoryStats {
  int64_t device_mallocs = 0;
  size_t bytes_in_use = 0;
  size_t bytes_cached = 0;
  size_t peak_bytes_in_use = 0;
  size_t peak_bytes_reserved = 0;
  size_t bytes_in_address_range = 0;  // of the held: mapped in the growing address range (large blocks)
};
CudaMemoryStats cuda_memory_stats();
// Returns the cache's wholly free segments (cudaFree) and the free end of its address range
// (unmapped, after waiting for the device) to the driver; blocks in use stay.
void cuda_empty_cache();
// Starts new peaks: peak_bytes_in_use = bytes_in_use now, peak_bytes_reserved = in use + cached now.
void cuda_reset_peak_memory();

}  // namespace fpa
