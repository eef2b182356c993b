// disc_attention.h: the building blocks of the lightweight-GAN discriminator
// (FPA_REFERENCE.md section 5; the official code's painter.LinearAttention, PreNorm, Residual,
// SumBranches and nn.Sequential), with the official parameter names; PreNorm and Residual are
// nn/blocks.h's.
//
// LinearAttention(dim) has two branches on the same feature map, concatenated channel-wise
// and mixed by `to_out` (Conv1x1 1024 -> dim, with bias):
//   linear: to_lin_q (Conv1x1), to_lin_kv.net.{0,1} (depthwise Conv3x3 then Conv1x1), per
//           head q softmax over its 64 features, k softmax over positions, out = q (k^T v),
//           then GELU (erf);
//   local:  to_q, to_kv (Conv1x1); each position attends over its 3x3 neighbourhood, as
//           unfold gathers it (zero padding: padded neighbours have k = v = 0 and take part
//           in the softmax with logit 0), through the fused op ops/local_attention.cpp.
// Everything else is composed from differentiable ops; the fused op falls back to its composed
// twin when second-order gradients (the gradient penalty) are recorded. On CUDA the PreNorm
// blocks are checkpointed (CheckpointAttention), and so are the two branches while a block is
// rebuilt to record its gradient (the penalty's second order). Not here: the U-Net's attention
// (fpa/unet.h), the discriminator itself (fpa/discriminator.h).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nn/blocks.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace fpa::disc {

// nn.Sequential: children named by their index. Parameterless steps (LeakyReLU, pooling,
// the identity Blur) take an index too, so the parameter names keep the official gaps
// ("branches.0.1", "branches.0.3").
class Sequential : public nn::Module {
 public:
  using Step = std::function<Tensor(const Tensor&)>;
  // A module with `Tensor forward(const Tensor&) const`, registered under its index.
  template <typename M>
  M* add(std::shared_ptr<M> m) {
    M* raw = register_module(std::to_string(steps_.size()), m);
    steps_.push_back([raw](const Tensor& x) { return raw->forward(x); });
    return raw;
  }
  void add_fn(Step f) { steps_.push_back(std::move(f)); }  // parameterless: only uses an index
  Tensor forward(const Tensor& x) const;
  size_t size() const { return steps_.size(); }

 private:
  std::vector<Step> steps_;
};

// fn(x) summed over the branches (names branches.N.*).
class SumBranches : public nn::Module {
 public:
  explicit SumBranches(std::vector<std::shared_ptr<Sequential>> branches);
  Tensor forward(const Tensor& x) const;

 private:
  std::vector<Sequential*> branches_;
};

// Whether PreNorm blocks (the attention) are checkpointed (ops/ops.h checkpoint(): their
// intermediates, maps of 512 and 1024 channels, recomputed in the backward instead of kept):
// `automatic`, the default, does it where the backend is memory_bound (a GPU, where those maps
// dominate device memory) and not on the CPU, where the recompute costs time and memory is
// plentiful. The numbers are the same either way.
enum class CheckpointAttention { automatic, always, never };
bool checkpoints_attention(Device device);
// Sets the mode while it lives, then the previous one again (tests that compare devices bit
// for bit run both the same way).
class CheckpointAttentionScope {
 public:
  explicit CheckpointAttentionScope(CheckpointAttention mode);
  ~CheckpointAttentionScope();
  CheckpointAttentionScope(const CheckpointAttentionScope&) = delete;
  CheckpointAttentionScope& operator=(const CheckpointAttentionScope&) = delete;

 private:
  CheckpointAttention previous_;
};

// nn::PreNorm (names fn.*, norm.g, norm.b), its fn(norm(x)) checkpointed where
// checkpoints_attention says so (the same numbers either way).
template <typename Fn>
class CheckpointedPreNorm : public nn::PreNorm<Fn> {
 public:
  using nn::PreNorm<Fn>::PreNorm;
  Tensor forward(const Tensor& x) const {
    if (!checkpoints_attention(x.device())) return nn::PreNorm<Fn>::forward(x);
    return checkpoint([this](const std::vector<Tensor>& in) { return nn::PreNorm<Fn>::forward(in[0]); }, {x},
                      this->parameter_slots());
  }
};

// Depthwise conv (groups = dim_in) then a 1x1 conv: names net.0, net.1.
class DepthWiseConv2d : public nn::Module {
 public:
  DepthWiseConv2d(int64_t dim_in, int64_t dim_out, int64_t kernel, int64_t padding, bool bias);
  Tensor forward(const Tensor& x) const { return net->forward(x); }
  Sequential* net;
};

// Heads x features per head of every LinearAttention: 8 x 64 in the official model; smaller
// for CPU presets and to make numerical tests cheap (DiscriminatorConfig::attn_heads,
// attn_dim_head; the code path is the same).
struct AttentionSize {
  int64_t heads = 8, dim_head = 64;
};

class LinearAttention : public nn::Module {
 public:
  explicit LinearAttention(int64_t dim, int64_t dim_head = 64, int64_t heads = 8);
  Tensor forward(const Tensor& fmap) const;  // (B, dim, X, Y) -> (B, dim, X, Y)

  // The two branches before to_out, each (B, heads*dim_head, X, Y); public for tests.
  Tensor linear_branch(const Tensor& fmap) const;  // GELU applied
  Tensor local_branch(const Tensor& fmap) const;

  int64_t dim, dim_head, heads;
  nn::Conv2d* to_lin_q;      // (512, dim, 1, 1), no bias
  DepthWiseConv2d* to_lin_kv;  // net.0 (dim, 1, 3, 3) pad 1, net.1 (1024, dim, 1, 1), no bias
  nn::Conv2d* to_q;          // (512, dim, 1, 1), no bias
  nn::Conv2d* to_kv;         // (1024, dim, 1, 1), no bias
  nn::Conv2d* to_out;        // (dim, 1024, 1, 1), with bias
};

using PreNormAttention = CheckpointedPreNorm<LinearAttention>;  // residual_layers.L.1
using ResidualAttention = nn::Residual<PreNormAttention>;       // to_shape_disc_out.{1,3}

}  // namespace fpa::disc
