// fast_weight_painter.cpp: construction (the official initialisation, spec section 2) and the
// front end z -> (k, v, beta) in front of the learning rules. The key softmax and the rate sigmoid
// of the front end run inside the painting (PaintFrontEnd), fused with it on the CPU.
#include "fpa/fast_weight_painter.h"

#include <cmath>

#include "autograd/error.h"
#include "nn/init.h"

namespace fpa {

FastWeightPainter::FastWeightPainter(const GeneratorConfig& cfg) : cfg_(cfg) {
  const std::string& m = cfg.model;
  FPA_CHECK(m == "v2" || m == "unet" || m == "oja" || m == "v1" || m == "hebb", "FastWeightPainter: model '", m,
            "' is not one of v2, unet, oja, v1, hebb");
  FPA_CHECK(!cfg.learned_w0 || m == "v1", "FastWeightPainter: learned_w0 applies to model v1 only, not ", m);
  FPA_CHECK(cfg.image_size > 0 && cfg.channels > 0 && cfg.steps > 0 && cfg.latent_dim > 0 && cfg.hidden > 0 &&
                cfg.layers > 0 && cfg.mini_latent > 0 && cfg.mini_input > 0 && cfg.wide_out_dim >= 0,
            "FastWeightPainter: sizes must be positive");
  rule_ = m == "hebb" ? LearningRule::hebb : m == "oja" ? LearningRule::oja : LearningRule::delta;
  v2_front_ = m == "v2" || m == "unet" || m == "oja";
  has_init_ = m != "oja";        // the official Oja generator has no latent_to_init
  use_softmax_ = m != "hebb";    // the official lstm_sum never gets use_softmax
  lr_dim_ = cfg.vect_lr ? cfg.image_size : 1;
  const int64_t S = cfg.image_size, C = cfg.channels, T = cfg.steps, L = cfg.latent_dim, H = cfg.hidden;
  const int64_t rnn_in = v2_front_ ? cfg.mini_input : L;
  const double kaiming_gain = std::sqrt(2.0);  // leaky_relu with a = 0, fan_in

  // Registration order = the official one (decoder_time_enc first).
  if (cfg.use_pos_enc) {
    decoder_time_enc = randn({T, rnn_in});
    register_parameter("decoder_time_enc", &decoder_time_enc);
  }
  if (cfg.learned_w0) {
    learned_init = randn({C, S, S});
    register_parameter("learned_init", &learned_init);
  }
  if (has_init_) latent_to_init = register_module("latent_to_init", std::make_shared<nn::Linear>(L, 2 * cfg.layers * H));
  if (v2_front_) {
    input_generator = register_module("input_generator", std::make_shared<nn::Linear>(L, cfg.mini_latent * T));
    per_time_linear_input =
        register_module("per_time_linear_input", std::make_shared<nn::Linear>(cfg.mini_latent, cfg.mini_input));
  }
  decoder_rnn = register_module("decoder_rnn", std::make_shared<nn::LSTM>(rnn_in, H, cfg.layers));  // U(+-1/sqrt H)
  int64_t head_in = H;
  if (cfg.wide_out_dim > 0) {
    auto wide = std::make_shared<nn::ModuleList>();
    wide_linear = wide->push_back(std::make_shared<nn::Linear>(H, cfg.wide_out_dim));
    register_module("wide_net", wide);
    head_in = cfg.wide_out_dim;
  }
  if (rule_ == LearningRule::hebb) {
    head = register_module("kv_net", std::make_shared<nn::Linear>(head_in, C * 2 * S));  // default init
  } else {
    head = register_module("kvb_net", std::make_shared<nn::Linear>(head_in, C * (2 * S + lr_dim_)));
    double bound = 1.0 / std::sqrt(double(C * (2 * S + 1)));  // official: + 1 even with vect_lr
    head->weight = nn::init_uniform(head->weight.shape(), bound).requires_grad_();
    head->bias = nn::init_uniform(head->bias.shape(), bound).requires_grad_();
  }
  if (v2_front_)
    per_time_linear_input->weight =
        nn::init_kaiming_normal(per_time_linear_input->weight.shape(), cfg.mini_latent, kaiming_gain).requires_grad_();
  if (m == "v1")
    latent_to_init->weight = nn::init_kaiming_normal(latent_to_init->weight.shape(), L, kaiming_gain).requires_grad_();
}

FastWeightPainter::Painting FastWeightPainter::prepare(const Tensor& z) const {
  check_defined("FastWeightPainter", z, "latent");
  FPA_CHECK(z.ndim() == 2 && z.dim(1) == cfg_.latent_dim, "FastWeightPainter: expects z (B, ", cfg_.latent_dim,
            "), got ", z.shape());
  const int64_t B = z.dim(0), S = cfg_.image_size, C = cfg_.channels, T = cfg_.steps, H = cfg_.hidden;
  const int64_t layers = cfg_.layers, N = B * C;

  Tensor h0, c0;  // (layers, B, H)
  if (has_init_) {
    std::vector<Tensor> hc = split(latent_to_init->forward(z), {layers * H, layers * H}, 1);
    h0 = transpose(reshape(hc[0], {B, layers, H}), 0, 1);
    c0 = transpose(reshape(hc[1], {B, layers, H}), 0, 1);
  }
  Tensor x;  // (T, B, rnn_in)
  if (v2_front_) {
    Tensor u = input_generator->forward(z);  // (B, m*T)
    if (cfg_.input_tanh) u = tanh(u);
    u = reshape(u, {B, T, cfg_.mini_latent});
    x = transpose(per_time_linear_input->forward(u), 0, 1);
  } else {
    x = expand(reshape(z, {1, B, cfg_.latent_dim}), Shape{T, B, cfg_.latent_dim});
  }
  if (cfg_.use_pos_enc) x = x + reshape(decoder_time_enc, {T, 1, decoder_time_enc.dim(1)});
  Tensor y = decoder_rnn->forward(x, h0, c0).output;  // (T, B, H)
  if (wide_linear) y = relu(wide_linear->forward(y));
  Tensor o = head->forward(y);  // (T, B, C*(2S + r)) or (T, B, C*2S)

  Painting p;
  std::vector<int64_t> sizes = {C * S, C * S};
  if (rule_ != LearningRule::hebb) sizes.push_back(C * lr_dim_);
  std::vector<Tensor> kvb = split(o, sizes, 2);
  p.k = reshape(kvb[0], {T, N, S});
  p.v = reshape(kvb[1], {T, N, S});
  if (rule_ != LearningRule::hebb) {
    if (cfg_.val_tanh) p.v = tanh(p.v);
    p.beta = reshape(kvb[2], {T, N, lr_dim_});
  }
  // k and beta stay raw: the painting applies their softmax and sigmoid (front_end below).
  if (cfg_.learned_w0)
    p.w0 = reshape(expand(reshape(learned_init, {1, C, S, S}), Shape{B, C, S, S}), {N, S, S});
  return p;
}

// What the painting applies to prepare()'s raw k and beta first.
static PaintFrontEnd front_end(bool use_softmax, LearningRule rule, const GeneratorConfig& cfg) {
  PaintFrontEnd fe;
  fe.key_softmax = use_softmax;
  fe.rate_sigmoid = rule != LearningRule::hebb && !cfg.no_sigmoid_lr;
  return fe;
}

Tensor FastWeightPainter::paint(const Tensor& z) const {
  Painting p = prepare(z);
  Tensor W = fpa::paint(rule_, p.k, p.v, p.beta, p.w0, front_end(use_softmax_, rule_, cfg_));  // (N, S, S)
  return reshape(W, {z.dim(0), cfg_.channels, cfg_.image_size, cfg_.image_size});
}

Tensor FastWeightPainter::forward(const Tensor& z) const { return tanh(paint(z)); }

PaintingSteps FastWeightPainter::forward_with_steps(const Tensor& z) const {
  Painting p = prepare(z);
  PaintTrace tr = paint_trace(rule_, p.k, p.v, p.beta, p.w0, front_end(use_softmax_, rule_, cfg_));
  const int64_t B = z.dim(0), C = cfg_.channels, S = cfg_.image_size;
  Tensor n = norm(tr.weights.back());  // ||W_T||, all channels and the whole batch together
  auto view = [&](const Tensor& x) { return reshape(tanh(mul(div(x, norm(x)), n)), {1, B, C, S, S}); };
  PaintingSteps r;
  std::vector<Tensor> ups, imgs;
  for (size_t t = 0; t < tr.weights.size(); ++t) ups.push_back(view(tr.updates[t])), imgs.push_back(view(tr.weights[t]));
  r.updates = concat(ups, 0);
  r.images = concat(imgs, 0);
  return r;
}

}  // namespace fpa
