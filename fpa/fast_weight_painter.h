// fast_weight_painter.h: FastWeightPainter, the FPA generators of the paper's code
// (FPA_REFERENCE.md sections 2-3): an LSTM turns the latent z into per-step keys, values and
// learning rates, and a learning rule paints them into one S x S matrix per channel.
//
// Models (GeneratorConfig::model), parameter names as the official state dict (without "G."):
//   v2   lstm_delta_split_v2: latent_to_init -> (h0, c0); input_generator, tanh,
//        per_time_linear_input -> LSTM inputs; decoder_rnn; kvb_net; delta rule.
//   unet the same painter (the U-Net refiner behind it lives in fpa/unet*.h).
//   oja  lstm_oja_split_v2 as the official code has it: the v2 front end WITHOUT
//        latent_to_init (the LSTM starts from zeros); Oja's rule.
//   v1   lstm_delta: z itself is the LSTM input at every step; latent_to_init (Kaiming);
//        optional learned start image `learned_init` (C, S, S); delta rule.
//   hebb lstm_sum as the official code has it: the v1 front end, head `kv_net` (C*2S
//        outputs, no rates, default Linear init), no key softmax, W += v k^T.
// Options: use_pos_enc (`decoder_time_enc`, (T, I) for the v2 front end, (T, L) for v1/hebb,
// added to the LSTM input), val_tanh (not for hebb), vect_lr, no_sigmoid_lr, wide_out_dim
// (`wide_net.0` Linear + ReLU before the head).
// Images: row i = value index, column j = key index.
#pragma once
#include <memory>

#include "fpa/config.h"
#include "fpa/learning_rules.h"
#include "nn/layers.h"
#include "nn/lstm.h"
#include "nn/module.h"

namespace fpa {

// The painting-steps view: each (T, B, C, S, S), tanh(x * n / ||x||) with n = ||W_T|| over the
// whole batch tensor; updates: x = the step's rank-1 update, images: x = W_t. Not clamped.
struct PaintingSteps {
  Tensor updates;
  Tensor images;
};

class FastWeightPainter : public nn::Module {
 public:
  explicit FastWeightPainter(const GeneratorConfig& cfg);

  // z (B, L) -> W_T (B, C, S, S), before tanh.
  Tensor paint(const Tensor& z) const;
  // tanh(paint(z)).
  Tensor forward(const Tensor& z) const;
  PaintingSteps forward_with_steps(const Tensor& z) const;

  const GeneratorConfig& config() const { return cfg_; }
  LearningRule rule() const { return rule_; }

  // Parameters and children (null / undefined when the model has none).
  Tensor decoder_time_enc;  // (T, I) or (T, L)
  Tensor learned_init;      // (C, S, S), v1 with learned_w0
  nn::Linear* latent_to_init = nullptr;          // L -> 2*layers*H
  nn::Linear* input_generator = nullptr;         // L -> m*T (v2 front end)
  nn::Linear* per_time_linear_input = nullptr;   // m -> I (v2 front end)
  nn::LSTM* decoder_rnn = nullptr;
  nn::Linear* wide_linear = nullptr;             // "wide_net.0": H -> wide_out_dim
  nn::Linear* head = nullptr;                    // "kvb_net" (C*(2S + r)) or "kv_net" (hebb, C*2S)

 private:
  struct Painting {
    Tensor k, v, beta, w0;  // (T, N, S), (T, N, S), (T, N, r) or undefined, (N, S, S) or undefined
  };
  Painting prepare(const Tensor& z) const;

  GeneratorConfig cfg_;
  LearningRule rule_ = LearningRule::delta;
  bool v2_front_ = true, has_init_ = true, use_softmax_ = true;
  int64_t lr_dim_ = 1;
};

}  // namespace fpa
