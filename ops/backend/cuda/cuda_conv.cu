// cuda_conv.cu: the CUDA convolution primitives: conv2d forward, backward-data and
// backward-filter through cuDNN (NCHW, any stride, padding and groups, depthwise included),
// and im2col / col2im as plain kernels.
//
// cuDNN: one handle on the backend's stream. A "plan" per (dtype, TF32 switch, geometry) holds the
// descriptors and, per direction, the algorithm (ops/backend/algorithm_choice.h): on first use
// cuDNN's heuristics are asked (cudnnGet*Algorithm_v7, nothing is benchmarked), the offers that
// succeeded and fit a 1 GiB workspace are ranked (the math type they run under first, and for the
// two backward directions deterministic ones first), and they are tried in that order: one whose
// workspace size query or run returns NOT_SUPPORTED or EXECUTION_FAILED, or whose workspace cannot
// be allocated, gives way to the next; the first that runs is kept for every later call, where a
// failure throws (it ran before). Other statuses throw at once. While the stream is being captured
// into a CUDA graph and no algorithm is kept yet, only the first is tried, and its failure throws:
// a failed call may have broken the capture and would leave its work in the graph; the trainer then
// goes on with eager steps, where the rest are tried. float32 runs with FMA math (no TF32) when
// set_cuda_tf32(false), every candidate then run under it (those offered under FMA math first), and
// each under its own math type (tensor-op math: TF32) otherwise, as PyTorch does; float64 always
// computes in FP64. Workspace comes from the caching allocator for the call. Outputs are
// overwritten (beta = 0: cuDNN does not read them). Shapes with a zero dimension, which cuDNN
// rejects, are done here: every output element is an empty sum, 0. im2col writes each column
// element from its source pixel; col2im gathers, for each pixel, the (at most one per kernel tap)
// column elements that came from it, in the CPU's order, so both are deterministic and equal the
// CPU's bit for bit.
#include <fmt/format.h>
#include <cudnn.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ops/backend/algorithm_choice.h"
#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_flags.h"

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

// One direction's algorithm: cuDNN's ranked candidates (asked for at first use) and the choice.
struct Direction {
  explicit Direction(std::string what) : choice(std::move(what)) {}
  std::vector<AlgorithmCandidate> ranked;
  AlgorithmChoice choice;
};

struct ConvPlan {
  explicit ConvPlan(const ConvGeom& g)
      : forward("cuda conv2d forward for " + describe(g)),
        backward_data("cuda conv2d backward data for " + describe(g)),
        backward_filter("cuda conv2d backward filter for " + describe(g)) {}
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;  // (N, Cin, H, W), (N, Cout, OH, OW)
  cudnnFilterDescriptor_t w = nullptr;               // (Cout, Cin/groups, KH, KW)
  cudnnConvolutionDescriptor_t conv = nullptr;       // its math type is set before each call
  cudnnMathType_t base_math = CUDNN_DEFAULT_MATH;    // what heuristics are asked under
  bool fma_only = false;                             // float32 with TF32 off
  Direction forward, backward_data, backward_filter;
};

std::unique_ptr<ConvPlan> make_plan(DType t, bool tf32, const ConvGeom& g) {
  auto plan = std::make_unique<ConvPlan>(g);
  ConvPlan& p = *plan;
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
  return plan;
}

// The plan of (dtype, TF32 switch, geometry), made once.
ConvPlan& plan_for(DType t, const ConvGeom& g) {
  static std::map<std::array<int64_t, 16>, std::unique_ptr<ConvPlan>> plans;
  const bool tf32 = t == DType::f32 && cuda_tf32();
  const std::array<int64_t, 16> key = {int64_t(t), tf32, g.N,  g.Cin,      g.H,        g.W,     g.Cout,  g.KH,
                                       g.KW,       g.OH, g.OW, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.groups};
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_plan(t, tf32, g)).first;
  return *it->second;
}

// cuDNN's offers that succeeded with a workspace within the cap, ranked
// (ops/backend/algorithm_choice.h): with TF32 off for float32 every one runs under FMA math, else
// each under its own.
template <typename Perf>
std::vector<AlgorithmCandidate> rank_offers(const ConvPlan& p, const Perf* perf, int count, bool want_deterministic) {
  std::vector<AlgorithmCandidate> offered;
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kMaxWorkspace)
      offered.push_back(
          {int(perf[i].algo), int(perf[i].mathType), perf[i].determinism == CUDNN_DETERMINISTIC, perf[i].memory});
  return rank_algorithms(std::move(offered), p.fma_only ? CUDNN_FMA_MATH : kMathAsOffered, want_deterministic);
}

std::vector<AlgorithmCandidate> rank_forward(const ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(handle(), p.x, p.w, p.conv, p.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                     &count, perf),
              "cudnnGetConvolutionForwardAlgorithm_v7", g);
  return rank_offers(p, perf, count, false);
}

std::vector<AlgorithmCandidate> rank_backward_data(const ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle(), p.w, p.y, p.conv, p.x,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf),
              "cudnnGetConvolutionBackwardDataAlgorithm_v7", g);
  return rank_offers(p, perf, count, true);
}

std::vector<AlgorithmCandidate> rank_backward_filter(const ConvPlan& p, const ConvGeom& g) {
  cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  check_cudnn(cudnnSetConvolutionMathType(p.conv, p.base_math), "cudnnSetConvolutionMathType", g);
  check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle(), p.x, p.y, p.conv, p.w,
                                                            CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, perf),
              "cudnnGetConvolutionBackwardFilterAlgorithm_v7", g);
  return rank_offers(p, perf, count, true);
}

// "" for success; for a status that says the algorithm cannot do this convolution, why (after
// clearing the error a failed launch leaves behind); any other status throws.
std::string unusable_because(cudnnStatus_t s, const char* what, const ConvGeom& g) {
  if (s == CUDNN_STATUS_NOT_SUPPORTED || s == CUDNN_STATUS_EXECUTION_FAILED) {
    (void)cudaGetLastError();
    return fmt::format("{} returned {}", what, cudnnGetErrorString(s));
  }
  check_cudnn(s, what, g);
  return "";
}

// One direction run with candidate c under its math type: workspace_size(algo, &bytes) and
// run(algo, workspace, bytes) are that direction's cuDNN calls. "" when it ran, else why c is
// unusable (AlgorithmChoice's attempt).
template <typename Algo, typename WorkspaceSize, typename Run>
std::string attempt(const ConvPlan& p, const ConvGeom& g, const AlgorithmCandidate& c, const char* what,
                    WorkspaceSize&& workspace_size, Run&& run) {
  const Algo algo = Algo(c.algo);
  check_cudnn(cudnnSetConvolutionMathType(p.conv, cudnnMathType_t(c.math)), "cudnnSetConvolutionMathType", g);
  size_t bytes = 0;
  std::string reason = unusable_because(workspace_size(algo, &bytes), "the workspace size query", g);
  if (!reason.empty()) return reason;
  void* workspace = bytes ? device_alloc_or_null(bytes) : nullptr;
  if (bytes && !workspace) return fmt::format("workspace of {} bytes not available", bytes);
  const cudnnStatus_t status = run(algo, workspace, bytes);
  if (workspace) device_free(workspace);  // its next user is queued behind this call
  reason = unusable_because(status, what, g);
  if (reason.empty()) sync_if_requested(what);
  return reason;
}

// Inside a CUDA graph capture only the first candidate may be tried (see the header).
bool may_try_others(const Direction& d) {
  if (d.choice.chosen()) return true;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  FPA_CUDA_CHECK(cudaStreamIsCapturing(stream(), &status));
  return status == cudaStreamCaptureStatusNone;
}

// Runs one direction (the cuDNN calls workspace_size and run, as attempt() takes them): its
// ranking asked for at first use (and again while it is empty), then tried and remembered by
// its AlgorithmChoice.
template <typename Algo, typename Rank, typename WorkspaceSize, typename Run>
void run_direction(Direction& d, const ConvPlan& p, const ConvGeom& g, Rank&& rank, const char* what,
                   WorkspaceSize&& workspace_size, Run&& run) {
  if (!d.choice.chosen() && d.ranked.empty()) d.ranked = rank(p, g);
  d.choice.run(d.ranked, may_try_others(d),
               [&](const AlgorithmCandidate& c) { return attempt<Algo>(p, g, c, what, workspace_size, run); });
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
  const Scaling s;
  run_direction<cudnnConvolutionFwdAlgo_t>(
      p.forward, p, g, rank_forward, "cudnnConvolutionForward",
      [&](cudnnConvolutionFwdAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionForwardWorkspaceSize(handle(), p.x, p.w, p.conv, p.y, algo, bytes);
      },
      [&](cudnnConvolutionFwdAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionForward(handle(), s.alpha(t), p.x, x, p.w, w, p.conv, algo, workspace, bytes,
                                       s.beta(t), p.y, y);
      });
}

void conv2d_backward_data(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx) {
  if (has_zero_dim(g)) return fill(t, g.N * g.Cin * g.H * g.W, 0.0, dx);
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  ConvPlan& p = plan_for(t, g);
  const Scaling s;
  run_direction<cudnnConvolutionBwdDataAlgo_t>(
      p.backward_data, p, g, rank_backward_data, "cudnnConvolutionBackwardData",
      [&](cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardDataWorkspaceSize(handle(), p.w, p.y, p.conv, p.x, algo, bytes);
      },
      [&](cudnnConvolutionBwdDataAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardData(handle(), s.alpha(t), p.w, w, p.y, dy, p.conv, algo, workspace, bytes,
                                            s.beta(t), p.x, dx);
      });
}

void conv2d_backward_filter(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw) {
  if (has_zero_dim(g)) return fill(t, g.Cout * (g.groups ? g.Cin / g.groups : 0) * g.KH * g.KW, 0.0, dw);
  std::lock_guard<std::mutex> lock(cudnn_mutex());
  ConvPlan& p = plan_for(t, g);
  const Scaling s;
  run_direction<cudnnConvolutionBwdFilterAlgo_t>(
      p.backward_filter, p, g, rank_backward_filter, "cudnnConvolutionBackwardFilter",
      [&](cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
        return cudnnGetConvolutionBackwardFilterWorkspaceSize(handle(), p.x, p.y, p.conv, p.w, algo, bytes);
      },
      [&](cudnnConvolutionBwdFilterAlgo_t algo, void* workspace, size_t bytes) {
        return cudnnConvolutionBackwardFilter(handle(), s.alpha(t), p.x, x, p.y, dy, p.conv, algo, workspace, bytes,
                                              s.beta(t), p.w, dw);
      });
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
