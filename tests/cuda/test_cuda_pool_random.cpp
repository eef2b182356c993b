// test_cuda_pool_random.cpp: average pooling (fixed and adaptive), nearest resizing (both
// directions), random numbers and the Adam step on CUDA against the CPU. Pooling, resizing,
// uniform numbers and Adam use the CPU's arithmetic in the CPU's order: bit for bit. Normal
// numbers go through libm log and cos: float64 within a few ulp, float32 within one.
#include <cmath>

#include "autograd/philox.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

// ---- average pooling

PoolGeom fixed_pool(int64_t planes, int64_t H, int64_t W, int64_t kernel, int64_t stride, int64_t pad) {
  return {planes, H,   W,    (H + 2 * pad - kernel) / stride + 1, (W + 2 * pad - kernel) / stride + 1, kernel,
          stride, pad, false};
}
PoolGeom adaptive_pool(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW) {
  return {planes, H, W, OH, OW, 0, 0, 0, true};
}

std::string pool_label(const char* what, const PoolGeom& g, DType t) {
  return std::string(what) + " " + dtype_label(t) + " planes " + std::to_string(g.planes) + " " + std::to_string(g.H) +
         "x" + std::to_string(g.W) + " -> " + std::to_string(g.OH) + "x" + std::to_string(g.OW) +
         (g.adaptive ? " adaptive"
                     : " kernel " + std::to_string(g.kernel) + " stride " + std::to_string(g.stride) + " pad " +
                           std::to_string(g.pad));
}

TEST(CudaPool, AvgPoolForwardAndBackwardMatchTheCpuExactly) {
  REQUIRE_CUDA();
  std::vector<PoolGeom> cases = {
      fixed_pool(6, 8, 8, 2, 2, 0),   fixed_pool(3, 8, 8, 3, 1, 1),   fixed_pool(4, 9, 7, 3, 2, 1),
      fixed_pool(2, 16, 16, 4, 4, 0), fixed_pool(2, 7, 7, 2, 2, 0),   fixed_pool(1, 1, 1, 1, 1, 0),
      fixed_pool(2, 5, 5, 3, 3, 1),   adaptive_pool(6, 8, 8, 4, 4),   adaptive_pool(3, 7, 7, 4, 4),
      adaptive_pool(2, 5, 9, 3, 2),   adaptive_pool(2, 4, 4, 4, 4),   adaptive_pool(2, 3, 3, 5, 5),
      adaptive_pool(2, 32, 32, 1, 1), adaptive_pool(2, 13, 17, 6, 5), adaptive_pool(1, 1, 1, 3, 2),
  };
  if (large_cases()) {
    cases.push_back(fixed_pool(512, 64, 64, 2, 2, 0));
    cases.push_back(adaptive_pool(256, 37, 41, 4, 4));
  }
  for (const PoolGeom& g : cases)
    for (DType t : kDtypes) {
      run_case(pool_label("avg_pool2d", g, t), [&] {
        Buffers x = uniform({g.planes, g.H, g.W}, t, 1), y = filled({g.planes, g.OH, g.OW}, t);
        on_both([&](Device d) { backend(d).avg_pool2d(t, g, x.on(d), y.on(d)); });
        EXPECT_IDENTICAL(y);
      });
      run_case(pool_label("avg_pool2d_backward", g, t), [&] {
        Buffers dy = uniform({g.planes, g.OH, g.OW}, t, 2), dx = filled({g.planes, g.H, g.W}, t);
        on_both([&](Device d) { backend(d).avg_pool2d_backward(t, g, dy.on(d), dx.on(d)); });
        EXPECT_IDENTICAL(dx);
      });
    }
}

// ---- nearest resize

struct ResizeCase {
  int64_t planes, H, W, OH, OW;
};

TEST(CudaResize, NearestForwardAndBackwardMatchTheCpuExactly) {
  REQUIRE_CUDA();
  std::vector<ResizeCase> cases = {{3, 5, 7, 10, 14},   {2, 8, 8, 4, 4},     {2, 7, 5, 3, 11},
                                   {1, 3, 3, 128, 128}, {4, 28, 28, 32, 32}, {2, 10, 10, 3, 7},
                                   {2, 1, 1, 5, 5},     {2, 13, 17, 13, 17}, {1, 100, 3, 7, 300}};
  if (large_cases()) {
    cases.push_back({64, 64, 64, 128, 128});
    cases.push_back({8, 1000, 999, 77, 1333});
  }
  for (const ResizeCase& c : cases)
    for (DType t : kDtypes) {
      const std::string size = std::string(dtype_label(t)) + " planes " + std::to_string(c.planes) + " " +
                               std::to_string(c.H) + "x" + std::to_string(c.W) + " -> " + std::to_string(c.OH) + "x" +
                               std::to_string(c.OW);
      run_case("resize_nearest " + size, [&] {
        Buffers x = uniform({c.planes, c.H, c.W}, t, 1), y = filled({c.planes, c.OH, c.OW}, t);
        on_both([&](Device d) { backend(d).resize_nearest(t, c.planes, c.H, c.W, c.OH, c.OW, x.on(d), y.on(d)); });
        EXPECT_IDENTICAL(y);
      });
      run_case("resize_nearest_backward " + size, [&] {
        Buffers dy = uniform({c.planes, c.OH, c.OW}, t, 2), dx = filled({c.planes, c.H, c.W}, t);
        on_both([&](Device d) {
          backend(d).resize_nearest_backward(t, c.planes, c.H, c.W, c.OH, c.OW, dy.on(d), dx.on(d));
        });
        EXPECT_IDENTICAL(dx);
      });
    }
}

// Bilinear: the same taps and summation order as the CPU; the device may fuse a multiply and
// an add into one rounding, so the results agree to the data type's rounding, not bit for bit.
TEST(CudaResize, BilinearForwardAndBackwardMatchTheCpu) {
  REQUIRE_CUDA();
  std::vector<ResizeCase> cases = {{3, 5, 7, 10, 14}, {2, 8, 8, 4, 4},     {2, 7, 5, 3, 11}, {2, 28, 28, 299, 299},
                                   {2, 1, 1, 5, 5},   {2, 13, 17, 13, 17}, {1, 100, 3, 7, 300}};
  if (large_cases()) cases.push_back({8, 32, 32, 299, 299});
  for (const ResizeCase& c : cases)
    for (DType t : kDtypes) {
      const std::string size = std::string(dtype_label(t)) + " planes " + std::to_string(c.planes) + " " +
                               std::to_string(c.H) + "x" + std::to_string(c.W) + " -> " + std::to_string(c.OH) + "x" +
                               std::to_string(c.OW);
      const double eps = t == DType::f32 ? 1e-5 : 1e-13;
      const Tolerance tol{eps, eps, true};
      run_case("resize_bilinear " + size, [&] {
        Buffers x = uniform({c.planes, c.H, c.W}, t, 3), y = filled({c.planes, c.OH, c.OW}, t);
        on_both([&](Device d) { backend(d).resize_bilinear(t, c.planes, c.H, c.W, c.OH, c.OW, x.on(d), y.on(d)); });
        EXPECT_MATCH(y, tol);
      });
      run_case("resize_bilinear_backward " + size, [&] {
        Buffers dy = uniform({c.planes, c.OH, c.OW}, t, 4), dx = filled({c.planes, c.H, c.W}, t);
        on_both([&](Device d) {
          backend(d).resize_bilinear_backward(t, c.planes, c.H, c.W, c.OH, c.OW, dy.on(d), dx.on(d));
        });
        EXPECT_MATCH(dx, tol);
      });
    }
}

// ---- random numbers

struct DrawCase {
  int64_t n;
  uint64_t seed, offset;
};

std::vector<DrawCase> draw_cases() {
  std::vector<DrawCase> v = {
      {1, 0, 0}, {1000, 42, 0}, {4097, 7, 123456789}, {333, (uint64_t(1) << 40) + 7, (uint64_t(1) << 33) + 5}};
  if (large_cases()) v.push_back({(1 << 22) + 5, 2023, 99});
  return v;
}

std::string draw_label(const char* what, const DrawCase& c, DType t) {
  return std::string(what) + " " + dtype_label(t) + " n=" + std::to_string(c.n) + " seed=" + std::to_string(c.seed) +
         " offset=" + std::to_string(c.offset);
}

TEST(CudaRandom, UniformNumbersEqualTheCpusBitForBit) {
  REQUIRE_CUDA();
  for (const DrawCase& c : draw_cases())
    for (DType t : kDtypes)
      for (auto [lo, hi] : {std::pair<double, double>{0.0, 1.0}, {-2.0, 3.0}})
        run_case(draw_label("rand_uniform", c, t) + " [" + std::to_string(lo) + ", " + std::to_string(hi) + ")", [&] {
          Buffers y = filled({c.n}, t);
          on_both([&](Device d) { backend(d).rand_uniform(t, c.n, c.seed, c.offset, lo, hi, y.on(d)); });
          EXPECT_IDENTICAL(y);
        });
}

TEST(CudaRandom, NormalNumbersMatchTheCpu) {
  REQUIRE_CUDA();
  for (const DrawCase& c : draw_cases())
    for (DType t : kDtypes)
      run_case(draw_label("rand_normal", c, t), [&] {
        Buffers y = filled({c.n}, t);
        on_both([&](Device d) { backend(d).rand_normal(t, c.n, c.seed, c.offset, 0.5, 2.0, y.on(d)); });
        // log and cos of CUDA's libm and glibc may differ in the last bit or two of a double.
        EXPECT_MATCH(y, t == DType::f32 ? Tolerance{1e-7, 1.2e-7} : Tolerance{4e-15, 4e-15});
        const std::vector<double> g = y.device.to_vector(), h = y.host.to_vector();
        int64_t same = 0;
        for (size_t i = 0; i < g.size(); ++i) same += g[i] == h[i];
        std::printf("[ CUDA     ] %s: %lld of %lld bit-identical\n", draw_label("rand_normal", c, t).c_str(),
                    static_cast<long long>(same), static_cast<long long>(g.size()));
      });
}

// Through the tensor API: the same generator state gives the same tensor on both devices.
TEST(CudaRandom, TensorDrawsFollowTheGenerator) {
  REQUIRE_CUDA();
  for (DType t : kDtypes)
    run_case(std::string("rand/randn tensors ") + dtype_label(t), [&] {
      Philox on_cpu(77), on_gpu(77);
      on_cpu.advance(1001), on_gpu.advance(1001);
      Tensor a = rand({3, 5, 7}, t, Device::cpu, &on_cpu, -1, 1), b = rand({3, 5, 7}, t, Device::cuda, &on_gpu, -1, 1);
      EXPECT_TRUE(identical(b, a));
      Tensor c = randn({64, 33}, t, Device::cpu, &on_cpu), d = randn({64, 33}, t, Device::cuda, &on_gpu);
      EXPECT_TRUE(matches(d, c, t == DType::f32 ? Tolerance{1e-7, 1.2e-7} : Tolerance{4e-15, 4e-15}));
      EXPECT_EQ(on_cpu.offset(), on_gpu.offset());
    });
}

// ---- Adam

TEST(CudaAdam, ThreeStepsEqualTheCpusBitForBit) {
  REQUIRE_CUDA();
  std::vector<int64_t> sizes = {1, 1000};
  if (large_cases()) sizes.push_back((1 << 20) + 3);
  for (int64_t n : sizes)
    for (DType t : kDtypes)
      for (double wd : {0.0, 0.01})
        run_case("adam_step " + std::string(dtype_label(t)) + " n=" + std::to_string(n) +
                     " weight_decay=" + std::to_string(wd),
                 [&] {
                   Buffers p = uniform({n}, t, 1), m = filled({n}, t, 0.0), v = filled({n}, t, 0.0);
                   for (int64_t step = 1; step <= 3; ++step) {
                     Buffers g = uniform({n}, t, 10 + step);
                     const AdamArgs args{2e-4, 0.5, 0.99, 1e-8, wd, step};
                     on_both([&](Device d) { backend(d).adam_step(t, n, args, p.on(d), g.on(d), m.on(d), v.on(d)); });
                   }
                   EXPECT_IDENTICAL(p);
                   EXPECT_IDENTICAL(m);
                   EXPECT_IDENTICAL(v);
                 });
}

}  // namespace
}  // namespace fpa::test::cuda
