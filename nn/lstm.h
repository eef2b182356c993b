// lstm.h: nn::LSTM, PyTorch's torch.nn.LSTM (sequence-first, no dropout, unidirectional)
// with its parameter names and layout: per layer k, weight_ih_l{k} (4H, in), weight_hh_l{k}
// (4H, H), bias_ih_l{k} (4H), bias_hh_l{k} (4H), the four gate blocks stacked in the order
// i, f, g, o; every tensor initialised U(-1/sqrt(H), 1/sqrt(H)).
//
// Per layer: c' = f*c + i*g, h' = o*tanh(c') with i, f, o = sigmoid(.), g = tanh(.) of
// x W_ih^T + b_ih + h W_hh^T + b_hh. The input projection of all T steps is one matmul over
// (T*B, in); the recurrence is one fused op, lstm_recurrence (per step a GEMM and one pass of
// gate math; second-order gradients through its composed twin).
#pragma once
#include <vector>

#include "nn/module.h"
#include "ops/ops.h"

namespace fpa::nn {

struct LSTMOutput {
  Tensor output;  // (T, B, H): the last layer's h at every step
  Tensor h_n;     // (layers, B, H): final hidden states
  Tensor c_n;     // (layers, B, H): final cell states
};

class LSTM : public Module {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1);

  // x (T, B, input); h0, c0 (layers, B, H) or undefined for zeros.
  LSTMOutput forward(const Tensor& x, const Tensor& h0 = Tensor(), const Tensor& c0 = Tensor()) const;

  int64_t input_size, hidden_size, num_layers;
  // Indexed by layer; sized once in the constructor (registered addresses stay valid).
  std::vector<Tensor> weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace fpa::nn
