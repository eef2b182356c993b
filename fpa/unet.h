// unet.h: the U-Net refiner of the FPA U-Net model (FPA_REFERENCE.md section 4; the official
// code's `unet.Unet`, itself lucidrains' denoising-diffusion U-Net without time embedding).
//
// Parameter names follow the reference state dict under "G.u_net.": init_conv, downs.L.{0,1}
// (ResnetBlocks), downs.L.2.fn.{fn,norm} (Residual(PreNorm(LinearAttention))), downs.L.3
// (Downsample conv, absent on the last level), ups.* (mirrored, ConvTranspose upsample),
// mid_block1, mid_attn.fn.{fn,norm} (full Attention), mid_block2, final_res_block,
// final_conv. Registration order equals PyTorch's: downs and ups come before the middle.
// Everything is composed from differentiable ops, so second-order gradients come for free.
// Not here: the FPA painter in front of it (fpa/unet_painter.h).
#pragma once
#include <memory>
#include <vector>

#include "nn/blocks.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace fpa {
namespace unet {

// Conv3x3 (pad 1) -> GroupNorm(groups) -> SiLU.
class Block : public nn::Module {
 public:
  Block(int64_t dim, int64_t dim_out, int64_t groups);
  Tensor forward(const Tensor& x) const;  // (B, dim, H, W) -> (B, dim_out, H, W)
  nn::Conv2d* proj;
  nn::GroupNorm* norm;
};

// block2(block1(x)) + res_conv(x); res_conv is a 1x1 conv when dim != dim_out, else identity.
class ResnetBlock : public nn::Module {
 public:
  ResnetBlock(int64_t dim, int64_t dim_out, int64_t groups);
  Tensor forward(const Tensor& x) const;
  Block* block1;
  Block* block2;
  nn::Conv2d* res_conv = nullptr;  // null: identity
};

// Linear attention: heads x dim_head; q softmax over the head's features, k softmax over
// positions, q scaled by dim_head^-0.5; out = (k v^T)^T q per head; to_out = Conv1x1 then
// LayerNorm (names to_out.0, to_out.1).
class LinearAttention : public nn::Module {
 public:
  explicit LinearAttention(int64_t dim, int64_t heads = 4, int64_t dim_head = 32);
  Tensor forward(const Tensor& x) const;  // (B, dim, H, W) -> same
  int64_t heads, dim_head;
  nn::Conv2d* to_qkv;    // (3 heads dim_head, dim, 1, 1), no bias
  nn::Conv2d* to_out_conv;
  nn::ChanNorm* to_out_norm;
};

// Full softmax attention over all positions (the middle of the U-Net); to_out = Conv1x1.
class Attention : public nn::Module {
 public:
  explicit Attention(int64_t dim, int64_t heads = 4, int64_t dim_head = 32);
  Tensor forward(const Tensor& x) const;  // (B, dim, H, W) -> same
  int64_t heads, dim_head;
  nn::Conv2d* to_qkv;
  nn::Conv2d* to_out;
};

// x + fn(norm(x)): the official Residual(PreNorm(dim, fn)) (nn/blocks.h), names fn.fn.* and fn.norm.*.
using LinearAttentionStage = nn::Residual<nn::PreNorm<LinearAttention>>;
using AttentionStage = nn::Residual<nn::PreNorm<Attention>>;

}  // namespace unet

class UNet : public nn::Module {
 public:
  // dim: channels of the first level (the official code uses the image side); each level
  // multiplies it by dim_mults[i]; channels: image channels in and out.
  UNet(int64_t dim, const std::vector<int64_t>& dim_mults, int64_t channels, int64_t groups = 8);
  Tensor forward(const Tensor& x) const;  // (B, channels, S, S) -> (B, channels, S, S)

  // One resolution level: downs.L or ups.L.
  struct Level {
    unet::ResnetBlock* block1;
    unet::ResnetBlock* block2;
    unet::LinearAttentionStage* attn;
    nn::Conv2d* downsample = nullptr;        // downs, absent on the last level
    nn::ConvTranspose2d* upsample = nullptr;  // ups, absent on the last level
  };
  nn::Conv2d* init_conv;
  std::vector<Level> downs, ups;
  unet::ResnetBlock* mid_block1;
  unet::AttentionStage* mid_attn;
  unet::ResnetBlock* mid_block2;
  unet::ResnetBlock* final_res_block;
  nn::Conv2d* final_conv;
};

}  // namespace fpa
