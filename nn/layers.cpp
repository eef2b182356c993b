// layers.cpp: construction (PyTorch default init) and the ChanNorm forward.
#include "nn/layers.h"

#include <cmath>

#include "nn/init.h"

namespace fpa::nn {

// PyTorch's default for Linear and Conv: kaiming_uniform(a = sqrt 5) on the weight and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias; both amount to that same bound.
static double default_bound(int64_t fan_in) { return 1.0 / std::sqrt(double(fan_in)); }

Linear::Linear(int64_t in, int64_t out, bool has_bias) {
  weight = init_uniform({out, in}, default_bound(in));
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = init_uniform({out}, default_bound(in));
    register_parameter("bias", &bias);
  }
}

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, Conv2dOptions o, bool has_bias) : opts(o) {
  int64_t fan_in = in / o.groups * k * k;
  weight = init_uniform({out, in / o.groups, k, k}, default_bound(fan_in));
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = init_uniform({out}, default_bound(fan_in));
    register_parameter("bias", &bias);
  }
}

ConvTranspose2d::ConvTranspose2d(int64_t in, int64_t out, int64_t k, Conv2dOptions o, bool has_bias) : opts(o) {
  int64_t fan_in = out / o.groups * k * k;  // PyTorch computes it from weight dim 1
  weight = init_uniform({in, out / o.groups, k, k}, default_bound(fan_in));
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = init_uniform({out}, default_bound(fan_in));
    register_parameter("bias", &bias);
  }
}

GroupNorm::GroupNorm(int64_t groups_, int64_t channels, double eps_) : groups(groups_), eps(eps_) {
  weight = ones({channels});
  bias = zeros({channels});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}

ChanNorm::ChanNorm(int64_t channels, double eps_) : eps(eps_) {
  g = ones({1, channels, 1, 1});
  b = zeros({1, channels, 1, 1});
  register_parameter("g", &g);
  register_parameter("b", &b);
}

Tensor ChanNorm::forward(const Tensor& x) const { return channel_norm(x, g, b, eps); }

}  // namespace fpa::nn
