// progress.cpp: the live line and the plain log lines.
#include "train/progress.h"

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
  char buf[32];
  long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
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
    std::fprintf(out_, "\r\033[K[%lld/%lld %3.0f%%] ETA %s | %s | %.1f img/s", (long long)step, (long long)total_,
                 100.0 * step / double(total_), duration_text(eta).c_str(), stats.c_str(), images_per_second);
    std::fflush(out_);
  } else if (step % log_every_ == 0 || last || done == 1) {
    std::fprintf(out_, "step %lld/%lld  elapsed %s  ETA %s  %s  %.1f img/s\n", (long long)step, (long long)total_,
                 duration_text(elapsed).c_str(), duration_text(eta).c_str(), stats.c_str(), images_per_second);
    std::fflush(out_);
  }
}

void Progress::note(const std::string& message) {
  std::fprintf(out_, "%s%s\n", live_ ? "\r\033[K" : "", message.c_str());
  std::fflush(out_);
}

void Progress::finish(const std::string& message) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (live_) std::fprintf(out_, "\n");
  std::fprintf(out_, "%s (%s)\n", message.c_str(), duration_text(elapsed).c_str());
  std::fflush(out_);
}

}  // namespace fpa
