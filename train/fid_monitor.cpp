// fid_monitor.cpp: FID and KID of the generator during training (fid_monitor.h).
#include "train/fid_monitor.h"

#include "autograd/engine.h"
#include "autograd/philox.h"

namespace fpa {
namespace {

constexpr int64_t kRealImages = 10000, kBatch = 25;
constexpr uint64_t kLatentSalt = 4;  // picture latents use salts 1 to 3 (train_run.cpp)

}  // namespace

FidMonitor::FidMonitor(const TrainOptions& o, const ImageDataset& data, bool* real_cached)
    : o_(o), net_(FidInception::load(default_inception_weights_path(), DType::f32, o.device)) {
  real_ = cached_dataset_features(net_, data, kRealImages, "", real_cached);
}

QualityScores FidMonitor::measure(const GeneratorModel& g) const {
  Philox gen(o_.seed * 1000003 + kLatentSalt);
  FeatureCollector fake(net_);
  NoGradGuard no_grad;
  for (int64_t b = 0; b < o_.fid_n; b += kBatch) {
    const int64_t n = std::min(kBatch, o_.fid_n - b);
    fake.add(as_8bit_image(g.forward(randn({n, o_.model.g.latent_dim}, DType::f32, o_.device, &gen))));
  }
  return compare_feature_sets(real_, fake.finish());
}

}  // namespace fpa
