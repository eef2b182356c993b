// train_options.h: every hyperparameter of a training run (FPA_REFERENCE.md section 6) with
// the per-preset defaults, parsing from `fpa train` flags, and the round trip through a
// checkpoint's metadata, so a resumed run can check it continues the same experiment.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "autograd/dtype.h"
#include "fpa/config.h"

namespace fpa {

struct TrainOptions {
  ModelConfig model;
  std::string data = "fashion-mnist";  // fashion-mnist or an image folder
  int64_t batch = 32;
  int64_t grad_accumulate = 1;
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.9;
  double aug_prob = 0.0;
  int64_t gp_every = 4;                 // gradient penalty when step % gp_every == 0
  double gp_weight = 10.0;
  double ema_beta = 0.995;
  int64_t ema_every = 10;               // EMA update when step % ema_every == 0 ...
  int64_t ema_start = 20000;            // ... and step > ema_start
  int64_t ema_reset_until = 25000;      // GE = G when step <= this and step % 1000 == 2
  uint64_t seed = 0;
  std::string init_from;                // U-Net model: the pretrained FPA checkpoint
  // Not part of the experiment (may change on resume):
  int64_t steps = 2000;                 // train until this many steps in total
  std::string out = "runs/default";
  int64_t sample_every = 500, checkpoint_every = 500, log_every = 50;  // 0: at the end only / never
  int64_t nan_retries = 0;  // a non-finite loss: reload the last checkpoint this many times, then stop
  int64_t fid_every = 0;    // FID and KID of the EMA generator every this many steps (0: never)
  int64_t fid_n = 1000;     // generated images per FID
  Device device = Device::cpu;
  bool graph = true;  // capture the step as a CUDA graph where the backend can (--no-graph: eager)
};

// Defaults for a preset: the paper's hyperparameters, the batch of its table, and for
// cpu-small a schedule scaled to a run of minutes.
TrainOptions train_defaults(const std::string& preset);

// Throws naming the first option out of its range ("--aug-prob must be in [0, 1], got 2").
void check_train_options(const TrainOptions& o);

// Experiment keys ("train.lr", ...) plus the model's keys, for the checkpoint metadata.
std::map<std::string, std::string> train_metadata(const TrainOptions& o);
// Restores the experiment from metadata (the run-only fields keep their current values).
void apply_train_metadata(TrainOptions& o, const std::map<std::string, std::string>& m);
// The first experiment key whose value differs, or "" (used to refuse a mismatched resume).
std::string first_difference(const std::map<std::string, std::string>& saved,
                             const std::map<std::string, std::string>& requested);
// The names of all train flags ("steps", "batch", "lr", ...).
std::set<std::string> train_flag_names();
// Sets one option from a flag name ("lr", "batch", "aug-prob", ...); false when not a train flag.
bool set_train_flag(TrainOptions& o, const std::string& name, const std::string& value);

}  // namespace fpa
