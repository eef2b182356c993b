// channel_norm.cpp: the channel norm of the lightweight-GAN discriminator (nn::ChanNorm: each
// position normalised over its channels, then scaled and shifted per channel) in two forms.
// channel_norm is one node over Backend::channel_norm_forward / channel_norm_backward (one
// pass forward, two backward, instead of about 11 and 20 composed primitives); it keeps the
// per-position mean and rstd for the backward. channel_norm_composed is its twin from
// differentiable reductions: the tests compare the two, backends without the primitives run
// it, and the fused backward differentiates it when the gradient itself is being recorded
// (create_graph, as the gradient penalty needs).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("channel_norm", {"channel_norm", true});

namespace {

void check_args(const char* op, const Tensor& x, const Tensor& g, const Tensor& b) {
  check_defined(op, x, "input");
  check_defined(op, g, "scale g");
  check_defined(op, b, "shift b");
  FPA_CHECK(x.ndim() == 4, op, ": input must be (N, C, H, W), got ", x.shape());
  const Shape param = {1, x.dim(1), 1, 1};
  FPA_CHECK(g.shape() == param && b.shape() == param, op, ": g and b must be ", param, ", got ", g.shape(), " and ",
            b.shape());
  check_same_kind(op, x, g);
  check_same_kind(op, x, b);
}

}  // namespace

Tensor channel_norm_composed(const Tensor& x, const Tensor& g, const Tensor& b, double eps) {
  check_args("channel_norm_composed", x, g, b);
  // (x - mean_c) / sqrt(var_c + eps) * g + b, statistics over channels per pixel (biased).
  Tensor centered = sub(x, mean(x, {1}, true));
  Tensor normed = mul(centered, rsqrt(add_scalar(mean(square(centered), {1}, true), eps)));
  return add(mul(normed, g), b);
}

Tensor channel_norm(const Tensor& x, const Tensor& g, const Tensor& b, double eps) {
  check_args("channel_norm", x, g, b);
  const Backend& be = backend(x.device());
  if (!be.supports("channel_norm_forward") || !be.supports("channel_norm_backward"))
    return channel_norm_composed(x, g, b, eps);
  const int64_t N = x.dim(0), C = x.dim(1), P = x.dim(2) * x.dim(3);
  const DType dt = x.dtype();
  Tensor y = empty(x.shape(), dt, x.device());
  Tensor mean = empty({N, P}, dt, x.device()), rstd = empty({N, P}, dt, x.device());  // (N, P)
  be.channel_norm_forward(dt, N, C, P, eps, x.data(), g.data(), b.data(), y.data(), mean.data(), rstd.data());
  return record("channel_norm", y, {x, g, b},
                [x, g, b, eps, mean, rstd, N, C, P](const Tensor& dy, const Tensor&,
                                                    const std::vector<bool>& needs) -> std::vector<Tensor> {
                  if (grad_enabled()) {
                    auto twin = [eps](const std::vector<Tensor>& in) {
                      return channel_norm_composed(in[0], in[1], in[2], eps);
                    };
                    return composed_twin_gradients(twin, {x, g, b}, dy, needs);
                  }
                  Tensor dx = empty(x.shape(), x.dtype(), x.device());
                  Tensor dg = empty(g.shape(), x.dtype(), x.device()), db = empty(b.shape(), x.dtype(), x.device());
                  backend(x.device()).channel_norm_backward(x.dtype(), N, C, P, x.data(), g.data(), mean.data(),
                                                            rstd.data(), dy.data(), dx.data(), dg.data(), db.data());
                  return {needs[0] ? dx : Tensor(), needs[1] ? dg : Tensor(), needs[2] ? db : Tensor()};
                });
}

}  // namespace fpa
