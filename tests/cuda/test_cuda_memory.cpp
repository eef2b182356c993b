// test_cuda_memory.cpp: the CUDA backend's table and memory: registration and `supports`,
// host/device round trips, device copies, casts and fills against the CPU (bit for bit), and
// the caching allocator (freed blocks reused, no cudaMalloc in a repeated step).
#include <cmath>

#include "autograd/generator.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

TEST(CudaBackend, IsRegisteredAndSaysWhatItSupports) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  EXPECT_STREQ(b.name, "cuda");
  for (const char* entry : {"alloc",
                            "free",
                            "to_host",
                            "from_host",
                            "copy",
                            "cast",
                            "fill",
                            "unary",
                            "binary",
                            "copy_strided",
                            "reduce",
                            "softmax",
                            "gemm",
                            "conv2d_forward",
                            "conv2d_backward_data",
                            "conv2d_backward_filter",
                            "im2col",
                            "col2im",
                            "avg_pool2d",
                            "avg_pool2d_backward",
                            "resize_nearest",
                            "resize_nearest_backward",
                            "rand_uniform",
                            "rand_normal",
                            "adam_step",
                            "local_attention",
                            "local_attention_backward"})
    EXPECT_TRUE(b.supports(entry)) << entry;
  EXPECT_FALSE(b.supports("no_such_primitive"));
  std::printf("[ CUDA     ] %s\n", cuda_device_summary().c_str());
}

TEST(CudaMemory, RoundTripsAndDeviceCopiesAreExact) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    for (int64_t n : {int64_t(1), int64_t(7), int64_t(1000), int64_t((1 << 20) + 3)}) {
      run_case(std::string("round trip ") + dtype_label(t) + " n=" + std::to_string(n), [&] {
        Buffers x = uniform({n}, t, 11 + n);
        EXPECT_IDENTICAL(x);  // from_host, then to_host
        Buffers y = filled({n}, t);
        backend(Device::cuda).copy(y.device.data(), x.device.data(), n * dtype_size(t));
        EXPECT_TRUE(identical(y.device, x.host));
        Tensor back = x.device.clone();  // copy through Tensor
        EXPECT_TRUE(identical(back, x.host));
      });
    }
}

TEST(CudaMemory, CastAndFillMatchTheCpuBitForBit) {
  REQUIRE_CUDA();
  for (int64_t n : {int64_t(1), int64_t(333), int64_t((1 << 20) + 1)}) {
    run_case("cast n=" + std::to_string(n), [&] {
      for (DType from : kDtypes)
        for (DType to : kDtypes) {
          SCOPED_TRACE(std::string(dtype_label(from)) + " -> " + dtype_label(to));
          Buffers x = uniform({n}, from, 5, -1e3, 1e3);
          Buffers y = filled({n}, to);
          on_both([&](Device d) { backend(d).cast(from, to, n, x.on(d), y.on(d)); });
          EXPECT_IDENTICAL(y);
        }
    });
    run_case("fill n=" + std::to_string(n), [&] {
      for (DType t : kDtypes)
        for (double v : {0.0, -0.0, 0.1, -3e38, 1e30, double(INFINITY)}) {
          SCOPED_TRACE(std::string(dtype_label(t)) + " value " + std::to_string(v));
          Buffers y = filled({n}, t);
          on_both([&](Device d) { backend(d).fill(t, n, v, y.on(d)); });
          EXPECT_IDENTICAL(y);
        }
    });
  }
  run_case("cast and fill of nothing", [&] {
    backend(Device::cuda).cast(DType::f32, DType::f64, 0, nullptr, nullptr);
    backend(Device::cuda).fill(DType::f32, 0, 1.0, nullptr);
  });
}

TEST(CudaMemory, AllocatorReusesFreedBlocks) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  void* p = b.alloc(12345);
  b.free(p);
  const CudaMemoryStats before = cuda_memory_stats();
  void* q = b.alloc(12345);  // same bucket: the cached block, no cudaMalloc
  EXPECT_EQ(q, p);
  EXPECT_EQ(cuda_memory_stats().device_mallocs, before.device_mallocs);
  EXPECT_GE(cuda_memory_stats().bytes_in_use, before.bytes_in_use + 12345);
  b.free(q);
  EXPECT_EQ(cuda_memory_stats().bytes_in_use, before.bytes_in_use);
  b.free(nullptr);  // ignored
}

// A small training-like step (conv, matmul, softmax, backward) repeated: after the first
// one every allocation comes from the cache.
TEST(CudaMemory, RepeatedStepDoesNoCudaMalloc) {
  REQUIRE_CUDA();
  Generator gen(3);
  Tensor w = randn({8, 3, 3, 3}, DType::f32, Device::cuda, &gen).requires_grad_();
  Tensor m = randn({8 * 16 * 16, 10}, DType::f32, Device::cuda, &gen).requires_grad_();
  auto step = [&] {
    Tensor x = randn({4, 3, 16, 16}, DType::f32, Device::cuda, &gen);
    Tensor h = relu(conv2d(x, w, Tensor(), {1, 1, 1}));       // (4, 8, 16, 16)
    Tensor logits = matmul(reshape(h, {4, 8 * 16 * 16}), m);  // (4, 10)
    Tensor loss = sum(mul(softmax(logits, 1), logits));
    backward(loss);
    w.zero_grad();
    m.zero_grad();
    cuda_synchronize();
  };
  run_case("three steps", [&] {
    step();
    step();
    const int64_t mallocs = cuda_memory_stats().device_mallocs;
    step();
    EXPECT_EQ(cuda_memory_stats().device_mallocs, mallocs) << "the third step called cudaMalloc";
  });
}

}  // namespace
}  // namespace fpa::test::cuda
