// cpu_lstm.cpp: the gate math of one LSTM step, forward and backward, in one pass each (the
// GEMMs around it are ops/lstm_recurrence.cpp's, through Backend::gemm).
//
// A row b of gates (B, 4H) holds the blocks i, f, g, o, each H wide; element j of a row reads
// gates[i|f|g|o][j], c_prev[j], c[j] and nothing else, so the loops over j are plain
// `#pragma omp simd` loops and rows run in parallel. Every element is computed the same way on
// any thread, so results do not depend on the thread count. Float sigmoid and tanh are
// cpu_math.h's (the bits of the composed ops' sigmoid and tanh); double uses libm, as there.
//
// Forward:  i, f, o = sigmoid(.), g = tanh(.);  c = f c_prev + i g;  h = o tanh(c).
// Backward: dc += dh o (1 - tanh(c)^2);  di = dc g;  df = dc c_prev;  dg = dc i;  do = dh tanh(c);
//           through the nonlinearities: i (1 - i) di, f (1 - f) df, (1 - g^2) dg, o (1 - o) do;
//           dc_prev = dc f.
#include <cmath>

#include "ops/backend/cpu/cpu_kernels.h"
#include "ops/backend/cpu/cpu_math.h"

namespace fpa::cpu {
namespace {

FPA_VINLINE float sigmoid_of(float v) { return vmath::sigmoid_f(v); }
FPA_VINLINE double sigmoid_of(double v) { return 1.0 / (1.0 + std::exp(-v)); }
FPA_VINLINE float tanh_of(float v) { return vmath::tanh_f(v); }
FPA_VINLINE double tanh_of(double v) { return std::tanh(v); }

template <typename T>
void gates_forward(int64_t B, int64_t H, T* gates, const T* c_prev, T* c, T* h) {
#pragma omp parallel for schedule(static) if (B * H > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    T* gi = gates + b * 4 * H;  // (4H): i, f, g, o
    T *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    const T* cp = c_prev + b * H;  // (H)
    T *cr = c + b * H, *hr = h + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T i = sigmoid_of(gi[j]), f = sigmoid_of(gf[j]), g = tanh_of(gg[j]), o = sigmoid_of(go[j]);
      T cc = f * cp[j] + i * g;
      gi[j] = i, gf[j] = f, gg[j] = g, go[j] = o;
      cr[j] = cc;
      hr[j] = o * tanh_of(cc);
    }
  }
}

template <typename T>
void gates_backward(int64_t B, int64_t H, const T* gates, const T* c_prev, const T* c, const T* dh, T* dc,
                    T* dgates) {
#pragma omp parallel for schedule(static) if (B * H > kParallelGrain)
  for (int64_t b = 0; b < B; ++b) {
    const T* gi = gates + b * 4 * H;  // (4H): activations i, f, g, o
    const T *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
    const T *cp = c_prev + b * H, *cr = c + b * H, *dhr = dh + b * H;  // (H)
    T* dcr = dc + b * H;
    T* di = dgates + b * 4 * H;  // (4H)
    T *df = di + H, *dg = di + 2 * H, *dout = di + 3 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      T i = gi[j], f = gf[j], g = gg[j], o = go[j], tc = tanh_of(cr[j]);
      T dcc = dcr[j] + dhr[j] * o * (T(1) - tc * tc);
      di[j] = dcc * g * i * (T(1) - i);
      df[j] = dcc * cp[j] * f * (T(1) - f);
      dg[j] = dcc * i * (T(1) - g * g);
      dout[j] = dhr[j] * tc * o * (T(1) - o);
      dcr[j] = dcc * f;
    }
  }
}

}  // namespace

void lstm_gates_forward(DType t, int64_t B, int64_t H, void* gates, const void* c_prev, void* c, void* h) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    gates_forward(B, H, static_cast<T*>(gates), static_cast<const T*>(c_prev), static_cast<T*>(c),
                  static_cast<T*>(h));
  });
}

void lstm_gates_backward(DType t, int64_t B, int64_t H, const void* gates, const void* c_prev, const void* c,
                         const void* dh, void* dc, void* dgates) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    gates_backward(B, H, static_cast<const T*>(gates), static_cast<const T*>(c_prev), static_cast<const T*>(c),
                   static_cast<const T*>(dh), static_cast<T*>(dc), static_cast<T*>(dgates));
  });
}

}  // namespace fpa::cpu
