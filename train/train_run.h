// train_run.h: a whole training run in a folder: steps with progress, metrics.csv and the
// loss curve, pictures every sample_every steps, DIR/last.safetensors every
// checkpoint_every steps and at the end, and on Ctrl-C a checkpoint before exiting.
#pragma once
#include <string>

#include "train/trainer.h"

namespace fpa {

// Runs until options().steps; returns 0, or 130 when interrupted (after saving).
int run_training(Trainer& trainer, bool resumed);

// Fixed latents for a run's pictures: the same for a seed in every run and resume.
Tensor picture_latents(const TrainOptions& o, int64_t n, uint64_t salt);

}  // namespace fpa
