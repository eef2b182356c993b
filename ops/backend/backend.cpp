// backend.cpp: the device -> backend registry, and the calling thread's GEMM precision class.
#include "ops/backend/backend.h"

#include <cmath>
#include <cstring>

#include "autograd/error.h"

namespace fpa {

// Built-in backends, looked up on first use (no static-initialisation order issues).
const Backend& cpu_backend();
#ifdef FPA_WITH_CUDA
const Backend* cuda_backend_if_usable();  // null when no GPU can be used
#endif

// The registry: one slot per device of autograd/dtype.h's list, the built-ins filled in.
static const Backend*& slot(Device d) {
  static const Backend* table[kDeviceCount] = {};
  static const bool builtins = [] {
    table[static_cast<int>(Device::cpu)] = &cpu_backend();
#ifdef FPA_WITH_CUDA
    table[static_cast<int>(Device::cuda)] = cuda_backend_if_usable();
#endif
    return true;
  }();
  (void)builtins;
  const int i = static_cast<int>(d);
  FPA_CHECK(i >= 0 && i < kDeviceCount, "backend registry: device number ", i, " is not in autograd/dtype.h's list");
  return table[i];
}

void register_backend(Device device, const Backend* b) { slot(device) = b; }

bool has_backend(Device device) { return slot(device) != nullptr; }

std::string missing_backend_reason(Device device) {
  if (slot(device)) return "";
#ifdef FPA_WITH_CUDA
  if (device == Device::cuda) return "no usable GPU was found (the CUDA backend is compiled in)";
#else
  if (device == Device::cuda) return "this build has no CUDA backend (rebuild where nvcc is installed)";
#endif
  return "no backend is registered for it";
}

const Backend& backend(Device device) {
  const Backend* b = slot(device);
  FPA_CHECK(b != nullptr, "device ", device_name(device), " is not available: ", missing_backend_reason(device));
  return *b;
}

Device device_named(const std::string& name, const char* flag) {
  std::string names;
  for (int i = 0; i < kDeviceCount; ++i) {
    if (name == kDeviceNames[i]) return static_cast<Device>(i);
    names += std::string(i == 0 ? "" : i + 1 == kDeviceCount ? " or " : ", ") + kDeviceNames[i];
  }
  fail(flag, " must be ", names, ", got '", name, "'");
}

const std::vector<const char*>& primitive_names() {
  static const std::vector<const char*> names = {
#define FPA_PRIMITIVE(fn, ret, params) #fn,
#include "ops/backend/primitives.def"
  };
  return names;
}

bool is_primitive(const char* name) {
  for (const char* p : primitive_names())
    if (std::strcmp(p, name) == 0) return true;
  return false;
}

static thread_local GemmPrecision current_gemm_precision = GemmPrecision::matmul;

GemmPrecision gemm_precision() { return current_gemm_precision; }

GemmPrecisionScope::GemmPrecisionScope(GemmPrecision p) : saved_(current_gemm_precision) {
  current_gemm_precision = p;
}

GemmPrecisionScope::~GemmPrecisionScope() { current_gemm_precision = saved_; }

void adam_bias_terms(double lr, double beta1, double beta2, int64_t step, double* step_size, double* bc2_sqrt) {
  const double bc1 = 1.0 - std::pow(beta1, double(step)), bc2 = 1.0 - std::pow(beta2, double(step));
  *step_size = lr / bc1;
  *bc2_sqrt = std::sqrt(bc2);
}

}  // namespace fpa
