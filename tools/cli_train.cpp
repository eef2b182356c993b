// cli_train.cpp: `fpa train` (fresh or --resume), and the picture verbs on a checkpoint:
// `sample` (a grid), `paint` (the painting steps as PNG or GIF), `interpolate` (a strip).
#include <fmt/format.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "autograd/error.h"
#include "data/dataset_cache.h"
#include "nn/state_dict.h"
#include "ops/backend/backend.h"
#include "tools/cli_verbs.h"
#include "train/pictures.h"
#include "train/run_lock.h"
#include "train/train_run.h"

namespace fpa::cli {
namespace {

Device device_flag(const Args& a) {
  const std::string name = a.str("device", "cpu");
  const Device d = device_named(name, "--device");
  FPA_CHECK(has_backend(d), "fpa ", a.verb(), ": --device ", name, ": ", missing_backend_reason(d));
  FPA_CHECK(backend(d).supports("gemm"), "fpa ", a.verb(), ": --device ", name,
            ": this backend's compute kernels are not implemented yet; use --device cpu");
  return d;
}

bool file_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

void make_dirs(const std::string& dir) {
  int err = 0;
  std::string cur;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if ((i == dir.size() || dir[i] == '/') && !cur.empty() && mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      err = errno;
    if (i < dir.size()) cur += dir[i];
  }
  struct stat st;
  FPA_CHECK(stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "fpa train: cannot create the output folder ", dir,
            ": ", std::strerror(err ? err : ENOTDIR));
}

// Flags `train` reads itself, apart from configuration keys and train options.
bool is_run_flag(const std::string& n) {
  return n == "preset" || n == "size" || n == "resume" || n == "device" || n == "no-graph" || n == "no-tf32" ||
         n == "help" || n == "out";
}

// The options of a fresh run: preset defaults, then configuration keys and train flags.
TrainOptions fresh_options(const Args& a) {
  std::string preset = a.str("preset", "cpu-small");
  TrainOptions o = train_defaults(preset);
  o.model = a.model_config(preset, train_flag_names());
  if (a.has("size")) {
    int64_t size = a.integer("size", 0);
    FPA_CHECK(size == o.model.g.image_size, "fpa train: --size ", size, " contradicts preset ", preset,
              " (image size ", o.model.g.image_size, "); use --image_size ", size, " to change the model too");
  }
  for (const std::string& n : a.names())
    if (!is_run_flag(n) && set_train_flag(o, n, a.peek(n))) a.has(n);
  o.out = a.str("out", o.out);
  return o;
}

// The options of a resumed run: the checkpoint's experiment. Every flag of the fresh run may be
// given again (the same command with --resume added); a value that differs from the checkpoint
// is refused, naming the key. Only run flags (--steps, --out, the --*-every) may change.
TrainOptions resumed_options(const Args& a, const std::string& out, const nn::NamedTensors& ckpt) {
  auto preset_it = ckpt.metadata.find("preset");
  std::string preset = preset_it == ckpt.metadata.end() || preset_it->second.empty() ? "cpu-small" : preset_it->second;
  TrainOptions o = train_defaults(preset);
  apply_train_metadata(o, ckpt.metadata);
  o.out = out;
  const std::string refused = "fpa train --resume: " + ckpt.source + " was trained with another configuration: ";
  if (a.has("preset"))
    FPA_CHECK(a.str("preset", "") == preset, refused, "preset (checkpoint: ", preset, ", now: ", a.str("preset", ""),
              ")");
  if (a.has("size"))
    FPA_CHECK(a.integer("size", 0) == o.model.g.image_size, refused, "image size (checkpoint: ", o.model.g.image_size,
              ", now: ", a.integer("size", 0), ")");
  TrainOptions asked = o;
  for (const std::string& n : a.names()) {
    if (is_run_flag(n)) continue;
    std::string v = a.peek(n);
    bool known = set_train_flag(asked, n, v);
    if (!known && !train_flag_names().count(n) && is_config_key(n)) {
      set_config_value(asked.model, n, v);
      known = true;
    }
    if (known) a.has(n);
  }
  std::string diff = first_difference(train_metadata(o), train_metadata(asked));
  FPA_CHECK(diff.empty(), refused, diff);
  o.steps = asked.steps, o.sample_every = asked.sample_every, o.checkpoint_every = asked.checkpoint_every;
  o.log_every = asked.log_every, o.nan_retries = asked.nan_retries;
  o.fid_every = asked.fid_every, o.fid_n = asked.fid_n;
  return o;
}

Tensor latents(const Args& a, const nn::NamedTensors& ckpt, int64_t n) {
  Philox gen(uint64_t(a.integer("seed", 0)) * 7919 + 17);
  return randn({n, from_metadata(ckpt.metadata).g.latent_dim}, DType::f32, Device::cpu, &gen);
}

}  // namespace

GeneratorModel load_generator(const Args& a, nn::NamedTensors& ckpt, bool ema) {
  FPA_CHECK(ckpt.metadata.count("g.model"), "fpa ", a.verb(), ": ", ckpt.source,
            " carries no model configuration (a PyTorch export?); `fpa generate --preset NAME` runs exported weights");
  ModelConfig c = from_metadata(ckpt.metadata);
  GeneratorModel g = make_generator(c.g);
  std::string prefix = ema && nn::has_prefix(ckpt, "GE.") ? "GE." : "G.";
  nn::LoadOptions opt;
  for (const char* other : {"G.", "GE.", "D.", "opt."})
    if (prefix != other) opt.ignore_prefixes.push_back(other);
  warn_if_not_finite(a, ckpt, prefix);
  nn::load_state_dict(*g.module, prefix, ckpt, opt);
  g.module->eval();
  return g;
}

int train(const Args& a) {
  Device device = device_flag(a);
  bool resume = a.flag("resume");
  TrainOptions o;
  std::string out = a.str("out", "runs/default");
  const std::string ckpt_path = out + "/last.safetensors";
  std::unique_ptr<RunLock> lock;
  nn::NamedTensors ckpt;
  if (resume) {
    FPA_CHECK(file_exists(ckpt_path), "fpa train --resume: no checkpoint at ", ckpt_path);
    lock = std::make_unique<RunLock>(out);
    ckpt = nn::load_safetensors(ckpt_path);
    FPA_CHECK(ckpt.metadata.count("state.step"), "fpa train --resume: ", ckpt_path,
              " is not a training checkpoint (no state.step in its metadata)");
    o = resumed_options(a, out, ckpt);
  } else {
    o = fresh_options(a);
  }
  o.device = device;
  o.graph = !a.flag("no-graph");
  const bool strict_fp32 = a.flag("no-tf32");
  a.finish();
  validate(o.model);
  check_train_options(o);
  FPA_CHECK(o.init_from.empty() || file_exists(o.init_from), "fpa train: --init-from ", o.init_from, ": ",
            std::strerror(ENOENT));
  if (strict_fp32 && backend(device).set_strict_float32) backend(device).set_strict_float32(true);
  if (!resume) {
    make_dirs(o.out);
    lock = std::make_unique<RunLock>(o.out);
    FPA_CHECK(!file_exists(ckpt_path), "fpa train: ", o.out, " already holds a run (", ckpt_path,
              "): continue it with the same command and --resume, or choose another --out");
  }
  bool cache_hit = false;
  auto data = std::make_shared<const ImageDataset>(
      load_dataset(o.data, int(o.model.g.image_size), o.model.g.channels == 1, true, "", &cache_hit));
  fmt::print(stderr, "fpa train: {}, {} images {}x{} ({}), preset {}, batch {}, steps {} -> {}\n", o.data, data->count,
             data->size, data->size, cache_hit ? "from cache" : "decoded", o.model.preset, o.batch, o.steps, o.out);
  Trainer t(o, data);
  if (t.uses_graphs())
    fmt::print(stderr, "fpa train: CUDA graphs on (--no-graph for eager steps): the first step with and without the "
                       "penalty run eagerly, the next are captured, later ones replay\n");
  if (resume) {
    t.load_checkpoint(ckpt_path);
    fmt::print(stderr, "fpa train: resumed at step {}\n", t.steps_done());
  }
  return run_training(t, resume);
}

int sample(const Args& a) {
  nn::NamedTensors ckpt = nn::load_safetensors(a.required("ckpt"));
  std::string out = a.required("out");
  int64_t n = a.integer("n", 64);
  FPA_CHECK(n > 0, "fpa sample: --n must be positive");
  GeneratorModel g = load_generator(a, ckpt, !a.flag("no-ema"));
  Tensor z = latents(a, ckpt, n);
  a.finish();
  write_samples(g, z, out);
  fmt::print(stderr, "fpa sample: wrote {} samples to {}\n", n, out);
  return 0;
}

int paint(const Args& a) {
  nn::NamedTensors ckpt = nn::load_safetensors(a.required("ckpt"));
  std::string out = a.required("out");
  int64_t n = a.integer("n", 4);
  FPA_CHECK(n > 0, "fpa paint: --n must be positive");
  bool gif = out.size() > 4 && out.substr(out.size() - 4) == ".gif";
  GeneratorModel g = load_generator(a, ckpt, !a.flag("no-ema"));
  Tensor z = latents(a, ckpt, n);
  a.finish();
  write_painting_steps(g, z, gif ? "" : out, gif ? out : "");
  fmt::print(stderr, "fpa paint: wrote the painting steps of {} samples to {}\n", n, out);
  return 0;
}

int interpolate(const Args& a) {
  nn::NamedTensors ckpt = nn::load_safetensors(a.required("ckpt"));
  std::string out = a.required("out");
  int64_t count = a.integer("count", 10);
  FPA_CHECK(count >= 2, "fpa interpolate: --count must be at least 2");
  GeneratorModel g = load_generator(a, ckpt, !a.flag("no-ema"));
  Tensor z = latents(a, ckpt, 2);
  a.finish();
  write_interpolation(g, z, int(count), out);
  fmt::print(stderr, "fpa interpolate: wrote {} images to {}\n", count, out);
  return 0;
}

}  // namespace fpa::cli
