// adam.h: Adam exactly as torch.optim.Adam (bias correction, eps added after the bias-corrected
// square root, optional L2 weight_decay added to the gradient; no amsgrad), over FLAT buffers.
//
// At construction the given parameters are packed into one flat parameter tensor and each is
// REBOUND to a view into it (its TensorImpl now aliases the flat storage at an offset; shape,
// requires_grad and the Tensor objects are unchanged), so that one backend `adam_step` updates
// every parameter at once. The moments (exp_avg, exp_avg_sq) and a gradient buffer are flat
// too. step() gathers each .grad() into the gradient buffer (one copy_many) and runs the step.
// A parameter without a gradient gets zeros, where torch would skip it: it stays put only while
// its moments are zero and weight_decay is 0 (true of a parameter frozen from the start, as the
// U-Net's frozen base); otherwise its moments decay and it moves. Nothing is allocated on the
// device in step().
// step() = prepare_step() (host: count the step, upload its two bias-corrected terms to a
// device buffer) + apply_step() (device only: gather the gradients, run the kernel reading
// the terms from that buffer), so a captured apply_step (CUDA graph) replays with each step's
// own terms.
// All parameters must share one dtype and device. Replacing a parameter's Tensor afterwards
// (Module::to) breaks the aliasing: build the optimiser after moving the model; loading a
// state dict copies in place and keeps it.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace fpa::nn {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2, added to the gradient (torch.optim.Adam, not AdamW)
};

class Adam {
 public:
  Adam(std::vector<Tensor*> params, AdamOptions options = {});
  Adam(const Adam&) = delete;
  Adam& operator=(const Adam&) = delete;

  void step();
  void prepare_step();
  void apply_step();
  // Drops every parameter's gradient (torch's zero_grad(set_to_none=True)).
  void zero_grad();

  AdamOptions& options() { return opt_; }
  int64_t step_count() const { return step_; }
  void set_step_count(int64_t s) { step_ = s; }  // when restoring a checkpoint

  const std::vector<Tensor*>& params() const { return params_; }
  const std::vector<int64_t>& offsets() const { return offsets_; }  // of each parameter in the flat buffers
  Tensor& flat_params() { return flat_param_; }  // (n)
  Tensor& flat_grads() { return flat_grad_; }    // (n), the gradients of the last step()
  Tensor& exp_avg() { return exp_avg_; }         // (n)
  Tensor& exp_avg_sq() { return exp_avg_sq_; }   // (n)
  // The optimiser state for checkpoints: {"exp_avg", (n)}, {"exp_avg_sq", (n)} (the tensors
  // share the state's storage; copy into them to restore).
  std::vector<std::pair<std::string, Tensor>> state();

 private:
  std::vector<Tensor*> params_;
  std::vector<int64_t> offsets_;
  Tensor flat_param_, flat_grad_, exp_avg_, exp_avg_sq_;
  Tensor bias_terms_;  // (2): lr / (1 - beta1^step), sqrt(1 - beta2^step) of the prepared step
  AdamOptions opt_;
  int64_t step_ = 0;
};

}  // namespace fpa::nn
