// error.h: the one exception type of the library and the FPA_CHECK macro that raises it.
// Every user-facing failure (bad shape, dtype, device, file) is an fpa::Error whose
// message names the op or file and the offending shapes; nothing aborts the process.
#pragma once
#include <fmt/format.h>

#include <iterator>
#include <stdexcept>
#include <string>

namespace fpa {

struct Error : std::runtime_error {
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Builds a message from pieces that {fmt} formats (each as "{}"): fail("conv2d: x ", shape, " ...").
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  fmt::memory_buffer message;
  (fmt::format_to(std::back_inserter(message), "{}", parts), ...);
  throw Error(fmt::to_string(message));
}

}  // namespace fpa

#define FPA_CHECK(cond, ...)              \
  do {                                    \
    if (!(cond)) ::fpa::fail(__VA_ARGS__); \
  } while (0)
