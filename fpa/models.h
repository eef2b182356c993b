// models.h: builds the models a configuration names, behind one interface, so the CLI and
// the trainer need not know which generator family they hold. G is a FastWeightPainter
// (v2, v1, hebb, oja) or a UNetPainter (unet); D is the Discriminator.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fpa/config.h"
#include "fpa/discriminator.h"
#include "fpa/fast_weight_painter.h"
#include "nn/module.h"

namespace fpa {

struct GeneratorModel {
  std::shared_ptr<nn::Module> module;                     // parameters under "G." / "GE."
  std::function<Tensor(const Tensor&)> forward;           // z (B, L) -> images (B, C, S, S), after tanh
  const FastWeightPainter* painter = nullptr;             // the FPA part (the base of a U-Net model)
};

GeneratorModel make_generator(const GeneratorConfig& config);
std::shared_ptr<Discriminator> make_discriminator(const DiscriminatorConfig& config);

// "G.kvb_net.weight (387, 1024)" lines for G then D, in the format of the spec's params-*.txt.
std::vector<std::string> parameter_listing(nn::Module& g, nn::Module& d);

}  // namespace fpa
