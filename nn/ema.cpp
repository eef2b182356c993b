// ema.cpp: the moving average, written in place into the EMA module's parameters.
#include "nn/ema.h"

#include "autograd/engine.h"
#include "autograd/error.h"
#include "ops/backend/backend.h"
#include "ops/ops.h"

namespace fpa::nn {

EMA::EMA(Module& ema, Module& current, double beta) : beta_(beta) {
  FPA_CHECK(beta >= 0 && beta <= 1, "EMA: beta ", beta, " is not in [0, 1]");
  auto a = ema.named_parameters(), b = current.named_parameters();
  FPA_CHECK(a.size() == b.size(), "EMA: the modules have ", a.size(), " and ", b.size(), " parameters");
  for (size_t i = 0; i < a.size(); ++i) {
    FPA_CHECK(a[i].first == b[i].first, "EMA: parameter ", i, " is '", a[i].first, "' in the EMA module but '",
              b[i].first, "' in the current one");
    const Tensor &e = *a[i].second, &c = *b[i].second;
    FPA_CHECK(e.shape() == c.shape() && e.dtype() == c.dtype() && e.device() == c.device(), "EMA: parameter '",
              a[i].first, "' is ", e.str(), " in the EMA module but ", c.str(), " in the current one");
    pairs_.emplace_back(a[i].second, b[i].second);
  }
  ema.set_requires_grad(false);
}

// Copies src's elements into dst's existing storage.
static void copy_into_storage(const Tensor& dst, const Tensor& src) {
  backend(dst.device()).copy(dst.data(), src.data(), size_t(dst.numel()) * dtype_size(dst.dtype()));
}

void EMA::update() {
  NoGradGuard no_grad;
  for (auto& [e, c] : pairs_) copy_into_storage(*e, add(mul_scalar(*e, beta_), mul_scalar(*c, 1.0 - beta_)));
}

void EMA::reset() {
  for (auto& [e, c] : pairs_) copy_into_storage(*e, *c);
}

}  // namespace fpa::nn
