// count_kernels.cpp: `make bench-kernels`. How many backend primitives one training step
// issues, by primitive (elementwise ones by operation), for the step a CUDA graph records
// (Trainer::step_capture_ready), with and without the gradient penalty. On a GPU each is a
// kernel launch (a cuBLAS or cuDNN call may be a few), so this is the step's launch count:
// replayed in a graph at a few microseconds each, its floor in time. Counted on the CPU
// backend behind a counting table that stands in for the CUDA device (the host's own work,
// such as drawing the latents, stays on the real CPU table, uncounted, as it is no kernel):
// exact and the same on every machine, no GPU needed. The Trainer runs the step directly,
// as a capture records it: the CPU table cannot capture.
// Usage: count_kernels [preset (paper-rgb64-T64; a +unet one trains from a fresh FPA)] [batch (the preset's)]
//        [--aug-prob P]
// Prints a row per primitive, the totals, and their mean over the preset's penalty cycle; and
// the most device memory in use during each step (the live tensors' bytes, parameters and
// optimiser state included, unrounded); and the memory a GPU run would hold (reserved): the
// steps' allocations played back into the CUDA allocator (tools/alloc_trace.h) as a run makes
// them, an eager step of each kind, then each kind captured, with the graphs in one shared
// memory pool (as the trainer does) and, beside it, in pools of their own. (cuBLAS's and
// cuDNN's own workspaces, and the CUDA context, come on top.) Last, the primitives of one
// sampling call (the EMA generator's forward without gradients; the same at any batch size).
#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <map>
#include <string>
#include <unordered_map>

#include "ops/backend/backend.h"
#include "tools/alloc_trace.h"
#include "tools/fresh_base.h"
#include "train/trainer.h"

namespace fpa {
const Backend& cpu_backend();
}

using namespace fpa;

namespace {

std::map<std::string, int64_t>& counts() {
  static std::map<std::string, int64_t> c;
  return c;
}

// The counted device's live allocations, bytes in use, and the most since the last reset.
struct DeviceMemory {
  std::unordered_map<void*, size_t> live;
  size_t in_use = 0, peak = 0;
  tools::AllocTrace trace;
};
DeviceMemory& memory() {
  static DeviceMemory m;
  return m;
}

const char* unary_name(UnaryOp op) {
  static const char* names[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "square", "tanh", "sigmoid",
                                "relu", "erf", "leaky_relu", "leaky_relu_grad", "silu", "gelu", "gelu_grad", "pow",
                                "clamp", "affine", "gt_mask", "inside_mask"};
  static_assert(sizeof(names) / sizeof(names[0]) == int(UnaryOp::inside_mask) + 1, "a name per UnaryOp");
  return names[int(op)];
}
const char* binary_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "eq_mask", "gt_mask"};
  static_assert(sizeof(names) / sizeof(names[0]) == int(BinaryOp::gt_mask) + 1, "a name per BinaryOp");
  return names[int(op)];
}

// An entry of the CPU table that counts its calls under its name before running.
#define COUNTED(entry)              \
  [](auto... a) {                   \
    ++counts()[#entry];             \
    cpu_backend().entry(a...);      \
  }

Backend counting_table() {
  Backend b = cpu_backend();
  b.name = "cpu (counting, as cuda)";
  b.memory_bound = true;  // as the CUDA backend: the discriminator's attention is checkpointed
  b.alloc = [](size_t bytes) {
    void* p = cpu_backend().alloc(bytes);
    DeviceMemory& m = memory();
    m.live[p] = bytes, m.in_use += bytes, m.peak = std::max(m.peak, m.in_use);
    m.trace.alloc(p, bytes);
    return p;
  };
  b.free = [](void* p) {
    DeviceMemory& m = memory();
    auto it = m.live.find(p);
    if (it != m.live.end()) m.in_use -= it->second, m.live.erase(it);
    m.trace.free(p);
    cpu_backend().free(p);
  };
  // Every primitive that runs on the device, counted (ops/backend/primitives.def); unary and binary by op.
#define FPA_PRIMITIVE(fn, ret, params) b.fn = COUNTED(fn);
#define FPA_HOST_PRIMITIVE(fn, ret, params)
#define FPA_CAPTURE_PRIMITIVE(fn, ret, params)
#include "ops/backend/primitives.def"
  b.unary = [](DType t, UnaryOp op, int64_t n, double a, double b, const void* x, void* y) {
    ++counts()[std::string("unary ") + unary_name(op)];
    cpu_backend().unary(t, op, n, a, b, x, y);
  };
  b.binary = [](DType t, BinaryOp op, const StridedLoop& loop, const void* a, const void* b, void* out) {
    ++counts()[std::string("binary ") + binary_name(op)];
    cpu_backend().binary(t, op, loop, a, b, out);
  };
  return b;
}

// The primitives of one capture-ready step (the host's uploads and reads are not kernels), and
// the most bytes in use during it; its allocations marked as a capture's.
std::map<std::string, int64_t> count_step(Trainer& t, size_t& peak_bytes) {
  counts().clear();
  memory().peak = memory().in_use;
  memory().trace.begin_capture();
  t.step_capture_ready();
  memory().trace.end_capture();
  peak_bytes = memory().peak;
  return counts();
}

int64_t total(const std::map<std::string, int64_t>& c) {
  int64_t n = 0;
  for (const auto& [name, k] : c) n += k;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "paper-rgb64-T64";
  int64_t batch = 0;
  double aug_prob = 0;
  int positional = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--aug-prob") == 0 && i + 1 < argc) {
      aug_prob = std::atof(argv[++i]);
    } else if (positional == 0) {
      preset = argv[i], ++positional;
    } else {
      batch = std::atoll(argv[i]);
    }
  }
  static const Backend table = counting_table();
  register_backend(Device::cuda, &table);
  TrainOptions o = train_defaults(preset);
  o.device = Device::cuda;
  if (o.model.g.model == "unet") o.init_from = tools::fresh_base_checkpoint(o.model);
  if (batch > 0) o.batch = batch;
  o.aug_prob = aug_prob;
  const int64_t gp_every = o.gp_every;  // the preset's
  o.gp_every = 2;                       // here step 0 with the penalty, step 1 without
  o.ema_every = 0, o.ema_reset_until = 0;  // no EMA work in the counted steps
  Trainer t(o, std::make_shared<const ImageDataset>(
                   random_dataset(o.batch * 2, o.model.g.channels, o.model.g.image_size)));
  t.step_capture_ready(), t.step_capture_ready();  // the eager steps before the captures, as in training
  size_t peak_with_gp = 0, peak_without_gp = 0;
  std::map<std::string, int64_t> with_gp = count_step(t, peak_with_gp);
  std::map<std::string, int64_t> without_gp = count_step(t, peak_without_gp);
  fmt::print("primitives per training step (kernel launches), {}, batch {}, DiffAugment p {}\n", preset, o.batch,
             aug_prob);
  fmt::print("{:<28} {:>10} {:>10}\n", "primitive", "no penalty", "penalty");
  std::map<std::string, int64_t> names = with_gp;
  for (const auto& [name, k] : without_gp) names[name];
  for (const auto& [name, k] : names)
    fmt::print("{:<28} {:>10} {:>10}\n", name, without_gp[name], with_gp[name]);
  fmt::print("{:<28} {:>10} {:>10}\n", "total", total(without_gp), total(with_gp));
  if (gp_every > 0)
    fmt::print("mean over the preset's cycle (the penalty every {} steps): {:.0f} per step\n", gp_every,
               (double(gp_every - 1) * double(total(without_gp)) + double(total(with_gp))) / double(gp_every));
  fmt::print("device memory in use at most (live tensors, parameters and Adam state included): {:.0f} MiB in the "
             "step with the penalty, {:.0f} MiB without\n",
             double(peak_with_gp) / 1048576.0, double(peak_without_gp) / 1048576.0);
  const tools::AllocTrace& trace = memory().trace;
  const BlockCacheStats run = trace.play(true, true), segments = trace.play(true, false),
                        own_pools = trace.play(false, true);
  auto mib = [](size_t bytes) { return double(bytes) / 1048576.0; };
  fmt::print("device memory held by the CUDA allocator, eager steps and captures (reserved, at most): {:.0f} MiB, "
             "{:.0f} MiB in use (large blocks in cudaMalloc segments instead of the address range: {:.0f} MiB; the two "
             "step graphs in pools of their own: {:.0f} MiB)\n",
             mib(run.peak_bytes_reserved), mib(run.peak_bytes_in_use), mib(segments.peak_bytes_reserved),
             mib(own_pools.peak_bytes_reserved));
  counts().clear();
  {
    NoGradGuard no_grad;
    t.ema_generator().forward(randn({16, o.model.g.latent_dim}, DType::f32, Device::cuda));
  }
  fmt::print("sampling (the EMA generator's forward, no gradients): {} primitives a batch (any batch size)\n",
             total(counts()));
  return 0;
}
