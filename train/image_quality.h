// image_quality.h: FID and KID of a set of images against a dataset, in the engine: images go
// through the FID Inception network (fpa/inception.h) in batches, their 2048-d features are
// summarised (mean and covariance, train/feature_distances.h) and the first ones kept for KID.
// The real set's summary is cached per dataset, image size and count under the cache folder,
// keyed by a fingerprint of the pixels and of the network's weights, so it is computed once.
//
// Images are compared as the paper's pipeline compares them (lightweight-gan writes PNGs for
// pytorch-fid): 8-bit pixels, generated images clamped to [0, 1] and rounded to 8 bits first.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"
#include "data/image_io.h"
#include "autograd/philox.h"
#include "fpa/inception.h"
#include "fpa/models.h"
#include "train/feature_distances.h"

namespace fpa {

// Features kept per set for KID (its subsets are drawn from these).
constexpr int64_t kKidMaxRows = 10000;
// Real images a dataset is summarised by unless told otherwise (fpa fid --real-n, training).
constexpr int64_t kDefaultRealImages = 10000;
// Images per pass through the network.
constexpr int64_t kFeatureBatch = 32;

// The summary of one set of images' Inception features.
struct FeatureSet {
  FeatureStats stats;           // over every image of the set
  std::vector<float> features;  // (rows, 2048): the first min(count, kKidMaxRows) images' features
  int64_t rows = 0;
};

// Called after each batch with the images done and the total.
using FeatureProgress = std::function<void(int64_t done, int64_t total)>;

// Streams batches of images into a FeatureSet.
class FeatureCollector {
 public:
  explicit FeatureCollector(const FidInception& net);
  // images (B, C, H, W) in [0, 1], C 1 or 3.
  void add(const Tensor& images);
  FeatureSet finish() const;
  int64_t count() const { return stats_.count(); }

 private:
  const FidInception& net_;
  FeatureStatsAccumulator stats_;
  std::vector<float> kept_;  // (rows, 2048)
};

// Generated images (any range) as the pipeline scores them: clamped to [0, 1], rounded to 8 bits.
Tensor as_8bit_image(const Tensor& images);

// `n` images of `data` (0: all; evenly spaced through it when fewer), in batches.
FeatureSet dataset_features(const FidInception& net, const ImageDataset& data, int64_t n,
                            const FeatureProgress& progress = nullptr);

// `n` images of generator `g` from latents (latent_dim) drawn from `gen` on `device`, as
// 8-bit images, in batches; no graph is recorded.
FeatureSet generated_features(const FidInception& net, const GeneratorModel& g, int64_t latent_dim, int64_t n,
                              Philox& gen, Device device, const FeatureProgress& progress = nullptr);

// dataset_features through the cache in `cache_dir` ("" : default_cache_dir()/fid). `hit`
// says whether it came from there. A cache that cannot be written only warns.
FeatureSet cached_dataset_features(const FidInception& net, const ImageDataset& data, int64_t n,
                                   const std::string& cache_dir = "", bool* hit = nullptr,
                                   const FeatureProgress& progress = nullptr);

// The text that keys a dataset's cached features: source, size, channels, count, a hash of
// the pixels used and the weights' identity.
std::string dataset_fingerprint(const FidInception& net, const ImageDataset& data, int64_t n);

struct QualityScores {
  double fid = 0;
  KidResult kid;
  int64_t real_count = 0, fake_count = 0;
};

// FID of the two summaries and KID of their kept features (100 subsets of up to 1,000).
QualityScores compare_feature_sets(const FeatureSet& real, const FeatureSet& fake, uint64_t seed = 0);

// FeatureSet in a safetensors file (mean, covariance, features; count in the metadata), and back.
void save_feature_set(const std::string& path, const FeatureSet& set, const std::string& fingerprint);
// False when the file is missing or keyed by another fingerprint; throws when it is damaged.
bool load_feature_set(const std::string& path, const std::string& fingerprint, FeatureSet* out);

}  // namespace fpa
