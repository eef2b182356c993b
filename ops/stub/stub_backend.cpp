// stub_backend.cpp: a backend whose every entry throws "unimplemented: NAME".
//
// It is the porting template (ops/PORTING.md): copy it, then replace entries one at a time,
// answering true from `supports` for those done. It is also what the tests use to check
// that an unimplemented primitive fails cleanly instead of crashing.
#include "autograd/error.h"
#include "ops/backend.h"

namespace fpa {
namespace {

#define STUB(name, ...) \
  [](__VA_ARGS__) { fail("unimplemented: " name " (stub backend)"); }

}  // namespace

const Backend& stub_backend() {
  static const Backend b = {
      "stub",
      [](const char*) { return false; },
      [](size_t) -> void* { fail("unimplemented: alloc (stub backend)"); },
      STUB("free", void*),
      STUB("to_host", void*, const void*, size_t),
      STUB("from_host", void*, const void*, size_t),
      [](const void*, size_t) -> void* { fail("unimplemented: to_host_start (stub backend)"); },
      STUB("to_host_finish", void*, void*),
      STUB("copy", void*, const void*, size_t),
      STUB("copy_many", int64_t, const CopySpan*),
      STUB("cast", DType, DType, int64_t, const void*, void*),
      STUB("fill", DType, int64_t, double, void*),
      STUB("unary", DType, UnaryOp, int64_t, double, double, const void*, void*),
      STUB("binary", DType, BinaryOp, const StridedLoop&, const void*, const void*, void*),
      STUB("copy_strided", DType, const StridedLoop&, const void*, void*),
      STUB("reduce", DType, ReduceOp, const Shape&, unsigned, const void*, void*),
      STUB("softmax", DType, int64_t, int64_t, int64_t, const void*, void*),
      STUB("softmax_backward", DType, int64_t, int64_t, int64_t, const void*, const void*, const void*, void*),
      STUB("gemm", DType, bool, bool, int64_t, int64_t, int64_t, double, const void*, int64_t, int64_t,
           const void*, int64_t, int64_t, double, void*, int64_t, int64_t, int64_t),
      STUB("conv2d_forward", DType, const ConvGeom&, const void*, const void*, void*),
      STUB("conv2d_backward_data", DType, const ConvGeom&, const void*, const void*, void*),
      STUB("conv2d_backward_filter", DType, const ConvGeom&, const void*, const void*, void*),
      STUB("im2col", DType, const ConvGeom&, const void*, void*),
      STUB("col2im", DType, const ConvGeom&, const void*, void*),
      STUB("avg_pool2d", DType, const PoolGeom&, const void*, void*),
      STUB("avg_pool2d_backward", DType, const PoolGeom&, const void*, void*),
      STUB("resize_nearest", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*),
      STUB("resize_nearest_backward", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, void*),
      STUB("rand_uniform", DType, int64_t, uint64_t, uint64_t, double, double, void*),
      STUB("rand_normal", DType, int64_t, uint64_t, uint64_t, double, double, void*),
      STUB("adam_step", DType, int64_t, const AdamArgs&, void*, const void*, void*, void*),
      STUB("local_attention", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, const void*,
           const void*, void*, void*),
      STUB("local_attention_backward", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*,
           const void*, const void*, const void*, const void*, void*, void*, void*),
      STUB("neighbour_dot", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, const void*, void*),
      STUB("neighbour_sum", DType, int64_t, int64_t, int64_t, int64_t, int64_t, const void*, const void*, void*),
      STUB("neighbour_transpose", DType, int64_t, int64_t, int64_t, int64_t, const void*, void*),
      STUB("paint_forward", DType, const PaintGeom&, const void*, const void*, const void*, const void*, void*),
      STUB("paint_backward", DType, const PaintGeom&, const void*, const void*, const void*, const void*,
           const void*, void*, void*, void*, void*),
      STUB("lstm_gates_forward", DType, int64_t, int64_t, void*, const void*, void*, void*),
      STUB("lstm_gates_backward", DType, int64_t, int64_t, const void*, const void*, const void*, const void*,
           void*, void*),
      STUB("channel_norm_forward", DType, int64_t, int64_t, int64_t, double, const void*, const void*, const void*,
           void*, void*, void*),
      STUB("channel_norm_backward", DType, int64_t, int64_t, int64_t, const void*, const void*, const void*,
           const void*, const void*, void*, void*, void*),
      STUB("capture_begin", void*),
      []() -> void* { fail("unimplemented: capture_end (stub backend)"); },
      STUB("graph_replay", void*),
      STUB("graph_release", void*),
  };
  return b;
}

}  // namespace fpa
