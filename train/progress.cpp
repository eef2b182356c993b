// progress.cpp: the live line and the plain log lines.
#include "train/progress.h"

#include <fmt/format.h>
#include <unistd.h>

namespace fpa {

Progress::Progress(int64_t start_step, int64_t total_steps, int64_t log_every, std::FILE* out)
    : out_(out),
      live_(isatty(fileno(out)) != 0),
      start_step_(start_step),
      total_(total_steps),
      log_every_(log_every > 0 ? log_every : 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

std::string Progress::duration_text(double s) {
  const long t = long(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

void Progress::update(int64_t step, double images_per_second, const std::string& stats) {
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  int64_t done = step - start_step_;
  double eta = done > 0 ? elapsed / done * double(total_ - step) : 0.0;
  bool last = step >= total_;
  if (live_) {
    if (!last && std::chrono::duration<double>(now - last_draw_).count() < 0.2) return;
    last_draw_ = now;
    fmt::print(out_, "\r\033[K[{}/{} {:3.0f}%] ETA {} | {} | {:.1f} img/s", step, total_, 100.0 * step / double(total_),
               duration_text(eta), stats, images_per_second);
    std::fflush(out_);
  } else if (step % log_every_ == 0 || last || done == 1) {
    fmt::print(out_, "step {}/{}  elapsed {}  ETA {}  {}  {:.1f} img/s\n", step, total_, duration_text(elapsed),
               duration_text(eta), stats, images_per_second);
    std::fflush(out_);
  }
}

void Progress::note(const std::string& message) {
  fmt::print(out_, "{}{}\n", live_ ? "\r\033[K" : "", message);
  std::fflush(out_);
}

void Progress::finish(const std::string& message) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  fmt::print(out_, "{}{} ({})\n", live_ ? "\n" : "", message, duration_text(elapsed));
  std::fflush(out_);
}

}  // namespace fpa
