// trainer.h: one GAN training step exactly as FPA_REFERENCE.md section 6 (discriminator
// step with both heads, aux loss and every gp_every-th step the gradient penalty; generator
// step; Adam on each; the EMA schedule; DiffAugment; gradient accumulation), and the
// checkpoint that holds everything needed to continue bit for bit: G, D, GE, both Adam
// states, the step, the random-number state and the data order position.
#pragma once
#include <memory>
#include <string>

#include "autograd/generator.h"
#include "data/loader.h"
#include "fpa/models.h"
#include "nn/adam.h"
#include "nn/ema.h"
#include "train/train_options.h"

namespace fpa {

struct StepStats {
  double d_loss = 0, g_loss = 0, gp = 0, aux_loss = 0;  // gp 0 when not applied (or NaN, skipped)
};

class Trainer {
 public:
  // Fresh models seeded from options.seed (and, for the U-Net model, the base loaded from
  // options.init_from). `data` supplies the real images.
  Trainer(const TrainOptions& options, std::shared_ptr<const ImageDataset> data);

  StepStats step();
  int64_t steps_done() const { return step_; }

  void save_checkpoint(const std::string& path) const;
  // Restores everything a checkpoint holds; options must already match its experiment.
  void load_checkpoint(const std::string& path);

  const TrainOptions& options() const { return o_; }
  const GeneratorModel& generator() const { return G_; }
  const GeneratorModel& ema_generator() const { return GE_; }
  Discriminator& discriminator() { return *D_; }

 private:
  void init_unet_base_from(const std::string& path);
  Tensor augment(const Tensor& images);

  TrainOptions o_;
  GeneratorModel G_, GE_;
  std::shared_ptr<Discriminator> D_;
  std::unique_ptr<nn::Adam> opt_g_, opt_d_;
  std::unique_ptr<nn::EMA> ema_;
  std::unique_ptr<DataLoader> loader_;
  Generator rng_;  // latents and augmentation choices
  int64_t step_ = 0;
};

}  // namespace fpa
