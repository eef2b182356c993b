// test_cuda_gemm_conv.cpp: gemm (cuBLAS), the convolution triple (cuDNN) and im2col/col2im on
// CUDA against the CPU, float32 (TF32 off) and float64: every transpose combination, batches,
// padded leading dimensions, alpha/beta, K = 0, a broadcast batch operand; convolutions with
// stride, padding, groups, depthwise (with a channel multiplier), 1x1, 4x4, non-square
// kernels, empty batches, and a large one. Outputs start as NaN: beta = 0 must overwrite.
#include <cmath>

#include "ops/backend/cuda/cuda_flags.h"
#include "tests/cuda/cuda_test_util.h"

namespace fpa::test::cuda {
namespace {

// Products of K terms in [-1, 1] summed in another order: errors grow like K * eps.
Tolerance product_tolerance(DType t, int64_t terms) {
  const double eps = t == DType::f32 ? 6e-8 : 1.2e-16;
  return {4 * eps * double(std::max<int64_t>(terms, 1)), t == DType::f32 ? 1e-5 : 1e-12, false};
}

// ---- gemm

struct GemmCase {
  int64_t M, N, K, batch;
  bool ta, tb;
  int64_t pad;  // extra leading-dimension elements
  double alpha, beta;
  bool broadcast_b;  // stride_b = 0
};

std::string gemm_label(const GemmCase& c, DType t) {
  return "gemm " + std::string(dtype_label(t)) + " M=" + std::to_string(c.M) + " N=" + std::to_string(c.N) +
         " K=" + std::to_string(c.K) + " batch=" + std::to_string(c.batch) + (c.ta ? " A^T" : "") +
         (c.tb ? " B^T" : "") + " pad=" + std::to_string(c.pad) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + (c.broadcast_b ? " B broadcast" : "");
}

void check_gemm(const GemmCase& c, DType t) {
  // Row-major storage: op(A) is (M, K), A stored (M, K) or (K, M); likewise B.
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  const int64_t sa = a_rows * lda, sb = c.broadcast_b ? 0 : b_rows * ldb, sc = c.M * ldc;
  Buffers A = uniform({std::max<int64_t>(1, sa * c.batch)}, t, 1);
  Buffers B = uniform({std::max<int64_t>(1, c.broadcast_b ? b_rows * ldb : sb * c.batch)}, t, 2);
  Buffers C = c.beta == 0 ? filled({std::max<int64_t>(1, sc * c.batch)}, t)
                          : uniform({std::max<int64_t>(1, sc * c.batch)}, t, 3);
  on_both([&](Device d) {
    backend(d).gemm(t, c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.on(d), lda, sa, B.on(d), ldb, sb, c.beta, C.on(d), ldc, sc,
                    c.batch);
  });
  // The pad elements of C are never written: NaN (beta = 0) or their old value on both sides.
  EXPECT_MATCH(C, product_tolerance(t, c.K + 1));
}

TEST(CudaGemm, EveryTransposeBatchAndScalingMatchesTheCpu) {
  REQUIRE_CUDA();
  std::vector<GemmCase> cases;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      cases.push_back({1, 1, 1, 1, ta, tb, 0, 1.0, 0.0, false});
      cases.push_back({3, 5, 7, 1, ta, tb, 0, 1.0, 0.0, false});
      cases.push_back({17, 31, 13, 3, ta, tb, 0, 0.5, 0.0, false});
      cases.push_back({17, 31, 13, 3, ta, tb, 2, 1.0, 0.75, false});
      cases.push_back({9, 4, 33, 5, ta, tb, 1, -1.0, 0.0, true});
      cases.push_back({1, 64, 100, 2, ta, tb, 0, 1.0, 1.0, false});  // a matrix-vector product
    }
  cases.push_back({4, 6, 0, 2, false, false, 0, 1.0, 0.0, false});  // K = 0: C = 0
  cases.push_back({4, 6, 0, 2, false, false, 1, 1.0, 0.5, false});  // K = 0: C = beta C
  cases.push_back({0, 6, 5, 2, false, false, 0, 1.0, 0.0, false});  // nothing to do
  if (large_cases()) {
    cases.push_back({512, 384, 1024, 1, false, false, 0, 1.0, 0.0, false});
    cases.push_back({512, 384, 1024, 1, true, true, 0, 1.0, 0.0, false});
    cases.push_back({64, 64, 64, 100, false, true, 0, 1.0, 0.0, false});
    cases.push_back({1000, 1, 4096, 1, false, false, 0, 1.0, 0.0, false});
  }
  for (const GemmCase& c : cases)
    for (DType t : kDtypes) run_case(gemm_label(c, t), [&] { check_gemm(c, t); });
}

// ---- convolutions

ConvGeom geom(int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t Cout, int64_t KH, int64_t KW, int64_t stride,
              int64_t pad, int64_t groups, int64_t pad_w = -1) {
  ConvGeom g{};
  g.N = N, g.Cin = Cin, g.H = H, g.W = W, g.Cout = Cout, g.KH = KH, g.KW = KW;
  g.stride_h = g.stride_w = stride;
  g.pad_h = pad, g.pad_w = pad_w < 0 ? pad : pad_w;
  g.groups = groups;
  g.OH = (H + 2 * g.pad_h - KH) / stride + 1;
  g.OW = (W + 2 * g.pad_w - KW) / stride + 1;
  return g;
}

std::string conv_label(const char* what, const ConvGeom& g, DType t) {
  return std::string(what) + " " + dtype_label(t) + " x (" + std::to_string(g.N) + ", " + std::to_string(g.Cin) + ", " +
         std::to_string(g.H) + ", " + std::to_string(g.W) + ") Cout " + std::to_string(g.Cout) + " kernel " +
         std::to_string(g.KH) + "x" + std::to_string(g.KW) + " stride " + std::to_string(g.stride_h) + " pad " +
         std::to_string(g.pad_h) + "," + std::to_string(g.pad_w) + " groups " + std::to_string(g.groups);
}

std::vector<ConvGeom> conv_cases() {
  std::vector<ConvGeom> v = {
      geom(2, 3, 8, 8, 4, 3, 3, 1, 1, 1),     // 3x3 pad 1
      geom(3, 5, 9, 11, 6, 3, 3, 2, 1, 1),    // stride 2, odd sizes
      geom(4, 16, 7, 7, 8, 1, 1, 1, 0, 1),    // 1x1
      geom(2, 4, 6, 6, 6, 3, 3, 1, 1, 2),     // groups 2
      geom(2, 8, 10, 10, 8, 3, 3, 1, 1, 8),   // depthwise
      geom(2, 8, 10, 10, 16, 3, 3, 2, 1, 8),  // depthwise, channel multiplier 2, stride 2
      geom(2, 32, 4, 4, 1, 4, 4, 1, 0, 1),    // the discriminator's last 4x4 conv
      geom(2, 8, 16, 16, 16, 4, 4, 2, 1, 1),  // 4x4 stride 2 pad 1
      geom(2, 3, 5, 9, 4, 1, 3, 1, 0, 1, 1),  // 1x3 kernel, padding only across
      geom(1, 1, 1, 1, 1, 1, 1, 1, 0, 1),
  };
  if (large_cases()) {
    v.push_back(geom(32, 64, 32, 32, 128, 3, 3, 1, 1, 1));
    v.push_back(geom(16, 256, 16, 16, 256, 3, 3, 1, 1, 256));
    v.push_back(geom(8, 128, 64, 64, 64, 1, 1, 1, 0, 1));
  }
  return v;
}

// Float32 convolutions may use FFT or Winograd algorithms; their error is larger than a
// direct sum's but stays proportional to the largest output.
Tolerance conv_tolerance(DType t) {
  return t == DType::f32 ? Tolerance{3e-5, 1e-4, true} : Tolerance{1e-12, 1e-10, true};
}

TEST(CudaConv, ForwardBackwardDataAndFilterMatchTheCpu) {
  REQUIRE_CUDA();
  for (const ConvGeom& g : conv_cases())
    for (DType t : kDtypes) {
      if (t == DType::f64 && g.N * g.Cout * g.OH * g.OW * g.Cin / g.groups * g.KH * g.KW > 50'000'000) continue;
      const Shape xs = {g.N, g.Cin, g.H, g.W}, ws = {g.Cout, g.Cin / g.groups, g.KH, g.KW},
                  ys = {g.N, g.Cout, g.OH, g.OW};
      run_case(conv_label("conv2d_forward", g, t), [&] {
        Buffers x = uniform(xs, t, 1), w = uniform(ws, t, 2), y = filled(ys, t);
        on_both([&](Device d) { backend(d).conv2d_forward(t, g, x.on(d), w.on(d), y.on(d)); });
        EXPECT_MATCH(y, conv_tolerance(t));
      });
      run_case(conv_label("conv2d_backward_data", g, t), [&] {
        Buffers dy = uniform(ys, t, 3), w = uniform(ws, t, 2), dx = filled(xs, t);
        on_both([&](Device d) { backend(d).conv2d_backward_data(t, g, dy.on(d), w.on(d), dx.on(d)); });
        EXPECT_MATCH(dx, conv_tolerance(t));
      });
      run_case(conv_label("conv2d_backward_filter", g, t), [&] {
        Buffers x = uniform(xs, t, 1), dy = uniform(ys, t, 3), dw = filled(ws, t);
        on_both([&](Device d) { backend(d).conv2d_backward_filter(t, g, x.on(d), dy.on(d), dw.on(d)); });
        EXPECT_MATCH(dw, conv_tolerance(t));
      });
    }
}

TEST(CudaConv, EmptyBatchGivesZeroFilterGradient) {
  REQUIRE_CUDA();
  const ConvGeom g = geom(0, 3, 8, 8, 4, 3, 3, 1, 1, 1);
  for (DType t : kDtypes)
    run_case(conv_label("conv2d, empty batch", g, t), [&] {
      Buffers dw = filled({4, 3, 3, 3}, t);
      on_both([&](Device d) {
        backend(d).conv2d_forward(t, g, nullptr, nullptr, nullptr);
        backend(d).conv2d_backward_data(t, g, nullptr, nullptr, nullptr);
        backend(d).conv2d_backward_filter(t, g, nullptr, nullptr, dw.on(d));
      });
      EXPECT_IDENTICAL(dw);
    });
}

// With TF32 on (the default outside this suite), float32 convolutions still agree to TF32's
// 10-bit mantissa; the switch is restored afterwards.
TEST(CudaConv, Tf32SwitchKeepsResultsClose) {
  REQUIRE_CUDA();
  const ConvGeom g = geom(4, 32, 16, 16, 32, 3, 3, 1, 1, 1);
  run_case(conv_label("conv2d_forward with TF32", g, DType::f32), [&] {
    Buffers x = uniform({g.N, g.Cin, g.H, g.W}, DType::f32, 1), w = uniform({g.Cout, g.Cin, 3, 3}, DType::f32, 2);
    Buffers y = filled({g.N, g.Cout, g.OH, g.OW}, DType::f32);
    set_cuda_tf32(true);
    try {
      on_both([&](Device d) { backend(d).conv2d_forward(DType::f32, g, x.on(d), w.on(d), y.on(d)); });
    } catch (...) {
      set_cuda_tf32(false);
      throw;
    }
    set_cuda_tf32(false);
    EXPECT_MATCH(y, (Tolerance{3e-3, 1e-2, true}));
  });
}

// ---- im2col / col2im (groups 1): a copy and an ordered gather, bit for bit.

TEST(CudaIm2col, Im2colAndCol2imMatchTheCpuExactly) {
  REQUIRE_CUDA();
  std::vector<ConvGeom> cases = {
      geom(2, 3, 8, 8, 1, 3, 3, 1, 1, 1),   geom(3, 2, 9, 11, 1, 3, 3, 2, 1, 1),   geom(1, 4, 7, 7, 1, 1, 1, 1, 0, 1),
      geom(2, 2, 16, 16, 1, 4, 4, 2, 1, 1), geom(1, 3, 5, 9, 1, 1, 3, 1, 0, 1, 1), geom(2, 2, 3, 3, 1, 5, 5, 1, 2, 1),
      geom(1, 1, 6, 6, 1, 2, 2, 3, 0, 1),  // stride larger than the kernel: pixels no column reads
  };
  if (large_cases()) cases.push_back(geom(16, 64, 32, 32, 1, 3, 3, 1, 1, 1));
  for (const ConvGeom& g : cases)
    for (DType t : kDtypes) {
      const Shape xs = {g.N, g.Cin, g.H, g.W}, cs = {g.N, g.Cin * g.KH * g.KW, g.OH * g.OW};
      run_case(conv_label("im2col", g, t), [&] {
        Buffers x = uniform(xs, t, 4), col = filled(cs, t);
        on_both([&](Device d) { backend(d).im2col(t, g, x.on(d), col.on(d)); });
        EXPECT_IDENTICAL(col);
      });
      run_case(conv_label("col2im", g, t), [&] {
        Buffers col = uniform(cs, t, 5), x = filled(xs, t);
        on_both([&](Device d) { backend(d).col2im(t, g, col.on(d), x.on(d)); });
        EXPECT_IDENTICAL(x);
      });
    }
}

}  // namespace
}  // namespace fpa::test::cuda
