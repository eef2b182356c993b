// learning_rules.h: the painting itself (FPA_REFERENCE.md sections 2.7 and 3): a sequence of
// per-step keys, values and learning rates written into a fast weight matrix W, one rank-1
// update per step. paint() runs it as one fused op where the backend has the primitive (the
// CPU does), else as composed ops; both are in ops/paint.cpp.
//
// Shapes: T steps, N = B*C matrices, S the image side. k, v (T, N, S); beta (T, N, 1) (one
// rate per matrix) or (T, N, S) (one per row: `vect_lr`); W (N, S, S) with row i = value
// index and column j = key index, so the update is the outer product v k^T.
//   delta: step 1 W = v k^T (no rate); then W += (beta * (v - W k)) k^T.
//   hebb:  W += v k^T every step, no rate (beta unused).
//   oja:   k arrives after its first softmax; from step 2, k = k - W^T v; then k = softmax(k)
//          (at step 1 too: the official lstm_oja_split_v2 applies softmax twice there);
//          W += (beta * v) k^T with the rate from step 1.
// With a start matrix w0 (v1's learned start image), step 1 is a regular step of the rule.
// The painter's front end may come along (PaintFrontEnd): k = softmax(k) and beta = sigmoid(beta)
// before the rule, fused into the painting.
// Not here: computing k, v, beta from the LSTM (fpa/fast_weight_painter.h).
#pragma once
#include <vector>

#include "ops/ops.h"

namespace fpa {

using LearningRule = PaintRule;  // delta, hebb, oja

// Every step of a painting: updates[t] = the rank-1 term added at step t as computed (for
// step 1 without w0, that is W_1 itself), weights[t] = W after step t. Each (N, S, S).
struct PaintTrace {
  std::vector<Tensor> updates;
  std::vector<Tensor> weights;
};

// W_T (N, S, S). beta may be undefined for hebb; w0 (N, S, S) or undefined. Fused when the
// device's backend supports paint_forward and paint_backward, else paint_composed (ops/ops.h).
Tensor paint(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0 = Tensor(),
             PaintFrontEnd fe = {});
// The same painting, keeping every step (the painting-steps view), with composed ops.
PaintTrace paint_trace(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta,
                       const Tensor& w0 = Tensor(), PaintFrontEnd fe = {});

// Named forms of the three rules.
inline Tensor delta_rule_paint(const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0 = Tensor()) {
  return paint(LearningRule::delta, k, v, beta, w0);
}
inline Tensor hebb_rule_paint(const Tensor& k, const Tensor& v) { return paint(LearningRule::hebb, k, v, Tensor()); }
inline Tensor oja_rule_paint(const Tensor& k, const Tensor& v, const Tensor& beta) {
  return paint(LearningRule::oja, k, v, beta);
}

}  // namespace fpa
