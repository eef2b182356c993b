// cuda_lstm.cu: the gate math of one LSTM step on CUDA, forward and backward (ops/backend/backend.h
// lstm_gates_forward / lstm_gates_backward; the GEMMs around it are ops/lstm_recurrence.cpp's).
// The CPU twin is ops/backend/cpu/cpu_lstm.cpp, whose formulas these kernels repeat:
//   forward:  i, f, o = sigmoid(.), g = tanh(.);  c = f c_prev + i g;  h = o tanh(c)
//   backward: dc += dh o (1 - tanh(c)^2);  di = dc g i (1 - i);  df = dc c_prev f (1 - f);
//             dg = dc i (1 - g^2);  do = dh tanh(c) o (1 - o);  dc_prev = dc f
// One grid-stride loop over the B*H elements (b, j); element (b, j) reads the four gate blocks
// of row b at column j and nothing else, so threads are independent and the result does not
// depend on the launch. Float sigmoid and tanh are cuda_math.cuh's, those of the composed
// twin's ops (cuda_elementwise.cu).
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_math.cuh"

namespace fpa::gpu {
namespace {

// gates (B, 4H): preactivations in, activations out; c_prev, c, h (B, H).
template <typename T>
__global__ void lstm_gates_forward_kernel(int64_t B, int64_t H, T* gates, const T* c_prev, T* c, T* h) {
  FPA_GRID_STRIDE_LOOP(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    T* gi = gates + b * 4 * H + j;  // gi[0], gi[H], gi[2H], gi[3H]: i, f, g, o at column j
    const T i = sigmoid_of(gi[0]), f = sigmoid_of(gi[H]), g = tanh_of(gi[2 * H]), o = sigmoid_of(gi[3 * H]);
    const T cc = f * c_prev[e] + i * g;
    gi[0] = i, gi[H] = f, gi[2 * H] = g, gi[3 * H] = o;
    c[e] = cc;
    h[e] = o * tanh_of(cc);
  }
}

// gates (B, 4H) activations; c_prev, c, dh (B, H); dc (B, H) in: dL/dc, out: dL/dc_prev;
// dgates (B, 4H) overwritten.
template <typename T>
__global__ void lstm_gates_backward_kernel(int64_t B, int64_t H, const T* gates, const T* c_prev, const T* c,
                                           const T* dh, T* dc, T* dgates) {
  FPA_GRID_STRIDE_LOOP(e, B * H) {
    const int64_t b = e / H, j = e - b * H;
    const T* gi = gates + b * 4 * H + j;
    T* di = dgates + b * 4 * H + j;
    const T i = gi[0], f = gi[H], g = gi[2 * H], o = gi[3 * H], tc = tanh_of(c[e]), dhe = dh[e];
    const T dcc = dc[e] + dhe * o * (T(1) - tc * tc);
    di[0] = dcc * g * i * (T(1) - i);
    di[H] = dcc * c_prev[e] * f * (T(1) - f);
    di[2 * H] = dcc * i * (T(1) - g * g);
    di[3 * H] = dhe * tc * o * (T(1) - o);
    dc[e] = dcc * f;
  }
}

}  // namespace

void lstm_gates_forward(DType t, int64_t B, int64_t H, void* gates, const void* c_prev, void* c, void* h) {
  if (B == 0 || H == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("lstm_gates_forward", lstm_gates_forward_kernel<T>, blocks_for(B * H), kThreads, B, H,
           static_cast<T*>(gates), static_cast<const T*>(c_prev), static_cast<T*>(c), static_cast<T*>(h));
  });
}

void lstm_gates_backward(DType t, int64_t B, int64_t H, const void* gates, const void* c_prev, const void* c,
                         const void* dh, void* dc, void* dgates) {
  if (B == 0 || H == 0) return;
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("lstm_gates_backward", lstm_gates_backward_kernel<T>, blocks_for(B * H), kThreads, B, H,
           static_cast<const T*>(gates), static_cast<const T*>(c_prev), static_cast<const T*>(c),
           static_cast<const T*>(dh), static_cast<T*>(dc), static_cast<T*>(dgates));
  });
}

}  // namespace fpa::gpu
