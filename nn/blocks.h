// blocks.h: two wrappers around another module, with the official parameter names:
// PreNorm, fn(norm(x)) with norm a ChanNorm (names fn.*, norm.g, norm.b), and Residual,
// fn(x) + x (names fn.*). Both carry the attention of the discriminator (fpa/disc_attention.h,
// whose PreNorm adds checkpointing) and of the U-Net (fpa/unet.h). Templates over the wrapped
// module, which needs `Tensor forward(const Tensor&) const`. Not here: the layers themselves
// (nn/layers.h).
#pragma once
#include <memory>

#include "nn/layers.h"
#include "nn/module.h"

namespace fpa::nn {

// fn(norm(x)), norm a ChanNorm over fn's input channels (names fn.*, norm.g, norm.b).
template <typename Fn>
class PreNorm : public Module {
 public:
  PreNorm(int64_t dim, std::shared_ptr<Fn> f) {
    fn = register_module("fn", f);
    norm = register_module("norm", std::make_shared<ChanNorm>(dim));
  }
  Tensor forward(const Tensor& x) const { return fn->forward(norm->forward(x)); }
  Fn* fn;
  ChanNorm* norm;
};

// fn(x) + x (names fn.*).
template <typename Fn>
class Residual : public Module {
 public:
  explicit Residual(std::shared_ptr<Fn> f) { fn = register_module("fn", f); }
  Tensor forward(const Tensor& x) const { return add(fn->forward(x), x); }
  Fn* fn;
};

}  // namespace fpa::nn
