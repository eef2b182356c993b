// cli_models.cpp: the verbs that make the engine checkable against any PyTorch model:
// `params` (every parameter's name and shape, as params-*.txt), `generate` (latents ->
// images) and `discriminate` (images -> logits, logits32, aux_loss), all through
// safetensors files with the reference tensor names.

#include "autograd/error.h"
#include "fpa/models.h"
#include "nn/state_dict.h"
#include "tools/cli_verbs.h"

namespace fpa::cli {
namespace {

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(i, ",");
  return s;
}

DType dtype_flag(const Args& a) {
  std::string d = a.str("dtype", "float32");
  FPA_CHECK(d == "float32" || d == "float64", "fpa ", a.verb(), ": --dtype must be float32 or float64, got '", d, "'");
  return d == "float32" ? DType::f32 : DType::f64;
}

// The configuration: --preset's when given, else the checkpoint's (checked before any model is
// built); then any configuration-key flags (--hidden 512) on top.
ModelConfig config_for(const Args& a, const nn::NamedTensors& ckpt) {
  if (a.has("preset")) return a.model_config("");
  FPA_CHECK(ckpt.metadata.count("g.model") > 0, "fpa ", a.verb(), ": ", ckpt.source,
            " carries no model configuration (a PyTorch export?); pass --preset NAME and any overrides");
  ModelConfig c = from_metadata(ckpt.metadata);
  a.apply_config_keys(c);
  return c;
}

// Loading that converts a checkpoint of the other float type (--dtype float64 on float32 weights).
nn::LoadOptions converting_load(const std::vector<std::string>& ignored) {
  nn::LoadOptions opt;
  opt.allow_dtype_conversion = true;
  opt.ignore_prefixes.insert(opt.ignore_prefixes.end(), ignored.begin(), ignored.end());
  return opt;
}

Tensor read_tensor(const std::string& path, const char* name, const char* verb) {
  nn::NamedTensors f = nn::load_safetensors(path);
  const Tensor* t = f.find(name);
  FPA_CHECK(t != nullptr, "fpa ", verb, ": ", path, " has no tensor '", name, "'");
  return *t;
}

}  // namespace

void warn_if_not_finite(const Args& a, const nn::NamedTensors& ckpt, const std::string& prefix) {
  std::vector<std::pair<std::string, Tensor>> part;
  for (const auto& entry : ckpt.tensors)
    if (entry.first.rfind(prefix, 0) == 0) part.push_back(entry);
  const std::string bad = nn::first_non_finite(part);
  if (!bad.empty())
    fmt::print(stderr, "fpa {}: warning: {}: {}; the outputs will not be finite\n", a.verb(), ckpt.source, bad);
}

int params(const Args& a) {
  ModelConfig c = a.model_config("paper-rgb64-T64");
  a.finish();
  GeneratorModel g = make_generator(c.g);
  std::shared_ptr<Discriminator> d = make_discriminator(c.d);
  for (const std::string& line : parameter_listing(*g.module, *d)) fmt::print("{}\n", line);
  fmt::print("# G: {} parameters\n# D: {} parameters\n", with_commas(g.module->parameter_count()),
             with_commas(d->parameter_count()));
  return 0;
}

int generate(const Args& a) {
  std::string ckpt_path = a.required("ckpt"), latents = a.required("latents"), out = a.required("out");
  bool ema = a.flag("ema");
  DType dtype = dtype_flag(a);
  nn::NamedTensors ckpt = nn::load_safetensors(ckpt_path);
  ModelConfig c = config_for(a, ckpt);
  a.finish();
  GeneratorModel g = make_generator(c.g);
  g.module->to(dtype);
  std::string prefix = ema ? "GE." : "G.";
  FPA_CHECK(nn::has_prefix(ckpt, prefix), "fpa generate: ", ckpt_path, " has no ", prefix, "* tensors",
            ema ? " (no EMA generator saved; drop --ema)" : "");
  warn_if_not_finite(a, ckpt, prefix);
  nn::load_state_dict(*g.module, prefix, ckpt, converting_load({ema ? "G." : "GE.", "D.", "opt."}));
  g.module->eval();
  Tensor z = read_tensor(latents, "z", "generate");
  FPA_CHECK(z.ndim() == 2 && z.dim(1) == c.g.latent_dim, "fpa generate: latents 'z' ", z.shape(),
            " should be (B, ", c.g.latent_dim, ")");
  NoGradGuard ng;
  Tensor images = g.forward(z.to(dtype));
  nn::save_safetensors(out, {{"images", images}}, {});
  fmt::print(stderr, "fpa generate: wrote images {} to {}\n", images.shape(), out);
  return 0;
}

int discriminate(const Args& a) {
  std::string ckpt_path = a.required("ckpt"), images_path = a.required("images"), out = a.required("out");
  DType dtype = dtype_flag(a);
  nn::NamedTensors ckpt = nn::load_safetensors(ckpt_path);
  ModelConfig c = config_for(a, ckpt);
  a.finish();
  std::shared_ptr<Discriminator> d = make_discriminator(c.d);
  d->to(dtype);
  warn_if_not_finite(a, ckpt, "D.");
  nn::load_state_dict(*d, "D.", ckpt, converting_load({"G.", "GE.", "opt."}));
  Tensor x = read_tensor(images_path, "images", "discriminate");
  FPA_CHECK(x.ndim() == 4 && x.dim(1) == c.d.channels && x.dim(2) == c.d.image_size && x.dim(3) == c.d.image_size,
            "fpa discriminate: images ", x.shape(), " should be (B, ", c.d.channels, ", ", c.d.image_size, ", ",
            c.d.image_size, ")");
  NoGradGuard ng;
  DiscOutput o = d->forward(x.to(dtype), true);
  nn::save_safetensors(out, {{"logits", o.logits}, {"logits32", o.logits32}, {"aux_loss", reshape(o.aux_loss, {1})}}, {});
  fmt::print(stderr, "fpa discriminate: wrote logits {}, logits32 {}, aux_loss to {}\n", o.logits.shape(),
             o.logits32.shape(), out);
  return 0;
}

}  // namespace fpa::cli
