// fid_monitor.cpp: FID and KID of the generator during training (fid_monitor.h).
#include "train/fid_monitor.h"

namespace fpa {
namespace {

constexpr uint64_t kLatentSalt = 4;  // picture latents use salts 1 to 3 (train_run.cpp)

}  // namespace

FidMonitor::FidMonitor(const TrainOptions& o, const ImageDataset& data, bool* real_cached)
    : o_(o), net_(FidInception::load(default_inception_weights_path(), DType::f32, o.device)) {
  real_ = cached_dataset_features(net_, data, kDefaultRealImages, "", real_cached);
}

QualityScores FidMonitor::measure(const GeneratorModel& g) const {
  Philox gen(o_.seed * 1000003 + kLatentSalt);
  return compare_feature_sets(real_, generated_features(net_, g, o_.model.g.latent_dim, o_.fid_n, gen, o_.device));
}

}  // namespace fpa
