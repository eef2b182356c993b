// registry.h: the list of registered ops (`fpa ops` prints it; the tests check that every
// differentiable op has gradient and second-order gradient tests). Each op family file
// registers its ops with FPA_REGISTER_OPS at namespace scope.
#pragma once
#include <string>
#include <vector>

namespace fpa {

struct OpInfo {
  std::string name;
  bool differentiable;
  std::string family;  // the ops/*.cpp file it lives in
};

const std::vector<OpInfo>& registered_ops();  // sorted by name
int register_op(const OpInfo& info);

}  // namespace fpa

#define FPA_CONCAT_(a, b) a##b
#define FPA_CONCAT(a, b) FPA_CONCAT_(a, b)
// FPA_REGISTER_OP("name", differentiable, "family")
#define FPA_REGISTER_OP(name, diff, family) \
  static int FPA_CONCAT(fpa_op_reg_, __LINE__) = ::fpa::register_op({name, diff, family})
