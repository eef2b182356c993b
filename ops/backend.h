// backend.h: the narrow table of primitives every compute backend implements.
//
// Differentiable ops (ops/*.cpp) are written against this table only; they never branch on
// the device. A primitive reads and writes raw device pointers of one dtype, with uniform
// argument order: dtype first, then sizes/geometry, then inputs, then outputs. All buffers
// are contiguous row-major unless a stride argument says otherwise; strides are in elements.
// A backend registers itself with register_backend(); `supports(name)` tells whether an
// entry is really implemented (the stub backend in ops/stub answers false to everything).
// See ops/PORTING.md for how to add one.
#pragma once
#include <cstdint>

#include "autograd/dtype.h"
#include "autograd/shape.h"

namespace fpa {

enum class UnaryOp {
  neg, exp, log, sqrt, rsqrt, abs, sign, square, tanh, sigmoid, relu, erf,
  leaky_relu,       // a = negative slope
  leaky_relu_grad,  // its derivative: 1 where x > 0, else a
  silu, gelu,  // gelu: erf form
  gelu_grad,   // its derivative: Phi(x) + x phi(x)
  pow,         // x^a
  clamp,       // min(max(x, a), b)
  affine,      // a*x + b
  gt_mask,     // x > a ? 1 : 0
  inside_mask  // a <= x <= b ? 1 : 0
};

enum class BinaryOp { add, sub, mul, div, eq_mask, gt_mask };
enum class ReduceOp { sum, max };

// An n-d index space with per-operand strides (0 on broadcast dimensions).
struct StridedLoop {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};  // first operand (or source)
  int64_t b_strides[kMaxDims] = {};  // second operand (or destination)
};

// Geometry of a 2-d convolution, NCHW, weight (Cout, Cin/groups, KH, KW).
struct ConvGeom {
  int64_t N, Cin, H, W, Cout, KH, KW, OH, OW;
  int64_t stride_h, stride_w, pad_h, pad_w, groups;
};

// Geometry of an average pooling over (N*C) planes; adaptive uses PyTorch's bin rule,
// otherwise kernel/stride/pad with count_include_pad.
struct PoolGeom {
  int64_t planes, H, W, OH, OW;
  int64_t kernel, stride, pad;
  bool adaptive;
};

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, for bias correction
  // Or, when set, the bias-corrected terms read from device memory at run time, (2) of the
  // data type: {T(lr / (1 - beta1^step)), T(sqrt(1 - beta2^step))}, as adam_bias_terms gives
  // them; `step` is then ignored. A captured step (CUDA graph) replays with new terms this way.
  const void* bias_terms = nullptr;
};
// The two bias-corrected terms of step `step` (1-based), in double; kernels round them to T.
void adam_bias_terms(double lr, double beta1, double beta2, int64_t step, double* step_size, double* bc2_sqrt);

// The fast weight painting (FPA_REFERENCE.md 2.7 and 3): N independent S x S matrices W,
// row i = value index, column j = key index, one rank-1 update per step over T steps.
enum class PaintRule { delta, hebb, oja };
struct PaintGeom {
  PaintRule rule;
  int64_t T, N, S;
  int64_t rate_dim;    // beta per matrix (1) or per row (S); unused by hebb
  bool key_softmax;    // k = softmax(k) over its S entries before the rule (the painter's front end)
  bool rate_sigmoid;   // beta = sigmoid(beta) before the rule
};

// One device-to-device copy of copy_many.
struct CopySpan {
  void* dst;
  const void* src;
  size_t bytes;
};

struct Backend {
  const char* name;
  bool (*supports)(const char* primitive);

  // memory
  void* (*alloc)(size_t bytes);
  void (*free)(void* ptr);
  void (*to_host)(void* host_dst, const void* src, size_t bytes);
  void (*from_host)(void* dst, const void* host_src, size_t bytes);
  // A copy to the host that does not wait: to_host_start queues it behind the work already
  // issued (so it sees what that work writes) and returns a ticket at once; to_host_finish
  // waits for it, puts the bytes in host_dst (nullptr: drops them) and ends the ticket. Every
  // ticket is finished exactly once.
  void* (*to_host_start)(const void* src, size_t bytes);
  void (*to_host_finish)(void* ticket, void* host_dst);
  void (*copy)(void* dst, const void* src, size_t bytes);
  // Several copies in one call (on a GPU one kernel, not one per span): spans[i].bytes from
  // spans[i].src to spans[i].dst, i < count. `spans` is a host array, read during the call;
  // no two regions overlap. (Adam gathers every parameter's gradient with it.)
  void (*copy_many)(int64_t count, const CopySpan* spans);
  void (*cast)(DType from, DType to, int64_t n, const void* src, void* dst);
  void (*fill)(DType t, int64_t n, double value, void* dst);

  // y = op(x) elementwise; a, b are the op's scalar parameters.
  void (*unary)(DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y);
  // out[i] = a[i*as] op b[i*bs] over loop.shape; out contiguous.
  void (*binary)(DType t, BinaryOp op, const StridedLoop& loop, const void* a, const void* b, void* out);
  // dst[i*bs] = src[i*as] over loop.shape (permute, slice, expand, flip, pad, concat).
  void (*copy_strided)(DType t, const StridedLoop& loop, const void* src, void* dst);
  // y (kept dims) = reduce of x over the dims where reduce_mask bit is set.
  void (*reduce)(DType t, ReduceOp op, const Shape& x_shape, unsigned reduce_mask, const void* x, void* y);
  // y = softmax of x over the middle dim of (outer, dim, inner).
  void (*softmax)(DType t, int64_t outer, int64_t dim, int64_t inner, const void* x, void* y);
  // Its backward from the output: dx = y (g - sum over dim of g y), g the gradient of y, same
  // layout. With u (null for that), the backward of this dx along u with respect to y, which
  // second-order gradients need: dx = u (g - sum g y) - g sum u y.
  void (*softmax_backward)(DType t, int64_t outer, int64_t dim, int64_t inner, const void* y, const void* g,
                           const void* u, void* dx);

  // Row-major strided-batched GEMM: C[b] = alpha op(A[b]) op(B[b]) + beta C[b], op = transpose if t*.
  void (*gemm)(DType t, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const void* A, int64_t lda, int64_t stride_a, const void* B, int64_t ldb, int64_t stride_b,
               double beta, void* C, int64_t ldc, int64_t stride_c, int64_t batch);

  // Convolution: y = conv(x, w); dx = conv^T(dy, w); dw = corr(x, dy). Outputs overwritten.
  void (*conv2d_forward)(DType t, const ConvGeom& g, const void* x, const void* w, void* y);
  void (*conv2d_backward_data)(DType t, const ConvGeom& g, const void* dy, const void* w, void* dx);
  void (*conv2d_backward_filter)(DType t, const ConvGeom& g, const void* x, const void* dy, void* dw);
  // im2col: x (N, C, H, W) -> col (N, C*KH*KW, OH*OW); col2im sums back (overwrites x). groups = 1.
  void (*im2col)(DType t, const ConvGeom& g, const void* x, void* col);
  void (*col2im)(DType t, const ConvGeom& g, const void* col, void* x);

  void (*avg_pool2d)(DType t, const PoolGeom& g, const void* x, void* y);
  void (*avg_pool2d_backward)(DType t, const PoolGeom& g, const void* dy, void* dx);
  // Nearest resize of (planes, H, W) to (planes, OH, OW), PyTorch's legacy "nearest" rule.
  void (*resize_nearest)(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                         const void* x, void* y);
  void (*resize_nearest_backward)(DType t, int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW,
                                  const void* dy, void* dx);

  // Counter-based random numbers: element i depends only on (seed, offset + i).
  void (*rand_uniform)(DType t, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi, void* dst);
  void (*rand_normal)(DType t, int64_t n, uint64_t seed, uint64_t offset, double mean, double std, void* dst);

  // One Adam step over flat buffers (torch.optim.Adam semantics, L2 weight decay).
  void (*adam_step)(DType t, int64_t n, const AdamArgs& args, void* param, const void* grad, void* m, void* v);

  // Local attention over each position's kernel x kernel neighbourhood (kernel odd, zero
  // padding kernel/2, as unfold gathers it) of (planes, d, H, W) maps, n = a position, j = a
  // neighbour at offset off_j: sim[j, n] = sum_c q[c, n] key[c, n + off_j] (0 outside the map),
  // attn = softmax over j, out[c, n] = sum_j attn[j, n] value[c, n + off_j] (0 outside).
  // attn (planes, kernel*kernel, H*W) is written for the backward.
  void (*local_attention)(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel,
                          const void* q, const void* key, const void* value, void* out, void* attn);
  // Its gradients from dout and the saved attn; dq, dkey, dvalue overwritten.
  void (*local_attention_backward)(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel,
                                   const void* q, const void* key, const void* value, const void* attn,
                                   const void* dout, void* dq, void* dkey, void* dvalue);
  // Its pieces, one at a time (what second-order gradients differentiate): maps (planes, d, H,
  // W), neighbourhood weights (planes, J, H, W), J = kernel^2, the same offsets off_j.
  // neighbour_dot: out[j, n] = sum_c a[c, n] b[c, n + off_j]; neighbour_sum: out[c, n] =
  // sum_j w[j, n] x[c, n + off_j]; neighbour_transpose: out[j, n] = w[J-1-j, n + off_j] (0
  // outside), so that sum_j w[j, m - off_j] x[c, m - off_j] = neighbour_sum(transpose(w), x).
  void (*neighbour_dot)(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* a,
                        const void* b, void* out);
  void (*neighbour_sum)(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* w,
                        const void* x, void* out);
  void (*neighbour_transpose)(DType t, int64_t planes, int64_t H, int64_t W, int64_t kernel, const void* w,
                              void* out);

  // The whole painting in one call. k, v (T, N, S); beta (T, N, rate_dim), null for hebb;
  // w0 (N, S, S) or null (no start matrix); W (N, S, S) = W_T. Per step, k and beta after the
  // front end (softmax, sigmoid when the geometry asks):
  //   delta: W += (beta (v - W k)) k^T, but without w0 step 1 is W = v k^T (no rate);
  //   hebb:  W += v k^T;
  //   oja:   k' = softmax(k - W^T v) (k' = softmax(k) at step 1 without w0); W += (beta v) k'^T.
  void (*paint_forward)(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta,
                        const void* w0, void* W);
  // Its gradients from dW (N, S, S) = dL/dW_T, recomputing the painting (nothing is saved by
  // the forward). dk, dv (T, N, S) w.r.t. the raw k; dbeta (T, N, rate_dim) w.r.t. the raw beta,
  // or null; dw0 (N, S, S) or null. Outputs overwritten.
  void (*paint_backward)(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta,
                         const void* w0, const void* dW, void* dk, void* dv, void* dbeta, void* dw0);

  // One LSTM step's gate math over B rows, gate blocks i, f, g, o (PyTorch's order), each H wide.
  // gates (B, 4H) holds the preactivations x W_ih^T + b_ih + b_hh + h_prev W_hh^T on entry and
  // the activations sigmoid(i), sigmoid(f), tanh(g), sigmoid(o) on return (kept for the
  // backward); c_prev (B, H); c = f c_prev + i g, h = o tanh(c), both (B, H), overwritten.
  void (*lstm_gates_forward)(DType t, int64_t B, int64_t H, void* gates, const void* c_prev, void* c, void* h);
  // Its gradients from the activations `gates` (B, 4H), c_prev and c (B, H), and dh (B, H),
  // the gradient of h. dc (B, H) holds the gradient of c on entry and that of c_prev on return;
  // dgates (B, 4H), the gradient of the preactivations, overwritten.
  void (*lstm_gates_backward)(DType t, int64_t B, int64_t H, const void* gates, const void* c_prev, const void* c,
                              const void* dh, void* dc, void* dgates);

  // The channel norm of the lightweight-GAN discriminator (ChanNorm) over x (N, C, P), P = H*W:
  // at each (n, p), over c, y = (x - mean) rstd g[c] + b[c] with rstd = 1 / sqrt(var + eps),
  // var biased. mean and rstd (N, P) are written for the backward.
  void (*channel_norm_forward)(DType t, int64_t N, int64_t C, int64_t P, double eps, const void* x, const void* g,
                               const void* b, void* y, void* mean, void* rstd);
  // Its gradients from dy (N, C, P): dx (N, C, P); dg, db (C), summed over n and p. Overwritten.
  void (*channel_norm_backward)(DType t, int64_t N, int64_t C, int64_t P, const void* x, const void* g,
                                const void* mean, const void* rstd, const void* dy, void* dx, void* dg, void* db);

  // Capturing work for replay (CUDA graphs). Between capture_begin and capture_end every
  // primitive is recorded, not run, with its memory from a pool private to the capture (kept
  // until graph_release, so a replay's pointers stay valid); nothing may read device memory on
  // the host meanwhile. capture_end returns the graph; graph_replay runs it again, reading
  // whatever the recorded pointers hold then; graph_release waits for it and frees it and its
  // pool. Backends that run eagerly (CPU) answer supports("capture_begin") false.
  // capture_begin(graph) records into the pool of `graph` (live) instead of a new one, reusing
  // what that capture freed: then the graphs must replay one at a time, and what one leaves
  // for later (its outputs) must be read, or be no longer needed, before another replays. The
  // pool is freed with the last of its graphs.
  void (*capture_begin)(void* share_pool_of);
  void* (*capture_end)();
  void (*graph_replay)(void* graph);
  void (*graph_release)(void* graph);
};

// Which precision switch a float32 GEMM follows on a device with a faster reduced-precision
// mode (TF32 on CUDA; the CPU has none): `matmul`, every GEMM's by default (PyTorch's
// torch.backends.cuda.matmul switch, off), or `recurrent`, the LSTM's, which PyTorch runs in
// cuDNN under the convolutions' switch (torch.backends.cudnn.allow_tf32, on). Set for the
// calling thread by a GemmPrecisionScope; a backend's gemm reads gemm_precision().
enum class GemmPrecision { matmul, recurrent };
GemmPrecision gemm_precision();
class GemmPrecisionScope {
 public:
  explicit GemmPrecisionScope(GemmPrecision p);
  ~GemmPrecisionScope();
  GemmPrecisionScope(const GemmPrecisionScope&) = delete;
  GemmPrecisionScope& operator=(const GemmPrecisionScope&) = delete;

 private:
  GemmPrecision saved_;
};

void register_backend(Device device, const Backend* backend);
// The backend of a device; throws a clear error when that device is not compiled in or unusable.
const Backend& backend(Device device);
bool has_backend(Device device);
// The stub backend (every entry throws "unimplemented: NAME"): the porting template.
const Backend& stub_backend();

}  // namespace fpa
