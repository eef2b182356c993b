// cpu_paint.cpp: the fused painting (ops/backend/backend.h paint_forward, paint_backward): the
// T-step delta / Hebbian / Oja recurrence over N independent S x S fast weight matrices, with the
// painter's key softmax and rate sigmoid, forward and backward. Not here: the composed twin and the
// differentiable op (ops/paint.cpp).
//
// One thread paints one matrix at a time (OpenMP over N), in double whatever the data type;
// the backward recomputes W from checkpoints every ceil(sqrt(T)) steps. The design, and the
// options it was chosen from: ops/backend/PAINT_KERNELS.md.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"
#include "ops/backend/cpu/cpu_math.h"

namespace fpa::cpu {
namespace {

// e^x: std::exp for float64 data; for float32 data the vectorising exp_d (1e-11 relative),
// far below what float32 outputs can show.
template <typename T>
FPA_VINLINE double exp_of(double x) {
  if constexpr (sizeof(T) == sizeof(float)) return vmath::exp_d(x);
  else return std::exp(x);
}

FPA_VINLINE double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// y (S) += M^T x for M (S, S), row by row.
void add_matvec_t(const double* M, const double* x, int64_t S, double* y) {
  for (int64_t i = 0; i < S; ++i) {
    const double* Mi = M + i * S;
    const double xi = x[i];
#pragma omp simd
    for (int64_t j = 0; j < S; ++j) y[j] += Mi[j] * xi;
  }
}

template <typename T>
void softmax_in_place(double* x, int64_t n) {
  double m = x[0];
  for (int64_t j = 1; j < n; ++j) m = std::max(m, x[j]);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] = exp_of<T>(x[j] - m);
  double z = 0;
  for (int64_t j = 0; j < n; ++j) z += x[j];
  const double inv = 1.0 / z;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) x[j] *= inv;
}

// y (n) = the gradient w.r.t. softmax's input, given p = softmax's output and dp (in place allowed).
void softmax_backward(const double* p, const double* dp, int64_t n, double* y) {
  const double s = dot(dp, p, n);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] = p[j] * (dp[j] - s);
}

// One thread's buffers, reused for every matrix it paints. Vectors are (T, S) row-major.
struct Workspace {
  std::vector<double> key, val, rate;  // the rule's inputs after the front end (rate expanded to S)
  std::vector<double> dkey, dval, drate;  // one step's gradients w.r.t. them (S)
  std::vector<double> p, dp;              // oja's softmax output and its gradient (S)
  std::vector<double> W, G;               // (S, S): the matrix and dL/dW
  std::vector<double> checkpoints;        // (ceil(T/c), S, S): W before steps 0, c, 2c, ...
  std::vector<double> states;             // (c, S, S): W before each step of one chunk
  // backward: with G; chunk > 0: with checkpoints and states for chunks of that many steps.
  Workspace(const PaintGeom& g, bool backward, int64_t chunk) {
    const int64_t TS = g.T * g.S, SS = g.S * g.S;
    key.resize(TS), val.resize(TS), rate.resize(TS);
    dkey.resize(g.S), dval.resize(g.S), drate.resize(g.S), p.resize(g.S), dp.resize(g.S);
    W.resize(SS);
    if (backward) G.resize(SS);
    if (chunk > 0) checkpoints.resize((g.T + chunk - 1) / chunk * SS), states.resize(chunk * SS);
  }
};

// Matrix n's step inputs into ws.key, ws.val, ws.rate (T, S), the front end applied.
template <typename T>
void load_inputs(const PaintGeom& g, int64_t n, const T* k, const T* v, const T* beta, Workspace& ws) {
  const int64_t S = g.S;
  for (int64_t t = 0; t < g.T; ++t) {
    const int64_t row = t * g.N + n;  // (t, n) of a (T, N, .) tensor
    double *key = &ws.key[t * S], *val = &ws.val[t * S], *rate = &ws.rate[t * S];
    for (int64_t j = 0; j < S; ++j) key[j] = double(k[row * S + j]), val[j] = double(v[row * S + j]);
    if (g.key_softmax) softmax_in_place<T>(key, S);
    if (g.rule == PaintRule::hebb) continue;
    for (int64_t i = 0; i < g.rate_dim; ++i) {
      double b = double(beta[row * g.rate_dim + i]);
      rate[i] = g.rate_sigmoid ? 1.0 / (1.0 + exp_of<T>(-b)) : b;
    }
    if (g.rate_dim == 1) std::fill(rate + 1, rate + S, rate[0]);
  }
}

// Step t: to (S, S) = from after the step (in place when from == to). `plain`: the delta rule's
// first step without w0, W += v k^T (from is 0). One pass over the rows for delta and hebb.
template <typename T>
void step_forward(const PaintGeom& g, int64_t t, bool plain, Workspace& ws, const double* from, double* to) {
  const int64_t S = g.S;
  const double *key = &ws.key[t * S], *val = &ws.val[t * S], *rate = &ws.rate[t * S];
  const double* col = key;  // to = from + u col^T, u_i computed row by row
  if (g.rule == PaintRule::oja) {  // col = softmax(key - from^T val) (at step 1 without w0, from = 0)
    double* p = ws.p.data();
    std::fill(p, p + S, 0.0);
    add_matvec_t(from, val, S, p);
    for (int64_t j = 0; j < S; ++j) p[j] = key[j] - p[j];
    softmax_in_place<T>(p, S);
    col = p;
  }
  for (int64_t i = 0; i < S; ++i) {
    const double* Fi = from + i * S;
    double* Ti = to + i * S;
    double ui = val[i];  // hebb, plain delta
    if (g.rule == PaintRule::oja) ui = rate[i] * val[i];
    else if (g.rule == PaintRule::delta && !plain) ui = rate[i] * (val[i] - dot(Fi, key, S));
#pragma omp simd
    for (int64_t j = 0; j < S; ++j) Ti[j] = Fi[j] + ui * col[j];
  }
}

// Step t backwards: from G = dL/dW_t and W = W_{t-1} (unused by hebb), ws.dkey, ws.dval,
// ws.drate (S) get the step's gradients w.r.t. the rule's inputs, and G becomes dL/dW_{t-1}.
// One pass over the rows of G and W for delta and hebb, two for oja (its softmax needs all of W^T v).
template <typename T>
void step_backward(const PaintGeom& g, int64_t t, bool plain, Workspace& ws, const double* W, double* G) {
  const int64_t S = g.S;
  const double *key = &ws.key[t * S], *val = &ws.val[t * S], *rate = &ws.rate[t * S];
  double *dkey = ws.dkey.data(), *dval = ws.dval.data(), *drate = ws.drate.data();
  std::fill(dkey, dkey + S, 0.0), std::fill(drate, drate + S, 0.0);
  if (g.rule == PaintRule::hebb || (g.rule == PaintRule::delta && plain)) {  // W_t = W_{t-1} + val key^T
    for (int64_t i = 0; i < S; ++i) {
      const double* Gi = G + i * S;
      const double vi = val[i];
      dval[i] = dot(Gi, key, S);
#pragma omp simd
      for (int64_t j = 0; j < S; ++j) dkey[j] += Gi[j] * vi;
    }
    return;
  }
  if (g.rule == PaintRule::delta) {  // u = rate (val - W key); W_t = W + u key^T
    for (int64_t i = 0; i < S; ++i) {
      const double* Wi = W + i * S;
      double* Gi = G + i * S;
      const double du = dot(Gi, key, S), err = val[i] - dot(Wi, key, S);
      const double ui = rate[i] * err, ai = rate[i] * du;  // ai = dL/dval_i = -dL/d(W key)_i
      drate[i] = du * err, dval[i] = ai;
#pragma omp simd
      for (int64_t j = 0; j < S; ++j) dkey[j] += Gi[j] * ui - Wi[j] * ai, Gi[j] -= ai * key[j];
    }
    return;
  }
  // oja: p = softmax(key - W^T val), u = rate val; W_t = W + u p^T
  double *p = ws.p.data(), *dp = ws.dp.data();
  std::fill(p, p + S, 0.0), std::fill(dp, dp + S, 0.0);
  add_matvec_t(W, val, S, p);
  for (int64_t j = 0; j < S; ++j) p[j] = key[j] - p[j];
  softmax_in_place<T>(p, S);
  for (int64_t i = 0; i < S; ++i) {  // dL/du_i = G_i p; dp = G^T u
    const double* Gi = G + i * S;
    const double du = dot(Gi, p, S), ui = rate[i] * val[i];
    drate[i] = du * val[i], dval[i] = rate[i] * du;
#pragma omp simd
    for (int64_t j = 0; j < S; ++j) dp[j] += Gi[j] * ui;
  }
  softmax_backward(p, dp, S, dkey);  // dL/d(key - W^T val)
  for (int64_t i = 0; i < S; ++i) {   // dval -= W dkey; G -= val dkey^T
    const double* Wi = W + i * S;
    double* Gi = G + i * S;
    const double vi = val[i];
    dval[i] -= dot(Wi, dkey, S);
#pragma omp simd
    for (int64_t j = 0; j < S; ++j) Gi[j] -= vi * dkey[j];
  }
}

// Step t's gradients w.r.t. the raw inputs (through the front end) into dk, dv, dbeta.
template <typename T>
void store_step_gradients(const PaintGeom& g, int64_t n, int64_t t, Workspace& ws, T* dk, T* dv, T* dbeta) {
  const int64_t S = g.S, row = t * g.N + n;
  const double *key = &ws.key[t * S], *rate = &ws.rate[t * S];
  double* dkey = ws.dkey.data();
  if (g.key_softmax) softmax_backward(key, dkey, S, dkey);
  for (int64_t j = 0; j < S; ++j) dk[row * S + j] = T(dkey[j]), dv[row * S + j] = T(ws.dval[j]);
  if (g.rule == PaintRule::hebb || !dbeta) return;
  auto raw_grad = [&](double d, double r) { return g.rate_sigmoid ? d * r * (1.0 - r) : d; };
  if (g.rate_dim == 1) {
    double s = 0;
    for (int64_t i = 0; i < S; ++i) s += ws.drate[i];
    dbeta[row] = T(raw_grad(s, rate[0]));
  } else {
    for (int64_t i = 0; i < S; ++i) dbeta[row * S + i] = T(raw_grad(ws.drate[i], rate[i]));
  }
}

int64_t chunk_length(int64_t T) { return std::max<int64_t>(1, int64_t(std::ceil(std::sqrt(double(T))))); }

// W (S, S) = w0 of matrix n, or 0.
template <typename T>
void start_matrix(const PaintGeom& g, int64_t n, const T* w0, double* W) {
  const int64_t SS = g.S * g.S;
  for (int64_t e = 0; e < SS; ++e) W[e] = w0 ? double(w0[n * SS + e]) : 0.0;
}

// The matrices split over threads when there is enough work for more than one.
bool parallel_over_matrices(const PaintGeom& g) { return g.N > 1 && g.T * g.N * g.S * g.S > kParallelGrain; }

template <typename T>
void forward_typed(const PaintGeom& g, const T* k, const T* v, const T* beta, const T* w0, T* out) {
  const int64_t SS = g.S * g.S;
#pragma omp parallel if (parallel_over_matrices(g))
  {
    Workspace ws(g, false, 0);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      load_inputs(g, n, k, v, beta, ws);
      start_matrix(g, n, w0, ws.W.data());
      for (int64_t t = 0; t < g.T; ++t) step_forward<T>(g, t, t == 0 && !w0, ws, ws.W.data(), ws.W.data());
      for (int64_t e = 0; e < SS; ++e) out[n * SS + e] = T(ws.W[e]);
    }
  }
}

template <typename T>
void backward_typed(const PaintGeom& g, const T* k, const T* v, const T* beta, const T* w0, const T* dW, T* dk,
                    T* dv, T* dbeta, T* dw0) {
  const int64_t SS = g.S * g.S, c = chunk_length(g.T), chunks = (g.T + c - 1) / c;
  const bool hebb = g.rule == PaintRule::hebb;
#pragma omp parallel if (parallel_over_matrices(g))
  {
    Workspace ws(g, true, hebb ? 0 : c);
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      load_inputs(g, n, k, v, beta, ws);
      double* G = ws.G.data();  // dL/dW_t, from t = T down to the start
      for (int64_t e = 0; e < SS; ++e) G[e] = double(dW[n * SS + e]);
      if (hebb) {
        for (int64_t t = g.T - 1; t >= 0; --t) {
          step_backward<T>(g, t, false, ws, nullptr, G);
          store_step_gradients(g, n, t, ws, dk, dv, dbeta);
        }
      } else {
        // Checkpoints: W before steps 0, c, ..., (chunks - 1) c.
        double* W = ws.W.data();
        start_matrix(g, n, w0, W);
        for (int64_t t = 0; t <= (chunks - 1) * c; ++t) {
          if (t % c == 0) std::copy(W, W + SS, &ws.checkpoints[t / c * SS]);
          if (t < (chunks - 1) * c) step_forward<T>(g, t, t == 0 && !w0, ws, W, W);
        }
        for (int64_t j = chunks - 1; j >= 0; --j) {
          const int64_t t0 = j * c, t1 = std::min(g.T, t0 + c);
          double* states = ws.states.data();  // states[t - t0] = W_{t-1}
          std::copy(&ws.checkpoints[j * SS], &ws.checkpoints[(j + 1) * SS], states);
          for (int64_t t = t0; t + 1 < t1; ++t)
            step_forward<T>(g, t, t == 0 && !w0, ws, states + (t - t0) * SS, states + (t - t0 + 1) * SS);
          for (int64_t t = t1 - 1; t >= t0; --t) {
            step_backward<T>(g, t, t == 0 && !w0, ws, states + (t - t0) * SS, G);
            store_step_gradients(g, n, t, ws, dk, dv, dbeta);
          }
        }
      }
      if (dw0)
        for (int64_t e = 0; e < SS; ++e) dw0[n * SS + e] = T(G[e]);
    }
  }
}

}  // namespace

void paint_forward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                   void* W) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    forward_typed(g, static_cast<const T*>(k), static_cast<const T*>(v), static_cast<const T*>(beta),
                  static_cast<const T*>(w0), static_cast<T*>(W));
  });
}

void paint_backward(DType t, const PaintGeom& g, const void* k, const void* v, const void* beta, const void* w0,
                    const void* dW, void* dk, void* dv, void* dbeta, void* dw0) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    backward_typed(g, static_cast<const T*>(k), static_cast<const T*>(v), static_cast<const T*>(beta),
                   static_cast<const T*>(w0), static_cast<const T*>(dW), static_cast<T*>(dk), static_cast<T*>(dv),
                   static_cast<T*>(dbeta), static_cast<T*>(dw0));
  });
}

}  // namespace fpa::cpu
