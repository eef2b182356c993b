// lstm_recurrence.cpp: the recurrent part of one LSTM layer (nn/lstm.cpp) in two forms. Given
// the input projections of all steps xw (T, B, 4H) = x W_ih^T + b_ih + b_hh (one GEMM, done by
// the caller), W_hh (4H, H) and the initial states h0, c0 (B, H), it returns one tensor
// (T + 1, B, H): rows 0..T-1 are h_1..h_T, row T is c_T (a node has one output).
//
// lstm_recurrence is one node: per step one GEMM h_{t-1} W_hh^T through Backend::gemm and one fused
// pass of gate math (Backend::lstm_gates_forward), which keeps the activations (T, B, 4H) and c_t
// (T, B, H) for the backward. The backward runs time in reverse: a fused gate-gradient pass
// (lstm_gates_backward) and a GEMM dgates_t W_hh for dh_{t-1} per step, then dW_hh = sum_t
// dgates_t^T h_{t-1} as two GEMMs over all steps (h0, then h_1..h_{T-1}, which the output holds
// contiguously). lstm_recurrence_composed is its twin, a loop of composed ops: the tests compare
// the two, backends without the fused primitives run it, and the fused backward falls back to
// differentiating it when the gradient itself is being recorded (create_graph). The GEMMs run as
// GemmPrecision::recurrent (ops/backend/backend.h: TF32 on CUDA unless switched off).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("lstm_recurrence", {"lstm_recurrence", true});

namespace {

void check_args(const char* op, const Tensor& xw, const Tensor& w_hh, const Tensor& h0, const Tensor& c0) {
  check_defined(op, xw, "input projections");
  check_defined(op, w_hh, "recurrent weight");
  check_defined(op, h0, "initial hidden state");
  check_defined(op, c0, "initial cell state");
  FPA_CHECK(w_hh.ndim() == 2 && w_hh.dim(0) == 4 * w_hh.dim(1) && w_hh.dim(1) >= 1, op,
            ": recurrent weight must be (4H, H), got ", w_hh.shape());
  const int64_t H = w_hh.dim(1);
  FPA_CHECK(xw.ndim() == 3 && xw.dim(0) >= 1 && xw.dim(2) == 4 * H, op, ": input projections must be (T, B, ",
            4 * H, ") with T >= 1, got ", xw.shape());
  for (const Tensor* s : {&h0, &c0})
    FPA_CHECK(s->shape() == Shape({xw.dim(1), H}), op, ": initial states must be (", xw.dim(1), ", ", H, "), got ",
              s->shape());
  for (const Tensor* x : {&w_hh, &h0, &c0}) check_same_kind(op, xw, *x);
}

// Element `offset` of a tensor's storage.
void* at(const Tensor& x, int64_t offset) { return static_cast<char*>(x.data()) + offset * dtype_size(x.dtype()); }

}  // namespace

Tensor lstm_recurrence(const Tensor& xw, const Tensor& w_hh, const Tensor& h0, const Tensor& c0) {
  check_args("lstm_recurrence", xw, w_hh, h0, c0);
  const Backend& b = backend(xw.device());
  if (!b.supports("lstm_gates_forward") || !b.supports("lstm_gates_backward"))
    return lstm_recurrence_composed(xw, w_hh, h0, c0);  // a backend without the fused kernels
  const DType dt = xw.dtype();
  const int64_t T = xw.dim(0), B = xw.dim(1), H = w_hh.dim(1), BH = B * H, G = 4 * H;
  Tensor gates = empty(xw.shape(), dt, xw.device());   // (T, B, 4H): preactivations, then activations
  Tensor cs = empty({T, B, H}, dt, xw.device());       // (T, B, H): c_1..c_T
  Tensor out = empty({T + 1, B, H}, dt, xw.device());  // (T + 1, B, H): h_1..h_T, c_T
  b.copy(gates.data(), xw.data(), xw.numel() * dtype_size(dt));
  GemmPrecisionScope recurrent(GemmPrecision::recurrent);
  for (int64_t t = 0; t < T; ++t) {
    const void* h_prev = t == 0 ? h0.data() : at(out, (t - 1) * BH);  // (B, H)
    const void* c_prev = t == 0 ? c0.data() : at(cs, (t - 1) * BH);   // (B, H)
    b.gemm(dt, false, true, B, G, H, 1.0, h_prev, H, 0, w_hh.data(), H, 0, 1.0, at(gates, t * B * G), G, 0, 1);
    b.lstm_gates_forward(dt, B, H, at(gates, t * B * G), c_prev, at(cs, t * BH), at(out, t * BH));
  }
  b.copy(at(out, T * BH), at(cs, (T - 1) * BH), BH * dtype_size(dt));
  return record(
      "lstm_recurrence", out, {xw, w_hh, h0, c0},
      [xw, w_hh, h0, c0, gates, cs, dt, T, B, H, BH, G](const Tensor& g, const Tensor& saved,
                                                         const std::vector<bool>& needs) -> std::vector<Tensor> {
        if (grad_enabled()) {
          auto twin = [](const std::vector<Tensor>& x) { return lstm_recurrence_composed(x[0], x[1], x[2], x[3]); };
          return composed_twin_gradients(twin, {xw, w_hh, h0, c0}, g, needs);
        }
        const Backend& b = backend(xw.device());  // g, saved: (T + 1, B, H)
        GemmPrecisionScope recurrent(GemmPrecision::recurrent);
        Tensor dxw = empty(xw.shape(), dt, xw.device());  // (T, B, 4H): the preactivations' gradients
        // (T, B, H): row t starts as dL/dh_t from the output and becomes the whole gradient of h_t
        // once step t + 1 adds dgates_{t+1} W_hh; (B, H) for c, and for h0 when wanted.
        Tensor dh = empty({T, B, H}, dt, xw.device()), dc = empty({B, H}, dt, xw.device()), dh0;
        b.copy(dh.data(), g.data(), T * BH * dtype_size(dt));
        b.copy(dc.data(), at(g, T * BH), BH * dtype_size(dt));
        if (needs[2]) dh0 = empty({B, H}, dt, xw.device());
        for (int64_t t = T - 1; t >= 0; --t) {
          const void* c_prev = t == 0 ? c0.data() : at(cs, (t - 1) * BH);
          b.lstm_gates_backward(dt, B, H, at(gates, t * B * G), c_prev, at(cs, t * BH), at(dh, t * BH), dc.data(),
                                at(dxw, t * B * G));
          if (t > 0)  // dh_{t-1} += dgates_t W_hh
            b.gemm(dt, false, false, B, H, G, 1.0, at(dxw, t * B * G), G, 0, w_hh.data(), H, 0, 1.0,
                   at(dh, (t - 1) * BH), H, 0, 1);
          else if (needs[2])  // h0 feeds no output: dh0 = dgates_0 W_hh
            b.gemm(dt, false, false, B, H, G, 1.0, dxw.data(), G, 0, w_hh.data(), H, 0, 0.0, dh0.data(), H, 0, 1);
        }
        Tensor dw;  // (4H, H) = dgates_1^T h0 + sum_{t>1} dgates_t^T h_{t-1}
        if (needs[1]) {
          dw = empty(w_hh.shape(), dt, xw.device());
          b.gemm(dt, true, false, G, H, B, 1.0, dxw.data(), G, 0, h0.data(), H, 0, 0.0, dw.data(), H, 0, 1);
          if (T > 1)
            b.gemm(dt, true, false, G, H, (T - 1) * B, 1.0, at(dxw, B * G), G, 0, saved.data(), H, 0, 1.0, dw.data(),
                   H, 0, 1);
        }
        return {needs[0] ? dxw : Tensor(), dw, dh0, needs[3] ? dc : Tensor()};
      },
      /*save_output=*/true);
}

Tensor lstm_recurrence_composed(const Tensor& xw, const Tensor& w_hh, const Tensor& h0, const Tensor& c0) {
  check_args("lstm_recurrence_composed", xw, w_hh, h0, c0);
  const int64_t T = xw.dim(0), B = xw.dim(1), H = w_hh.dim(1);
  GemmPrecisionScope recurrent(GemmPrecision::recurrent);  // the forward's GEMMs (its backward's: matmul)
  Tensor h = h0, c = c0;  // (B, H)
  std::vector<Tensor> rows;
  rows.reserve(T + 1);
  for (int64_t t = 0; t < T; ++t) {
    Tensor gates = reshape(slice(xw, 0, t, t + 1), {B, 4 * H}) + matmul_t(h, w_hh, false, true);  // (B, 4H)
    std::vector<Tensor> q = chunk(gates, 4, 1);  // i, f, g, o: each (B, H)
    c = sigmoid(q[1]) * c + sigmoid(q[0]) * tanh(q[2]);
    h = sigmoid(q[3]) * tanh(c);
    rows.push_back(reshape(h, {1, B, H}));
  }
  rows.push_back(reshape(c, {1, B, H}));
  return concat(rows, 0);  // (T + 1, B, H)
}

}  // namespace fpa
