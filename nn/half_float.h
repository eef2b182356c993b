// half_float.h: 16-bit floats widened to float32, exactly (every float16 and bfloat16 value
// is a float32): IEEE float16 (1 sign, 5 exponent, 10 mantissa bits; subnormals, infinities
// and NaNs kept) and bfloat16 (the top half of a float32). The safetensors reader
// (nn/safetensors.cpp) loads F16 and BF16 tensors through them. Not here: narrowing to 16 bits
// (the engine computes and saves in float32 and float64 only).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace fpa::nn {

inline float float_from_bits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bfloat_to_float(uint16_t h) { return float_from_bits(uint32_t(h) << 16); }

inline float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  if (exp == 0x1F) return float_from_bits(sign | 0x7F800000u | (mant << 13));  // inf, nan
  if (exp != 0) return float_from_bits(sign | ((exp + 112) << 23) | (mant << 13));  // rebias 15 -> 127
  float f = std::ldexp(float(mant), -24);  // zero or subnormal: mant * 2^-24
  return sign ? -f : f;
}

}  // namespace fpa::nn
