// cuda_local_attention.cu: the fused local (kernel x kernel neighbourhood) attention of the
// discriminator on CUDA, forward and backward, without materialising unfolded keys/values.
//
// Per plane (a batch element and head) maps are (d, H, W) with N = H*W positions, n = y*W + x;
// neighbour j of n sits at (y + j/kernel - r, x + j%kernel - r), r = kernel/2. Outside the
// map a neighbour acts as unfold's zero padding: its similarity is 0 (it still takes part in
// the softmax) and its value is 0. The CPU twin is ops/backend/cpu/cpu_local_attention.cpp.
//   forward:  sim[j, n] = sum_c q[c, n] k[c, n + off_j];  attn = softmax_j(sim);
//             out[c, n] = sum_j attn[j, n] v[c, n + off_j]
//   backward: dsim[j, n] = attn[j, n] (dattn[j, n] - sum_i attn[i, n] dattn[i, n]),
//             dattn[j, n] = sum_c dout[c, n] v[c, n + off_j];
//             dq[c, n] = sum_j dsim[j, n] k[c, n + off_j];
//             dk[c, m] = sum_j dsim[j, m - off_j] q[c, m - off_j];  dv likewise with attn, dout.
// One thread block per (plane, tile of consecutive positions, i.e. of rows), a thread per position;
// across a warp every read of a shifted map is one coalesced row segment. The forward keeps the
// similarities in the attn output itself (J values per position). The backward first writes dsim
// (planes, J, N) to scratch, then gathers dq, dk and dv per position (dk and dv from the neighbours
// that read it): no atomics, deterministic, each sum in the CPU's order (j ascending; channels
// ascending inside a similarity). The neighbourhood primitives (neighbour_dot, neighbour_sum,
// neighbour_transpose; ops/backend/backend.h), which second-order gradients are written with, are
// the same sums one at a time, a thread per position.
#include <cmath>

#include "ops/backend/cuda/cuda_common.cuh"
#include "ops/backend/cuda/cuda_math.cuh"

namespace fpa::gpu {
namespace {

constexpr int kPositionsPerBlock = 128;

// Where neighbour j of position (y, x) lies, and whether it is inside the H x W map.
struct Neighbour {
  int64_t y, x;
  bool inside;
};
__device__ __forceinline__ Neighbour neighbour(int64_t y, int64_t x, int64_t j, int64_t kernel, int64_t H, int64_t W) {
  const int64_t r = kernel / 2, ny = y + j / kernel - r, nx = x + j % kernel - r;
  return {ny, nx, ny >= 0 && ny < H && nx >= 0 && nx < W};
}
// The position whose neighbour j is (y, x): (y, x) - off_j.
__device__ __forceinline__ Neighbour reader(int64_t y, int64_t x, int64_t j, int64_t kernel, int64_t H, int64_t W) {
  const int64_t r = kernel / 2, ny = y - (j / kernel - r), nx = x - (j % kernel - r);
  return {ny, nx, ny >= 0 && ny < H && nx >= 0 && nx < W};
}

// Block b: plane b / tiles, positions [tile * kPositionsPerBlock, ...) of that plane.
struct Position {
  int64_t plane, n, y, x;
  bool valid;
};
__device__ __forceinline__ Position position_of_thread(int64_t tiles, int64_t H, int64_t W) {
  const int64_t plane = blockIdx.x / tiles, tile = blockIdx.x % tiles;
  const int64_t n = tile * kPositionsPerBlock + threadIdx.x;
  return {plane, n, n / W, n % W, n < H * W};
}

// attn (planes, J, N): similarities, then softmax weights; out (planes, d, N).
template <typename T>
__global__ void local_attention_kernel(int64_t tiles, int64_t d, int64_t H, int64_t W, int64_t kernel, const T* q,
                                       const T* key, const T* value, T* out, T* attn) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel, n = at.n;
  const T* qp = q + at.plane * d * N;      // (d, N)
  const T* kp = key + at.plane * d * N;    // (d, N)
  const T* vp = value + at.plane * d * N;  // (d, N)
  T* op = out + at.plane * d * N;          // (d, N)
  T* ap = attn + at.plane * J * N;         // (J, N)
  for (int64_t j = 0; j < J; ++j) {
    const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
    T sim = 0;
    if (nb.inside) {
      const int64_t m = nb.y * W + nb.x;
      for (int64_t c = 0; c < d; ++c) sim += qp[c * N + n] * kp[c * N + m];
    }
    ap[j * N + n] = sim;
  }
  T mx = ap[n];
  for (int64_t j = 1; j < J; ++j) mx = mx < ap[j * N + n] ? ap[j * N + n] : mx;
  T total = 0;
  for (int64_t j = 0; j < J; ++j) {
    const T e = exp_of(T(ap[j * N + n] - mx));
    ap[j * N + n] = e;
    total += e;
  }
  const T inv = T(1) / total;
  for (int64_t j = 0; j < J; ++j) ap[j * N + n] *= inv;
  for (int64_t c = 0; c < d; ++c) {
    T acc = 0;
    for (int64_t j = 0; j < J; ++j) {
      const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
      if (nb.inside) acc += ap[j * N + n] * vp[c * N + nb.y * W + nb.x];
    }
    op[c * N + n] = acc;
  }
}

// dsim (planes, J, N) from dout, value and the saved attn.
template <typename T>
__global__ void local_attention_dsim_kernel(int64_t tiles, int64_t d, int64_t H, int64_t W, int64_t kernel,
                                            const T* value, const T* attn, const T* dout, T* dsim) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel, n = at.n;
  const T* vp = value + at.plane * d * N;  // (d, N)
  const T* gp = dout + at.plane * d * N;   // (d, N)
  const T* ap = attn + at.plane * J * N;   // (J, N)
  T* sp = dsim + at.plane * J * N;         // (J, N): dattn, then dsim in place
  for (int64_t j = 0; j < J; ++j) {
    const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
    T dattn = 0;
    if (nb.inside) {
      const int64_t m = nb.y * W + nb.x;
      for (int64_t c = 0; c < d; ++c) dattn += gp[c * N + n] * vp[c * N + m];
    }
    sp[j * N + n] = dattn;
  }
  T weighted = 0;
  for (int64_t j = 0; j < J; ++j) weighted += ap[j * N + n] * sp[j * N + n];
  for (int64_t j = 0; j < J; ++j) sp[j * N + n] = ap[j * N + n] * (sp[j * N + n] - weighted);
}

// dq, dk, dv (planes, d, N) at this thread's position m.
template <typename T>
__global__ void local_attention_grads_kernel(int64_t tiles, int64_t d, int64_t H, int64_t W, int64_t kernel, const T* q,
                                             const T* key, const T* attn, const T* dout, const T* dsim, T* dq, T* dkey,
                                             T* dvalue) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel, m = at.n;
  const int64_t maps = at.plane * d * N, weights = at.plane * J * N;
  const T *qp = q + maps, *kp = key + maps, *gp = dout + maps;  // (d, N)
  const T *ap = attn + weights, *sp = dsim + weights;           // (J, N)
  for (int64_t c = 0; c < d; ++c) {
    T dq_acc = 0, dk_acc = 0, dv_acc = 0;
    for (int64_t j = 0; j < J; ++j) {
      const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);  // m reads it
      if (nb.inside) dq_acc += sp[j * N + m] * kp[c * N + nb.y * W + nb.x];
      const Neighbour rd = reader(at.y, at.x, j, kernel, H, W);  // it reads m as neighbour j
      if (rd.inside) {
        const int64_t n = rd.y * W + rd.x;
        dk_acc += sp[j * N + n] * qp[c * N + n];
        dv_acc += ap[j * N + n] * gp[c * N + n];
      }
    }
    dq[maps + c * N + m] = dq_acc;
    dkey[maps + c * N + m] = dk_acc;
    dvalue[maps + c * N + m] = dv_acc;
  }
}

// ---- the neighbourhood primitives (ops/neighbourhood.cpp), a thread per position, sums in the CPU's order

// out (planes, J, N) [j, n] = sum_c a[c, n] b[c, n + off_j].
template <typename T>
__global__ void neighbour_dot_kernel(int64_t tiles, int64_t d, int64_t H, int64_t W, int64_t kernel, const T* a,
                                     const T* b, T* out) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel;
  const T* ap = a + at.plane * d * N;
  const T* bp = b + at.plane * d * N;
  for (int64_t j = 0; j < J; ++j) {
    const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
    T acc = 0;
    if (nb.inside)
      for (int64_t c = 0; c < d; ++c) acc += ap[c * N + at.n] * bp[c * N + nb.y * W + nb.x];
    out[(at.plane * J + j) * N + at.n] = acc;
  }
}

// out (planes, d, N) [c, n] = sum_j w[j, n] x[c, n + off_j].
template <typename T>
__global__ void neighbour_sum_kernel(int64_t tiles, int64_t d, int64_t H, int64_t W, int64_t kernel, const T* w,
                                     const T* x, T* out) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel;
  const T* wp = w + at.plane * J * N;
  const T* xp = x + at.plane * d * N;
  for (int64_t c = 0; c < d; ++c) {
    T acc = 0;
    for (int64_t j = 0; j < J; ++j) {
      const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
      if (nb.inside) acc += wp[j * N + at.n] * xp[c * N + nb.y * W + nb.x];
    }
    out[(at.plane * d + c) * N + at.n] = acc;
  }
}

// out (planes, J, N) [j, n] = w[J-1-j, n + off_j], 0 outside.
template <typename T>
__global__ void neighbour_transpose_kernel(int64_t tiles, int64_t H, int64_t W, int64_t kernel, const T* w, T* out) {
  const Position at = position_of_thread(tiles, H, W);
  if (!at.valid) return;
  const int64_t N = H * W, J = kernel * kernel;
  for (int64_t j = 0; j < J; ++j) {
    const Neighbour nb = neighbour(at.y, at.x, j, kernel, H, W);
    out[(at.plane * J + j) * N + at.n] = nb.inside ? w[(at.plane * J + J - 1 - j) * N + nb.y * W + nb.x] : T(0);
  }
}

// Checks the kernel size and returns the tiles per plane.
int64_t tiles_per_plane(int64_t planes, int64_t H, int64_t W, int64_t kernel) {
  FPA_CHECK(kernel >= 1 && kernel % 2 == 1, "cuda local_attention: kernel must be odd and positive, got ", kernel);
  const int64_t tiles = (H * W + kPositionsPerBlock - 1) / kPositionsPerBlock;
  FPA_CHECK(planes * tiles < (int64_t(1) << 31), "cuda local_attention: ", planes, " planes of ", H, "x", W,
            " is more than one grid holds");
  return tiles;
}

}  // namespace

void local_attention(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                     const void* key, const void* value, void* out, void* attn) {
  if (planes == 0 || H == 0 || W == 0) return;
  const int64_t tiles = tiles_per_plane(planes, H, W, kernel);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("local_attention", local_attention_kernel<T>, unsigned(planes * tiles), kPositionsPerBlock, tiles, d, H, W,
           kernel, static_cast<const T*>(q), static_cast<const T*>(key), static_cast<const T*>(value),
           static_cast<T*>(out), static_cast<T*>(attn));
  });
}

void local_attention_backward(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* q,
                              const void* key, const void* value, const void* attn, const void* dout, void* dq,
                              void* dkey, void* dvalue) {
  if (planes == 0 || H == 0 || W == 0 || d == 0) return;
  const int64_t tiles = tiles_per_plane(planes, H, W, kernel);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    Scratch dsim(size_t(planes * kernel * kernel * H * W) * sizeof(T));  // (planes, J, N)
    launch("local_attention_backward (dsim)", local_attention_dsim_kernel<T>, unsigned(planes * tiles),
           kPositionsPerBlock, tiles, d, H, W, kernel, static_cast<const T*>(value), static_cast<const T*>(attn),
           static_cast<const T*>(dout), dsim.as<T>());
    launch("local_attention_backward (grads)", local_attention_grads_kernel<T>, unsigned(planes * tiles),
           kPositionsPerBlock, tiles, d, H, W, kernel, static_cast<const T*>(q), static_cast<const T*>(key),
           static_cast<const T*>(attn), static_cast<const T*>(dout), dsim.as<T>(), static_cast<T*>(dq),
           static_cast<T*>(dkey), static_cast<T*>(dvalue));
  });
}

void neighbour_dot(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* a,
                   const void* b, void* out) {
  if (planes == 0 || H == 0 || W == 0) return;
  const int64_t tiles = tiles_per_plane(planes, H, W, kernel);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("neighbour_dot", neighbour_dot_kernel<T>, unsigned(planes * tiles), kPositionsPerBlock, tiles, d, H, W,
           kernel, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out));
  });
}

void neighbour_sum(DType t, int64_t planes, int64_t d, int64_t H, int64_t W, int64_t kernel, const void* w,
                   const void* x, void* out) {
  if (planes == 0 || H == 0 || W == 0 || d == 0) return;
  const int64_t tiles = tiles_per_plane(planes, H, W, kernel);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("neighbour_sum", neighbour_sum_kernel<T>, unsigned(planes * tiles), kPositionsPerBlock, tiles, d, H, W,
           kernel, static_cast<const T*>(w), static_cast<const T*>(x), static_cast<T*>(out));
  });
}

void neighbour_transpose(DType t, int64_t planes, int64_t H, int64_t W, int64_t kernel, const void* w, void* out) {
  if (planes == 0 || H == 0 || W == 0) return;
  const int64_t tiles = tiles_per_plane(planes, H, W, kernel);
  dispatch(t, [&](auto zero) {
    using T = decltype(zero);
    launch("neighbour_transpose", neighbour_transpose_kernel<T>, unsigned(planes * tiles), kPositionsPerBlock, tiles,
           H, W, kernel, static_cast<const T*>(w), static_cast<T*>(out));
  });
}

}  // namespace fpa::gpu
