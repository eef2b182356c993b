// cuda_math.cuh: the transcendental functions the CUDA kernels share (exp, tanh, sigmoid),
// float ones computed in double and rounded once, as the CPU backend's cpu_math.h does, so
// both backends agree to the last bit or one ulp. Used by cuda_elementwise.cu (the unary
// maps), cuda_local_attention.cu, cuda_paint.cuh and cuda_lstm.cu (their softmaxes and gates).
#pragma once
#include <cmath>

namespace fpa::gpu {

__device__ __forceinline__ float exp_of(float v) { return float(exp(double(v))); }
__device__ __forceinline__ double exp_of(double v) { return exp(v); }
__device__ __forceinline__ float tanh_of(float v) { return float(tanh(double(v))); }
__device__ __forceinline__ double tanh_of(double v) { return tanh(v); }
__device__ __forceinline__ float sigmoid_of(float v) { return float(1.0 / (1.0 + exp(-double(v)))); }
__device__ __forceinline__ double sigmoid_of(double v) { return 1.0 / (1.0 + exp(-v)); }

}  // namespace fpa::gpu
