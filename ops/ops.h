// ops.h: every differentiable op of the library, grouped by family (one .cpp per family,
// forward and backward side by side). Axes may be negative. Binary ops broadcast (numpy
// rules); everything else requires exact shapes and throws an fpa::Error naming the op and
// the shapes otherwise. All ops run on any registered backend, in float32 and float64.
#pragma once
#include <functional>
#include <utility>
#include <vector>

#include "autograd/engine.h"
#include "autograd/tensor.h"
#include "ops/backend/backend.h"

namespace fpa {

using Axes = std::vector<int>;

// --- elementwise.cpp: binary (broadcasting) and scalar arithmetic
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor neg(const Tensor& a);
// Sums a broadcast gradient back down to `shape` (the adjoint of expand).
Tensor sum_to(const Tensor& a, const Shape& shape);

// --- unary.cpp: pointwise math
Tensor pow(const Tensor& a, double exponent);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor abs(const Tensor& a);
Tensor square(const Tensor& a);
Tensor clamp(const Tensor& a, double lo, double hi);
Tensor erf(const Tensor& a);

// --- activation.cpp
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor leaky_relu(const Tensor& a, double negative_slope);
Tensor silu(const Tensor& a);
Tensor gelu(const Tensor& a);  // erf form
Tensor glu(const Tensor& a, int axis);  // first half * sigmoid(second half)

// --- compare.cpp: masks (not differentiable; 1 where true, 0 elsewhere) and selection
Tensor gt(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& mask, const Tensor& a, const Tensor& b);  // mask ? a : b, broadcasting

// --- reduce.cpp: over `axes` (empty: all), keepdim keeps them as size 1
Tensor sum(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor max(const Tensor& a, const Axes& axes = {}, bool keepdim = false);
Tensor var(const Tensor& a, const Axes& axes = {}, bool keepdim = false);  // biased
Tensor norm(const Tensor& a, const Axes& axes = {}, bool keepdim = false);  // p = 2

// --- softmax.cpp
Tensor softmax(const Tensor& a, int axis);

// --- matmul.cpp
// (..., M, K) @ (..., K, N) with equal or broadcast (size 1 / missing) batch dims; 1-d is not promoted.
Tensor matmul(const Tensor& a, const Tensor& b);
// matmul with the last two dims of a and/or b transposed, without copying them.
Tensor matmul_t(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b);
// x (..., in) W^T + b, W (out, in), b (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// --- shape.cpp: views and copies
Tensor reshape(const Tensor& a, const Shape& shape);  // one dim may be -1 via reshape_infer
Tensor reshape(const Tensor& a, const std::vector<int64_t>& dims);  // may contain one -1
inline Tensor reshape(const Tensor& a, std::initializer_list<int64_t> dims) {
  return reshape(a, std::vector<int64_t>(dims));
}
Tensor permute(const Tensor& a, const std::vector<int>& order);
Tensor transpose(const Tensor& a, int axis0, int axis1);
Tensor expand(const Tensor& a, const Shape& shape);  // size-1 or missing leading dims only
Tensor flip(const Tensor& a, const Axes& axes);

// --- slice.cpp
Tensor slice(const Tensor& a, int axis, int64_t start, int64_t end);  // [start, end)
std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int axis);
std::vector<Tensor> chunk(const Tensor& a, int chunks, int axis);
Tensor concat(const std::vector<Tensor>& parts, int axis);
// pads[i] = (before, after) for dimension i counted from the LAST dimension, as F.pad.
Tensor pad(const Tensor& a, const std::vector<std::pair<int64_t, int64_t>>& pads, double value = 0.0);

// --- conv.cpp: NCHW, weight (Cout, Cin/groups, KH, KW); transposed weight (Cin, Cout/groups, KH, KW)
struct Conv2dOptions {
  int64_t stride = 1, padding = 0, groups = 1;
  int64_t padding_w = -1;  // >= 0: the columns' padding; `padding` then pads the rows only
  int64_t pad_h() const { return padding; }
  int64_t pad_w() const { return padding_w >= 0 ? padding_w : padding; }
};
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Conv2dOptions o = {});
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        Conv2dOptions o = {}, int64_t output_padding = 0);
// d conv2d / d weight: the weight gradient for input x and output gradient dy (a differentiable op).
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const Shape& weight_shape, Conv2dOptions o);

// --- unfold.cpp: im2col / col2im, x (N, C, H, W) <-> (N, C*k*k, L)
Tensor unfold(const Tensor& x, int64_t kernel, int64_t stride = 1, int64_t padding = 0);
Tensor fold(const Tensor& cols, int64_t H, int64_t W, int64_t kernel, int64_t stride = 1, int64_t padding = 0);

// --- checkpoint.cpp: fn(inputs) as one node that keeps none of fn's intermediates: the
// backward runs fn again (recorded) and differentiates it, to any order. `params`: the
// slots of the tensors fn reads besides its inputs (a module's parameters), so their gradients
// flow too; the recomputation sees them holding what they held in the forward. A recorded
// gradient (create_graph) keeps no graph of fn either: its own backward rebuilds it.
Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                  const std::vector<Tensor*>& params);
// Whether a checkpoint is now re-running its fn to record fn's gradient, the graph that the
// second order then differentiates (the gradient penalty's): where checkpoints nested in fn
// split that graph, which is fn's forward and backward, into pieces rebuilt one at a time.
// In a first-order recompute (false) they would only add work.
bool recomputing_for_recorded_gradient();

// --- neighbourhood.cpp: kernel x kernel neighbourhoods of (P, d, H, W) maps, J = kernel^2
// neighbours n_j = n + off_j (zero outside); weights are (P, J, H, W). Closed under
// differentiation (each one's gradients are these ops), never materialising unfolded maps.
Tensor neighbour_dot(const Tensor& a, const Tensor& b, int64_t kernel);  // [j, n] = sum_c a[c, n] b[c, n_j]
Tensor neighbour_sum(const Tensor& w, const Tensor& x, int64_t kernel);  // [c, n] = sum_j w[j, n] x[c, n_j]
Tensor neighbour_transpose(const Tensor& w, int64_t kernel);             // [j, n] = w[J-1-j, n_j]

// --- local_attention.cpp: each position of (P, d, H, W) maps attends over its kernel x kernel
// neighbourhood (zero padding): out[c, n] = sum_j softmax_j(sum_c' q[c', n] k[c', n_j]) v[c, n_j].
// Fused forward and backward; `local_attention_composed` is its twin from neighbour_dot,
// softmax and neighbour_sum (what the fused backward differentiates when a graph of the
// gradient is built).
Tensor local_attention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel);
Tensor local_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v, int64_t kernel);

// --- pool.cpp
// stride -1: the kernel. count_include_pad false divides by the input entries a window covers
// (Inception's pools), true by kernel*kernel (PyTorch's default).
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0,
                  bool count_include_pad = true);
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);
// Padding is never chosen; the gradient goes to each window's first largest entry (its last NaN).
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride = -1, int64_t padding = 0);  // stride -1: kernel

// --- interpolate.cpp: nearest, PyTorch's legacy rule src = floor(dst * in / out)
Tensor interpolate_nearest(const Tensor& x, int64_t out_h, int64_t out_w);
Tensor upsample_nearest(const Tensor& x, int64_t factor);
// Bilinear, PyTorch's rule without aligned corners (align_corners=False, no antialiasing).
Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w);

// --- norm.cpp
// x (N, C, ...) normalised over (C/groups, ...) per group; weight, bias (C) or undefined.
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// --- channel_norm.cpp: the discriminator's ChanNorm, x (N, C, H, W) normalised over C at each
// position (biased variance), then * g + b, both (1, C, 1, 1). channel_norm is fused (one
// node, Backend::channel_norm_*); channel_norm_composed is its twin from reductions.
Tensor channel_norm(const Tensor& x, const Tensor& g, const Tensor& b, double eps);
Tensor channel_norm_composed(const Tensor& x, const Tensor& g, const Tensor& b, double eps);

// --- loss.cpp
Tensor mse_loss(const Tensor& input, const Tensor& target);  // mean of squared differences
Tensor hinge_real(const Tensor& logits);  // mean(relu(1 + logits))
Tensor hinge_fake(const Tensor& logits);  // mean(relu(1 - logits))

// --- paint.cpp: the fast weight painting (FPA_REFERENCE.md 2.7 and 3; the rules: PaintRule and
// Backend::paint_forward in ops/backend/backend.h). k, v (T, N, S); beta (T, N, 1) or (T, N, S),
// unused (may be undefined) for hebb; w0 (N, S, S) or undefined (no start matrix) -> W_T (N, S, S).
struct PaintFrontEnd {
  bool key_softmax = false;   // k = softmax(k, -1) before the rule
  bool rate_sigmoid = false;  // beta = sigmoid(beta) before the rule
};
// One node; its backward repaints (Backend::paint_backward), or differentiates paint_composed
// when the gradient is being recorded (second order).
Tensor paint_fused(PaintRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0 = Tensor(),
                   PaintFrontEnd fe = {});
// The same painting as a loop of composed ops (the twin). updates / weights, when given, get
// every step's rank-1 term (at step 1 without w0, W_1 itself) and W_t, each (N, S, S).
Tensor paint_composed(PaintRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0 = Tensor(),
                      PaintFrontEnd fe = {}, std::vector<Tensor>* updates = nullptr,
                      std::vector<Tensor>* weights = nullptr);

// --- lstm_recurrence.cpp: one LSTM layer's recurrence (PyTorch's gates i, f, g, o) from the
// input projections of all steps xw (T, B, 4H) = x W_ih^T + b_ih + b_hh, W_hh (4H, H) and the
// initial states h0, c0 (B, H) -> (T + 1, B, H): rows 0..T-1 the hidden states h_1..h_T, row T
// the last cell state c_T. One node over Backend::gemm and the fused gate kernels (a backend
// without them gets the composed twin); its backward differentiates the twin when the gradient
// is being recorded (second order).
Tensor lstm_recurrence(const Tensor& xw, const Tensor& w_hh, const Tensor& h0, const Tensor& c0);
// The same recurrence as a loop of composed ops (the twin).
Tensor lstm_recurrence_composed(const Tensor& xw, const Tensor& w_hh, const Tensor& h0, const Tensor& c0);

// Operators for readable formulas.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add_scalar(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add_scalar(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add_scalar(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return add_scalar(neg(a), s); }
inline Tensor operator*(const Tensor& a, double s) { return mul_scalar(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul_scalar(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul_scalar(a, 1.0 / s); }

}  // namespace fpa
