// discriminator.cpp: construction (layout, names, Kaiming init) and the forward pass of the
// lightweight-GAN discriminator, following the official painter.Discriminator line by line.
#include "fpa/discriminator.h"

#include <cmath>
#include <string>

#include "autograd/error.h"
#include "nn/init.h"

namespace fpa {

namespace {

using disc::Sequential;

constexpr double kSlope = 0.1;  // LeakyReLU slope everywhere in D

// A plain named container (decoder1, decoder1.layers' parent).
class Container : public nn::Module {
 public:
  template <typename M>
  M* add(const std::string& name, std::shared_ptr<M> m) { return register_module(name, m); }
};

Sequential::Step identity() { return [](const Tensor& x) { return x; }; }  // Blur, antialias off
Sequential::Step lrelu() { return [](const Tensor& x) { return leaky_relu(x, kSlope); }; }

std::shared_ptr<nn::Conv2d> conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t padding = 0) {
  Conv2dOptions o;
  o.stride = stride, o.padding = padding;
  return std::make_shared<nn::Conv2d>(in, out, k, o, true);
}

// SumBranches of [Blur, Conv4x4 s2 p1, LReLU, Conv3x3 p1, LReLU] and [Blur, AvgPool2, Conv1x1, LReLU].
std::shared_ptr<disc::SumBranches> down_block(int64_t in, int64_t out) {
  auto b0 = std::make_shared<Sequential>();
  b0->add_fn(identity());
  b0->add(conv(in, out, 4, 2, 1));
  b0->add_fn(lrelu());
  b0->add(conv(out, out, 3, 1, 1));
  b0->add_fn(lrelu());
  auto b1 = std::make_shared<Sequential>();
  b1->add_fn(identity());
  b1->add_fn([](const Tensor& x) { return avg_pool2d(x, 2); });
  b1->add(conv(in, out, 1));
  b1->add_fn(lrelu());
  return std::make_shared<disc::SumBranches>(std::vector<std::shared_ptr<Sequential>>{b0, b1});
}

std::shared_ptr<disc::PreNormAttention> prenorm_attention(int64_t dim, disc::AttentionSize a) {
  auto attention = std::make_shared<disc::LinearAttention>(dim, a.dim_head, a.heads);
  return std::make_shared<disc::PreNormAttention>(dim, attention);
}

}  // namespace

Discriminator::Discriminator(const DiscriminatorConfig& c, Philox* gen) : cfg_(c) {
  const disc::AttentionSize attn{c.attn_heads, c.attn_dim_head};
  const int64_t S = c.image_size, C = c.channels;
  FPA_CHECK(S >= 16 && S <= 256 && (S & (S - 1)) == 0, "Discriminator: image size ", S,
            " is not a power of two between 16 and 256");
  FPA_CHECK(C >= 1, "Discriminator: channels must be positive, got ", C);
  FPA_CHECK(c.output_size == 1 || c.output_size == 5, "Discriminator: output_size must be 1 or 5, got ",
            c.output_size);
  FPA_CHECK(c.fmap_max > 0, "Discriminator: fmap_max must be positive, got ", c.fmap_max);
  const int resolution = int(std::lround(std::log2(double(S))));

  // features(r) = min(2^(fmap_inverse_coef - r), fmap_max) for r = log2(S) .. 3, first entry C.
  std::vector<int> res_list;
  for (int r = resolution; r > 2; --r) {
    res_list.push_back(r);
    if (r == resolution) {
      features_.push_back(C);
      continue;
    }
    FPA_CHECK(c.fmap_inverse_coef - r >= 0 && c.fmap_inverse_coef - r < 62, "Discriminator: fmap_inverse_coef ",
              c.fmap_inverse_coef, " gives no whole channel count at resolution 2^", r);
    features_.push_back(std::min<int64_t>(int64_t(1) << (c.fmap_inverse_coef - r), c.fmap_max));
  }
  const int64_t last = features_.back();
  // decoder1 halves the channels by GLU three times before its last layer.
  FPA_CHECK(last % 8 == 0, "Discriminator: the last feature count ", last,
            " (min(2^(fmap_inverse_coef - 3), fmap_max)) must be a multiple of 8 for decoder1");

  auto residual_layers = std::make_shared<nn::ModuleList>();
  for (size_t i = 0; i + 1 < features_.size(); ++i) {
    const int64_t side = int64_t(1) << res_list[i], in = features_[i], out = features_[i + 1];
    auto level = std::make_shared<nn::ModuleList>();
    Level lv{level->push_back(down_block(in, out)), nullptr};
    for (int64_t a : c.attn_res_layers)
      if (a == side && !lv.attn)
        lv.attn = level->push_back(prenorm_attention(in, attn));
    residual_layers->push_back(level);
    levels_.push_back(lv);
  }
  register_module("residual_layers", residual_layers);

  auto logits = std::make_shared<Sequential>();
  if (c.output_size == 5) {
    logits->add(conv(last, last, 1));
    logits->add_fn(lrelu());
    logits->add(conv(last, 1, 4));
  } else {
    logits->add_fn(identity());
    logits->add(conv(last, last, 3, 2, 1));
    logits->add_fn(lrelu());
    logits->add(conv(last, 1, 4));
  }
  to_logits_ = register_module("to_logits", logits);

  auto head = std::make_shared<Sequential>();
  head->add(conv(C, 64, 3, 1, 1));
  head->add(std::make_shared<disc::ResidualAttention>(prenorm_attention(64, attn)));
  head->add(down_block(64, 32));
  head->add(std::make_shared<disc::ResidualAttention>(prenorm_attention(32, attn)));
  head->add_fn([](const Tensor& x) { return adaptive_avg_pool2d(x, 4, 4); });
  head->add(conv(32, 1, 4));
  to_shape_disc_out_ = register_module("to_shape_disc_out", head);

  // decoder1 (SimpleDecoder, 4 upsamples): [Upsample x2, Conv3x3 p1, GLU(dim 1)] per layer;
  // channels chans -> chans (GLU halves), the last one chans -> 2C.
  auto decoder = std::make_shared<Container>();
  auto layers = std::make_shared<nn::ModuleList>();
  int64_t chans = last;
  for (int i = 0; i < 4; ++i) {
    const int64_t out = i == 3 ? 2 * C : chans;
    auto layer = std::make_shared<Sequential>();
    layer->add_fn([](const Tensor& x) { return upsample_nearest(x, 2); });
    layer->add(conv(chans, out, 3, 1, 1));
    layer->add_fn([](const Tensor& x) { return glu(x, 1); });
    decoder_layers_.push_back(layers->push_back(layer));
    chans /= 2;
  }
  decoder->add("layers", layers);
  register_module("decoder1", decoder);

  // Kaiming normal (fan_in, leaky_relu with a = 0: gain sqrt 2) on every conv weight.
  for (auto& [name, p] : named_parameters()) {
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) continue;
    const Shape s = p->shape();
    *p = nn::init_kaiming_normal(s, s.numel() / s[0], std::sqrt(2.0), gen);
    p->requires_grad_(true);
  }
}

void Discriminator::check_images(const Tensor& images, const char* what) const {
  const int64_t S = cfg_.image_size;
  FPA_CHECK(images.ndim() == 4 && images.dim(1) == cfg_.channels && images.dim(2) == S && images.dim(3) == S,
            "Discriminator: ", what, " must be (B, ", cfg_.channels, ", ", S, ", ", S, "), got ", images.shape());
}

Tensor Discriminator::trunk(const Tensor& images) const {
  Tensor x = images;
  for (const Level& lv : levels_) {
    if (lv.attn) x = add(lv.attn->forward(x), x);
    x = lv.net->forward(x);
  }
  return x;
}

Tensor Discriminator::logits(const Tensor& features) const {
  return reshape(to_logits_->forward(features), {features.dim(0), -1});
}

Tensor Discriminator::logits32(const Tensor& images) const {
  return to_shape_disc_out_->forward(interpolate_nearest(images, 32, 32));
}

Tensor Discriminator::aux_loss(const Tensor& features, const Tensor& images) const {
  Tensor recon = features;  // the last block's output, (B, fmap, 8, 8)
  for (const Sequential* layer : decoder_layers_) recon = layer->forward(recon);
  return mse_loss(recon, interpolate_nearest(images, recon.dim(2), recon.dim(3)));
}

DiscOutput Discriminator::forward(const Tensor& images, bool calc_aux_loss) const {
  check_images(images, "images");
  Tensor x = trunk(images);
  DiscOutput out{logits(x), logits32(images), Tensor()};
  if (calc_aux_loss) out.aux_loss = aux_loss(x, images);
  return out;
}

Discriminator::Pair Discriminator::forward_pair(const Tensor& fake, const Tensor& real) const {
  check_images(fake, "fake images");
  check_images(real, "real images");
  FPA_CHECK(fake.shape() == real.shape(), "Discriminator: fake images ", fake.shape(), " and real images ",
            real.shape(), " differ in shape");
  const int64_t B = fake.dim(0);
  Tensor images = concat({fake, real}, 0);  // (2B, C, S, S): fakes first
  Tensor x = trunk(images);
  Tensor both = logits(x), both32 = logits32(images);
  Pair out;
  out.fake = {slice(both, 0, 0, B), slice(both32, 0, 0, B), Tensor()};
  out.real = {slice(both, 0, B, 2 * B), slice(both32, 0, B, 2 * B), aux_loss(slice(x, 0, B, 2 * B), real)};
  return out;
}

}  // namespace fpa
