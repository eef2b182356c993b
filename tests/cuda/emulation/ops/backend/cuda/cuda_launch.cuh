// cuda_launch.cuh (host emulation): stands in for ops/backend/cuda/cuda_launch.cuh when the kernels
// are compiled with g++ (tests/cuda/emulation/run.sh puts this folder first on the include path).
// Blocks run one after another; a block's threads run one after another, or, for the kernels whose
// threads cooperate ("(rows)" in the launch name: shuffles, __syncthreads), as real threads meeting
// at barriers, started once per launch. Dynamic shared memory (launch_with_shared,
// FPA_DYNAMIC_SHARED) is a host buffer of exactly the launch's bytes, made afresh for each block
// and filled with 0xff bytes (NaN in float and double), so a read of shared memory the block never
// wrote shows in the results, and one past its end stops a SANITIZE=1 run. After each launch, as on
// the GPU, check_launch (cuda_errors.cu, on fake_cuda_runtime.h).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace fpa::gpu {

cudaStream_t stream();
void check_cuda(cudaError_t e, const char* what, const char* file, int line);
void check_launch(const char* kernel);  // cuda_errors.cu, on the fake runtime

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads, cap = int64_t(1) << 20;
  return unsigned(b < cap ? b : cap);
}

#define FPA_GRID_STRIDE_LOOP(i, n) \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)

namespace emulation {
inline std::unique_ptr<unsigned char[]> dynamic_shared;  // the running block's dynamic shared memory

// A fresh dynamic shared memory for the next block: exactly `bytes`, every byte 0xff.
inline void fresh_shared(size_t bytes) {
  dynamic_shared.reset(new unsigned char[bytes]);
  std::memset(dynamic_shared.get(), 0xff, bytes);
}

template <typename... Params, typename... Args>
void run_blocks(const char* name, void (*kernel)(Params...), dim3 grid, unsigned threads, size_t shared_bytes,
                Args... args) {
  const bool cooperative = std::strstr(name, "(rows)") != nullptr;
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;  // in CUDA's order: x fastest
  auto run_thread = [&](uint64_t block, unsigned t) {
    emu::block_idx = {unsigned(block % grid.x), unsigned(block / grid.x % grid.y), unsigned(block / grid.x / grid.y)};
    emu::thread_idx = {t, 0, 0};
    emu::block_dim = dim3(threads);
    emu::grid_dim = grid;
    kernel(Params(args)...);
  };
  if (!cooperative) {
    for (uint64_t b = 0; b < blocks; ++b) {
      fresh_shared(shared_bytes);
      for (unsigned t = 0; t < threads; ++t) run_thread(b, t);
    }
    return;
  }
  // One real thread per CUDA thread for the whole launch (not started per block: thread starts
  // would dominate), running the blocks one after another and meeting between them.
  pthread_barrier_t between_blocks;
  pthread_barrier_init(&between_blocks, nullptr, threads);
  pthread_barrier_init(&emu::block_barrier, nullptr, threads);
  for (unsigned w = 0; w < threads / 32; ++w) pthread_barrier_init(&emu::warp_barrier[w], nullptr, 32);
  auto worker = [&](unsigned t) {
    for (uint64_t b = 0; b < blocks; ++b) {
      if (t == 0) fresh_shared(shared_bytes);
      pthread_barrier_wait(&between_blocks);  // the block's shared memory is ready
      run_thread(b, t);
      pthread_barrier_wait(&between_blocks);  // every thread is done with it
    }
  };
  std::vector<std::thread> block;
  for (unsigned t = 0; t < threads; ++t) block.emplace_back(worker, t);
  for (std::thread& th : block) th.join();
  pthread_barrier_destroy(&between_blocks);
  pthread_barrier_destroy(&emu::block_barrier);
  for (unsigned w = 0; w < threads / 32; ++w) pthread_barrier_destroy(&emu::warp_barrier[w]);
}
}  // namespace emulation

template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, unsigned threads, Args... args) {
  emulation::run_blocks(name, kernel, grid, threads, 0, args...);
  emu::kernel_ran(name);
  check_launch(name);
}

// An H100's / H200's opt-in limit (227 KiB), so the kernels plan as they would there.
inline size_t max_dynamic_shared_bytes() { return 227 * 1024; }

template <typename... Params, typename... Args>
void launch_with_shared(const char* name, void (*kernel)(Params...), dim3 grid, unsigned threads, size_t shared_bytes,
                        Args... args) {
  emulation::run_blocks(name, kernel, grid, threads, shared_bytes, args...);
  emu::kernel_ran(name);
  check_launch(name);
}

#define FPA_DYNAMIC_SHARED(T, name) T* name = reinterpret_cast<T*>(::fpa::gpu::emulation::dynamic_shared.get())

}  // namespace fpa::gpu
