// train_run.cpp: the loop around Trainer::step_async: losses logged, pictures and checkpoints
// written, Ctrl-C handled.
#include "train/train_run.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <optional>
#include <sstream>

#include "train/metrics.h"
#include "train/pictures.h"
#include "train/progress.h"
#ifdef FPA_WITH_CUDA
#include "ops/cuda/cuda_flags.h"
#endif

namespace fpa {
namespace {

std::atomic<int> g_interrupts{0};

void on_interrupt(int) {
  if (++g_interrupts >= 2) std::_Exit(130);  // a second Ctrl-C does not wait
}

// The losses; on a GPU also the most device memory the allocator has held so far.
std::string stats_text(const StepStats& s, Device device) {
  char buf[200];
  int n = std::snprintf(buf, sizeof buf, "D %.3f  G %.3f  GP %.3f  aux %.4f", s.d_loss, s.g_loss, s.gp, s.aux_loss);
#ifdef FPA_WITH_CUDA
  const size_t held = device == Device::cuda ? cuda_memory_stats().peak_bytes_reserved : 0;
  if (held > 0) std::snprintf(buf + n, sizeof buf - size_t(n), "  GPU mem %.2f GiB", double(held) / (1 << 30));
#endif
  (void)n, (void)device;
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
  // A step on the device whose losses are not read yet. While one is pending the next is
  // queued behind it, unless the host needs the state after it (pictures, a checkpoint, the
  // end, Ctrl-C): so a GPU never waits for the host between steps. A step's time runs from
  // the end of the previous one (or its own launch after host work) to its end.
  struct Launched {
    int64_t step;
    PendingStats losses;
  };
  auto launch = [&] {
    PendingStats losses = t.step_async();
    return Launched{t.steps_done(), std::move(losses)};
  };
  auto clock = std::chrono::steady_clock::now();
  std::optional<Launched> current;
  if (t.steps_done() < o.steps) current = launch();
  int code = 0;
  while (current) {
    const int64_t step = current->step;
    const bool last = step == o.steps;
    const bool pictures = step % o.sample_every == 0 || last, checkpoint = step % o.checkpoint_every == 0 || last;
    const bool host_work = pictures || checkpoint;
    std::optional<Launched> next;
    if (!current->losses.known() && !host_work && g_interrupts == 0) next = launch();
    StepStats s = current->losses.wait();
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - clock).count();
    clock = now;
    seconds += dt;
    double ips = double(o.batch * o.grad_accumulate) / dt;
    metrics.append({step, seconds, s.d_loss, s.g_loss, s.gp, s.aux_loss, ips});
    progress.update(step, ips, stats_text(s, o.device));
    if (pictures) write_pictures(t), metrics.write_curve();
    if (checkpoint) t.save_checkpoint(ckpt);
    if (g_interrupts > 0 && !next) {  // a step already queued is finished (and logged) first
      t.save_checkpoint(ckpt);
      metrics.write_curve();
      progress.finish("interrupted at step " + std::to_string(step) + "; saved " + ckpt +
                      " (continue with --resume)");
      code = 130;
      break;
    }
    if (host_work) clock = std::chrono::steady_clock::now();
    current = std::move(next);
    if (!current && t.steps_done() < o.steps) current = launch();
  }
  std::signal(SIGINT, previous);
  if (code == 0) progress.finish("done: " + std::to_string(t.steps_done()) + " steps; pictures and " + ckpt + " in " + o.out);
  return code;
}

}  // namespace fpa
