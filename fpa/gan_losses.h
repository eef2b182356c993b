// gan_losses.h: the GAN losses of the paper's code (FPA_REFERENCE.md section 6): the hinge
// loss (mean form, and the pooled form of the U-Net models), the generator loss, the
// gradient penalty, and the whole discriminator loss of one D step.
//
// Sign convention of the official code: the discriminator pushes REAL logits negative and
// fake logits positive; the generator minimises mean(D(G(z))).
// Not here: the NaN skip of the gradient penalty, accumulation, optimiser steps (train/).
#pragma once
#include "fpa/discriminator.h"

namespace fpa {

// mean(relu(1 + real)) + mean(relu(1 - fake)): the official hinge_loss (equal shapes).
Tensor hinge_loss(const Tensor& real, const Tensor& fake);
// (sum relu(1 + real) + sum relu(1 - fake)) / (real.dim(0) + fake.dim(0)): the official
// hinge_loss_bis, used with the U-Net models. The divisor counts batch rows, not elements.
Tensor pooled_hinge_loss(const Tensor& real, const Tensor& fake);

enum class HingeKind { mean, pooled };
Tensor hinge(HingeKind kind, const Tensor& real, const Tensor& fake);

// mean(logits) + mean(logits32) of D on generated images (the official gen_ce_loss, twice).
Tensor generator_loss(const DiscOutput& fake_out);

// weight * mean_b((||g_b||_2 - 1)^2), g = d(sum(logits) + sum(logits32)) / d(images), taken
// with create_graph (so the penalty has parameter gradients) and retain_graph (so the same
// forward can still be backpropagated into the loss). `images` must require grad and be
// the input that produced `out`.
Tensor gradient_penalty(const Tensor& images, const DiscOutput& out, double weight = 10.0);
// The same on a fresh forward of D on real_images (made a grad-requiring leaf if needed).
Tensor gradient_penalty(const Discriminator& D, const Tensor& real_images, double weight = 10.0);
// The two halves: g = d(sum(logits) + sum(logits32)) / d(images) (create_graph, retain_graph),
// then weight * mean_b((||g_b||_2 - 1)^2).
Tensor penalty_input_grad(const Tensor& images, const DiscOutput& out);
Tensor penalty_from_input_grad(const Tensor& g, double weight = 10.0);

struct DiscLoss {
  Tensor total;          // divergence + divergence32 + aux (+ gp when applied)
  Tensor without_gp;     // divergence + divergence32 + aux (for a NaN penalty: the trainer's choice)
  Tensor divergence;     // hinge on the main logits: the logged "D loss"
  Tensor divergence32;   // hinge on the 32x32 head
  Tensor aux;            // decoder1 reconstruction MSE on the reals
  Tensor gp;             // undefined unless apply_gp
};

// D on the fakes (no aux) and the reals (with aux) of one D step, and the penalty when
// `penalized` is defined: the tensor it differentiates against (real itself, or the images
// real was augmented from; it must require grad). Without the penalty in one batch
// (Discriminator::forward_pair: on a GPU, half the kernel launches of two calls); with it in
// two calls, as the penalty's double backward would otherwise run over the fakes too (zero
// gradients, twice the work): the reals and their penalty first, the fakes last, so the
// backward (newest first) frees the fakes' graph before it reaches the penalty's second order,
// the step's peak of memory.
struct DStepForward {
  DiscOutput fake, real;
  Tensor gp;  // undefined without the penalty
};
DStepForward d_forward(const Discriminator& D, const Tensor& fake, const Tensor& real, const Tensor& penalized,
                       double gp_weight);

// One D step's loss: D on fakes (detached, no aux) and on reals (with aux) by d_forward, hinge
// on both heads, plus the gradient penalty on the reals' forward when apply_gp (step % 4 == 0).
DiscLoss discriminator_loss(const Discriminator& D, const Tensor& real_images, const Tensor& fake_images,
                            bool apply_gp, HingeKind kind = HingeKind::mean, double gp_weight = 10.0);

}  // namespace fpa
