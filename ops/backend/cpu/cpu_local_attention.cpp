// cpu_local_attention.cpp: the fused local (kernel x kernel neighbourhood) attention of the
// discriminator, forward and backward, without materialising unfolded keys and values.
//
// Per plane (one batch element and head), maps are (d, H, W) and n = y*W + x. For neighbour j
// at offset (dy, dx) = (j / kernel - r, j % kernel - r), r = kernel / 2, the pairs (n, n + off_j)
// that stay inside the map form a rectangle of rows and columns; every loop below runs over
// that rectangle, with the innermost loop along a row (contiguous, vectorised). Positions
// outside the map act as unfold's zero padding: their similarity is 0 (they still take part
// in the softmax) and their value is 0.
//
// Forward:  sim[j, n] = sum_c q[c, n] k[c, n + off_j];  attn = softmax_j(sim);
//           out[c, n] = sum_j attn[j, n] v[c, n + off_j].
// Backward: dattn[j, n] = sum_c dout[c, n] v[c, n + off_j];
//           dsim = attn (dattn - sum_j attn dattn);
//           dq[c, n] = sum_j dsim[j, n] k[c, n + off_j];
//           dk[c, n + off_j] += dsim[j, n] q[c, n];  dv[c, n + off_j] += attn[j, n] dout[c, n].
// The neighbourhood primitives (what the gradient penalty differentiates twice, ops/
// neighbourhood.cpp) are the same loops one at a time: neighbour_dot = sim, neighbour_sum =
// out's sum over j, neighbour_transpose moves w[J-1-j, n + off_j] to [j, n].
// Planes run in parallel; within a plane the order of every sum is fixed, so results do not
// depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/backend/cpu/cpu_kernels.h"

namespace fpa::cpu {
namespace {

// The rectangle of positions n whose neighbour n + off_j lies inside an H x W map.
struct NeighbourRange {
  int64_t y0, y1, x0, x1;  // rows [y0, y1), columns [x0, x1)
  int64_t offset;          // off_j = dy * W + dx
};

NeighbourRange neighbour_range(int64_t j, int64_t kernel, int64_t H, int64_t W) {
  const int64_t r = kernel / 2, dy = j / kernel - r, dx = j % kernel - r;
  return {std::max<int64_t>(0, -dy), std::min(H, H - dy), std::max<int64_t>(0, -dx), std::min(W, W - dx),
          dy * W + dx};
}

// acc[n] += a[n] * b[n + off] over the rectangle of `nr` (maps of width W).
template <typename T>
void fma_rect(const NeighbourRange& nr, int64_t W, const T* a, const T* b, T* acc) {
  for (int64_t y = nr.y0; y < nr.y1; ++y) {
    const int64_t row = y * W;
    const T* ar = a + row;
    const T* br = b + row + nr.offset;
    T* cr = acc + row;
#pragma omp simd
    for (int64_t x = nr.x0; x < nr.x1; ++x) cr[x] += ar[x] * br[x];
  }
}

// acc[n + off] += a[n] * b[n] over the rectangle of `nr` (the scatter twin of fma_rect).
template <typename T>
void fma_rect_shifted(const NeighbourRange& nr, int64_t W, const T* a, const T* b, T* acc) {
  for (int64_t y = nr.y0; y < nr.y1; ++y) {
    const int64_t row = y * W;
    const T* ar = a + row;
    const T* br = b + row;
    T* cr = acc + row + nr.offset;
#pragma omp simd
    for (int64_t x = nr.x0; x < nr.x1; ++x) cr[x] += ar[x] * br[x];
  }
}

template <typename T>
void forward_plane(int64_t d, int64_t H, int64_t W, int64_t kernel, const T* q, const T* k, const T* v, T* out,
                   T* attn) {
  const int64_t N = H * W, J = kernel * kernel;
  std::fill(attn, attn + J * N, T(0));  // sim (J, N), 0 where the neighbour is outside
  for (int64_t j = 0; j < J; ++j) {
    const NeighbourRange nr = neighbour_range(j, kernel, H, W);
    for (int64_t c = 0; c < d; ++c) fma_rect(nr, W, q + c * N, k + c * N, attn + j * N);
  }
  // softmax over j, per position
  for (int64_t n = 0; n < N; ++n) {
    T mx = attn[n];
    for (int64_t j = 1; j < J; ++j) mx = std::max(mx, attn[j * N + n]);
    T total = 0;
    for (int64_t j = 0; j < J; ++j) total += (attn[j * N + n] = std::exp(attn[j * N + n] - mx));
    const T inv = T(1) / total;
    for (int64_t j = 0; j < J; ++j) attn[j * N + n] *= inv;
  }
  std::fill(out, out + d * N, T(0));
  for (int64_t c = 0; c < d; ++c)
    for (int64_t j = 0; j < J; ++j) fma_rect(neighbour_range(j, kernel, H, W), W, attn + j * N, v + c * N, out + c * N);
}

template <typename T>
void backward_plane(int64_t d, int64_t H, int64_t W, int64_t kernel, const T* q, const T* k, const T* v,
                    const T* attn, const T* dout, T* dq, T* dk, T* dv, std::vector<T>& dsim_buf) {
  const int64_t N = H * W, J = kernel * kernel;
  dsim_buf.assign(J * N, T(0));
  T* dsim = dsim_buf.data();  // (J, N): dattn, then dsim in place
  for (int64_t j = 0; j < J; ++j) {
    const NeighbourRange nr = neighbour_range(j, kernel, H, W);
    for (int64_t c = 0; c < d; ++c) fma_rect(nr, W, dout + c * N, v + c * N, dsim + j * N);
  }
  for (int64_t n = 0; n < N; ++n) {
    T s = 0;
    for (int64_t j = 0; j < J; ++j) s += attn[j * N + n] * dsim[j * N + n];
    for (int64_t j = 0; j < J; ++j) dsim[j * N + n] = attn[j * N + n] * (dsim[j * N + n] - s);
  }
  std::fill(dq, dq + d * N, T(0));
  std::fill(dk, dk + d * N, T(0));
  std::fill(dv, dv + d * N, T(0));
  for (int64_t c = 0; c < d; ++c)
    for (int64_t j = 0; j < J; ++j) {
      const NeighbourRange nr = neighbour_range(j, kernel, H, W);
      fma_rect(nr, W, dsim + j * N, k + c * N, dq + c * N);
      fma_rect_shifted(nr, W, dsim + j * N, q + c * N, dk + c * N);
      fma_rect_shifted(nr, W, attn + j * N, dout + c * N, dv + c * N);
    }
}

// out (J, N) [j, n] = sum_c a[c, n] b[c, n + off_j]: the forward's sim.
template <typename T>
void neighbour_dot_plane(int64_t d, int64_t H, int64_t W, int64_t kernel, const T* a, const T* b, T* out) {
  const int64_t N = H * W, J = kernel * kernel;
  std::fill(out, out + J * N, T(0));
  for (int64_t j = 0; j < J; ++j) {
    const NeighbourRange nr = neighbour_range(j, kernel, H, W);
    for (int64_t c = 0; c < d; ++c) fma_rect(nr, W, a + c * N, b + c * N, out + j * N);
  }
}

// out (d, N) [c, n] = sum_j w[j, n] x[c, n + off_j]: the forward's output sum.
template <typename T>
void neighbour_sum_plane(int64_t d, int64_t H, int64_t W, int64_t kernel, const T* w, const T* x, T* out) {
  const int64_t N = H * W, J = kernel * kernel;
  std::fill(out, out + d * N, T(0));
  for (int64_t c = 0; c < d; ++c)
    for (int64_t j = 0; j < J; ++j) fma_rect(neighbour_range(j, kernel, H, W), W, w + j * N, x + c * N, out + c * N);
}

// out (J, N) [j, n] = w[J-1-j, n + off_j], 0 where n + off_j is outside.
template <typename T>
void neighbour_transpose_plane(int64_t H, int64_t W, int64_t kernel, const T* w, T* out) {
  const int64_t N = H * W, J = kernel * kernel;
  std::fill(out, out + J * N, T(0));
  for (int64_t j = 0; j < J; ++j) {
    const NeighbourRange nr = neighbour_range(j, kernel, H, W);
    const T* src = w + (J - 1 - j) * N + nr.offset;
    T* dst = out + j * N;
    for (int64_t y = nr.y0; y < nr.y1; ++y)
      for (int64_t x = nr.x0; x < nr.x1; ++x) dst[y * W + x] = src[y * W + x];
  }
}

}  // namespace

void neighbour_dot(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* a,
                   const void* b, void* out) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const int64_t map = d * H * W, att = kernel * kernel * H * W;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * map > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p)
      neighbour_dot_plane<T>(d, H, W, kernel, static_cast<const T*>(a) + p * map, static_cast<const T*>(b) + p * map,
                             static_cast<T*>(out) + p * att);
  });
}

void neighbour_sum(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* w,
                   const void* x, void* out) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const int64_t map = d * H * W, att = kernel * kernel * H * W;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * map > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p)
      neighbour_sum_plane<T>(d, H, W, kernel, static_cast<const T*>(w) + p * att, static_cast<const T*>(x) + p * map,
                             static_cast<T*>(out) + p * map);
  });
}

void neighbour_transpose(DType t, int64_t planes, int64_t H, int64_t W, int64_t kernel, const void* w, void* out) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const int64_t att = kernel * kernel * H * W;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * att > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p)
      neighbour_transpose_plane<T>(H, W, kernel, static_cast<const T*>(w) + p * att, static_cast<T*>(out) + p * att);
  });
}

void local_attention(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                     const void* key, const void* value, void* out, void* attn) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const int64_t map = d * H * W, att = kernel * kernel * H * W;
#pragma omp parallel for schedule(static) if (planes > 1 && planes * map > kParallelGrain)
    for (int64_t p = 0; p < planes; ++p)
      forward_plane<T>(d, H, W, kernel, static_cast<const T*>(q) + p * map, static_cast<const T*>(key) + p * map,
                       static_cast<const T*>(value) + p * map, static_cast<T*>(out) + p * map,
                       static_cast<T*>(attn) + p * att);
  });
}

void local_attention_backward(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel,
                              const void* q, const void* key, const void* value, const void* attn,
                              const void* dout, void* dq, void* dkey, void* dvalue) {
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    const int64_t map = d * H * W, att = kernel * kernel * H * W;
#pragma omp parallel if (planes > 1 && planes * map > kParallelGrain)
    {
      std::vector<T> dsim;
#pragma omp for schedule(static)
      for (int64_t p = 0; p < planes; ++p)
        backward_plane<T>(d, H, W, kernel, static_cast<const T*>(q) + p * map, static_cast<const T*>(key) + p * map,
                          static_cast<const T*>(value) + p * map, static_cast<const T*>(attn) + p * att,
                          static_cast<const T*>(dout) + p * map, static_cast<T*>(dq) + p * map,
                          static_cast<T*>(dkey) + p * map, static_cast<T*>(dvalue) + p * map, dsim);
    }
  });
}

}  // namespace fpa::cpu
