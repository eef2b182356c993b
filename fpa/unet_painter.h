// unet_painter.h: UNetPainter, the official `lstm_delta_split_v2_unet` generator
// (FPA_REFERENCE.md section 4): the FPA v2 painter, then the U-Net refiner, then tanh.
//
//   out = paint(z)                      W_T (B, C, S, S), before tanh
//   if unet_tanh:      out = tanh(out)
//   if stop_grad_unet: out = detach(out) (no gradient reaches the painter)
//   image = tanh(u_net(out))
//
// It derives from FastWeightPainter so that the painter's parameters sit at the top level of
// G ("G.latent_to_init.weight", ..., "G.kvb_net.bias") followed by "G.u_net.*", exactly as the
// official state dict. frozen_base: the painter's parameters have requires_grad off, so
// only the U-Net trains (the paper starts it from a pretrained FPA).
// Note: forward() hides the painter's forward (not virtual); call it on a UNetPainter.
// Not here: the painting-steps view with the U-Net row (official forward_with_steps).
#pragma once
#include <vector>

#include "fpa/fast_weight_painter.h"
#include "fpa/unet.h"

namespace fpa {

class UNetPainter : public FastWeightPainter {
 public:
  explicit UNetPainter(const GeneratorConfig& cfg);

  // z (B, L) -> image (B, C, S, S) in (-1, 1).
  Tensor forward(const Tensor& z) const;
  // The U-Net stage alone on a painted W_T (B, C, S, S): tanh(u_net(...)) with unet_tanh and
  // stop_grad_unet applied.
  Tensor refine(const Tensor& painted) const;

  // The optimiser's two groups of the official code: the painter's and the U-Net's.
  std::vector<Tensor*> base_parameters();
  std::vector<Tensor*> unet_parameters();
  // Freezes (false) or unfreezes (true) the painter only.
  void set_base_requires_grad(bool on);

  UNet* u_net;
};

}  // namespace fpa
