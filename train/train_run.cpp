// train_run.cpp: the loop around Trainer::step_async: losses logged, pictures and checkpoints
// written, FID and KID measured (--fid-every; best.safetensors kept at the best FID), a
// non-finite loss stopped (or retried from the last checkpoint), SIGINT and SIGTERM answered
// with a checkpoint.
#include "train/train_run.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "autograd/error.h"
#include "ops/backend/backend.h"
#include "train/fid_monitor.h"
#include "train/metrics.h"
#include "train/pictures.h"
#include "train/progress.h"

namespace fpa {
namespace {

std::atomic<int> g_signals{0};
volatile std::sig_atomic_t g_last_signal = 0;

void write_stderr(const char* text) {  // async-signal-safe
  ssize_t n = write(STDERR_FILENO, text, std::strlen(text));
  (void)n;
}

// The first SIGINT or SIGTERM asks the loop to save and stop after the step in flight; a
// second one exits at once, leaving the last checkpoint as it is.
void on_signal(int sig) {
  g_last_signal = sig;
  if (++g_signals >= 2) {
    write_stderr("\nfpa train: second signal: exiting now without saving; the last checkpoint written is kept\n");
    std::_Exit(128 + sig);
  }
  write_stderr(sig == SIGTERM ? "\nfpa train: SIGTERM: saving a checkpoint after this step, then exiting "
                                "(a second signal exits at once without saving)\n"
                              : "\nfpa train: interrupted: saving a checkpoint after this step, then exiting "
                                "(Ctrl-C again exits at once without saving)\n");
}

// on_signal for SIGINT and SIGTERM while it lives; the previous handlers afterwards.
class SignalScope {
 public:
  SignalScope() {
    g_signals = 0, g_last_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SignalScope() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// The losses; where the backend keeps statistics also the most memory its allocator has held.
std::string stats_text(const StepStats& s, Device device) {
  std::string text = fmt::format("D {:.3f}  G {:.3f}  GP {:.3f}  aux {:.4f}", s.d_loss, s.g_loss, s.gp, s.aux_loss);
  const Backend& b = backend(device);
  const size_t held = b.memory_stats ? b.memory_stats().peak_bytes_reserved : 0;
  if (held > 0) text += fmt::format("  {} mem {:.2f} GiB", device_name(device), double(held) / (1 << 30));
  return text;
}

// "the G loss is nan" for the first non-finite loss of a step, or "".
std::string non_finite_loss(const StepStats& s) {
  const std::pair<const char*, double> losses[] = {
      {"D loss", s.d_loss}, {"G loss", s.g_loss}, {"gradient penalty", s.gp}, {"aux loss", s.aux_loss}};
  for (const auto& [name, v] : losses)
    if (!std::isfinite(v)) return std::string("the ") + name + " is " + (std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
  return "";
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

void write_pictures(const Trainer& t) {
  const TrainOptions& o = t.options();
  const GeneratorModel& ge = t.ema_generator();
  write_samples(ge, picture_latents(o, 64, 1), o.out + "/samples.png");
  write_samples(ge, picture_latents(o, 64, 1), fmt::format("{}/samples_{:06}.png", o.out, t.steps_done()));
  write_painting_steps(ge, picture_latents(o, 4, 2), o.out + "/painting_steps.png", o.out + "/painting.gif");
  write_interpolation(ge, picture_latents(o, 2, 3), 10, o.out + "/interpolation.png");
}

}  // namespace

Tensor picture_latents(const TrainOptions& o, int64_t n, uint64_t salt) {
  Philox g(o.seed * 1000003 + salt);
  return randn({n, o.model.g.latent_dim}, DType::f32, o.device, &g);
}

int run_training(Trainer& t, bool resumed) {
  const TrainOptions& o = t.options();
  MetricsLog metrics(o.out, resumed, t.steps_done());
  std::unique_ptr<FidMonitor> fid;
  double best_fid = metrics.best_fid(), last_fid = best_fid;
  if (o.fid_every > 0) {
    bool cached = false;
    fid = std::make_unique<FidMonitor>(o, t.dataset(), &cached);
    fmt::print(stderr, "fpa train: FID and KID every {} steps: {} images of the EMA generator against {} of {}{}\n",
               o.fid_every, o.fid_n, fid->real_count(), o.data, cached ? " (cached features)" : "");
  }
  Progress progress(t.steps_done(), o.steps, o.log_every);
  SignalScope signals;
  const std::string ckpt = o.out + "/last.safetensors";
  int64_t saved_step = resumed && file_exists(ckpt) ? t.steps_done() : -1;  // the last good checkpoint's
  int64_t retries = 0;
  double seconds = metrics.rows().empty() ? 0.0 : metrics.rows().back().seconds;
  // A step on the device whose losses are not read yet. While one is pending the next is
  // queued behind it, unless the host needs the state after it (pictures, a checkpoint, the
  // end, a signal): so a GPU never waits for the host between steps. A step's time runs from
  // the end of the previous one (or its own launch after host work) to its end.
  struct Launched {
    int64_t step;
    PendingStats losses;
  };
  auto launch = [&] {
    PendingStats losses = t.step_async();
    return Launched{t.steps_done(), std::move(losses)};
  };
  // A non-finite loss (or state) at `step`: back to the last checkpoint with other random
  // draws while --nan-retries allows, else the run stops there. Returns whether it goes on.
  auto diverged = [&](int64_t step, const std::string& why, int& code) {
    const std::string kept = saved_step >= 0 ? ckpt + " (step " + std::to_string(saved_step) + ") is kept"
                                             : "no checkpoint had been written yet";
    if (retries < o.nan_retries && saved_step >= 0) {
      ++retries;
      t.load_checkpoint(ckpt);
      t.reseed_draws(uint64_t(retries));
      metrics.keep_until(t.steps_done());
      progress.note("fpa train: " + why + " at step " + std::to_string(step) + "; retry " + std::to_string(retries) +
                    " of " + std::to_string(o.nan_retries) + " from " + ckpt + " (step " + std::to_string(saved_step) +
                    ") with other random draws");
      return true;
    }
    metrics.write_curve();
    progress.finish("fpa train: stopped: " + why + " at step " + std::to_string(step) + "; " + kept +
                    (o.nan_retries > 0 ? " (retries used: " + std::to_string(retries) + ")" : "") +
                    ". Lower --lr, or let --nan-retries N reload the last checkpoint and retry");
    code = kTrainingDiverged;
    return false;
  };
  auto clock = std::chrono::steady_clock::now();
  std::optional<Launched> current;
  if (t.steps_done() < o.steps) current = launch();
  int code = 0;
  while (current) {
    const int64_t step = current->step;
    const bool last = step == o.steps;
    const bool pictures = last || (o.sample_every > 0 && step % o.sample_every == 0);
    const bool checkpoint = last || (o.checkpoint_every > 0 && step % o.checkpoint_every == 0);
    const bool measure = fid && (last || step % o.fid_every == 0);
    const bool host_work = pictures || checkpoint || measure;
    std::optional<Launched> next;
    if (!current->losses.known() && !host_work && g_signals == 0) next = launch();
    StepStats s = current->losses.wait();
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - clock).count();
    clock = now;
    seconds += dt;
    double ips = double(o.batch * o.grad_accumulate) / dt;
    std::string bad = non_finite_loss(s);
    MetricsRow row{step, seconds, s.d_loss, s.g_loss, s.gp, s.aux_loss, ips};
    if (measure && bad.empty()) {
      const QualityScores q = fid->measure(t.ema_generator());
      row.fid = last_fid = q.fid, row.kid = q.kid.mean, row.kid_std = q.kid.std;
    }
    metrics.append(row);
    const std::string fid_text = std::isnan(last_fid) ? "" : fmt::format("  FID {:.2f}", last_fid);
    progress.update(step, ips, stats_text(s, o.device) + fid_text);
    if (bad.empty()) {
      if (pictures) write_pictures(t), metrics.write_curve();
      if (checkpoint) {
        try {
          t.save_checkpoint(ckpt);
          saved_step = step;
        } catch (const NonFiniteState& e) {
          bad = e.detail;
        }
      }
      if (bad.empty() && !std::isnan(row.fid) && (std::isnan(best_fid) || row.fid < best_fid)) {
        try {
          t.save_checkpoint(o.out + "/best.safetensors");
          best_fid = row.fid;
        } catch (const NonFiniteState& e) {
          bad = e.detail;
        }
      }
    }
    if (!bad.empty()) {
      if (next) next->losses.wait();  // the step queued behind it is discarded with it
      if (!diverged(step, bad, code)) break;
      clock = std::chrono::steady_clock::now();
      current = t.steps_done() < o.steps ? std::optional<Launched>(launch()) : std::nullopt;
      continue;
    }
    if (g_signals > 0 && !next) {  // a step already queued is finished (and logged) first
      if (!checkpoint) t.save_checkpoint(ckpt);
      metrics.write_curve();
      const int sig = int(g_last_signal);
      progress.finish(std::string("fpa train: ") + (sig == SIGTERM ? "terminated" : "interrupted") + " at step " +
                      std::to_string(step) + "; saved " + ckpt + " (continue with --resume)");
      code = 128 + sig;
      break;
    }
    if (host_work) clock = std::chrono::steady_clock::now();
    current = std::move(next);
    if (!current && t.steps_done() < o.steps) current = launch();
  }
  if (code == 0)
    progress.finish("fpa train: done: " + std::to_string(t.steps_done()) + " steps; pictures and " + ckpt + " in " +
                    o.out);
  return code;
}

}  // namespace fpa
