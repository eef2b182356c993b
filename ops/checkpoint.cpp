// checkpoint.cpp: activation checkpointing. checkpoint(fn, inputs, params) is fn(inputs) as
// one node: the forward runs fn without recording, so none of its intermediates stay alive
// until the backward, which runs fn again, recorded this time, and differentiates that.
// Memory for compute: a discriminator attention block keeps about ten maps of 512 or 1024
// channels for its backward; checkpointed, it keeps its input, one map of 128 or fewer.
//
// `params` are the slots of the tensors fn reads without taking them as inputs (a module's
// parameters): the tensors they hold are inputs of the node too, so their gradients flow, and
// the recomputation runs with the slots holding those same tensors again (whatever was put in
// them since, as tests that swap parameters do).
//
// When the gradient is itself recorded (create_graph, as for the gradient penalty), the
// backward returns the gradients as a checkpoint of their own: of the function (inputs,
// grad_out) -> fn's gradients, packed into one flat tensor. So the recorded gradient keeps
// no graph of fn, and what differentiates it later rebuilds that graph block by block, one
// at a time, instead of finding every block's graph alive at once. That rebuilding is the
// moment nested checkpoints pay off (recomputing_for_recorded_gradient()).
#include "ops/op_util.h"
#include "ops/registry.h"

namespace fpa {

FPA_REGISTER_OPS("checkpoint", {"checkpoint", true});

namespace {

thread_local bool t_recomputing_for_recorded_gradient = false;

using CheckpointFn = std::function<Tensor(const std::vector<Tensor>&)>;

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

// The gradients of <fn(x), g> with respect to the needed entries of `all` (fn's inputs x, then
// the tensors the slots `params` hold), from fn run again, recorded; undefined where not needed
// or unused, recorded themselves when create_graph. fn reads every entry, the parameters
// through their slots, as composed_twin_gradients (ops/op_util.h) hands it them: the needed
// ones through identity nodes that nothing in the caller's graph leads to, so the results are
// partial derivatives (also where an input is computed from a parameter).
std::vector<Tensor> gradients_of(const CheckpointFn& fn, const std::vector<Tensor>& all, size_t n_inputs,
                                 const std::vector<Tensor*>& params, const Tensor& g, const std::vector<bool>& needs,
                                 bool create_graph) {
  GradModeGuard recorded(true);
  const bool was_recording = t_recomputing_for_recorded_gradient;
  t_recomputing_for_recorded_gradient = create_graph;
  struct Restore {
    bool value;
    ~Restore() { t_recomputing_for_recorded_gradient = value; }
  } restore{was_recording};
  auto fn_reading_slots = [&](const std::vector<Tensor>& seen) {
    const SlotValues reading(params, std::vector<Tensor>(seen.begin() + n_inputs, seen.end()));
    return fn(std::vector<Tensor>(seen.begin(), seen.begin() + n_inputs));
  };
  return composed_twin_gradients(fn_reading_slots, all, g, needs, create_graph);
}

}  // namespace

bool recomputing_for_recorded_gradient() { return t_recomputing_for_recorded_gradient; }

Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, const std::vector<Tensor*>& params) {
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
    const SlotValues as_in_the_forward(params, std::vector<Tensor>(all.begin() + n_inputs, all.end()));
    if (!grad_enabled()) return gradients_of(fn, all, n_inputs, params, g, needs, /*create_graph=*/false);
    // Recorded: the gradients as a checkpoint of (x, g) -> the needed gradients packed into
    // one flat tensor (see the top); in its forward they are found unrecorded.
    std::vector<int64_t> sizes;
    for (size_t i = 0; i < all.size(); ++i)
      if (needs[i]) sizes.push_back(all[i].numel());
    auto packed_gradients = [fn, params, n_inputs, needs](const std::vector<Tensor>& in) {  // in: x..., g
      std::vector<Tensor> all_now(in.begin(), in.end() - 1);
      for (const Tensor* p : params) all_now.push_back(*p);
      const bool create_graph = grad_enabled();
      std::vector<Tensor> found = gradients_of(fn, all_now, n_inputs, params, in.back(), needs, create_graph);
      std::vector<Tensor> flat;
      for (size_t i = 0; i < all_now.size(); ++i) {
        if (!needs[i]) continue;
        const Tensor& d = found[i].defined() ? found[i] : zeros(all_now[i].shape(), all_now[i].dtype(),
                                                                  all_now[i].device());
        flat.push_back(reshape(d, {-1}));
      }
      return concat(flat, 0);
    };
    std::vector<Tensor> in(all.begin(), all.begin() + n_inputs);
    in.push_back(g);
    const std::vector<Tensor> parts = split(checkpoint(packed_gradients, in, params), sizes, 0);
    std::vector<Tensor> r(all.size());
    for (size_t i = 0, j = 0; i < all.size(); ++i)
      if (needs[i]) r[i] = reshape(parts[j++], all[i].shape());
    return r;
  };
  return record("checkpoint", out, all, backward);
}

}  // namespace fpa
