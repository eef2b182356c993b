// dtype.h: element types and devices a tensor can have.
#pragma once
#include <cstddef>

namespace fpa {

enum class DType { f32, f64 };
enum class Device { cpu, cuda };

inline size_t dtype_size(DType t) { return t == DType::f32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::f32 ? "float32" : "float64"; }
inline const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

}  // namespace fpa
