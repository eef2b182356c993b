// parse_number.h: whole-string number parsing for flags, config values and metadata. Each
// returns false (leaving *out alone) unless the entire non-empty string is one number; the
// callers word the error, naming their flag or key.
#pragma once
#include <cstdint>
#include <string>

namespace fpa {

inline bool parse_int64(const std::string& s, int64_t* out) {
  size_t used = 0;
  int64_t r = 0;
  try {
    r = std::stoll(s, &used);
  } catch (...) {
    return false;
  }
  if (s.empty() || used != s.size()) return false;
  *out = r;
  return true;
}

inline bool parse_double(const std::string& s, double* out) {
  size_t used = 0;
  double r = 0;
  try {
    r = std::stod(s, &used);
  } catch (...) {
    return false;
  }
  if (s.empty() || used != s.size()) return false;
  *out = r;
  return true;
}

}  // namespace fpa
