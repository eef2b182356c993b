// state_dict.cpp: named parameter export and the checked, in-place state dict load.
#include "nn/state_dict.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "autograd/error.h"
#include "ops/backend/backend.h"

namespace fpa::nn {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Up to five names, then "and N more".
std::string name_list(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 5; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 5) s += ", and " + std::to_string(names.size() - 5) + " more";
  return s;
}

// Copies src (any device, same shape; dtype converted on the host if needed) into dst's storage.
void copy_into(Tensor& dst, const Tensor& src) {
  Tensor s = src.dtype() == dst.dtype() ? src : src.to(Device::cpu).to(dst.dtype());
  size_t bytes = size_t(dst.numel()) * dtype_size(dst.dtype());
  if (bytes == 0) return;
  if (s.device() == dst.device()) {
    backend(dst.device()).copy(dst.data(), s.data(), bytes);
  } else {
    Tensor host = s.to(Device::cpu);
    backend(dst.device()).from_host(dst.data(), host.data(), bytes);
  }
}

}  // namespace

std::vector<std::pair<std::string, Tensor>> state_dict(Module& m, const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, param] : m.named_parameters(prefix)) out.emplace_back(name, param->detach());
  return out;
}

std::string first_non_finite(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  for (const auto& [name, t] : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    const Tensor host = t.to(Device::cpu);
    int64_t bad = 0;
    if (host.dtype() == DType::f32) {
      const float* p = static_cast<const float*>(host.data());
      for (int64_t i = 0; i < host.numel(); ++i) bad += !std::isfinite(p[i]);
    } else {
      const double* p = static_cast<const double*>(host.data());
      for (int64_t i = 0; i < host.numel(); ++i) bad += !std::isfinite(p[i]);
    }
    if (bad > 0) return name + " holds " + std::to_string(bad) + " non-finite values (of " + std::to_string(host.numel()) + ")";
  }
  return "";
}

bool has_prefix(const NamedTensors& file, const std::string& prefix) {
  for (const auto& entry : file.tensors)
    if (starts_with(entry.first, prefix)) return true;
  return false;
}

void load_state_dict(Module& m, const std::string& prefix, const NamedTensors& file, const LoadOptions& opt) {
  const std::string src = file.source.empty() ? "state dict" : file.source;
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : file.tensors) by_name.emplace(name, &t);

  // Check everything first, so a failed load leaves the module untouched.
  auto params = m.named_parameters(prefix);
  std::vector<std::string> missing;
  std::vector<std::pair<Tensor*, const Tensor*>> pairs;
  for (auto& [name, param] : params) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      missing.push_back(name);
      continue;
    }
    const Tensor& t = *it->second;
    FPA_CHECK(t.defined(), src, ": tensor '", name, "' is undefined");
    FPA_CHECK(t.shape() == param->shape(), src, ": tensor '", name, "' has shape ", t.shape(),
              " in the file but ", param->shape(), " in the model");
    FPA_CHECK(t.dtype() == param->dtype() || opt.allow_dtype_conversion, src, ": tensor '", name, "' is ",
              dtype_name(t.dtype()), " in the file but ", dtype_name(param->dtype()),
              " in the model (set allow_dtype_conversion to convert)");
    pairs.emplace_back(param, &t);
  }
  FPA_CHECK(missing.empty(), src, ": ", missing.size(),
            " parameter(s) of the model missing from the file: ", name_list(missing));

  std::unordered_set<std::string> known;
  for (auto& p : params) known.insert(p.first);
  std::vector<std::string> unexpected;
  for (const auto& entry : file.tensors) {
    const std::string& name = entry.first;
    if (!starts_with(name, prefix) || known.count(name)) continue;
    bool ignored = false;
    for (const std::string& ig : opt.ignore_prefixes) ignored = ignored || starts_with(name, ig);
    if (!ignored) unexpected.push_back(name);
  }
  FPA_CHECK(unexpected.empty(), src, ": ", unexpected.size(), " tensor(s) under '", prefix,
            "' that the model does not have: ", name_list(unexpected));

  for (auto& [param, t] : pairs) copy_into(*param, *t);
}

}  // namespace fpa::nn
