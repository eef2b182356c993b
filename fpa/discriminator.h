// discriminator.h: the lightweight-GAN discriminator of the paper's code
// (FPA_REFERENCE.md section 5; the official painter.Discriminator with Blur = identity).
//
// Parameter names equal the reference state dict without the "D." prefix:
//   residual_layers.L.0.branches.{0.1, 0.3, 1.2}.*  the down blocks (SumBranches), side / 2 each
//   residual_layers.L.1.{fn,norm}.*                  PreNorm(LinearAttention), applied BEFORE
//                                                    block L when its input side is in attn_res_layers
//   to_logits.{1,3}.* (output 1) or to_logits.{0,2}.* (output 5)
//   to_shape_disc_out.{0,1,2,3,5}.*                  the head on the input resized to 32x32
//   decoder1.layers.{0..3}.1.*                       the aux reconstruction from the 8x8 features
// Images go in as given (the official code does not rescale: reals in [0, 1], fakes tanh).
// Not here: the losses and the gradient penalty (fpa/gan_losses.h), augmentation, the
// non-residual stem of the official code for sides > 256 (the config caps the side at 256).
#pragma once
#include <memory>
#include <vector>

#include "autograd/philox.h"
#include "fpa/config.h"
#include "fpa/disc_attention.h"
#include "nn/module.h"

namespace fpa {

struct DiscOutput {
  Tensor logits;    // (B, 1), or (B, 25) with output_size 5 (the 5x5 map flattened)
  Tensor logits32;  // (B, 1, 1, 1), from the 32x32 head
  Tensor aux_loss;  // scalar MSE of the reconstruction; undefined unless calc_aux_loss
};

class Discriminator : public nn::Module {
 public:
  // Weights of every conv drawn Kaiming normal (fan_in, gain sqrt 2) from `gen` (the default
  // generator when null); biases keep PyTorch's default U(+-1/sqrt(fan_in)). Every
  // LinearAttention has config.attn_heads x config.attn_dim_head (officially 8 x 64).
  explicit Discriminator(const DiscriminatorConfig& config, Philox* gen = nullptr);

  // images (B, C, S, S); calc_aux_loss adds the decoder1 reconstruction loss (real images).
  DiscOutput forward(const Tensor& images, bool calc_aux_loss) const;
  // D on fakes and reals of one shape at once, as one batch (2B): the same numbers as
  // forward(fake, false) and forward(real, true) (no layer mixes samples; sums over the batch
  // in the weight gradients may round differently), with half the kernel launches. The reals'
  // output has the aux loss; the gradients reach `fake` and `real` as from two calls.
  struct Pair {
    DiscOutput fake, real;
  };
  Pair forward_pair(const Tensor& fake, const Tensor& real) const;

  const DiscriminatorConfig& config() const { return cfg_; }
  // Channels after each down block's input, input first: {C, 128, 256, 512} at S = 64.
  const std::vector<int64_t>& features() const { return features_; }

 private:
  void check_images(const Tensor& images, const char* what) const;
  // The levels: images (B, C, S, S) -> the last block's features (B, fmap, 8, 8).
  Tensor trunk(const Tensor& images) const;
  Tensor logits(const Tensor& features) const;  // (B, 1) or (B, 25)
  Tensor logits32(const Tensor& images) const;  // (B, 1, 1, 1), the head on the images at 32x32
  // The decoder1 reconstruction MSE of `images` from their trunk features.
  Tensor aux_loss(const Tensor& features, const Tensor& images) const;

  struct Level {
    disc::SumBranches* net;
    disc::PreNormAttention* attn;  // null when the level has no attention
  };
  DiscriminatorConfig cfg_;
  std::vector<int64_t> features_;
  std::vector<Level> levels_;
  disc::Sequential* to_logits_;
  disc::Sequential* to_shape_disc_out_;
  std::vector<disc::Sequential*> decoder_layers_;
};

}  // namespace fpa
