// trainer.cpp: the training step and its checkpoint.
#include "train/trainer.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "autograd/error.h"
#include "fpa/parse_number.h"
#include "fpa/disc_attention.h"
#include "fpa/gan_losses.h"
#include "nn/state_dict.h"
#include "ops/backend/backend.h"
#include "ops/ops.h"

namespace fpa {
namespace {

std::vector<Tensor*> trainable(nn::Module& m) {
  std::vector<Tensor*> r;
  for (Tensor* p : m.parameters())
    if (p->requires_grad()) r.push_back(p);
  return r;
}

nn::AdamOptions adam_options(const TrainOptions& o) {
  nn::AdamOptions a;
  a.lr = o.lr, a.beta1 = o.beta1, a.beta2 = o.beta2;
  return a;
}

// Turns a module's gradients off for a scope (the generator step does not need D's).
struct FrozenScope {
  FrozenScope(nn::Module& m) : params(m.parameters()) {
    for (Tensor* p : params) p->requires_grad_(false);
  }
  ~FrozenScope() {
    for (Tensor* p : params) p->requires_grad_(true);
  }
  std::vector<Tensor*> params;
};

std::string meta(const std::map<std::string, std::string>& m, const std::string& key, const std::string& file) {
  auto it = m.find(key);
  FPA_CHECK(it != m.end(), file, ": not a training checkpoint (no '", key, "' in its metadata)");
  return it->second;
}

// A counter of the checkpoint's state: a whole non-negative integer, or an error naming the key.
int64_t meta_count(const std::map<std::string, std::string>& m, const std::string& key, const std::string& file) {
  const std::string v = meta(m, key, file);
  int64_t r = -1;
  FPA_CHECK(parse_int64(v, &r) && r >= 0, file, ": metadata '", key, "' must be a non-negative integer, got '", v,
            "'");
  return r;
}

uint64_t meta_u64(const std::map<std::string, std::string>& m, const std::string& key, const std::string& file) {
  const std::string v = meta(m, key, file);
  uint64_t r = 0;
  FPA_CHECK(parse_uint64(v, &r), file, ": metadata '", key, "' must be an unsigned 64-bit integer, got '", v, "'");
  return r;
}

}  // namespace

Trainer::Trainer(const TrainOptions& options, std::shared_ptr<const ImageDataset> data)
    : o_(options), rng_(options.seed * 2 + 1) {
  validate(o_.model);
  check_train_options(o_);
  FPA_CHECK(data->channels == o_.model.g.channels && data->size == o_.model.g.image_size,
            "train: the data (", data->source, ") is ", data->channels, " x ", data->size, " x ", data->size,
            " but the model expects ", o_.model.g.channels, " x ", o_.model.g.image_size, " x ",
            o_.model.g.image_size);
  manual_seed(o_.seed);  // model initialisation
  G_ = make_generator(o_.model.g);
  D_ = make_discriminator(o_.model.d);
  GE_ = make_generator(o_.model.g);
  if (o_.model.g.model == "unet") {
    FPA_CHECK(!o_.init_from.empty(), "train: the U-Net model trains from a pretrained FPA; pass --init-from CKPT");
    init_unet_base_from(o_.init_from);
  }
  // Onto the training device, before the Adams flatten the parameters where they find them.
  G_.module->to(o_.device), D_->to(o_.device), GE_.module->to(o_.device);
  ema_ = std::make_unique<nn::EMA>(*GE_.module, *G_.module, o_.ema_beta);
  ema_->reset();
  opt_g_ = std::make_unique<nn::Adam>(trainable(*G_.module), adam_options(o_));
  opt_d_ = std::make_unique<nn::Adam>(trainable(*D_), adam_options(o_));
  loader_ = std::make_unique<DataLoader>(data, o_.batch, o_.seed);
  use_graphs_ = o_.graph && backend(o_.device).supports("capture_begin");
}

Trainer::~Trainer() {
  for (void* graph : {captured_[0].graph, captured_[1].graph, ema_graph_})
    if (graph) backend(o_.device).graph_release(graph);
}

void Trainer::init_unet_base_from(const std::string& path) {
  // The base painter's tensors come from the FPA checkpoint (its EMA generator when present,
  // as the paper samples from it); the U-Net keeps its fresh initialisation.
  nn::NamedTensors file = nn::load_safetensors(path);
  std::string prefix = nn::has_prefix(file, "GE.") ? "GE." : "G.";
  GeneratorConfig base_cfg = o_.model.g;
  base_cfg.model = "v2";
  FastWeightPainter base(base_cfg);
  nn::LoadOptions opt;
  for (const char* other : {"G.", "GE.", "D."})
    if (prefix != other) opt.ignore_prefixes.push_back(other);
  nn::load_state_dict(base, prefix, file, opt);
  for (const auto& [name, src] : base.named_parameters()) {
    Tensor* dst = G_.module->find_parameter(name);
    FPA_CHECK(dst != nullptr, "train: --init-from ", path, ": the U-Net model has no parameter ", name);
    NoGradGuard ng;
    backend(dst->device()).copy(dst->data(), src->data(), size_t(src->numel()) * dtype_size(src->dtype()));
  }
}

bool Trainer::apply_gp_now() const { return o_.gp_every > 0 && step_ % o_.gp_every == 0; }

StepStats PendingStats::wait() {
  if (losses_.pending()) {
    std::vector<double> v = losses_.values();
    known_ = {v[0], v[1], v[2], v[3]};
  }
  return known_;
}

PendingStats Trainer::step_async() {
  const bool apply_gp = apply_gp_now();
  StepStats st;
  CapturedStep& captured = captured_[apply_gp ? 1 : 0];
  if (use_graphs_ && captured.warmed && launch_captured_step(captured, apply_gp, true)) {
    // Copied before any other replay: the other kind of step shares the graph's memory.
    PendingStats losses(PendingRead(captured.stats));
    finish_step();  // the EMA update (a graph of its own) queued behind the step's
    // The next step's host work while this one runs on the device, when it will be a replay.
    if (use_graphs_ && captured_[apply_gp_now() ? 1 : 0].warmed) prefetch_step_inputs();
    return losses;
  }
  rewind_prefetch();
  // Eager: latents drawn and images loaded as the step goes. The first step of each kind also
  // warms what a capture must find ready (cuDNN algorithms, cuBLAS, the allocator's cache).
  const Shape latents = {o_.batch, o_.model.g.latent_dim};
  StepSource eager{[&](int64_t) { return randn(latents, DType::f32, o_.device, &rng_); },
                   [&](int64_t) { return loader_->next().to(o_.device); },
                   [&](int64_t) { return randn(latents, DType::f32, o_.device, &rng_); },
                   [&](const Tensor& images, int64_t) { return diff_augment(images, o_.aug_prob, rng_); }};
  run_step(eager, apply_gp, false, st);
  captured.warmed = true;
  finish_step();
  return PendingStats(st);
}

StepStats Trainer::step_capture_ready() {
  CapturedStep unrecorded;  // the step a capture records, run as it is recorded
  launch_captured_step(unrecorded, apply_gp_now(), false);
  finish_step();
  PendingStats losses(PendingRead(unrecorded.stats));
  prefetch_step_inputs();
  return losses.wait();
}

void Trainer::finish_step() {
  const int64_t s = step_;
  if (o_.ema_every > 0 && s % o_.ema_every == 0 && s > o_.ema_start) update_ema();
  if (s <= o_.ema_reset_until && s % 1000 == 2) ema_->reset();
  ++step_;
}

Tensor Trainer::run_step(const StepSource& src, bool apply_gp, bool capturable, StepStats& st) {
  const GeneratorConfig& gc = o_.model.g;
  const double inv = 1.0 / double(o_.grad_accumulate);
  const HingeKind kind = gc.model == "unet" ? HingeKind::pooled : HingeKind::mean;
  // Captured: the losses stay on the device, summed here (scalars) and read after the replay.
  Tensor d_sum, g_sum, gp_sum, aux_sum;
  auto accumulate = [&](Tensor& sum, const Tensor& v) {
    Tensor x = mul_scalar(v.detach(), inv);
    sum = sum.defined() ? add(sum, x) : x;
  };

  // Discriminator step: fakes under no-grad, reals with the aux loss and (sometimes) the penalty.
  opt_d_->zero_grad();
  for (int64_t a = 0; a < o_.grad_accumulate; ++a) {
    Tensor z = src.d_latents(a);
    Tensor fake;
    {
      NoGradGuard ng;
      fake = G_.forward(z);
    }
    Tensor real = src.real_images(a);
    if (apply_gp) real.requires_grad_(true);
    Tensor fake_seen = src.augment(fake, 2 * a);  // the fakes' draws first, as the reference makes them
    Tensor real_seen = src.augment(real, 2 * a + 1);
    const DStepForward f = d_forward(*D_, fake_seen, real_seen, apply_gp ? real : Tensor(), o_.gp_weight);
    const DiscOutput &fo = f.fake, &ro = f.real;
    Tensor divergence = hinge(kind, ro.logits, fo.logits);
    Tensor loss = add(add(divergence, hinge(kind, ro.logits32, fo.logits32)), ro.aux_loss);
    if (apply_gp) {
      const Tensor& gp = f.gp;
      if (capturable) {  // skipping a NaN penalty needs its value on the host: captured, it is always added
        loss = add(loss, gp), accumulate(gp_sum, gp);
      } else {
        double v = gp.item();
        if (std::isfinite(v)) loss = add(loss, gp), st.gp += v * inv;  // the reference skips a NaN penalty
      }
    }
    backward(mul_scalar(loss, inv));
    if (capturable) {
      accumulate(d_sum, divergence), accumulate(aux_sum, ro.aux_loss);
    } else {
      st.d_loss += divergence.item() * inv;
      st.aux_loss += ro.aux_loss.item() * inv;
    }
  }
  capturable ? opt_d_->apply_step() : opt_d_->step();
  opt_d_->zero_grad();  // the gradients are in Adam's flat buffer now: not held through the G step

  // Generator step: fresh latents; D's own gradients are not needed. D's attention blocks keep
  // their intermediates here even where the backend is memory-bound: D on one batch peaks
  // below the D step's pair of batches, so checkpointing them would add launches, not save memory.
  opt_g_->zero_grad();
  {
    FrozenScope frozen(*D_);
    const disc::CheckpointAttentionScope below_the_peak(disc::CheckpointAttention::never);
    for (int64_t a = 0; a < o_.grad_accumulate; ++a) {
      Tensor fake = src.augment(G_.forward(src.g_latents(a)), 2 * o_.grad_accumulate + a);
      Tensor loss = generator_loss(D_->forward(fake, false));
      backward(mul_scalar(loss, inv));
      if (capturable) accumulate(g_sum, loss);
      else st.g_loss += loss.item() * inv;
    }
  }
  capturable ? opt_g_->apply_step() : opt_g_->step();
  opt_g_->zero_grad();  // nor through the next D step
  if (!capturable) return Tensor();
  if (!gp_sum.defined()) gp_sum = zeros({}, DType::f32, o_.device);
  return concat({reshape(d_sum, Shape{1}), reshape(g_sum, Shape{1}), reshape(gp_sum, Shape{1}),
                 reshape(aux_sum, Shape{1})},
                0);  // (4): d_loss, g_loss, gp, aux_loss
}

void Trainer::fill_step_inputs() {
  // The eager step's draws in the eager step's order (the D rounds' latents, then the G
  // rounds'), so both kinds of step consume the same random numbers and data.
  const Backend& be = backend(o_.device);
  auto upload = [&](Tensor& dst, const Tensor& host) {
    FPA_CHECK(host.shape() == dst.shape() && host.dtype() == dst.dtype(), "train: a step input is ", host.str(),
              " but the captured step expects ", dst.str());
    be.from_host(dst.data(), host.data(), size_t(host.numel()) * dtype_size(host.dtype()));
  };
  const Shape latents = {o_.batch, o_.model.g.latent_dim};
  const int64_t S = o_.model.g.image_size, R = o_.grad_accumulate;
  auto upload_augment = [&](int64_t call) {
    if (o_.aug_prob <= 0) return;
    AugmentInputs host = augment_inputs(draw_augment(o_.batch, S, o_.aug_prob, rng_), o_.batch, S, DType::f32,
                                        Device::cpu);
    AugmentInputs& dst = inputs_.augment[call];
    upload(dst.apply, host.apply), upload(dst.flip, host.flip), upload(dst.keep, host.keep);
    upload(dst.rows, host.rows), upload(dst.cols, host.cols);
  };
  for (int64_t a = 0; a < R; ++a) {
    upload(inputs_.d_latents[a], randn(latents, DType::f32, Device::cpu, &rng_));
    upload(inputs_.real_images[a], loader_->next());
    upload_augment(2 * a), upload_augment(2 * a + 1);
  }
  for (int64_t a = 0; a < R; ++a) {
    upload(inputs_.g_latents[a], randn(latents, DType::f32, Device::cpu, &rng_));
    upload_augment(2 * R + a);
  }
}

bool Trainer::launch_captured_step(CapturedStep& captured, bool apply_gp, bool record) {
  if (inputs_.d_latents.empty()) {
    const Shape latents = {o_.batch, o_.model.g.latent_dim};
    const int64_t C = o_.model.g.channels, S = o_.model.g.image_size;
    for (int64_t a = 0; a < o_.grad_accumulate; ++a) {
      inputs_.d_latents.push_back(empty(latents, DType::f32, o_.device));
      inputs_.real_images.push_back(empty({o_.batch, C, S, S}, DType::f32, o_.device));
      inputs_.g_latents.push_back(empty(latents, DType::f32, o_.device));
    }
    if (o_.aug_prob > 0)
      for (int64_t call = 0; call < 3 * o_.grad_accumulate; ++call)
        inputs_.augment.push_back(empty_augment_inputs(o_.batch, S, DType::f32, o_.device));
  }
  if (!prefetched_.ready) prefetch_step_inputs();  // keeps the state from before the draws
  const int64_t d_steps = opt_d_->step_count(), g_steps = opt_g_->step_count();
  opt_d_->prepare_step();
  opt_g_->prepare_step();
  // Fresh leaves on the fixed buffers (the penalty makes the real images require grad).
  StepSource fixed{[&](int64_t a) { return inputs_.d_latents[a].detach(); },
                   [&](int64_t a) { return inputs_.real_images[a].detach(); },
                   [&](int64_t a) { return inputs_.g_latents[a].detach(); },
                   [&](const Tensor& images, int64_t call) {
                     return o_.aug_prob > 0 ? apply_augment(images, inputs_.augment[call]) : images;
                   }};
  const Backend& be = backend(o_.device);
  StepStats unused;
  if (!record) {
    HostTrafficGuard guard("a capture-ready training step");
    captured.stats = run_step(fixed, apply_gp, true, unused);
    prefetched_.ready = false;
    return true;
  }
  if (!captured.graph) {
    // The two kinds of step share one pool: they replay one at a time, their losses are read
    // before the next replay (step_async), and nothing else they make outlives them (the
    // gradients are dropped after each optimiser step).
    void* other = captured_[apply_gp ? 0 : 1].graph;
    captured.graph = capture(
        "the training step", [&] { captured.stats = run_step(fixed, apply_gp, true, unused); }, other);
    if (!captured.graph) {  // nothing ran on the device: put back what the host advanced
      captured.stats = Tensor();
      rewind_prefetch();
      opt_d_->set_step_count(d_steps), opt_g_->set_step_count(g_steps);
      return false;
    }
  }
  prefetched_.ready = false;
  be.graph_replay(captured.graph);
  return true;
}

void* Trainer::capture(const char* what, const std::function<void()>& body, void* share_pool_of) {
  const Backend& be = backend(o_.device);
  bool recording = false;
  try {
    be.capture_begin(share_pool_of);
    recording = true;
    {
      HostTrafficGuard guard(what);
      body();
    }
    recording = false;
    return be.capture_end();
  } catch (const std::exception& e) {
    if (recording) {
      try {
        be.graph_release(be.capture_end());
      } catch (const std::exception&) {  // the capture is already invalid: e says why
      }
    }
    use_graphs_ = false;
    fmt::print(stderr, "fpa train: {} could not be captured as a CUDA graph ({}); training without graphs\n", what,
               e.what());
    return nullptr;
  }
}

void Trainer::update_ema() {
  if (use_graphs_ && !ema_graph_) ema_graph_ = capture("the EMA update", [&] { ema_->update(); });
  if (ema_graph_ && use_graphs_) backend(o_.device).graph_replay(ema_graph_);
  else ema_->update();
}

void Trainer::prefetch_step_inputs() {
  prefetched_.rng_seed = rng_.seed(), prefetched_.rng_offset = rng_.offset();
  prefetched_.loader = loader_->position();
  fill_step_inputs();
  prefetched_.ready = true;
}

void Trainer::rewind_prefetch() {
  if (!prefetched_.ready) return;
  rng_.set_state(prefetched_.rng_seed, prefetched_.rng_offset);
  loader_->set_position(prefetched_.loader);
  prefetched_.ready = false;
}

void Trainer::save_checkpoint(const std::string& path) const {
  std::vector<std::pair<std::string, Tensor>> tensors = nn::state_dict(*G_.module, "G.");
  for (auto& t : nn::state_dict(*D_, "D.")) tensors.push_back(t);
  for (auto& t : nn::state_dict(*GE_.module, "GE.")) tensors.push_back(t);
  tensors.push_back({"opt.G.exp_avg", opt_g_->exp_avg()});
  tensors.push_back({"opt.G.exp_avg_sq", opt_g_->exp_avg_sq()});
  tensors.push_back({"opt.D.exp_avg", opt_d_->exp_avg()});
  tensors.push_back({"opt.D.exp_avg_sq", opt_d_->exp_avg_sq()});
  std::map<std::string, std::string> m = train_metadata(o_);
  // The state before the next step's inputs were drawn ahead (prefetch_step_inputs), if they were.
  const bool ahead = prefetched_.ready;
  LoaderPosition pos = ahead ? prefetched_.loader : loader_->position();
  m["format"] = "fpa-train-checkpoint-1";
  m["state.step"] = std::to_string(step_);
  m["state.rng_seed"] = std::to_string(ahead ? prefetched_.rng_seed : rng_.seed());
  m["state.rng_offset"] = std::to_string(ahead ? prefetched_.rng_offset : rng_.offset());
  m["state.data_epoch"] = std::to_string(pos.epoch);
  m["state.data_index"] = std::to_string(pos.index);
  m["state.opt_g_step"] = std::to_string(opt_g_->step_count());
  m["state.opt_d_step"] = std::to_string(opt_d_->step_count());
  for (auto& entry : tensors) entry.second = entry.second.to(Device::cpu);  // one copy, checked and written
  const std::string bad = nn::first_non_finite(tensors);
  if (!bad.empty())
    throw NonFiniteState("train: not saving " + path + " at step " + std::to_string(step_) + ": " + bad +
                             "; the checkpoint already there (if any) is kept",
                         bad);
  nn::save_safetensors(path, tensors, m);
}

void Trainer::reseed_draws(uint64_t salt) {
  rewind_prefetch();
  rng_.set_state(rng_.seed() ^ (0x9E3779B97F4A7C15ull * (salt + 1)), rng_.offset());
}

void Trainer::load_checkpoint(const std::string& path) {
  nn::NamedTensors f = nn::load_safetensors(path);
  const auto& m = f.metadata;
  std::string diff = first_difference(m, train_metadata(o_));
  FPA_CHECK(diff.empty(), "train: ", path, " was trained with another configuration: ", diff);
  const std::string bad = nn::first_non_finite(f.tensors);
  FPA_CHECK(bad.empty(), "train: cannot resume from ", path, ": ", bad);
  nn::LoadOptions opt;
  opt.ignore_prefixes = {"D.", "GE.", "opt."};
  nn::load_state_dict(*G_.module, "G.", f, opt);
  opt.ignore_prefixes = {"G.", "GE.", "opt."};
  nn::load_state_dict(*D_, "D.", f, opt);
  opt.ignore_prefixes = {"G.", "D.", "opt."};
  nn::load_state_dict(*GE_.module, "GE.", f, opt);
  auto restore = [&](Tensor& dst, const char* name) {
    const Tensor* src = f.find(name);
    FPA_CHECK(src, path, ": optimiser state '", name, "' is missing");
    FPA_CHECK(src->shape() == dst.shape(), path, ": optimiser state '", name, "' has shape ", src->shape().str(),
              " but the model's parameters need ", dst.shape().str());
    FPA_CHECK(src->dtype() == dst.dtype(), path, ": optimiser state '", name, "' is ", dtype_name(src->dtype()),
              " but the model's parameters are ", dtype_name(dst.dtype()));
    Tensor host = src->to(Device::cpu);
    backend(dst.device()).from_host(dst.data(), host.data(), size_t(dst.numel()) * dtype_size(dst.dtype()));
  };
  restore(opt_g_->exp_avg(), "opt.G.exp_avg");
  restore(opt_g_->exp_avg_sq(), "opt.G.exp_avg_sq");
  restore(opt_d_->exp_avg(), "opt.D.exp_avg");
  restore(opt_d_->exp_avg_sq(), "opt.D.exp_avg_sq");
  step_ = meta_count(m, "state.step", path);
  prefetched_.ready = false;  // inputs drawn ahead belong to the old state
  rng_.set_state(meta_u64(m, "state.rng_seed", path), meta_u64(m, "state.rng_offset", path));
  loader_->set_position({meta_count(m, "state.data_epoch", path), meta_count(m, "state.data_index", path)});
  opt_g_->set_step_count(meta_count(m, "state.opt_g_step", path));
  opt_d_->set_step_count(meta_count(m, "state.opt_d_step", path));
}

}  // namespace fpa
