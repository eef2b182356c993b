// layers.h: the basic layers with PyTorch's parameter names and default initialisation:
// Linear, Conv2d, ConvTranspose2d, GroupNorm, and ChanNorm (normalise over channels per
// pixel, gain g and bias b of shape (1, C, 1, 1): lightweight-GAN's ChanNorm and the
// U-Net's LayerNorm; the fused op channel_norm).
#pragma once
#include "nn/module.h"
#include "ops/ops.h"

namespace fpa::nn {

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true);
  Tensor forward(const Tensor& x) const { return linear(x, weight, bias); }
  Tensor weight;  // (out, in)
  Tensor bias;    // (out) or undefined
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t in, int64_t out, int64_t kernel, Conv2dOptions o = {}, bool bias = true);
  Tensor forward(const Tensor& x) const { return conv2d(x, weight, bias, opts); }
  Tensor weight;  // (out, in/groups, k, k)
  Tensor bias;    // (out) or undefined
  Conv2dOptions opts;
};

class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(int64_t in, int64_t out, int64_t kernel, Conv2dOptions o = {}, bool bias = true);
  Tensor forward(const Tensor& x) const { return conv_transpose2d(x, weight, bias, opts); }
  Tensor weight;  // (in, out/groups, k, k)
  Tensor bias;    // (out) or undefined
  Conv2dOptions opts;
};

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t groups, int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) const { return group_norm(x, groups, weight, bias, eps); }
  Tensor weight, bias;  // (C): ones, zeros
  int64_t groups;
  double eps;
};

class ChanNorm : public Module {
 public:
  explicit ChanNorm(int64_t channels, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;  // x (B, C, H, W)
  Tensor g, b;  // (1, C, 1, 1): ones, zeros
  double eps;
};

}  // namespace fpa::nn
