// progress.h: training progress for people: on a terminal one live line (step/total, ETA,
// losses, images/s) rewritten in place; otherwise (CI, a pipe, a log file) a plain line every
// `log_every` steps.
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace fpa {

class Progress {
 public:
  Progress(int64_t start_step, int64_t total_steps, int64_t log_every, std::FILE* out = stderr);
  // Called after each step; `stats` is the text of the losses ("D 1.23  G -0.41  ...").
  void update(int64_t step, double images_per_second, const std::string& stats);
  // A message on a line of its own (the live line is redrawn after it).
  void note(const std::string& message);
  // Ends the live line (newline) and prints a closing summary.
  void finish(const std::string& message);
  static std::string duration_text(double seconds);  // "1h02m", "3m05s", "12s"

 private:
  std::FILE* out_;
  bool live_;
  int64_t start_step_, total_, log_every_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace fpa
