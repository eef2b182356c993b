// lstm.cpp: construction (PyTorch's init) and the forward of nn::LSTM: per layer one GEMM for
// the input projections of all steps, then the fused recurrence (ops/lstm_recurrence.cpp).
// Their forward GEMMs run as GemmPrecision::recurrent (ops/backend/backend.h): TF32 on CUDA unless
// switched off, as PyTorch's cuDNN LSTM.
#include "nn/lstm.h"

#include <cmath>
#include <string>

#include "autograd/error.h"
#include "nn/init.h"
#include "ops/backend/backend.h"

namespace fpa::nn {

LSTM::LSTM(int64_t input, int64_t hidden, int64_t layers)
    : input_size(input), hidden_size(hidden), num_layers(layers) {
  FPA_CHECK(input > 0 && hidden > 0 && layers > 0, "LSTM: sizes must be positive, got input ", input,
            " hidden ", hidden, " layers ", layers);
  double bound = 1.0 / std::sqrt(double(hidden));
  weight_ih.resize(layers), weight_hh.resize(layers), bias_ih.resize(layers), bias_hh.resize(layers);
  for (int64_t k = 0; k < layers; ++k) {
    int64_t in = k == 0 ? input : hidden;
    std::string s = "_l" + std::to_string(k);
    weight_ih[k] = init_uniform({4 * hidden, in}, bound);
    weight_hh[k] = init_uniform({4 * hidden, hidden}, bound);
    bias_ih[k] = init_uniform({4 * hidden}, bound);
    bias_hh[k] = init_uniform({4 * hidden}, bound);
    register_parameter("weight_ih" + s, &weight_ih[k]);
    register_parameter("weight_hh" + s, &weight_hh[k]);
    register_parameter("bias_ih" + s, &bias_ih[k]);
    register_parameter("bias_hh" + s, &bias_hh[k]);
  }
}

// The initial state of one layer: (B, H) from (layers, B, H), or zeros.
static Tensor layer_state(const Tensor& s0, int64_t k, int64_t B, int64_t H, const Tensor& like) {
  if (!s0.defined()) return zeros({B, H}, like.dtype(), like.device());
  return reshape(slice(s0, 0, k, k + 1), {B, H});
}

LSTMOutput LSTM::forward(const Tensor& x, const Tensor& h0, const Tensor& c0) const {
  check_defined("LSTM", x, "input");
  FPA_CHECK(x.ndim() == 3 && x.dim(2) == input_size, "LSTM: expects input (T, B, ", input_size, "), got ",
            x.shape());
  const int64_t T = x.dim(0), B = x.dim(1), H = hidden_size;
  for (const Tensor* s : {&h0, &c0})
    FPA_CHECK(!s->defined() || s->shape() == Shape({num_layers, B, H}), "LSTM: initial state must be (",
              num_layers, ", ", B, ", ", H, "), got ", s->shape());
  LSTMOutput r;
  std::vector<Tensor> h_last, c_last;
  Tensor input = x;  // (T, B, in) of the current layer
  for (int64_t k = 0; k < num_layers; ++k) {
    // All steps' input projections and both biases at once: (T*B, in) W_ih^T + b_ih + b_hh -> (T, B, 4H).
    Tensor xw;
    {
      GemmPrecisionScope recurrent(GemmPrecision::recurrent);  // its forward GEMM, as cuDNN's (its backward: matmul)
      xw = reshape(linear(reshape(input, {T * B, input.dim(2)}), weight_ih[k], bias_ih[k] + bias_hh[k]),
                   {T, B, 4 * H});
    }
    Tensor hc = lstm_recurrence(xw, weight_hh[k], layer_state(h0, k, B, H, x), layer_state(c0, k, B, H, x));
    input = slice(hc, 0, 0, T);  // (T, B, H): h_1..h_T
    h_last.push_back(slice(hc, 0, T - 1, T));
    c_last.push_back(slice(hc, 0, T, T + 1));
  }
  r.output = input;
  r.h_n = concat(h_last, 0);
  r.c_n = concat(c_last, 0);
  return r;
}

}  // namespace fpa::nn
