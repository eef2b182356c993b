// trainer.h: one GAN training step exactly as FPA_REFERENCE.md section 6 (discriminator
// step with both heads, aux loss and every gp_every-th step the gradient penalty; generator
// step; Adam on each; the EMA schedule; DiffAugment; gradient accumulation), and the
// checkpoint that holds everything needed to continue bit for bit: G, D, GE, both Adam
// states, the step, the random-number state and the data order position.
//
// On a backend that captures (CUDA) the step runs as a CUDA graph unless options.graph is
// off (--no-graph). The first step with and the first without the penalty run eagerly
// (finding cuDNN algorithms, filling the allocator's cache); the next of each kind is
// captured, with its device work recorded from fixed input buffers, and every later one is a
// replay: the host draws the latents (the same Philox numbers, on the CPU), loads the real
// images, draws DiffAugment's choices (as 0/1 tensors, diff_augment.h), uploads them all and
// the Adam terms, and launches the graph; the four losses come back in one copy queued behind
// it, read when the caller wants them (step_async: train_run queues the next step first). The
// EMA update, on the steps that have one, is a graph of its own replayed after the step's.
// While a replay runs, the host already draws and uploads the next step's inputs (a
// checkpoint saves the state from before that). A capture that fails is reported and
// training goes on eagerly.
// Captured, a non-finite penalty is added like any other (the eager step skips it as the
// reference does, but that needs its value on the host).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "autograd/error.h"
#include "autograd/philox.h"
#include "autograd/pending_read.h"
#include "data/loader.h"
#include "fpa/models.h"
#include "nn/adam.h"
#include "nn/ema.h"
#include "train/diff_augment.h"
#include "train/train_options.h"

namespace fpa {

// save_checkpoint's refusal when a parameter or optimiser moment holds a NaN or an infinity:
// nothing is written. `detail` names the tensor ("G.x holds 3 non-finite values (of 96)").
struct NonFiniteState : Error {
  NonFiniteState(const std::string& message, std::string what_is_wrong)
      : Error(message), detail(std::move(what_is_wrong)) {}
  std::string detail;
};

struct StepStats {
  double d_loss = 0, g_loss = 0, gp = 0, aux_loss = 0;  // gp 0 when not applied (or NaN, skipped)
};

// A step's losses, known at once (an eager step read them as it went) or on their way from
// the device behind a replayed step (wait() waits for that step alone).
class PendingStats {
 public:
  explicit PendingStats(const StepStats& known) : known_(known) {}
  explicit PendingStats(PendingRead losses) : losses_(std::move(losses)) {}
  bool known() const { return !losses_.pending(); }
  StepStats wait();

 private:
  StepStats known_;
  PendingRead losses_;  // (4): d_loss, g_loss, gp, aux_loss
};

class Trainer {
 public:
  // Fresh models seeded from options.seed (and, for the U-Net model, the base loaded from
  // options.init_from). `data` supplies the real images.
  Trainer(const TrainOptions& options, std::shared_ptr<const ImageDataset> data);

  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One training step, queued: on a backend that replays graphs it returns once the step is
  // launched, with its losses pending; eagerly, once it has run.
  PendingStats step_async();
  StepStats step() { return step_async().wait(); }
  // The step exactly as a capture records it (fixed input buffers, no host reads inside,
  // enforced by a HostTrafficGuard), run directly: for tests on any backend.
  StepStats step_capture_ready();
  int64_t steps_done() const { return step_; }
  bool uses_graphs() const { return use_graphs_; }

  // Writes atomically (PATH.tmp, then rename); throws NonFiniteState, writing nothing, when the
  // state is not finite, so a diverged run never replaces a good checkpoint.
  void save_checkpoint(const std::string& path) const;
  // Restores everything a checkpoint holds; options must already match its experiment.
  // Refuses a checkpoint holding a non-finite tensor, naming it.
  void load_checkpoint(const std::string& path);
  // Moves the latents' and augmentations' random stream to another one, derived from the
  // current state and `salt` (a retry after a non-finite loss draws other numbers).
  void reseed_draws(uint64_t salt);

  const TrainOptions& options() const { return o_; }
  const ImageDataset& dataset() const { return loader_->dataset(); }
  const GeneratorModel& generator() const { return G_; }
  const GeneratorModel& ema_generator() const { return GE_; }
  Discriminator& discriminator() { return *D_; }

 private:
  // Where a step's latents (B, latent) and real images (B, C, S, S) come from, per
  // accumulation round, and how the images a discriminator call sees are augmented (call
  // 2a: round a's fakes, 2a + 1: its reals, 2R + a: generator round a's fakes, R rounds):
  // drawn and loaded as the step runs, or the fixed input buffers.
  struct StepSource {
    std::function<Tensor(int64_t round)> d_latents, real_images, g_latents;
    std::function<Tensor(const Tensor& images, int64_t call)> augment;
  };
  // The fixed input buffers of a captured step, one per accumulation round (augment: one per
  // discriminator call, when DiffAugment is on).
  struct StepInputs {
    std::vector<Tensor> d_latents, real_images, g_latents;
    std::vector<AugmentInputs> augment;
  };
  // One kind of step (with or without the penalty) as a graph.
  struct CapturedStep {
    bool warmed = false;    // an eager step of this kind has run
    void* graph = nullptr;  // the backend's graph, once captured
    Tensor stats;           // (4): d_loss, g_loss, gp, aux_loss, written by every replay
  };

  void init_unet_base_from(const std::string& path);
  bool apply_gp_now() const;
  // Both optimiser steps. capturable: losses summed on the device and returned as (4), Adam
  // terms prepared beforehand, no host reads; otherwise losses read into st as they come.
  Tensor run_step(const StepSource& src, bool apply_gp, bool capturable, StepStats& st);
  void fill_step_inputs();
  // The host work (inputs unless prefetched, Adam terms), then the first time the capture, and
  // the replay, without waiting for it; or, without record, the capturable step run directly.
  // False when the capture failed: the host state is put back and graphs are off from then on
  // (said on stderr), so the caller runs the step eagerly.
  bool launch_captured_step(CapturedStep& captured, bool apply_gp, bool record);
  // body() recorded as a graph under a HostTrafficGuard named `what`, in the memory pool of
  // share_pool_of when given (see Backend::capture_begin); on failure null, graphs off from
  // then on, and a message on stderr.
  void* capture(const char* what, const std::function<void()>& body, void* share_pool_of = nullptr);
  void update_ema();  // a replay of the captured EMA update where graphs are on
  // Draws and uploads the next step's inputs now, keeping the state from before for a
  // checkpoint; an eager step rewinds to that state and draws its own (rewind_prefetch).
  void prefetch_step_inputs();
  void rewind_prefetch();
  void finish_step();  // the EMA schedule, the step count

  TrainOptions o_;
  GeneratorModel G_, GE_;
  std::shared_ptr<Discriminator> D_;
  std::unique_ptr<nn::Adam> opt_g_, opt_d_;
  std::unique_ptr<nn::EMA> ema_;
  std::unique_ptr<DataLoader> loader_;
  Philox rng_;  // latents and augmentation choices
  int64_t step_ = 0;
  bool use_graphs_ = false;
  StepInputs inputs_;
  CapturedStep captured_[2];  // without, with the penalty
  void* ema_graph_ = nullptr;  // EMA::update, captured at its first use
  struct {
    bool ready = false;  // inputs_ hold the next step's inputs
    uint64_t rng_seed = 0, rng_offset = 0;  // rng_ and the loader before they were drawn
    LoaderPosition loader;
  } prefetched_;
};

}  // namespace fpa
