// parse_number.h: whole-string number parsing for flags, config values and metadata. Each
// returns false (leaving *out alone) unless the entire non-empty string is one number in range,
// with no spaces, no '+' and, for integers, no fraction or exponent ("5abc", "1e3", " 5" and
// "99999999999999999999" are all refused); the callers word the error, naming their flag or key.
// Doubles accept "nan" and "inf": callers that need a finite value check it.
#pragma once
#include <charconv>
#include <cstdint>
#include <string>
#include <system_error>

namespace fpa {

namespace detail {
template <typename T>
bool parse_whole(const std::string& s, T* out) {
  T r{};
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, r);
  if (s.empty() || ec != std::errc() || ptr != end) return false;
  *out = r;
  return true;
}
}  // namespace detail

inline bool parse_int64(const std::string& s, int64_t* out) { return detail::parse_whole(s, out); }
inline bool parse_uint64(const std::string& s, uint64_t* out) { return detail::parse_whole(s, out); }
inline bool parse_double(const std::string& s, double* out) { return detail::parse_whole(s, out); }

// The shortest text that reads back as exactly v, in plain notation unless that is much longer
// ("0.0002", "10", "450000", but "1e-08"; never "0.00020000000000000001").
inline std::string shortest_decimal(double v) {
  char fixed[400], sci[40];
  auto f = std::to_chars(fixed, fixed + sizeof fixed, v, std::chars_format::fixed);
  auto e = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
  if (e.ec != std::errc()) return f.ec == std::errc() ? std::string(fixed, f.ptr) : std::string("?");
  if (f.ec == std::errc() && f.ptr - fixed <= e.ptr - sci + 3) return std::string(fixed, f.ptr);
  return std::string(sci, e.ptr);
}

}  // namespace fpa
