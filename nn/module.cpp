// module.cpp: parameter registration, traversal and mode switches.
#include "nn/module.h"

#include "autograd/error.h"

namespace fpa::nn {

void Module::register_parameter(const std::string& name, Tensor* param) {
  FPA_CHECK(param && param->defined(), "register_parameter: ", name, " is undefined");
  for (auto& p : params_) FPA_CHECK(p.first != name, "register_parameter: duplicate name ", name);
  param->requires_grad_(true);
  params_.emplace_back(name, param);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters(const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (auto& p : params_) out.emplace_back(prefix + p.first, p.second);
  for (auto& c : children_) {
    auto sub = c.second->named_parameters(prefix + c.first + ".");
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor*> Module::parameter_slots() const {
  std::vector<Tensor*> out;
  for (const auto& p : params_) out.push_back(p.second);
  for (const auto& c : children_) {
    std::vector<Tensor*> sub = c.second->parameter_slots();
    out.insert(out.end(), sub.begin(), sub.end());
  }
  return out;
}

std::vector<Tensor*> Module::parameters() { return parameter_slots(); }

int64_t Module::parameter_count() {
  int64_t n = 0;
  for (Tensor* p : parameters()) n += p->numel();
  return n;
}

Tensor* Module::find_parameter(const std::string& name) {
  for (auto& p : named_parameters())
    if (p.first == name) return p.second;
  return nullptr;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::set_requires_grad(bool on) {
  for (Tensor* p : parameters()) p->requires_grad_(on);
}

void Module::to(Device device) {
  for (Tensor* p : parameters()) {
    bool rg = p->requires_grad();
    *p = p->to(device).detach();
    p->requires_grad_(rg);
  }
}

void Module::to(DType dtype) {
  for (Tensor* p : parameters()) {
    bool rg = p->requires_grad();
    *p = p->to(dtype).detach();
    p->requires_grad_(rg);
  }
}

}  // namespace fpa::nn
