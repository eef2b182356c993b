// strided_plan.h: host-side planning shared by the CPU and CUDA backends' strided kernels:
// the per-operand index space of binary/copy_strided with its dims merged where every operand
// allows (simplify), and the split of a contiguous tensor's dims into kept and reduced ones for
// `reduce` (plan_reduce). Plain structs of fixed arrays, so a plan passes to a CUDA kernel by value.
#pragma once
#include <cstdint>
#include <vector>

#include "autograd/shape.h"

namespace fpa {

// An index space with one stride per operand per dim (in elements).
template <int K>
struct StridedSpace {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t stride[K][kMaxDims];
};

// Drops size-1 dims and merges dim d into the one before when every operand steps through both
// as one (stride[d-1] == stride[d] * shape[d]). Returns the element count; a 0-d space becomes (1).
template <int K>
int64_t simplify(StridedSpace<K>& s) {
  int64_t total = 1;
  for (int d = 0; d < s.ndim; ++d) total *= s.shape[d];
  if (total == 0) return 0;
  int nd = 0;
  for (int d = 0; d < s.ndim; ++d) {
    if (s.shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < K && merge; ++k) merge = s.stride[k][nd - 1] == s.stride[k][d] * s.shape[d];
    if (merge) {
      s.shape[nd - 1] *= s.shape[d];
      for (int k = 0; k < K; ++k) s.stride[k][nd - 1] = s.stride[k][d];
    } else {
      s.shape[nd] = s.shape[d];
      for (int k = 0; k < K; ++k) s.stride[k][nd] = s.stride[k][d];
      ++nd;
    }
  }
  if (nd == 0) {
    s.shape[0] = 1;
    for (int k = 0; k < K; ++k) s.stride[k][0] = 0;
    nd = 1;
  }
  s.ndim = nd;
  return total;
}

// x's dims after merging: kept dims (output order) and reduced dims, excluding the innermost
// one, which is `inner` long, contiguous, and reduced or not. Walk is the backend's walker
// over dims: any type with `int ndim` and `int64_t shape[kMaxDims], stride[kMaxDims]`.
template <typename Walk>
struct ReducePlan {
  Walk kept, reduced;
  int64_t inner = 1;
  bool inner_reduced = false;
  bool empty_reduction = false;  // a reduced dim of size 0: outputs are the identity
};

template <typename Walk>
ReducePlan<Walk> plan_reduce(const Shape& xs, unsigned mask) {
  ReducePlan<Walk> p;
  std::vector<int64_t> xstr = xs.strides();
  int64_t shape[kMaxDims], stride[kMaxDims];
  bool red[kMaxDims];
  int nd = 0;
  for (int d = 0; d < xs.ndim; ++d) {
    const bool r = mask >> d & 1u;
    if (r && xs[d] == 0) p.empty_reduction = true;
    if (xs[d] == 1) continue;
    if (nd > 0 && red[nd - 1] == r) {  // x is contiguous, so same-kind neighbours merge
      shape[nd - 1] *= xs[d], stride[nd - 1] = xstr[d];
      continue;
    }
    shape[nd] = xs[d], stride[nd] = xstr[d], red[nd] = r, ++nd;
  }
  if (nd == 0) shape[0] = 1, stride[0] = 1, red[0] = false, nd = 1;
  p.inner = shape[nd - 1];
  p.inner_reduced = red[nd - 1];
  for (int d = 0; d < nd - 1; ++d) {
    Walk& w = red[d] ? p.reduced : p.kept;
    w.shape[w.ndim] = shape[d], w.stride[w.ndim] = stride[d], ++w.ndim;
  }
  return p;
}

}  // namespace fpa
