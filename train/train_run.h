// train_run.h: a whole training run in a folder: steps with progress, metrics.csv and the
// loss curve, pictures every sample_every steps, DIR/last.safetensors every
// checkpoint_every steps and at the end, on SIGINT or SIGTERM a checkpoint before exiting, and
// on a non-finite loss a stop (or a retry from the last checkpoint) that keeps the checkpoint.
#pragma once
#include <string>

#include "train/trainer.h"

namespace fpa {

// The exit code of a run stopped by a non-finite loss or state (its last checkpoint kept).
constexpr int kTrainingDiverged = 3;

// Runs until options().steps; returns 0, 128 + the signal after SIGINT or SIGTERM (after
// saving a checkpoint), or kTrainingDiverged.
int run_training(Trainer& trainer, bool resumed);

// Fixed latents for a run's pictures: the same for a seed in every run and resume.
Tensor picture_latents(const TrainOptions& o, int64_t n, uint64_t salt);

}  // namespace fpa
