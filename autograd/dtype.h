// dtype.h: element types and devices a tensor can have.
#pragma once
#include <cstddef>

namespace fpa {

enum class DType { f32, f64 };

// The devices, listed once: the enum, their names and their count (the backend registry has a slot
// per device, ops/backend/backend.cpp) all come from this list. A new backend adds its device here.
#define FPA_DEVICE_LIST(X) X(cpu) X(cuda)

#define FPA_DEVICE_ENUMERATOR(d) d,
enum class Device { FPA_DEVICE_LIST(FPA_DEVICE_ENUMERATOR) };
#undef FPA_DEVICE_ENUMERATOR
#define FPA_DEVICE_NAME(d) #d,
inline constexpr const char* kDeviceNames[] = {FPA_DEVICE_LIST(FPA_DEVICE_NAME)};
#undef FPA_DEVICE_NAME
inline constexpr int kDeviceCount = int(sizeof(kDeviceNames) / sizeof(kDeviceNames[0]));

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::f32 ? "float32" : "float64"; }
inline const char* device_name(Device d) {
  const int i = static_cast<int>(d);
  return i >= 0 && i < kDeviceCount ? kDeviceNames[i] : "an unknown device";
}

}  // namespace fpa
