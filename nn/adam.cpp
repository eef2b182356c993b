// adam.cpp: packing the parameters into one flat buffer, and the single-kernel step.
#include "nn/adam.h"

#include <set>

#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa::nn {

static char* at(const Tensor& flat, int64_t offset) {
  return static_cast<char*>(flat.data()) + offset * dtype_size(flat.dtype());
}

Adam::Adam(std::vector<Tensor*> params, AdamOptions options) : params_(std::move(params)), opt_(options) {
  FPA_CHECK(!params_.empty(), "Adam: got an empty parameter list");
  FPA_CHECK(opt_.lr >= 0 && opt_.eps >= 0 && opt_.weight_decay >= 0 && opt_.beta1 >= 0 && opt_.beta1 < 1 &&
                opt_.beta2 >= 0 && opt_.beta2 < 1,
            "Adam: invalid options lr ", opt_.lr, " betas (", opt_.beta1, ", ", opt_.beta2, ") eps ", opt_.eps,
            " weight_decay ", opt_.weight_decay);
  const Tensor& first = *params_[0];
  check_defined("Adam", first, "parameter 0");
  const DType dt = first.dtype();
  const Device dev = first.device();
  std::set<const TensorImpl*> seen;
  int64_t n = 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = *params_[i];
    check_defined("Adam", p, "parameter");
    FPA_CHECK(p.dtype() == dt && p.device() == dev, "Adam: parameter ", i, " is ", p.str(), " but parameter 0 is ",
              first.str(), "; all parameters must share one dtype and device");
    FPA_CHECK(p.is_leaf(), "Adam: parameter ", i, " (", p.str(), ") is not a leaf tensor");
    FPA_CHECK(seen.insert(p.impl()).second, "Adam: parameter ", i, " appears twice in the list");
    offsets_.push_back(n);
    n += p.numel();
  }
  flat_param_ = empty({n}, dt, dev);
  flat_grad_ = zeros({n}, dt, dev);
  exp_avg_ = zeros({n}, dt, dev);
  exp_avg_sq_ = zeros({n}, dt, dev);
  bias_terms_ = zeros({2}, dt, dev);
  const Backend& be = backend(dev);
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& p = *params_[i];
    be.copy(at(flat_param_, offsets_[i]), p.data(), size_t(p.numel()) * dtype_size(dt));
    // Rebind: the parameter now views the flat storage (same TensorImpl, so every handle to it follows).
    p.impl()->storage = flat_param_.impl()->storage;
    p.impl()->offset = flat_param_.impl()->offset + offsets_[i];
  }
}

void Adam::step() {
  prepare_step();
  apply_step();
}

void Adam::prepare_step() {
  ++step_;
  double terms[2];
  adam_bias_terms(opt_.lr, opt_.beta1, opt_.beta2, step_, &terms[0], &terms[1]);
  const float terms_f32[2] = {float(terms[0]), float(terms[1])};
  const void* host = bias_terms_.dtype() == DType::f32 ? static_cast<const void*>(terms_f32) : terms;
  backend(bias_terms_.device()).from_host(bias_terms_.data(), host, 2 * dtype_size(bias_terms_.dtype()));
}

void Adam::apply_step() {
  const Backend& be = backend(flat_param_.device());
  const DType dt = flat_param_.dtype();
  std::vector<CopySpan> gathers;  // each gradient into its place in flat_grad_, all in one call
  gathers.reserve(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = *params_[i];
    FPA_CHECK(p.impl()->storage == flat_param_.impl()->storage, "Adam: parameter ", i, " (", p.str(),
              ") no longer views the optimiser's flat buffer (was it replaced, e.g. by Module::to?)");
    Tensor g = p.grad();
    if (!g.defined()) {
      be.fill(dt, p.numel(), 0.0, at(flat_grad_, offsets_[i]));
      continue;
    }
    FPA_CHECK(g.shape() == p.shape() && g.dtype() == dt && g.device() == p.device(), "Adam: gradient ", g.str(),
              " does not match parameter ", i, " ", p.str());
    gathers.push_back({at(flat_grad_, offsets_[i]), g.data(), size_t(g.numel()) * dtype_size(dt)});
  }
  be.copy_many(int64_t(gathers.size()), gathers.data());
  AdamArgs args{opt_.lr, opt_.beta1, opt_.beta2, opt_.eps, opt_.weight_decay, step_, bias_terms_.data()};
  be.adam_step(dt, flat_param_.numel(), args, flat_param_.data(), flat_grad_.data(), exp_avg_.data(),
               exp_avg_sq_.data());
}

void Adam::zero_grad() {
  for (Tensor* p : params_) p->zero_grad();
}

std::vector<std::pair<std::string, Tensor>> Adam::state() {
  return {{"exp_avg", exp_avg_}, {"exp_avg_sq", exp_avg_sq_}};
}

}  // namespace fpa::nn
