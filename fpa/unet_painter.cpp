// unet_painter.cpp: construction (painter, then freezing, then the U-Net) and the forward.
#include "fpa/unet_painter.h"

#include <memory>

namespace fpa {

UNetPainter::UNetPainter(const GeneratorConfig& cfg) : FastWeightPainter(cfg) {
  // Only the painter's parameters are registered at this point.
  if (cfg.frozen_base) set_requires_grad(false);
  int64_t dim = cfg.unet_dim > 0 ? cfg.unet_dim : cfg.image_size;
  u_net = register_module("u_net", std::make_shared<UNet>(dim, cfg.unet_dim_mults, cfg.channels));
}

Tensor UNetPainter::refine(const Tensor& painted) const {
  Tensor x = config().unet_tanh ? tanh(painted) : painted;
  if (config().stop_grad_unet) x = x.detach();
  return tanh(u_net->forward(x));
}

Tensor UNetPainter::forward(const Tensor& z) const { return refine(paint(z)); }

std::vector<Tensor*> UNetPainter::base_parameters() {
  std::vector<Tensor*> out;
  for (auto& p : named_parameters())
    if (p.first.rfind("u_net.", 0) != 0) out.push_back(p.second);
  return out;
}

std::vector<Tensor*> UNetPainter::unet_parameters() { return u_net->parameters(); }

void UNetPainter::set_base_requires_grad(bool on) {
  for (Tensor* p : base_parameters()) p->requires_grad_(on);
}

}  // namespace fpa
