// image_quality.cpp: FID and KID of images through the FID Inception network
// (image_quality.h): the feature collector, datasets in batches, the real set's cache and
// the scores.
#include "train/image_quality.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "autograd/engine.h"
#include "autograd/error.h"
#include "data/dataset_cache.h"
#include "nn/safetensors.h"

namespace fpa {
namespace {

constexpr int64_t kKidSubsets = 100, kKidSubsetSize = 1000;

uint64_t fnv1a(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// The dataset images that stand for `n` of them: all, or n evenly spaced.
std::vector<int64_t> chosen_images(const ImageDataset& data, int64_t n) {
  const int64_t count = n <= 0 || n >= data.count ? data.count : n;
  std::vector<int64_t> ids(count);
  for (int64_t i = 0; i < count; ++i) ids[i] = i * data.count / count;
  return ids;
}

// Images ids[begin, end) of `data` as float32 (B, C, S, S) in [0, 1].
Tensor dataset_batch(const ImageDataset& data, const std::vector<int64_t>& ids, int64_t begin, int64_t end) {
  const int64_t per = data.image_bytes();
  std::vector<float> values((end - begin) * per);
  for (int64_t i = begin; i < end; ++i) {
    const uint8_t* src = data.image(ids[i]);
    for (int64_t j = 0; j < per; ++j) values[(i - begin) * per + j] = float(src[j]) / 255.0f;
  }
  return from_floats(values, {end - begin, data.channels, data.size, data.size});
}

// A file-name-safe form of a dataset source ("fashion-mnist", a folder path).
std::string file_stem(const std::string& source) {
  std::string s;
  for (char c : source) s += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  while (!s.empty() && (s.front() == '_' || s.front() == '.')) s.erase(s.begin());
  return s.empty() ? "images" : s.substr(std::max<int64_t>(0, int64_t(s.size()) - 80));
}

}  // namespace

FeatureCollector::FeatureCollector(const FidInception& net) : net_(net), stats_(kInceptionFeatures) {}

void FeatureCollector::add(const Tensor& images) {
  const std::vector<float> f = net_.features(images).to_floats();  // (B, 2048)
  const int64_t b = int64_t(f.size()) / kInceptionFeatures;
  stats_.add(f.data(), b);
  const int64_t keep = std::min(b, kKidMaxRows - int64_t(kept_.size()) / kInceptionFeatures);
  kept_.insert(kept_.end(), f.begin(), f.begin() + keep * kInceptionFeatures);
}

FeatureSet FeatureCollector::finish() const {
  FPA_CHECK(stats_.count() >= 2, "FID: needs at least 2 images, got ", stats_.count());
  return {stats_.finish(), kept_, int64_t(kept_.size()) / kInceptionFeatures};
}

Tensor as_8bit_image(const Tensor& images) {
  std::vector<float> v = images.to_floats();
  for (float& x : v) {
    const float c = x != x ? 0.0f : std::clamp(x, 0.0f, 1.0f);  // NaN: black, as save_image writes it
    x = float(uint8_t(c * 255.0f + 0.5f)) / 255.0f;
  }
  return from_floats(v, images.shape());
}

FeatureSet dataset_features(const FidInception& net, const ImageDataset& data, int64_t n,
                            const FeatureProgress& progress) {
  const std::vector<int64_t> ids = chosen_images(data, n);
  const int64_t total = int64_t(ids.size());
  FeatureCollector collector(net);
  for (int64_t begin = 0; begin < total; begin += kFeatureBatch) {
    const int64_t end = std::min(total, begin + kFeatureBatch);
    collector.add(dataset_batch(data, ids, begin, end));
    if (progress) progress(end, total);
  }
  return collector.finish();
}

FeatureSet generated_features(const FidInception& net, const GeneratorModel& g, int64_t latent_dim, int64_t n,
                              Philox& gen, Device device, const FeatureProgress& progress) {
  FeatureCollector collector(net);
  NoGradGuard no_grad;
  for (int64_t begin = 0; begin < n; begin += kFeatureBatch) {
    const int64_t batch = std::min(kFeatureBatch, n - begin);
    collector.add(as_8bit_image(g.forward(randn({batch, latent_dim}, DType::f32, device, &gen))));
    if (progress) progress(begin + batch, n);
  }
  return collector.finish();
}

std::string dataset_fingerprint(const FidInception& net, const ImageDataset& data, int64_t n) {
  const std::vector<int64_t> ids = chosen_images(data, n);
  uint64_t h = 0xcbf29ce484222325ull;
  for (int64_t id : ids) h = fnv1a(data.image(id), size_t(data.image_bytes()), h);
  return fmt::format("source={} size={} channels={} images={} of {} pixels_fnv1a={:016x} weights={}", data.source,
                     data.size, data.channels, ids.size(), data.count, h, net.weights_id());
}

FeatureSet cached_dataset_features(const FidInception& net, const ImageDataset& data, int64_t n,
                                   const std::string& cache_dir, bool* hit, const FeatureProgress& progress) {
  const std::string dir = (cache_dir.empty() ? default_cache_dir() : cache_dir) + "/fid";
  const int64_t count = int64_t(chosen_images(data, n).size());
  const std::string path = fmt::format("{}/{}-{}px-{}ch-{}.safetensors", dir, file_stem(data.source), data.size,
                                       data.channels, count);
  const std::string fingerprint = dataset_fingerprint(net, data, n);
  FeatureSet set;
  if (hit) *hit = false;
  if (load_feature_set(path, fingerprint, &set)) {
    if (hit) *hit = true;
    return set;
  }
  set = dataset_features(net, data, n, progress);
  try {
    std::filesystem::create_directories(dir);
    save_feature_set(path, set, fingerprint);
  } catch (const std::exception& e) {
    fmt::print(stderr, "warning: the real images' FID statistics could not be cached: {}\n", e.what());
  }
  return set;
}

QualityScores compare_feature_sets(const FeatureSet& real, const FeatureSet& fake, uint64_t seed) {
  QualityScores s;
  // A set whose every row is kept and that has fewer rows than features has a low-rank
  // covariance: the distance is computed from its rows, in a (count, count) problem.
  const auto small = [](const FeatureSet& f) { return f.rows == f.stats.count && f.rows <= f.stats.dim; };
  if (small(fake)) s.fid = frechet_distance(real.stats, fake.stats, fake.features.data());
  else if (small(real)) s.fid = frechet_distance(fake.stats, real.stats, real.features.data());
  else s.fid = frechet_distance(real.stats, fake.stats);
  // Sets no larger than a subset have one subset only: all their rows.
  const bool whole = real.rows <= kKidSubsetSize && fake.rows <= kKidSubsetSize && real.rows == fake.rows;
  s.kid = kernel_inception_distance(real.features.data(), real.rows, fake.features.data(), fake.rows,
                                    kInceptionFeatures, whole ? 1 : kKidSubsets, kKidSubsetSize, seed);
  s.real_count = real.stats.count, s.fake_count = fake.stats.count;
  return s;
}

void save_feature_set(const std::string& path, const FeatureSet& set, const std::string& fingerprint) {
  const int64_t d = set.stats.dim;
  nn::save_safetensors(path,
                       {{"mean", from_vector(set.stats.mean, {d}, DType::f64)},
                        {"covariance", from_vector(set.stats.covariance, {d, d}, DType::f64)},
                        {"features", from_floats(set.features, {set.rows, d})}},
                       {{"format", "fpa-fid-features"}, {"count", std::to_string(set.stats.count)},
                        {"fingerprint", fingerprint}});
}

bool load_feature_set(const std::string& path, const std::string& fingerprint, FeatureSet* out) {
  if (!std::filesystem::exists(path)) return false;
  nn::NamedTensors file = nn::load_safetensors(path);
  auto fp = file.metadata.find("fingerprint");
  if (fp == file.metadata.end() || fp->second != fingerprint) return false;
  const Tensor* mean = file.find("mean");
  const Tensor* cov = file.find("covariance");
  const Tensor* features = file.find("features");
  const bool whole = mean && cov && features && mean->ndim() == 1 && cov->ndim() == 2 &&
                     cov->dim(0) == mean->dim(0) && cov->dim(1) == mean->dim(0) && features->ndim() == 2 &&
                     features->dim(1) == mean->dim(0) && file.metadata.count("count");
  FPA_CHECK(whole,
            "FID feature cache ", path, " is damaged (delete it to recompute)");
  out->stats.dim = mean->dim(0);
  out->stats.count = std::stoll(file.metadata.at("count"));
  out->stats.mean = mean->to_vector();
  out->stats.covariance = cov->to_vector();
  out->features = features->to_floats();
  out->rows = features->dim(0);
  return true;
}

}  // namespace fpa
