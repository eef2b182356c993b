// bench_gpu.cpp: `make bench-gpu`: per configuration, milliseconds per whole GAN
// training step (train/trainer.h, random data), sampling images/s of the EMA generator at
// batch 256 under no-grad (PyTorch's precision defaults, and strict FP32), and the peak device
// memory of the training step (CUDA allocator: in use, and reserved, the graphs' pools
// included; n/a on the CPU); once, the fused painting (delta rule, key softmax, rate sigmoid)
// forward + backward alone at B 20, C 3, S 64, T 64; and FID Inception images/s (32x32 RGB
// images resized to 299x299, float32, batch 64; skipped without make fid-weights' file). --json
// writes the figures for
// tools/compare_bench.py, rewritten after every configuration so a crash keeps what was
// measured. A benchmark, not a test.
// Usage: bench_gpu [--device cuda|cpu] [--steps N] [--configs a,b] [--json FILE] [--quick]
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "autograd/atomic_file.h"
#include "autograd/philox.h"
#include "fpa/inception.h"
#include "fpa/learning_rules.h"
#include "ops/backend/backend.h"
#include "tools/fresh_base.h"
#include "train/trainer.h"

using namespace fpa;

namespace {

struct Config {
  std::string name, preset;
  int64_t batch;
  bool graph = true;  // false: every step eager (fpa train --no-graph), to show what the graphs save
};
// The configurations compared with PyTorch's; --quick: the cpu-small widths (both sides of the
// comparison use the same).
const std::vector<Config> kFull = {
    {"rgb64-T64-b20", "paper-rgb64-T64", 20},   {"rgb64-T64-b20-eager", "paper-rgb64-T64", 20, false},
    {"rgb64-T64-b64", "paper-rgb64-T64", 64},
    {"rgb64-T64-b128", "paper-rgb64-T64", 128}, {"rgb64-T16-b20", "paper-rgb64-T16", 20},
    {"grey32-T32-b32", "grey32-T32", 32},       {"rgb64-T64-unet-b20", "paper-rgb64-T64+unet", 20}};
const std::vector<Config> kQuick = {{"small-b4", "cpu-small", 4}, {"small-unet-b4", "cpu-small+unet", 4}};

struct Result {
  Config c;
  double ms_per_step = -1, sample_images_per_s = -1;
  // sample_images_per_s runs with the default switches, PyTorch's: the LSTM's GEMMs in TF32 (as
  // its cuDNN LSTM), the others in FP32. This one: TF32 off everywhere (CUDA only).
  double sample_images_per_s_fp32 = -1;
  int64_t sample_batch = 0, steps = 0;
  long long peak_bytes = -1;           // in use at most (torch.cuda.max_memory_allocated); -1: not measured (CPU)
  long long peak_reserved_bytes = -1;  // held from the driver at most, graph pools included (max_memory_reserved)
  bool uses_graphs = false;   // the trainer replayed CUDA graphs
  std::string error;
};

void synchronize(Device d) {
  if (backend(d).synchronize) backend(d).synchronize();
}
// New peaks from an empty cache (what an earlier configuration left cached is not counted).
void reset_peak(Device d) {
  if (backend(d).reset_peak_memory) backend(d).reset_peak_memory();
}
long long peak_bytes(Device d, bool reserved) {
  if (!backend(d).memory_stats) return -1;
  const MemoryStats s = backend(d).memory_stats();
  return (long long)(reserved ? s.peak_bytes_reserved : s.peak_bytes_in_use);
}

// Seconds per call of f, over n calls after `warm` calls, synchronised at both ends.
double seconds_per(Device d, int64_t warm, int64_t n, const std::function<void()>& f) {
  for (int64_t i = 0; i < warm; ++i) f();
  synchronize(d);
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; ++i) f();
  synchronize(d);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / double(n);
}

bool on_device(nn::Module& m, Device d) {
  std::vector<Tensor*> p = m.parameters();
  return !p.empty() && p[0]->device() == d;
}

void run_config(Result& r, Device dev, int64_t steps, bool quick) {
  TrainOptions o = train_defaults(r.c.preset);
  o.batch = r.c.batch, o.device = dev, o.graph = r.c.graph;
  if (o.model.g.model == "unet") o.init_from = tools::fresh_base_checkpoint(o.model);
  const int64_t C = o.model.g.channels, S = o.model.g.image_size;
  Trainer t(o, std::make_shared<const ImageDataset>(random_dataset(o.batch * 2, C, S)));
  GeneratorModel fallback;
  if (!on_device(*t.generator().module, dev)) {  // the trainer must place G, D, GE on o.device
    r.error = "Trainer left its models on the CPU (train/trainer.cpp ignores TrainOptions::device)";
    fallback = make_generator(o.model.g);
    fallback.module->to(dev);
  } else {
    reset_peak(dev);
    // Warm-ups: step 0 (with the penalty) and 1 run eagerly; with graphs, steps 2 and
    // gp_every (the first of each kind after those) are captured. Then `steps` steps, one in
    // gp_every with the penalty; with graphs, all replays.
    const int64_t warm = t.uses_graphs() ? o.gp_every + 1 : 2;
    // As train_run does: each step queued before the previous one's losses are read.
    std::optional<PendingStats> previous;
    r.ms_per_step = 1000.0 * seconds_per(dev, warm, steps, [&] { previous = t.step_async(); });
    r.steps = steps;
    r.peak_bytes = peak_bytes(dev, false);
    r.peak_reserved_bytes = peak_bytes(dev, true);
    r.uses_graphs = t.uses_graphs();
  }
  const GeneratorModel& ge = fallback.module ? fallback : t.ema_generator();
  r.sample_batch = quick ? 16 : 256;
  Philox rng(7);
  NoGradGuard ng;
  auto images_per_s = [&] {
    const double s = seconds_per(dev, 1, quick ? 2 : 5, [&] {
      ge.forward(randn({r.sample_batch, o.model.g.latent_dim}, DType::f32, dev, &rng));
    });
    return double(r.sample_batch) / s;
  };
  r.sample_images_per_s = images_per_s();
  if (backend(dev).set_strict_float32) {  // the LSTM's GEMMs dominate sampling: what strict FP32 gives
    backend(dev).set_strict_float32(true);
    r.sample_images_per_s_fp32 = images_per_s();
    backend(dev).set_strict_float32(false);
  }
}

// The fused painting (what FastWeightPainter::paint runs) forward + backward of sum(W * w).
double painter_ms(Device dev, int64_t B, int64_t C, int64_t S, int64_t T, int64_t reps) {
  Philox g(11);
  const int64_t N = B * C;
  Tensor k = randn({T, N, S}, DType::f32, dev, &g).requires_grad_(true);
  Tensor v = randn({T, N, S}, DType::f32, dev, &g).requires_grad_(true);
  Tensor beta = randn({T, N, 1}, DType::f32, dev, &g).requires_grad_(true);
  Tensor w = randn({N, S, S}, DType::f32, dev, &g);
  PaintFrontEnd fe;
  fe.key_softmax = fe.rate_sigmoid = true;
  return 1000.0 * seconds_per(dev, 2, reps,
                              [&] { backward(sum(mul(paint(LearningRule::delta, k, v, beta, Tensor(), fe), w))); });
}

// FID Inception feature images/s at `batch` on `dev`, or -1 without the weights file.
double inception_images_per_s(Device dev, int64_t batch, int rounds) {
  const std::string path = default_inception_weights_path();
  if (!std::ifstream(path)) {
    fmt::print("FID Inception: skipped, no weights at {} (make fid-weights)\n", path);
    return -1;
  }
  const FidInception net = FidInception::load(path, DType::f32, dev);
  Philox gen(3);
  Tensor x = rand({batch, 3, 32, 32}, DType::f32, dev, &gen);
  net.features(x);
  synchronize(dev);
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) net.features(x);
  synchronize(dev);
  return double(batch) * rounds / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// v with `decimals` decimals, or "null" for a figure not measured (negative).
std::string number_or_null(double v, int decimals) {
  return v < 0 ? "null" : fmt::format("{:.{}f}", v, decimals);
}

void write_json(const std::string& path, const std::string& device, const std::string& device_name, bool quick,
                const std::vector<Result>& rs, const std::vector<int64_t>& pg, double pms, int64_t ib, double ips) {
  if (path.empty()) return;
  fmt::memory_buffer json;
  auto out = std::back_inserter(json);
  fmt::format_to(out, "{{\"impl\": \"fpa\", \"device\": \"{}\", \"device_name\": \"{}\", \"quick\": {},\n \"configs\": [",
                 device, device_name, quick);
  for (size_t i = 0; i < rs.size(); ++i) {
    const Result& r = rs[i];
    std::string err;
    for (char ch : r.error) err += (ch == '"' || ch == '\\') ? '\'' : (ch == '\n' ? ' ' : ch);
    fmt::format_to(out,
                   "{}\n  {{\"name\": \"{}\", \"preset\": \"{}\", \"batch\": {}, \"graph\": {}, \"steps\": {}, "
                   "\"ms_per_step\": {}, \"sample_batch\": {}, \"sample_images_per_s\": {}, "
                   "\"sample_images_per_s_fp32\": {}, \"peak_bytes\": {}, \"peak_reserved_bytes\": {}, \"error\": \"{}\"}}",
                   i ? "," : "", r.c.name, r.c.preset, r.c.batch, r.uses_graphs, r.steps,
                   number_or_null(r.ms_per_step, 3), r.sample_batch, number_or_null(r.sample_images_per_s, 1),
                   number_or_null(r.sample_images_per_s_fp32, 1), number_or_null(double(r.peak_bytes), 0),
                   number_or_null(double(r.peak_reserved_bytes), 0), err);
  }
  fmt::format_to(out, "],\n \"painter\": {{\"B\": {}, \"C\": {}, \"S\": {}, \"T\": {}, \"ms_fwd_bwd\": {}}},\n",
                 pg[0], pg[1], pg[2], pg[3], number_or_null(pms, 4));
  fmt::format_to(out, " \"inception\": {{\"batch\": {}, \"images_per_s\": {}}}}}\n", ib, number_or_null(ips, 2));
  try {
    write_file_atomically(path, fmt::to_string(json));
  } catch (const Error& e) {
    fmt::print(stderr, "bench_gpu: {}\n", e.what());
  }
}

int usage(const char* why) {
  fmt::print(stderr,
             "bench_gpu: {}\nusage: bench_gpu [--device cuda|cpu] [--steps N] [--configs a,b] [--json FILE] [--quick]\n",
             why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "cuda", json, only;
  int64_t steps = -1;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--device")
      device = value();
    else if (a == "--steps")
      steps = std::atoll(value().c_str());
    else if (a == "--configs")
      only = "," + value() + ",";
    else if (a == "--json")
      json = value();
    else if (a == "--quick")
      quick = true;
    else
      return usage(("unknown argument " + a).c_str());
  }
  Device dev;
  try {
    dev = device_named(device, "--device");
  } catch (const Error& e) {
    return usage(e.what());
  }
  if (!has_backend(dev)) return usage(("--device " + device + ": " + missing_backend_reason(dev)).c_str());
  if (steps <= 0) steps = quick ? 4 : 8;
  const std::string device_name = device + ": " + (backend(dev).summary ? backend(dev).summary() : "");
  fmt::print("fpa bench_gpu on {}, {} timed steps per configuration\n", device_name, steps);
  fmt::print("{:<20} {:>6} {:>10} {:>12} {:>12} {:>12}  {}\n", "config", "batch", "ms/step", "sample img/s", "peak MiB",
             "reserved MiB", "note");
  std::vector<Result> results;
  std::vector<int64_t> pg = quick ? std::vector<int64_t>{2, 1, 16, 8} : std::vector<int64_t>{20, 3, 64, 64};
  double pms = -1;
  int failed = 0;
  for (const Config& c : quick ? kQuick : kFull) {
    if (!only.empty() && only.find("," + c.name + ",") == std::string::npos) continue;
    Result r;
    r.c = c;
    try {
      run_config(r, dev, steps, quick);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    if (!r.error.empty()) failed = 1;
    results.push_back(r);
    auto shown = [](double v, int decimals) { return v < 0 ? std::string("n/a") : number_or_null(v, decimals); };
    fmt::print("{:<20} {:>6} {:>10} {:>12} {:>12} {:>12}  {}\n", c.name, c.batch, shown(r.ms_per_step, 2),
               shown(r.sample_images_per_s, 0), shown(double(r.peak_bytes) / 1048576.0, 0),
               shown(double(r.peak_reserved_bytes) / 1048576.0, 0),
               !r.error.empty() ? r.error : r.uses_graphs ? "CUDA graph replays" : "eager steps");
    std::fflush(stdout);
    write_json(json, device, device_name, quick, results, pg, pms, 0, -1);
  }
  try {
    pms = painter_ms(dev, pg[0], pg[1], pg[2], pg[3], quick ? 5 : 50);
    fmt::print("painter fwd+bwd (B {}, C {}, S {}, T {}): {:.4f} ms\n", pg[0], pg[1], pg[2], pg[3], pms);
  } catch (const std::exception& e) {
    fmt::print("painter fwd+bwd: failed: {}\n", e.what()), failed = 1;
  }
  const int64_t inception_batch = quick ? 2 : 64;
  double ips = -1;
  try {
    ips = inception_images_per_s(dev, inception_batch, quick ? 1 : 10);
    if (ips > 0) fmt::print("FID Inception (batch {}): {:.1f} images/s\n", inception_batch, ips);
  } catch (const std::exception& e) {
    fmt::print("FID Inception: failed: {}\n", e.what()), failed = 1;
  }
  write_json(json, device, device_name, quick, results, pg, pms, inception_batch, ips);
  return failed;
}
