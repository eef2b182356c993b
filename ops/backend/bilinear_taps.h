// bilinear_taps.h: where an output row (or column) of a bilinear resize reads its input, shared
// by the CPU and CUDA backends so that both resize by the same rule.
//
// PyTorch's bilinear rule without aligned corners: output o of `out` samples the input at
// src = scale * (o + 0.5) - 0.5, scale = in / out, clamped below at 0; it reads inputs i0 =
// min(floor(src), in - 1) and i1 = i0 + 1 (i0 itself at the last input), weighted l0 = 1 - l1
// and l1 = src - i0. An output's value is l0h * (l0w x[i0h, i0w] + l1w x[i0h, i1w]) +
// l1h * (l0w x[i1h, i0w] + l1w x[i1h, i1w]), summed in that order.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define FPA_HOST_DEVICE __host__ __device__
#else
#define FPA_HOST_DEVICE
#endif

namespace fpa {

template <typename T>
struct BilinearTap {
  int64_t i0, i1;  // the two inputs read
  T l0, l1;        // their weights
};

template <typename T>
FPA_HOST_DEVICE inline BilinearTap<T> bilinear_tap(int64_t o, T scale, int64_t in) {
  T src = scale * (T(o) + T(0.5)) - T(0.5);
  if (src < T(0)) src = T(0);
  int64_t i0 = static_cast<int64_t>(src);
  if (i0 > in - 1) i0 = in - 1;
  const int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
  T l1 = src - T(i0);
  if (l1 > T(1)) l1 = T(1);
  return {i0, i1, T(1) - l1, l1};
}

// scale = in / out in the data type, as PyTorch computes it.
template <typename T>
FPA_HOST_DEVICE inline T bilinear_scale(int64_t in, int64_t out) {
  return T(in) / T(out);
}

}  // namespace fpa
