// checkpoint.cpp: activation checkpointing. checkpoint(fn, inputs, params) is fn(inputs) as
// one node: the forward runs fn without recording, so none of its intermediates stay alive
// until the backward, which runs fn again, recorded this time, and differentiates that.
// Memory for compute: a discriminator attention block keeps about ten maps of 512 or 1024
// channels for its backward; checkpointed, it keeps its input, one map of 128 or fewer.
//
// `params` are the slots of the tensors fn reads without taking them as inputs (a module's
// parameters): the tensors they hold are inputs of the node too, so their gradients flow, and
// the recomputation runs with the slots holding those same tensors again (whatever was put in
// them since, as tests that swap parameters do). The backward asks the recomputed
// graph for the gradients of identity nodes standing for `inputs` (so only fn's part is
// differentiated, never the caller's graph) and of the `params` leaves. When the gradient is
// itself recorded (create_graph, as for the gradient penalty), that recomputed graph stays in
// the recorded gradient, and second-order gradients flow through it as through fn.
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OP("checkpoint", true, "checkpoint");

namespace {

// While it lives, each slot holds the tensor it held when fn ran first; then what it holds now.
class SlotValues {
 public:
  SlotValues(const std::vector<Tensor*>& slots, const std::vector<Tensor>& values) : slots_(slots) {
    for (size_t i = 0; i < slots.size(); ++i) now_.push_back(*slots[i]), *slots[i] = values[i];
  }
  ~SlotValues() {
    for (size_t i = 0; i < slots_.size(); ++i) *slots_[i] = now_[i];
  }
  SlotValues(const SlotValues&) = delete;
  SlotValues& operator=(const SlotValues&) = delete;

 private:
  std::vector<Tensor*> slots_;
  std::vector<Tensor> now_;
};

}  // namespace

Tensor checkpoint(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                  const std::vector<Tensor*>& params) {
  for (const Tensor& x : inputs) check_defined("checkpoint", x, "input");
  std::vector<Tensor> all(inputs);
  for (const Tensor* p : params) {
    check_defined("checkpoint", *p, "parameter");
    all.push_back(*p);
  }
  Tensor out;
  {
    NoGradGuard unrecorded;
    out = fn(inputs);
  }
  const size_t n_inputs = inputs.size();
  auto backward = [fn, all, params, n_inputs](const Tensor& g, const Tensor&, const std::vector<bool>& needs) {
    const bool create_graph = grad_enabled();
    GradModeGuard recorded(true);
    const SlotValues as_in_the_forward(params, std::vector<Tensor>(all.begin() + n_inputs, all.end()));
    std::vector<Tensor> x(all.begin(), all.begin() + n_inputs), asked;
    std::vector<size_t> which;
    for (size_t i = 0; i < all.size(); ++i) {
      if (!needs[i]) continue;
      if (i < n_inputs) {  // seen through an identity node, where the nested grad() stops
        auto pass_through = [](const Tensor& gi, const Tensor&, const std::vector<bool>&) {
          return std::vector<Tensor>{gi};
        };
        x[i] = record("checkpoint_input", alias(all[i], all[i].shape()), {all[i]}, pass_through);
      }
      asked.push_back(i < n_inputs ? x[i] : all[i]), which.push_back(i);
    }
    std::vector<Tensor> r(all.size());
    if (asked.empty()) return r;
    std::vector<Tensor> found = grad({fn(x)}, asked, {g}, /*retain_graph=*/create_graph, create_graph,
                                     /*allow_unused=*/true);
    for (size_t j = 0; j < which.size(); ++j) r[which[j]] = found[j];
    return r;
  };
  return record("checkpoint", out, all, backward);
}

}  // namespace fpa
