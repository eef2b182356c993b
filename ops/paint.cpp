// paint.cpp: the fast weight painting (FPA_REFERENCE.md 2.7 and 3) in two forms.
//
// paint_fused is one node over the backend's paint_forward / paint_backward: the forward keeps
// nothing but its inputs, the backward repaints what it needs (ops/backend/cpu/cpu_paint.cpp says
// how). paint_composed is its twin, the same painting as a loop of composed ops (about 5 nodes and
// one W_t kept per step): the tests compare the two, paint_trace uses it for the per-step pictures,
// and the fused backward falls back to it when the gradient itself is being recorded (create_graph,
// as for a second derivative): it then returns the gradient of paint_composed, built with
// grad(create_graph), so second-order gradients stay exact.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("paint", {"paint_fused", true});

namespace {

void check_args(PaintRule rule, const Tensor& k, const Tensor& v, const Tensor& beta, const Tensor& w0) {
  check_defined("paint", k, "keys");
  check_defined("paint", v, "values");
  FPA_CHECK(k.ndim() == 3 && k.dim(0) >= 1, "paint: keys must be (T, N, S) with T >= 1, got ", k.shape());
  FPA_CHECK(v.shape() == k.shape(), "paint: values ", v.shape(), " differ from keys ", k.shape());
  check_same_kind("paint", k, v);
  const int64_t T = k.dim(0), N = k.dim(1), S = k.dim(2);
  if (rule != PaintRule::hebb) {
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
Tensor column(const Tensor& seq, int64_t t) { return reshape(slice(seq, 0, t, t + 1), {seq.dim(1), seq.dim(2), 1}); }

const void* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }
void* data_or_null(Tensor& t) { return t.defined() ? t.data() : nullptr; }

}  // namespace

Tensor paint_fused(PaintRule rule, const Tensor& k, const Tensor& v, const Tensor& beta_in, const Tensor& w0,
                   PaintFrontEnd fe) {
  check_args(rule, k, v, beta_in, w0);
  const Tensor beta = rule == PaintRule::hebb ? Tensor() : beta_in;  // (T, N, 1 or S)
  const int64_t T = k.dim(0), N = k.dim(1), S = k.dim(2);
  const PaintGeom geom{rule, T, N, S, beta.defined() ? beta.dim(2) : 1, fe.key_softmax, fe.rate_sigmoid};
  Tensor W = empty({N, S, S}, k.dtype(), k.device());
  backend(k.device()).paint_forward(k.dtype(), geom, k.data(), v.data(), data_or_null(beta), data_or_null(w0),
                                    W.data());
  return record("paint_fused", W, {k, v, beta, w0},
                [rule, fe, geom, k, v, beta, w0](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
                  if (grad_enabled()) {
                    auto twin = [=](const std::vector<Tensor>& x) {
                      return paint_composed(rule, x[0], x[1], x[2], x[3], fe);
                    };
                    return composed_twin_gradients(twin, {k, v, beta, w0}, g, needs);
                  }
                  Tensor dk = empty(k.shape(), k.dtype(), k.device()), dv = empty(v.shape(), v.dtype(), v.device());
                  Tensor dbeta = needs[2] ? empty(beta.shape(), beta.dtype(), beta.device()) : Tensor();
                  Tensor dw0 = needs[3] ? empty(w0.shape(), w0.dtype(), w0.device()) : Tensor();
                  backend(k.device()).paint_backward(k.dtype(), geom, k.data(), v.data(), data_or_null(beta),
                                                     data_or_null(w0), g.data(), dk.data(), dv.data(),
                                                     data_or_null(dbeta), data_or_null(dw0));
                  return std::vector<Tensor>{needs[0] ? dk : Tensor(), needs[1] ? dv : Tensor(), dbeta, dw0};
                });
}

Tensor paint_composed(PaintRule rule, const Tensor& k_in, const Tensor& v, const Tensor& beta_in, const Tensor& w0,
                      PaintFrontEnd fe, std::vector<Tensor>* updates, std::vector<Tensor>* weights) {
  check_args(rule, k_in, v, beta_in, w0);
  const int64_t T = k_in.dim(0), N = k_in.dim(1), S = k_in.dim(2);
  const Tensor k = fe.key_softmax ? softmax(k_in, -1) : k_in;  // (T, N, S)
  const Tensor beta = rule == PaintRule::hebb ? Tensor() : fe.rate_sigmoid ? sigmoid(beta_in) : beta_in;
  Tensor W = w0;  // (N, S, S), undefined until the first step
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = column(k, t), vt = column(v, t);                        // (N, S, 1)
    Tensor bt = rule == PaintRule::hebb ? Tensor() : column(beta, t);  // (N, 1 or S, 1)
    switch (rule) {
      case PaintRule::delta:
        if (W.defined()) vt = bt * (vt - matmul(W, kt));  // beta (v - W k); step 1 without w0: v
        break;
      case PaintRule::hebb:
        break;
      case PaintRule::oja:
        if (W.defined()) kt = kt - matmul_t(W, vt, true, false);  // k - W^T v
        kt = reshape(softmax(reshape(kt, {N, S}), -1), {N, S, 1});
        vt = bt * vt;
        break;
    }
    Tensor x = matmul_t(vt, kt, false, true);  // (N, S, 1) (N, S, 1)^T -> (N, S, S): v k^T
    W = W.defined() ? W + x : x;
    if (updates) updates->push_back(x);
    if (weights) weights->push_back(W);
  }
  return W;
}

}  // namespace fpa
