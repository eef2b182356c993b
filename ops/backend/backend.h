// backend.h: the narrow table of primitives every compute backend implements.
//
// Differentiable ops (ops/*.cpp) are written against this table only; they never branch on the
// device. The primitives, their signatures and conventions are listed once, in
// ops/backend/primitives.def; this file has the types they take, the properties the layers above
// ask of a device, and the registry. A backend registers itself with register_backend();
// `supports(name)` tells whether an entry is really implemented (false for a name that is no
// primitive; the stub backend in ops/backend/stub answers false to everything). See
// ops/backend/PORTING.md for how to add one. The backend is the lowest layer: ops/backend
// includes nothing but itself and autograd's leaf headers (tests/test_layering.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "autograd/dtype.h"
#include "autograd/shape.h"

namespace fpa {

enum class UnaryOp {
  neg, exp, log, sqrt, rsqrt, abs, sign, square, tanh, sigmoid, relu, erf,
  leaky_relu,       // a = negative slope
  leaky_relu_grad,  // its derivative: 1 where x > 0, else a
  silu, gelu,  // gelu: erf form
  gelu_grad,   // its derivative: Phi(x) + x phi(x)
  pow,         // x^a
  clamp,       // min(max(x, a), b)
  affine,      // a*x + b
  gt_mask,     // x > a ? 1 : 0
  inside_mask  // a <= x <= b ? 1 : 0
};

enum class BinaryOp { add, sub, mul, div, eq_mask, gt_mask };
enum class ReduceOp { sum, max };

// An n-d index space with per-operand strides (0 on broadcast dimensions).
struct StridedLoop {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};  // first operand (or source)
  int64_t b_strides[kMaxDims] = {};  // second operand (or destination)
};

// Geometry of a 2-d convolution, NCHW, weight (Cout, Cin/groups, KH, KW).
struct ConvGeom {
  int64_t N, Cin, H, W, Cout, KH, KW, OH, OW;
  int64_t stride_h, stride_w, pad_h, pad_w, groups;
};

// Geometry of a pooling over (N*C) planes: adaptive (average only) uses PyTorch's bin rule,
// otherwise kernel/stride/pad. A fixed average window divides by kernel*kernel when it counts
// its padding (count_include_pad), else by the number of input entries it covers.
struct PoolGeom {
  int64_t planes, H, W, OH, OW;
  int64_t kernel, stride, pad;
  bool adaptive;
  bool count_include_pad = true;
};

struct AdamArgs {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, for bias correction
  // Or, when set, the bias-corrected terms read from device memory at run time, (2) of the
  // data type: {T(lr / (1 - beta1^step)), T(sqrt(1 - beta2^step))}, as adam_bias_terms gives
  // them; `step` is then ignored. A captured step (CUDA graph) replays with new terms this way.
  const void* bias_terms = nullptr;
};
// The two bias-corrected terms of step `step` (1-based), in double; kernels round them to T.
void adam_bias_terms(double lr, double beta1, double beta2, int64_t step, double* step_size, double* bc2_sqrt);

// The fast weight painting (FPA_REFERENCE.md 2.7 and 3): N independent S x S matrices W,
// row i = value index, column j = key index, one rank-1 update per step over T steps.
enum class PaintRule { delta, hebb, oja };
struct PaintGeom {
  PaintRule rule;
  int64_t T, N, S;
  int64_t rate_dim;    // beta per matrix (1) or per row (S); unused by hebb
  bool key_softmax;    // k = softmax(k) over its S entries before the rule (the painter's front end)
  bool rate_sigmoid;   // beta = sigmoid(beta) before the rule
};

// One device-to-device copy of copy_many.
struct CopySpan {
  void* dst;
  const void* src;
  size_t bytes;
};

// A device allocator's statistics since the start or the last reset_peak_memory: bytes handed
// out and not freed, bytes held in its free lists, the most in use at any moment (as
// torch.cuda.max_memory_allocated) and the most held from the driver, in use or cached (as
// torch.cuda.max_memory_reserved: the device memory a run really takes).
struct MemoryStats {
  size_t bytes_in_use = 0, bytes_cached = 0, peak_bytes_in_use = 0, peak_bytes_reserved = 0;
};

struct Backend {
  const char* name;
  bool (*supports)(const char* primitive);

  // What the layers above ask of a device instead of testing which one it is. The defaults
  // describe a device with nothing to wait for, no statistics and no reduced-precision mode.
  bool memory_bound = false;                    // memory, not compute, limits it: checkpointed
                                                // blocks recompute (the discriminator's attention)
  std::string (*summary)() = nullptr;           // one line: the device, its drivers and libraries
  void (*synchronize)() = nullptr;              // waits for all queued work; throws on a fault
  MemoryStats (*memory_stats)() = nullptr;
  void (*reset_peak_memory)() = nullptr;        // returns cached memory, then peaks start from now
  void (*set_strict_float32)(bool) = nullptr;   // true: every float32 op in full precision (no
                                                // TF32); false: PyTorch's defaults

  // One function pointer per primitive, in the order of ops/backend/primitives.def, where each
  // is documented.
#define FPA_PRIMITIVE(fn, ret, params) ret(*fn) params;
#include "ops/backend/primitives.def"
};

// Which precision switch a float32 GEMM follows on a device with a faster reduced-precision
// mode (TF32 on CUDA; the CPU has none): `matmul`, every GEMM's by default (PyTorch's
// torch.backends.cuda.matmul switch, off), or `recurrent`, the LSTM's, which PyTorch runs in
// cuDNN under the convolutions' switch (torch.backends.cudnn.allow_tf32, on). Set for the
// calling thread by a GemmPrecisionScope; a backend's gemm reads gemm_precision().
enum class GemmPrecision { matmul, recurrent };
GemmPrecision gemm_precision();
class GemmPrecisionScope {
 public:
  explicit GemmPrecisionScope(GemmPrecision p);
  ~GemmPrecisionScope();
  GemmPrecisionScope(const GemmPrecisionScope&) = delete;
  GemmPrecisionScope& operator=(const GemmPrecisionScope&) = delete;

 private:
  GemmPrecision saved_;
};

void register_backend(Device device, const Backend* backend);
// The backend of a device; throws a clear error when that device is not compiled in or unusable.
const Backend& backend(Device device);
bool has_backend(Device device);
// Why `device` has no backend ("this build has no CUDA backend (...)", "no usable GPU was found
// (...)"), or "" when it has one.
std::string missing_backend_reason(Device device);
// The device of a name in autograd/dtype.h's list (`flag` names the option in the error).
Device device_named(const std::string& name, const char* flag);
// The stub backend (every entry throws "unimplemented: NAME"): the porting template.
const Backend& stub_backend();
// Whether `name` is a primitive of ops/backend/primitives.def, and all their names in its order.
bool is_primitive(const char* name);
const std::vector<const char*>& primitive_names();

}  // namespace fpa
