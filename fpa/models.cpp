// models.cpp: the model factory.
#include "fpa/models.h"

#include "fpa/unet_painter.h"

namespace fpa {

GeneratorModel make_generator(const GeneratorConfig& config) {
  GeneratorModel g;
  if (config.model == "unet") {
    auto m = std::make_shared<UNetPainter>(config);
    g.module = m;
    g.forward = [m](const Tensor& z) { return m->forward(z); };
    g.painter = m.get();
  } else {
    auto m = std::make_shared<FastWeightPainter>(config);
    g.module = m;
    g.forward = [m](const Tensor& z) { return m->forward(z); };
    g.painter = m.get();
  }
  return g;
}

static std::string shape_text(const Shape& s) {  // PyTorch's tuple form: (387,) or (4096, 128)
  std::string r = "(";
  for (int i = 0; i < s.ndim; ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.ndim == 1 ? ",)" : ")");
}

std::vector<std::string> parameter_listing(nn::Module& g, nn::Module& d) {
  std::vector<std::string> lines;
  for (const auto& [name, t] : g.named_parameters("G.")) lines.push_back(name + " " + shape_text(t->shape()));
  for (const auto& [name, t] : d.named_parameters("D.")) lines.push_back(name + " " + shape_text(t->shape()));
  return lines;
}

std::shared_ptr<Discriminator> make_discriminator(const DiscriminatorConfig& config) {
  return std::make_shared<Discriminator>(config);
}

}  // namespace fpa
