// module.h: Module, the base of every model part: named parameters (dotted names exactly as
// the reference PyTorch state dict: "D.residual_layers.1.1.fn.to_q.weight"), children,
// train/eval, freezing, and parameter counts.
//
// A module keeps its parameters as Tensor members and registers their addresses, so forward
// code reads `weight` directly. Loading a checkpoint copies into the existing storage.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/tensor.h"

namespace fpa::nn {

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter below this module, depth first in registration order, with dotted names.
  std::vector<std::pair<std::string, Tensor*>> named_parameters(const std::string& prefix = "");
  std::vector<Tensor*> parameters();
  // The same slots from a const module (a forward passes them to checkpoint()).
  std::vector<Tensor*> parameter_slots() const;
  int64_t parameter_count();
  // The parameter with this dotted name, or null.
  Tensor* find_parameter(const std::string& name);

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Freezing: requires_grad off (or back on) for every parameter below this module.
  void set_requires_grad(bool on);
  // Moves every parameter to a device / dtype (new storage; gradients dropped).
  void to(Device device);
  void to(DType dtype);

 protected:
  Module() = default;
  // Registers a member tensor as a parameter (it becomes a leaf that requires grad).
  void register_parameter(const std::string& name, Tensor* param);
  // Registers a child; returns it for chaining. Children are owned by the parent.
  template <typename M>
  M* register_module(const std::string& name, std::shared_ptr<M> child) {
    children_.emplace_back(name, child);
    return child.get();
  }

 private:
  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Children indexed "0", "1", ... (nn.ModuleList / nn.Sequential naming).
class ModuleList : public Module {
 public:
  template <typename M>
  M* push_back(std::shared_ptr<M> m) {
    items_.push_back(m);
    return register_module(std::to_string(items_.size() - 1), m);
  }
  size_t size() const { return items_.size(); }
  Module* operator[](size_t i) const { return items_[i].get(); }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace fpa::nn
