// bench_fid.cpp: `make bench-fid`. (1) Inception feature images per second on the CPU (32x32
// RGB images resized to 299x299, float32, batch sizes 1, 8 and 32), with the thread count and
// the minutes 10,000 images take at the best rate. (2) Calibration, a check that the meter
// means something: FID and KID of N Fashion-MNIST training images against N test images (small),
// the same test images blurred (larger) and uniform noise (largest). A benchmark, not a test.
// Usage: bench_fid [images per batch size, default 32; 0 skips (1)] [N, default 500; 0 skips (2)]
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "autograd/philox.h"
#include "data/dataset_cache.h"
#include "fpa/inception.h"
#include "ops/ops.h"
#include "train/image_quality.h"

using namespace fpa;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void throughput(const FidInception& net, int64_t images) {
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
}

// `data` with every image blurred: two 3x3 box filters (padding not counted), rounded to 8 bits.
ImageDataset blurred(const ImageDataset& data) {
  ImageDataset out = data;
  out.source = data.source + " blurred";
  const int64_t per = data.image_bytes();
  for (int64_t i = 0; i < data.count; ++i) {
    std::vector<float> v(data.image(i), data.image(i) + per);
    Tensor x = from_floats(v, {1, data.channels, data.size, data.size});
    std::vector<float> b = avg_pool2d(avg_pool2d(x, 3, 1, 1, false), 3, 1, 1, false).to_floats();
    for (int64_t j = 0; j < per; ++j) out.pixels[i * per + j] = uint8_t(std::clamp(b[j] + 0.5f, 0.0f, 255.0f));
  }
  return out;
}

void calibration(const FidInception& net, int64_t n) {
  fmt::print("\ncalibration: FID and KID against {} Fashion-MNIST training images (features cached)\n", n);
  const ImageDataset train = load_dataset("fashion-mnist", 32, true);
  const ImageDataset test = load_dataset("fashion-mnist-test", 32, true);
  const FeatureSet real = cached_dataset_features(net, train, n);
  const ImageDataset noise = random_dataset(test.count, 1, 32, 7);  // (N, 1, 32, 32) uniform bytes
  const ImageDataset blurred_test = blurred(test);
  const std::pair<const char*, const ImageDataset*> sets[] = {
      {"Fashion-MNIST test", &test}, {"Fashion-MNIST test, blurred", &blurred_test}, {"uniform noise", &noise}};
  fmt::print("{:<32} {:>10} {:>12} {:>10}\n", "set", "FID", "KID", "+- std");
  for (const auto& [name, images] : sets) {
    const QualityScores s = compare_feature_sets(real, dataset_features(net, *images, n));
    fmt::print("{:<32} {:>10.2f} {:>12.5f} {:>10.5f}\n", std::string(name) + " (" + std::to_string(n) + ")", s.fid,
               s.kid.mean, s.kid.std);
    std::fflush(stdout);
  }
  fmt::print("expected: test < blurred < noise\n");
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t images = argc > 1 ? std::atoll(argv[1]) : 32;
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 500;
  const FidInception net = FidInception::load(default_inception_weights_path());
  fmt::print("threads: {} (OMP_NUM_THREADS)\n", omp_get_max_threads());
  if (images > 0) throughput(net, images);
  if (n > 0) calibration(net, n);
  return 0;
}
