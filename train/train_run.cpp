// train_run.cpp: the loop around Trainer::step.
#include "train/train_run.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <sstream>

#include "train/metrics.h"
#include "train/pictures.h"
#include "train/progress.h"

namespace fpa {
namespace {

std::atomic<int> g_interrupts{0};

void on_interrupt(int) {
  if (++g_interrupts >= 2) std::_Exit(130);  // a second Ctrl-C does not wait
}

std::string stats_text(const StepStats& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "D %.3f  G %.3f  GP %.3f  aux %.4f", s.d_loss, s.g_loss, s.gp, s.aux_loss);
  return buf;
}

void write_pictures(const Trainer& t) {
  const TrainOptions& o = t.options();
  const GeneratorModel& ge = t.ema_generator();
  write_samples(ge, picture_latents(o, 64, 1), o.out + "/samples.png");
  char name[64];
  std::snprintf(name, sizeof name, "/samples_%06lld.png", (long long)t.steps_done());
  write_samples(ge, picture_latents(o, 64, 1), o.out + name);
  write_painting_steps(ge, picture_latents(o, 4, 2), o.out + "/painting_steps.png", o.out + "/painting.gif");
  write_interpolation(ge, picture_latents(o, 2, 3), 10, o.out + "/interpolation.png");
}

}  // namespace

Tensor picture_latents(const TrainOptions& o, int64_t n, uint64_t salt) {
  Generator g(o.seed * 1000003 + salt);
  return randn({n, o.model.g.latent_dim}, DType::f32, o.device, &g);
}

int run_training(Trainer& t, bool resumed) {
  const TrainOptions& o = t.options();
  MetricsLog metrics(o.out, resumed, t.steps_done());
  Progress progress(t.steps_done(), o.steps, o.log_every);
  g_interrupts = 0;
  auto previous = std::signal(SIGINT, on_interrupt);
  const std::string ckpt = o.out + "/last.safetensors";
  double seconds = metrics.rows().empty() ? 0.0 : metrics.rows().back().seconds;
  int code = 0;
  while (t.steps_done() < o.steps) {
    auto start = std::chrono::steady_clock::now();
    StepStats s = t.step();
    double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds += dt;
    double ips = double(o.batch * o.grad_accumulate) / dt;
    int64_t step = t.steps_done();
    metrics.append({step, seconds, s.d_loss, s.g_loss, s.gp, s.aux_loss, ips});
    progress.update(step, ips, stats_text(s));
    bool last = step == o.steps;
    if (step % o.sample_every == 0 || last) write_pictures(t), metrics.write_curve();
    if (step % o.checkpoint_every == 0 || last) t.save_checkpoint(ckpt);
    if (g_interrupts > 0) {
      t.save_checkpoint(ckpt);
      metrics.write_curve();
      progress.finish("interrupted at step " + std::to_string(step) + "; saved " + ckpt +
                      " (continue with --resume)");
      code = 130;
      break;
    }
  }
  std::signal(SIGINT, previous);
  if (code == 0) progress.finish("done: " + std::to_string(t.steps_done()) + " steps; pictures and " + ckpt + " in " + o.out);
  return code;
}

}  // namespace fpa
