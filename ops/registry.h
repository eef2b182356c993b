// registry.h: the list of registered ops (`fpa ops` prints it; the tests check that every
// differentiable op has gradient and second-order gradient tests). Each op family file
// registers its ops with FPA_REGISTER_OPS at namespace scope.
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace fpa {

struct OpInfo {
  std::string name;
  bool differentiable;
  std::string family;  // the ops/*.cpp file it lives in
};

const std::vector<OpInfo>& registered_ops();  // sorted by name
// Registers each {name, differentiable} of `family`.
int register_ops(const char* family, std::initializer_list<std::pair<const char*, bool>> ops);

}  // namespace fpa

#define FPA_CONCAT_(a, b) a##b
#define FPA_CONCAT(a, b) FPA_CONCAT_(a, b)
// FPA_REGISTER_OPS("family", {"name", differentiable}, ...): a family's ops, in one statement.
#define FPA_REGISTER_OPS(family, ...) \
  static int FPA_CONCAT(fpa_ops_reg_, __LINE__) = ::fpa::register_ops(family, {__VA_ARGS__})
