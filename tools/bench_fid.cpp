// bench_fid.cpp: `make bench-fid`. Inception feature images per second on the CPU (32x32 RGB
// images resized to 299x299, float32, batch sizes 1, 8 and 32), with the thread count, and the
// minutes that 10,000 images take at the best rate. A benchmark, not a test.
// Usage: bench_fid [images per batch size, default 32]
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "autograd/philox.h"
#include "fpa/inception.h"
#include "ops/ops.h"

using namespace fpa;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t images = argc > 1 ? std::atoll(argv[1]) : 32;
  const FidInception net = FidInception::load(default_inception_weights_path());
  fmt::print("threads: {} (OMP_NUM_THREADS)\n", omp_get_max_threads());
  fmt::print("{:<24} {:>6} {:>10} {:>12}\n", "input", "batch", "images/s", "10k images");
  Philox gen(3);
  double best = 0;
  for (int64_t batch : {1, 8, 32}) {
    Tensor x = rand({batch, 3, 32, 32}, DType::f32, Device::cpu, &gen);
    net.features(x);  // warm-up: first allocations
    const int64_t rounds = std::max<int64_t>(1, images / batch);
    auto start = std::chrono::steady_clock::now();
    for (int64_t r = 0; r < rounds; ++r) net.features(x);
    const double rate = double(rounds * batch) / seconds_since(start);
    best = std::max(best, rate);
    fmt::print("{:<24} {:>6} {:>10.2f} {:>10.1f} min\n", "32x32 RGB -> 299x299", batch, rate, 10000.0 / rate / 60.0);
    std::fflush(stdout);
  }
  fmt::print("best: {:.2f} images/s, 10,000 images in {:.1f} min (goal: under 10 min on two cores)\n", best,
             10000.0 / best / 60.0);
  return 0;
}
