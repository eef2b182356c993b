// learning_rules.cpp: the delta, Hebbian and Oja paintings as a loop of composed ops.
#include "fpa/learning_rules.h"

#include "autograd/error.h"

namespace fpa {
namespace {

void check_args(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0) {
  check_defined("paint", k, "keys");
  check_defined("paint", v, "values");
  FPA_CHECK(k.ndim() == 3 && k.dim(0) >= 1, "paint: keys must be (T, N, S) with T >= 1, got ", k.shape());
  FPA_CHECK(v.shape() == k.shape(), "paint: values ", v.shape(), " differ from keys ", k.shape());
  check_same_kind("paint", k, v);
  const int64_t T = k.dim(0), N = k.dim(1), S = k.dim(2);
  if (rule != LearningRule::hebb) {
    check_defined("paint", beta, "learning rates");
    FPA_CHECK(beta.ndim() == 3 && beta.dim(0) == T && beta.dim(1) == N && (beta.dim(2) == 1 || beta.dim(2) == S),
              "paint: learning rates must be (", T, ", ", N, ", 1) or (", T, ", ", N, ", ", S, "), got ", beta.shape());
    check_same_kind("paint", k, beta);
  }
  if (w0.defined()) {
    FPA_CHECK(w0.shape() == Shape({N, S, S}), "paint: start matrix must be (", N, ", ", S, ", ", S, "), got ",
              w0.shape());
    check_same_kind("paint", k, w0);
  }
}

// Step t of a (T, N, X) sequence as a column (N, X, 1).
Tensor column(const Tensor& seq, int64_t t) {
  return reshape(slice(seq, 0, t, t + 1), {seq.dim(1), seq.dim(2), 1});
}

Tensor run(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0,
           PaintTrace* trace) {
  check_args(rule, k, v, beta, w0);
  const int64_t T = k.dim(0), N = k.dim(1), S = k.dim(2);
  Tensor W = w0;  // (N, S, S), undefined until the first step
  if (trace) trace->updates.reserve(T), trace->weights.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = column(k, t), vt = column(v, t);  // (N, S, 1)
    Tensor bt = rule == LearningRule::hebb ? Tensor() : column(beta, t);  // (N, 1 or S, 1)
    switch (rule) {
      case LearningRule::delta:
        if (W.defined()) vt = bt * (vt - matmul(W, kt));  // beta (v - W k)
        break;
      case LearningRule::hebb:
        break;
      case LearningRule::oja:
        if (W.defined()) kt = kt - matmul_t(W, vt, true, false);  // k - W^T v
        kt = reshape(softmax(reshape(kt, {N, S}), -1), {N, S, 1});
        vt = bt * vt;
        break;
    }
    Tensor x = matmul_t(vt, kt, false, true);  // (N, S, 1) (N, S, 1)^T -> (N, S, S): v k^T
    W = W.defined() ? W + x : x;
    if (trace) trace->updates.push_back(x), trace->weights.push_back(W);
  }
  return W;
}

}  // namespace

Tensor paint(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0) {
  return run(rule, k, v, beta, w0, nullptr);
}

PaintTrace paint_trace(LearningRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0) {
  PaintTrace tr;
  run(rule, k, v, beta, w0, &tr);
  return tr;
}

}  // namespace fpa
