// unet.cpp: the U-Net refiner's blocks and forward (FPA_REFERENCE.md section 4).
// Initialisation is PyTorch's default for every layer (the official code sets none).
#include "fpa/unet.h"

#include <cmath>

#include "autograd/error.h"

namespace fpa {
namespace unet {

Block::Block(int64_t dim, int64_t dim_out, int64_t groups) {
  proj = register_module("proj", std::make_shared<nn::Conv2d>(dim, dim_out, 3, Conv2dOptions{1, 1, 1}));
  norm = register_module("norm", std::make_shared<nn::GroupNorm>(groups, dim_out));
}

Tensor Block::forward(const Tensor& x) const { return silu(norm->forward(proj->forward(x))); }

ResnetBlock::ResnetBlock(int64_t dim, int64_t dim_out, int64_t groups) {
  block1 = register_module("block1", std::make_shared<Block>(dim, dim_out, groups));
  block2 = register_module("block2", std::make_shared<Block>(dim_out, dim_out, groups));
  if (dim != dim_out) res_conv = register_module("res_conv", std::make_shared<nn::Conv2d>(dim, dim_out, 1));
}

Tensor ResnetBlock::forward(const Tensor& x) const {
  Tensor h = block2->forward(block1->forward(x));
  return add(h, res_conv ? res_conv->forward(x) : x);
}

// (B, heads*d, H, W) -> (B, heads, d, H*W): the einops 'b (h c) x y -> b h c (x y)'.
static Tensor split_heads(const Tensor& t, int64_t heads) {
  return reshape(t, {t.dim(0), heads, t.dim(1) / heads, t.dim(2) * t.dim(3)});
}

LinearAttention::LinearAttention(int64_t dim, int64_t heads_, int64_t dim_head_) : heads(heads_), dim_head(dim_head_) {
  int64_t hidden = heads * dim_head;
  to_qkv = register_module("to_qkv", std::make_shared<nn::Conv2d>(dim, 3 * hidden, 1, Conv2dOptions{}, false));
  auto out = register_module("to_out", std::make_shared<nn::ModuleList>());
  to_out_conv = out->push_back(std::make_shared<nn::Conv2d>(hidden, dim, 1));
  to_out_norm = out->push_back(std::make_shared<nn::ChanNorm>(dim));
}

Tensor LinearAttention::forward(const Tensor& x) const {
  int64_t B = x.dim(0), H = x.dim(2), W = x.dim(3);
  std::vector<Tensor> qkv = chunk(to_qkv->forward(x), 3, 1);  // 3 x (B, heads*d, H, W)
  Tensor q = softmax(split_heads(qkv[0], heads), -2);         // (B, h, d, N), over features
  Tensor k = softmax(split_heads(qkv[1], heads), -1);         // over positions
  Tensor v = split_heads(qkv[2], heads);
  q = mul_scalar(q, 1.0 / std::sqrt(double(dim_head)));
  Tensor context = matmul_t(k, v, false, true);    // (B, h, d, e) = k v^T
  Tensor out = matmul_t(context, q, true, false);  // (B, h, e, N) = context^T q
  out = reshape(out, {B, heads * dim_head, H, W});
  return to_out_norm->forward(to_out_conv->forward(out));
}

Attention::Attention(int64_t dim, int64_t heads_, int64_t dim_head_) : heads(heads_), dim_head(dim_head_) {
  int64_t hidden = heads * dim_head;
  to_qkv = register_module("to_qkv", std::make_shared<nn::Conv2d>(dim, 3 * hidden, 1, Conv2dOptions{}, false));
  to_out = register_module("to_out", std::make_shared<nn::Conv2d>(hidden, dim, 1));
}

Tensor Attention::forward(const Tensor& x) const {
  int64_t B = x.dim(0), H = x.dim(2), W = x.dim(3);
  std::vector<Tensor> qkv = chunk(to_qkv->forward(x), 3, 1);
  Tensor q = mul_scalar(split_heads(qkv[0], heads), 1.0 / std::sqrt(double(dim_head)));  // (B, h, d, N)
  Tensor k = split_heads(qkv[1], heads);
  Tensor v = split_heads(qkv[2], heads);
  Tensor sim = matmul_t(q, k, true, false);  // (B, h, N_i, N_j) = q^T k
  // The official code subtracts the detached row max before its softmax; kept for parity.
  sim = sub(sim, max(sim, {-1}, true).detach());
  Tensor attn = softmax(sim, -1);
  Tensor out = matmul_t(v, attn, false, true);  // (B, h, d, N_i) = (attn v^T)^T
  return to_out->forward(reshape(out, {B, heads * dim_head, H, W}));
}

}  // namespace unet

UNet::UNet(int64_t dim, const std::vector<int64_t>& dim_mults, int64_t channels, int64_t groups) {
  FPA_CHECK(dim > 0 && !dim_mults.empty() && channels > 0, "UNet: bad sizes dim ", dim, ", ", dim_mults.size(),
            " levels, channels ", channels);
  using unet::ResnetBlock;
  init_conv = register_module("init_conv", std::make_shared<nn::Conv2d>(channels, dim, 7, Conv2dOptions{1, 3, 1}));

  std::vector<int64_t> dims = {dim};  // init_dim = dim
  for (int64_t m : dim_mults) dims.push_back(dim * m);
  size_t n = dim_mults.size();

  auto down_list = register_module("downs", std::make_shared<nn::ModuleList>());
  auto up_list = register_module("ups", std::make_shared<nn::ModuleList>());
  for (size_t i = 0; i < n; ++i) {
    int64_t din = dims[i], dout = dims[i + 1];
    auto lv = down_list->push_back(std::make_shared<nn::ModuleList>());
    Level L;
    L.block1 = lv->push_back(std::make_shared<ResnetBlock>(din, dout, groups));
    L.block2 = lv->push_back(std::make_shared<ResnetBlock>(dout, dout, groups));
    L.attn = lv->push_back(std::make_shared<unet::LinearAttentionStage>(
        std::make_shared<nn::PreNorm<unet::LinearAttention>>(dout, std::make_shared<unet::LinearAttention>(dout))));
    if (i + 1 < n) L.downsample = lv->push_back(std::make_shared<nn::Conv2d>(dout, dout, 4, Conv2dOptions{2, 1, 1}));
    downs.push_back(L);
  }

  int64_t mid = dims.back();
  mid_block1 = register_module("mid_block1", std::make_shared<ResnetBlock>(mid, mid, groups));
  mid_attn = register_module("mid_attn", std::make_shared<unet::AttentionStage>(
      std::make_shared<nn::PreNorm<unet::Attention>>(mid, std::make_shared<unet::Attention>(mid))));
  mid_block2 = register_module("mid_block2", std::make_shared<ResnetBlock>(mid, mid, groups));

  for (size_t j = 0; j < n; ++j) {
    size_t i = n - 1 - j;  // reversed(in_out)
    int64_t din = dims[i], dout = dims[i + 1];
    auto lv = up_list->push_back(std::make_shared<nn::ModuleList>());
    Level L;
    L.block1 = lv->push_back(std::make_shared<ResnetBlock>(2 * dout, din, groups));
    L.block2 = lv->push_back(std::make_shared<ResnetBlock>(din, din, groups));
    L.attn = lv->push_back(std::make_shared<unet::LinearAttentionStage>(
        std::make_shared<nn::PreNorm<unet::LinearAttention>>(din, std::make_shared<unet::LinearAttention>(din))));
    if (j + 1 < n)
      L.upsample = lv->push_back(std::make_shared<nn::ConvTranspose2d>(din, din, 4, Conv2dOptions{2, 1, 1}));
    ups.push_back(L);
  }

  final_res_block = register_module("final_res_block", std::make_shared<ResnetBlock>(2 * dim, dim, groups));
  final_conv = register_module("final_conv", std::make_shared<nn::Conv2d>(dim, channels, 1));
}

Tensor UNet::forward(const Tensor& input) const {
  Tensor x = init_conv->forward(input);  // (B, dim, S, S)
  Tensor r = x;
  std::vector<Tensor> skips;
  for (const Level& L : downs) {
    x = L.attn->forward(L.block2->forward(L.block1->forward(x)));
    skips.push_back(x);
    if (L.downsample) x = L.downsample->forward(x);  // side / 2
  }
  x = mid_block2->forward(mid_attn->forward(mid_block1->forward(x)));
  for (const Level& L : ups) {
    x = concat({x, skips.back()}, 1);
    skips.pop_back();
    x = L.attn->forward(L.block2->forward(L.block1->forward(x)));
    if (L.upsample) x = L.upsample->forward(x);  // side * 2
  }
  x = concat({x, r}, 1);  // (B, 2 dim, S, S)
  return final_conv->forward(final_res_block->forward(x));
}

}  // namespace fpa
