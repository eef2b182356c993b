// test_cuda_memory.cpp: the CUDA backend's table and memory: registration and `supports`,
// host/device round trips, device copies (one or many at once), casts and fills against the CPU
// (bit for bit), and
// the caching allocator (freed blocks reused, no cudaMalloc in a repeated step, capture pools),
// and copies through pinned staging (uploads, and reads started ahead).
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

TEST(CudaBackend, IsRegisteredAndSaysWhatItSupports) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  EXPECT_STREQ(b.name, "cuda");
  for (const char* entry : primitive_names())  // every one of ops/backend/primitives.def
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

// Spans of every alignment (16-byte, 4-byte, odd), sizes from 0 up, more than one kernel's
// worth of them (64), and in the large run one longer than a kernel's blocks cover at once.
TEST(CudaMemory, CopyManyCopiesEverySpan) {
  REQUIRE_CUDA();
  for (int64_t count : {int64_t(1), int64_t(64), int64_t(150)}) {
    run_case("copy_many of " + std::to_string(count) + " spans", [&] {
      const size_t long_span = large_cases() ? (size_t(5) << 20) + 24 : 4096;  // 8-aligned sizes
      const size_t src_bytes = long_span + 4096, dst_bytes = long_span + size_t(count) * 4200;
      Buffers src = uniform({int64_t(src_bytes / 8)}, DType::f64, 17);
      Buffers dst = filled({int64_t(dst_bytes / 8)}, DType::f64, 0.5);
      auto spans_on = [&](Device d) {
        std::vector<CopySpan> spans;
        char* s = static_cast<char*>(src.on(d));
        char* t = static_cast<char*>(dst.on(d));
        size_t at = 0;  // next free byte of dst
        for (int64_t i = 0; i < count; ++i) {
          size_t bytes = size_t(i * 37 % 4001);  // 0 for span 0
          if (i % 3 == 0) bytes = bytes / 16 * 16;
          if (i == 1) bytes = long_span;
          const size_t from = size_t(i * 131 % 97) * (i % 2 == 0 ? 16 : 4) + size_t(i % 5 == 4);
          at += size_t(i % 4) * 4 + (i % 7 == 6);  // a gap, sometimes making dst odd
          spans.push_back({t + at, s + from, bytes});
          at += bytes;
        }
        EXPECT_LE(at, dst_bytes);
        return spans;
      };
      on_both([&](Device d) {
        std::vector<CopySpan> spans = spans_on(d);
        backend(d).copy_many(int64_t(spans.size()), spans.data());
      });
      Tensor got = dst.device.to(Device::cpu);
      EXPECT_EQ(std::memcmp(got.data(), dst.host.data(), size_t(dst.numel()) * 8), 0) << "the copied bytes differ";
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

// (The allocator's rules are tested on the CPU: tests/test_block_cache.cpp. Here: on the device.)
TEST(CudaMemory, AllocatorReusesFreedBlocks) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  void* p = b.alloc(12345);
  b.free(p);
  const CudaMemoryStats before = cuda_memory_stats();
  void* q = b.alloc(12345);  // a cached block, no cudaMalloc
  EXPECT_EQ(cuda_memory_stats().device_mallocs, before.device_mallocs);
  EXPECT_GE(cuda_memory_stats().bytes_in_use, before.bytes_in_use + 12345);
  b.free(q);
  EXPECT_EQ(cuda_memory_stats().bytes_in_use, before.bytes_in_use);
  b.free(nullptr);  // ignored
}

// The peaks: in use counts handed-out blocks, reserved also the cached ones (a live graph's
// pool stays cached); emptying the cache and starting new peaks gives back what was added.
// Large blocks come from the growing address range (cuda_address_range.cu), which the H200
// supports: written and read back there, and its free end unmapped by cuda_empty_cache.
TEST(CudaMemory, PeaksOfBytesInUseAndReserved) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  cuda_empty_cache();
  cuda_reset_peak_memory();
  const CudaMemoryStats start = cuda_memory_stats();
  const size_t held = start.bytes_in_use + start.bytes_cached;
  EXPECT_EQ(start.peak_bytes_in_use, start.bytes_in_use);
  EXPECT_EQ(start.peak_bytes_reserved, held);
  const size_t big = size_t(64) << 20, n = big / sizeof(float);
  void* p = b.alloc(big);
  b.fill(DType::f32, int64_t(n), 1.5, p);
  std::vector<float> back(n);
  b.to_host(back.data(), p, big);
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[n - 1], 1.5f);
  const char* range = std::getenv("FPA_CUDA_ADDRESS_RANGE");
  if (!range || std::strcmp(range, "0") != 0) {
    EXPECT_GT(cuda_memory_stats().bytes_in_address_range, 0u) << "large blocks did not come from the address range";
  }
  b.free(p);
  void* q = b.alloc(big / 2);  // from the cached block: nothing more reserved
  const CudaMemoryStats s = cuda_memory_stats();
  EXPECT_EQ(s.peak_bytes_in_use, start.bytes_in_use + big);
  EXPECT_LE(s.peak_bytes_reserved, held + big);
  b.free(q);
  cuda_empty_cache();
  cuda_reset_peak_memory();
  EXPECT_LE(cuda_memory_stats().peak_bytes_reserved, held);
}

// from_host copies through pinned staging: the caller may change its memory as soon as the
// call returns, and every upload still lands with the values it had then, also when more
// uploads are in flight than there are staging buffers.
TEST(CudaMemory, UploadsKeepTheValuesOfTheirCall) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  const int n = 100, len = 3000;
  std::vector<void*> dst(n);
  std::vector<float> host(len);
  for (int i = 0; i < n; ++i) {
    dst[i] = b.alloc(len * sizeof(float));
    for (int j = 0; j < len; ++j) host[j] = float(i * len + j);
    b.from_host(dst[i], host.data(), len * sizeof(float));
  }
  std::vector<float> back(len);
  for (int i = 0; i < n; ++i) {
    b.to_host(back.data(), dst[i], len * sizeof(float));
    for (int j = 0; j < len; ++j) ASSERT_EQ(back[j], float(i * len + j)) << "upload " << i << " element " << j;
    b.free(dst[i]);
  }
}

// to_host_start queues its copy behind the work already issued: each of many reads started
// between overwrites (more than there are staging buffers) gives the values of its start,
// read in any order; a ticket finished without a destination is dropped.
TEST(CudaMemory, ReadsStartedEarlyGiveTheValuesOfTheirStart) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  const int n = 40, len = 5000;
  void* dev = b.alloc(len * sizeof(float));
  std::vector<void*> tickets(n);
  for (int i = 0; i < n; ++i) {
    b.fill(DType::f32, len, double(i), dev);
    tickets[i] = b.to_host_start(dev, len * sizeof(float));
  }
  std::vector<float> back(len);
  for (int i = n - 1; i >= 0; --i) {
    if (i % 7 == 3) {
      b.to_host_finish(tickets[i], nullptr);
      continue;
    }
    b.to_host_finish(tickets[i], back.data());
    for (int j = 0; j < len; j += 97) ASSERT_EQ(back[j], float(i)) << "read " << i << " element " << j;
  }
  b.free(dev);
}

// Blocks allocated while capturing belong to the capture: freed, they are not handed to
// anyone else (a replay still writes them); released with the graph, they are again.
TEST(CudaMemory, CapturedBlocksStayWithTheirGraph) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  if (!b.supports("capture_begin")) GTEST_SKIP() << "this CUDA backend does not capture (emulation)";
  const size_t bytes = 4096 * sizeof(float);
  b.capture_begin(nullptr);
  void* p = b.alloc(bytes);
  b.fill(DType::f32, 4096, 2.5, p);  // recorded, not run
  void* graph = b.capture_end();
  b.free(p);
  void* q = b.alloc(bytes);
  EXPECT_NE(q, p) << "a block of the graph was handed out while the graph lives";
  b.graph_replay(graph);
  std::vector<float> back(4096);
  b.to_host(back.data(), p, bytes);
  EXPECT_EQ(back[0], 2.5f);
  EXPECT_EQ(back[4095], 2.5f);
  const int64_t mallocs = cuda_memory_stats().device_mallocs;
  b.graph_release(graph);
  void* r = b.alloc(bytes);  // the released graph's block is the cache's again
  EXPECT_EQ(cuda_memory_stats().device_mallocs, mallocs);
  b.free(q);
  b.free(r);
}

// A capture takes a block the shared cache holds instead of calling cudaMalloc (the eager
// warm-up steps leave the cache holding what the captured steps need); freed, the block stays
// with the graph until it is released.
TEST(CudaMemory, CaptureTakesTheCachesBlocks) {
  REQUIRE_CUDA();
  const Backend& b = backend(Device::cuda);
  if (!b.supports("capture_begin")) GTEST_SKIP() << "this CUDA backend does not capture (emulation)";
  const size_t bytes = 3 * 4096 * sizeof(float);  // a size no other test uses
  void* cached = b.alloc(bytes);
  b.free(cached);
  const int64_t mallocs = cuda_memory_stats().device_mallocs;
  b.capture_begin(nullptr);
  void* p = b.alloc(bytes);
  b.fill(DType::f32, 3 * 4096, 1.0, p);
  b.free(p);
  void* graph = b.capture_end();
  EXPECT_EQ(cuda_memory_stats().device_mallocs, mallocs) << "the capture did not take a cached block";
  void* q = b.alloc(bytes);
  EXPECT_NE(q, p) << "a block of the graph was handed out while the graph lives";
  b.graph_release(graph);
  b.free(q);
}

// A small training-like step (conv, matmul, softmax, backward) repeated: after the first
// one every allocation comes from the cache.
TEST(CudaMemory, RepeatedStepDoesNoCudaMalloc) {
  REQUIRE_CUDA();
  Philox gen(3);
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
