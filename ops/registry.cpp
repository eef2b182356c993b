// registry.cpp: storage for the op registry.
#include "ops/registry.h"

#include <algorithm>

namespace fpa {

static std::vector<OpInfo>& ops_list() {
  static std::vector<OpInfo> v;
  return v;
}

static void register_op(const OpInfo& info) {
  ops_list().push_back(info);
}

int register_ops(const char* family, std::initializer_list<std::pair<const char*, bool>> ops) {
  for (const auto& [name, differentiable] : ops) register_op({name, differentiable, family});
  return 0;
}

const std::vector<OpInfo>& registered_ops() {
  auto& v = ops_list();
  std::sort(v.begin(), v.end(), [](const OpInfo& a, const OpInfo& b) { return a.name < b.name; });
  return v;
}

}  // namespace fpa
