// cuda_conv.cu: the CUDA convolution primitives: conv2d forward, backward-data and
// backward-filter through cuDNN (NCHW, any stride, padding and groups, depthwise included),
// and im2col / col2im as plain kernels.
//
// cuDNN: one handle on the backend's stream. A "plan" per (dtype, TF32 switch, geometry)
// holds the descriptors and, per direction, the algorithm chosen on first use from cuDNN's
// heuristics (cudnnGet*Algorithm_v7, nothing is benchmarked): the first that succeeds, fits a
// 1 GiB workspace, obeys the TF32 switch, and, for the two backward directions, is
// deterministic when one such exists. float32 runs with FMA math (no TF32) when
// set_cuda_tf32(false), tensor-op math (TF32) otherwise, as PyTorch does; float64 always
// computes in FP64. Workspace comes from the caching allocator for the call. Outputs are
// overwritten (beta = 0: cuDNN does not read them). Shapes with a zero dimension, which
// cuDNN rejects, are done here: every output element is an empty sum, 0.
// im2col writes each column element from its source pixel; col2im gathers, for each pixel,
// the (at most one per kernel tap) column elements that came from it, in the CPU's order, so
// both are deterministic and equal the CPU's bit for bit.
#include <fmt/format.h>
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ops/cuda/cuda_common.cuh"
#include "ops/cuda/cuda_flags.h"

namespace fpa::gpu {
namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

// "x (N, Cin, H, W), w (...), ..." for error messages.
std::string describe(const ConvGeom& g) {
  return fmt::format("x ({}, {}, {}, {}), w ({}, {}, {}, {}), y ({}, {}, {}, {}), stride ({}, {}), pad ({}, {}), groups {}",
                     g.N, g.Cin, g.H, g.W, g.Cout, g.groups ? g.Cin / g.groups : 0, g.KH, g.KW, g.N, g.Cout, g.OH,
                     g.OW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.groups);
}

void check_cudnn(cudnnStatus_t s, const char* what, const ConvGeom& g) {
  if (s != CUDNN_STATUS_SUCCESS) fail("cuda: cuDNN ", what, " failed: ", cudnnGetErrorString(s), " for ", describe(g));
}

cudnnHandle_t handle() {
  static cudnnHandle_t h = [] {
    cudnnHandle_t created = nullptr;
    cudnnStatus_t s = cudnnCreate(&created);
    if (s != CUDNN_STATUS_SUCCESS) fail("cuda: cudnnCreate failed: ", cudnnGetErrorString(s));
    s = cudnnSetStream(created, stream());
    if (s != CUDNN_STATUS_SUCCESS) fail("cuda: cudnnSetStream failed: ", cudnnGetErrorString(s));
    return created;
  }();
  return h;
}

// The chosen algorithm of one direction, set up on first use.
template <typename Algo>
struct Choice {
  bool ready = false;
  Algo algo{};
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // (N, Cin, H, W), (N, Cout, OH, OW)
  cudnnFilterDescriptor_t w = nullptr;               // (Cout, Cin/groups, KH, KW)
  cudnnConvolutionDescriptor_t conv = nullptr;       // its math type is set before each call
  cudnnMathType_t base_math = CUDNN_DEFAULT_MATH;    // what heuristics are asked under
  bool fma_only = false;                             // float32 with TF32 off
  Choice<cudnnConvolutionFwdAlgo_t> forward;
  Choice<cudnnConvolutionBwdDataAlgo_t> backward_data;
  Choice<cudnnConvolutionBwdFilterAlgo_t> backward_filter;
};

ConvPlan make_plan(DType t, bool tf32, const ConvGeom& g) {
  ConvPlan p;
  const cudnnDataType_t dt = t == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
  check_cudnn(cudnnCreateTensorDescriptor(&p.x), "cudnnCreateTensorDescriptor", g);
  check_cudnn(cudnnCreateTensorDescriptor(&p.y), "cudnnCreateTensorDescriptor", g);
  check_cudnn(cudnnCreateFilterDescriptor(&p.w), "cudnnCreateFilterDescriptor", g);
  check_cudnn(cudnnCreateConvolutionDescriptor(&p.conv), "cudnnCreateConvolutionDescriptor", g);
  check_cudnn(cudnnSetTensor4dDescriptor(p.x, CUDNN_TENSOR_NCHW, dt, int(g.N), int(g.Cin), int(g.H), int(g.W)),
              "cudnnSetTensor4dDescriptor (x)", g);
  check_cudnn(cudnnSetTensor4dDescriptor(p.y, CUDNN_TENSOR_NCHW, dt, int(g.N), int(g.Cout), int(g.OH), int(g.OW)),
              "cudnnSetTensor4dDescriptor (y)", g);
  check_cudnn(
      cudnnSetFilter4dDescriptor(p.w, dt, CUDNN_TENSOR_NCHW, int(g.Cout), int(g.Cin / g.groups), int(g.KH), int(g.KW)),
      "cudnnSetFilter4dDescriptor", g);
  check_cudnn(cudnnSetConvolution2dDescriptor(p.conv, int(g.pad_h), int(g.pad_w), int(g.stride_h), int(g.stride_w), 1,
                                              1, CUDNN_CROSS_CORRELATION, dt),
              "cudnnSetConvolution2dDescriptor", g);
  check_cudnn(cudnnSetConvolutionGroupCount(p.conv, int(g.groups)), "cudnnSetConvolutionGroupCount", g);
  p.fma_only = t == DType::f32 && !tf32;
  p.base_math = t == DType::f64 ? CUDNN_DEFAULT_MATH : tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  int n = 0, c = 0, h = 0, w = 0;
  check_cudnn(cudnnGetConvolution2dForwardOutputDim(p.conv, p.x, p.w, &n, &c, &h, &w),
              "cudnnGetConvolution2dForwardOutputDim", g);
  FPA_CHECK(n == g.N && c == g.Cout && h == g.OH && w == g.OW, "cuda conv2d: cuDNN's output (", n, ", ", c, ", ", h,
            ", ", w, ") differs from the geometry's for ", describe(g));
  return p;
}

// The plan of (dtype, TF32 switch, geometry), made once.
ConvPlan& plan_for(DType t, const ConvGeom& g) {
  static std::map<std::array<int64_t, 16>, std::unique_ptr<ConvPlan>> plans;
  const bool tf32 = t == DType::f32 && cuda_tf32();
  const std::array<int64_t, 16> key = {int64_t(t), tf32, g.N,  g.Cin,      g.H,        g.W,     g.Cout,  g.KH,
                                       g.KW,       g.OH, g.OW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.groups};
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, std::make_unique<ConvPlan>(make_plan(t, tf32, g))).first;
  return *it->second;
}

// Picks from cuDNN's ranked list: succeeded, workspace within the cap, math allowed by the
// TF32 switch (with TF32 off: FMA math, else default math as a last resort); among those the
// first deterministic one when `want_deterministic`, else the first.
template <typename Perf>
const Perf* pick(const Perf* perf, int count, bool fma_only, bool want_deterministic) {
  for (cudnnMathType_t fallback : {CUDNN_FMA_MATH, CUDNN_DEFAULT_MATH}) {
    const Perf* first = nullptr;
    for (int i = 0; i < count; ++i) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace) continue;
      if (fma_only && p.mathType != CUDNN_FMA_MATH && p.mathType != fallback) continue;
      if (!first) first = &p;
      if (!want_deterministic || p.determinism == CUDNN_DETERMINISTIC) return &p;
    }
    if (first || !fma_only) return first;
  }
  return nullptr;
}

// The math type to run a chosen algorithm under: FMA when TF32 is off for float32.
cudnnMathType_t run_math(const ConvPlan& p, cudnnMathType_t chosen) { return p.fma_only ? CUDNN_FMA_MATH : chosen; }

void choose_forward(ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(handle(), p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                     &count, perf),
              "cudnnGetConvolutionForwardAlgorithm_v7", g);
  const auto* best = pick(perf, count, p.fma_only, false);
  FPA_CHECK(best != nullptr, "cuda conv2d forward: cuDNN offers no usable algorithm for ", describe(g));
  p.forward.algo = best->algo;
  p.forward.math = run_math(p, best->mathType);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.forward.math), "cudnnSetConvolutionMathType", g);
  check_cudnn(
      cudnnGetConvolutionForwardWorkspaceSize(handle(), p.x, p.w, p.conv, p.y, p.forward.algo, &p.forward.workspace),
      "cudnnGetConvolutionForwardWorkspaceSize", g);
  p.forward.ready = true;
}

void choose_backward_data(ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), p.w, p.y, p.conv, p.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf),
              "cudnnGetConvolutionBackwardDataAlgorithm_v7", g);
  const auto* best = pick(perf, count, p.fma_only, true);
  FPA_CHECK(best != nullptr, "cuda conv2d backward data: cuDNN offers no usable algorithm for ", describe(g));
  p.backward_data.algo = best->algo;
  p.backward_data.math = run_math(p, best->mathType);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.backward_data.math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), p.w, p.y, p.conv, p.x, p.backward_data.algo,
                                                           &p.backward_data.workspace),
              "cudnnGetConvolutionBackwardDataWorkspaceSize", g);
  p.backward_data.ready = true;
}

void choose_backward_filter(ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), p.x, p.y, p.conv, p.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf),
              "cudnnGetConvolutionBackwardFilterAlgorithm_v7", g);
  const auto* best = pick(perf, count, p.fma_only, true);
  FPA_CHECK(best != nullptr, "cuda conv2d backward filter: cuDNN offers no usable algorithm for ", describe(g));
  p.backward_filter.algo = best->algo;
  p.backward_filter.math = run_math(p, best->mathType);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.backward_filter.math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), p.x, p.y, p.conv, p.w, p.backward_filter.algo,
                                                             &p.backward_filter.workspace),
              "cudnnGetConvolutionBackwardFilterWorkspaceSize", g);
  p.backward_filter.ready = true;
}

// cuDNN rejects zero-sized dims; then every output element is an empty sum.
bool has_zero_dim(const ConvGeom& g) {
  return g.N == 0 || g.Cin == 0 || g.H == 0 || g.W == 0 || g.Cout == 0 || g.KH == 0 || g.KW == 0 || g.OH == 0 ||
         g.OW == 0;
}

// alpha = 1, beta = 0 in the type cuDNN wants for the data type (double for float64).
struct Scaling {
  float f[2] = {1.0f, 0.0f};
  double d[2] = {1.0, 0.0};
  const void* alpha(DType t) const { return t == DType::f32 ? static_cast<const void*>(&f[0]) : &d[0]; }
  const void* beta(DType t) const { return t == DType::f32 ? static_cast<const void*>(&f[1]) : &d[1]; }
};

std::mutex& cudnn_mutex() {
  static std::mutex mu;  // one handle and one plan cache: calls from several host threads take turns
  return mu;
}

// ---- im2col / col2im

// col (planes, KH*KW, OH*OW) from x (planes, H, W); padding reads as zero.
template <typename T>
__global__ void im2col_kernel(ConvGeom g, int64_t total, const T* x, T* col) {
  FPA_GRID_STRIDE_LOOP(i, total) {
    int64_t rest = i;
    const int64_t ow = rest % g.OW;
    rest /= g.OW;
    const int64_t oh = rest % g.OH;
    rest /= g.OH;
    const int64_t kw = rest % g.KW;
    rest /= g.KW;
    const int64_t kh = rest % g.KH;
    const int64_t p = rest / g.KH;
    const int64_t ih = oh * g.stride_h - g.pad_h + kh, iw = ow * g.stride_w - g.pad_w + kw;
    col[i] = (ih >= 0 && ih < g.H && iw >= 0 && iw < g.W) ? x[(p * g.H + ih) * g.W + iw] : T(0);
  }
}

// x (planes, H, W) = the sum of the col elements taken from each pixel, taps in (kh, kw) order.
template <typename T>
__global__ void col2im_kernel(ConvGeom g, int64_t total, const T* col, T* x) {
  const int64_t L = g.OH * g.OW;
  FPA_GRID_STRIDE_LOOP(i, total) {
    const int64_t iw = i % g.W, ih = i / g.W % g.H, p = i / (g.W * g.H);
    const T* colp = col + p * g.KH * g.KW * L;
    T acc = 0;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t h_num = ih + g.pad_h - kh;  // oh * stride_h
      if (h_num < 0 || h_num % g.stride_h != 0 || h_num / g.stride_h >= g.OH) continue;
      const int64_t oh = h_num / g.stride_h;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t w_num = iw + g.pad_w - kw;
        if (w_num < 0 || w_num % g.stride_w != 0 || w_num / g.stride_w >= g.OW) continue;
        acc += colp[(kh * g.KW + kw) * L + oh * g.OW + w_num / g.stride_w];
      }
    }
    x[i] = acc;
  }
}

}  // namespace

void conv2d_forward(DType t, const ConvGeom& g, const void* x, const void* w, void* y) {
  if (has_zero_dim(g)) return fill(t, g.N * g.Cout * g.OH * g.OW, 0.0, y);
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  ConvPlan& p = plan_for(t, g);
  if (!p.forward.ready) choose_forward(p, g);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.forward.math), "cudnnSetConvolutionMathType", g);
  Scratch workspace(p.forward.workspace);
  const Scaling s;
  check_cudnn(cudnnConvolutionForward(handle(), s.alpha(t), p.x, x, p.w, w, p.conv, p.forward.algo, workspace.get(),
                                      p.forward.workspace, s.beta(t), p.y, y),
              "cudnnConvolutionForward", g);
}

void conv2d_backward_data(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx) {
  if (has_zero_dim(g)) return fill(t, g.N * g.Cin * g.H * g.W, 0.0, dx);
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  ConvPlan& p = plan_for(t, g);
  if (!p.backward_data.ready) choose_backward_data(p, g);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.backward_data.math), "cudnnSetConvolutionMathType", g);
  Scratch workspace(p.backward_data.workspace);
  const Scaling s;
  check_cudnn(cudnnConvolutionBackwardData(handle(), s.alpha(t), p.w, w, p.y, dy, p.conv, p.backward_data.algo,
                                           workspace.get(), p.backward_data.workspace, s.beta(t), p.x, dx),
              "cudnnConvolutionBackwardData", g);
}

void conv2d_backward_filter(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw) {
  if (has_zero_dim(g)) return fill(t, g.Cout * (g.groups ? g.Cin / g.groups : 0) * g.KH * g.KW, 0.0, dw);
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  ConvPlan& p = plan_for(t, g);
  if (!p.backward_filter.ready) choose_backward_filter(p, g);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.backward_filter.math), "cudnnSetConvolutionMathType", g);
  Scratch workspace(p.backward_filter.workspace);
  const Scaling s;
  check_cudnn(cudnnConvolutionBackwardFilter(handle(), s.alpha(t), p.x, x, p.y, dy, p.conv, p.backward_filter.algo,
                                             workspace.get(), p.backward_filter.workspace, s.beta(t), p.w, dw),
              "cudnnConvolutionBackwardFilter", g);
}

void im2col(DType t, const ConvGeom& g, const void* x, void* col) {
  const int64_t total = g.N * g.Cin * g.KH * g.KW * g.OH * g.OW;
  if (total <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("im2col", im2col_kernel<T>, blocks_for(total), kThreads, g, total, static_cast<const T*>(x),
           static_cast<T*>(col));
  });
}

void col2im(DType t, const ConvGeom& g, const void* col, void* x) {
  const int64_t total = g.N * g.Cin * g.H * g.W;
  if (total <= 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("col2im", col2im_kernel<T>, blocks_for(total), kThreads, g, total, static_cast<const T*>(col),
           static_cast<T*>(x));
  });
}

}  // namespace fpa::gpu
