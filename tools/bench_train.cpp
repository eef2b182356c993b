// bench_train.cpp: `make bench-train`. Milliseconds per training step and images per second
// of the whole GAN step (D step with the penalty every 4th step, G step, both Adams, EMA)
// for the cpu-small and grey32-T32 presets at their batch sizes, on random data, with the
// thread count. A benchmark, not a test.
// Usage: bench_train [steps per preset, default 8] [preset ...] (default cpu-small grey32-T32).
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "train/trainer.h"

using namespace fpa;

int main(int argc, char** argv) {
  int64_t steps = argc > 1 ? std::atoll(argv[1]) : 8;
  fmt::print("threads: {} (OMP_NUM_THREADS)\n", omp_get_max_threads());
  fmt::print("{:<12} {:>6} {:>12} {:>10} {}\n", "preset", "batch", "ms/step", "images/s", "(mean over steps after one warm-up)");
  std::vector<std::string> presets = {"cpu-small", "grey32-T32"};
  if (argc > 2) presets.assign(argv + 2, argv + argc);
  for (const std::string& preset : presets) {
    TrainOptions o = train_defaults(preset);
    Trainer t(o, std::make_shared<const ImageDataset>(random_dataset(o.batch * 4, o.model.g.channels,
                                                                    o.model.g.image_size)));
    int64_t n = preset == "grey32-T32" ? std::max<int64_t>(2, steps / 4) : steps;
    t.step();  // warm-up: first allocations
    auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < n; ++i) t.step();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / double(n);
    fmt::print("{:<12} {:>6} {:>12.1f} {:>10.1f}  over {} steps\n", preset, o.batch, ms, 1000.0 * double(o.batch) / ms, n);
    std::fflush(stdout);
  }
  return 0;
}
