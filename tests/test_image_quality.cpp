// test_image_quality.cpp: FID and KID end to end, through the FID Inception network, on a few
// Fashion-MNIST test images: a set against itself scores 0 (FID within rounding; KID's unbiased
// estimate is its closed form for identical sets, which is at most 0), and the scores order
// other real images < the same images blurred < uniform noise. Also the 8-bit rounding of
// generated images, the feature cache's round trip and key, and `fpa fid` on two files. Needs
// the converted weights (`make fid-weights`; `make test` fetches them); without them the tests
// are skipped with the reason.
#include <gtest/gtest.h>

#include <cstdio>

#include "autograd/philox.h"
#include "data/dataset_cache.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"
#include "train/image_quality.h"

namespace fpa::test {
namespace {

constexpr int64_t kImages = 8;

const FidInception& network() {
  static const FidInception net = FidInception::load(default_inception_weights_path());
  return net;
}

// kImages Fashion-MNIST test images from `first` on, every 7th, (N, 1, 32, 32) in [0, 1].
Tensor fashion_images(int64_t first) {
  static const ImageDataset data = load_dataset("fashion-mnist-test", 32, true);
  std::vector<float> v;
  for (int64_t i = 0; i < kImages; ++i) {
    const uint8_t* p = data.image(first + 7 * i);
    for (int64_t j = 0; j < data.image_bytes(); ++j) v.push_back(float(p[j]) / 255.0f);
  }
  return from_floats(v, {kImages, 1, 32, 32});
}

FeatureSet features_of(const Tensor& images) {
  FeatureCollector c(network());
  c.add(images);
  return c.finish();
}

// The reference set: the features of fashion_images(0), computed once.
const FeatureSet& reference_set() {
  static const FeatureSet set = features_of(fashion_images(0));
  return set;
}

TEST(ImageQuality, SetAgainstItselfScoresZero) {
  REQUIRE_FID_WEIGHTS();
  const FeatureSet& a = reference_set();
  const QualityScores s = compare_feature_sets(a, a);
  EXPECT_LT(std::abs(s.fid), 1e-9 * covariance_trace(a.stats));
  // Unbiased KID of identical sets: (2 / m) (mean of k(x_i, x_j), i != j) - (2 / m) (mean of k(x_i, x_i)).
  const int64_t m = a.rows, d = a.stats.dim;
  double off = 0, diag = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double dot = 0;
      for (int64_t k = 0; k < d; ++k) dot += double(a.features[i * d + k]) * double(a.features[j * d + k]);
      const double kernel = std::pow(dot / double(d) + 1.0, 3);
      (i == j ? diag : off) += kernel;
    }
  const double expected = 2.0 / double(m) * (off / double(m * (m - 1)) - diag / double(m));
  EXPECT_LE(s.kid.mean, 1e-12);
  EXPECT_NEAR(s.kid.mean, expected, 1e-9 * std::abs(expected));
}

TEST(ImageQuality, ScoresOrderRealBlurredNoise) {
  REQUIRE_FID_WEIGHTS();
  const FeatureSet& real = reference_set();
  const Tensor others = fashion_images(3);
  Philox gen(11);
  const QualityScores other = compare_feature_sets(real, features_of(others));
  const QualityScores blurred =
      compare_feature_sets(real, features_of(avg_pool2d(avg_pool2d(others, 3, 1, 1, false), 3, 1, 1, false)));
  const QualityScores noise = compare_feature_sets(real, features_of(rand({kImages, 1, 32, 32}, DType::f32,
                                                                          Device::cpu, &gen)));
  EXPECT_LT(other.fid, blurred.fid);
  EXPECT_LT(blurred.fid, noise.fid);
  EXPECT_LT(other.kid.mean, blurred.kid.mean);
  EXPECT_LT(blurred.kid.mean, noise.kid.mean);
  ::testing::Test::RecordProperty("fid_other_blurred_noise", std::to_string(other.fid) + " " +
                                                                 std::to_string(blurred.fid) + " " +
                                                                 std::to_string(noise.fid));
}

TEST(ImageQuality, GeneratedImagesAreClampedAndRoundedTo8Bits) {
  Tensor x = from_vector({-0.5, 0.0, 0.5, 0.999, 1.5, 0.1}, {1, 1, 2, 3});
  EXPECT_EQ(as_8bit_image(x).to_vector(),
            std::vector<double>({0.0, 0.0, double(128.0f / 255.0f), 1.0, 1.0, double(26.0f / 255.0f)}));
}

TEST(ImageQuality, FeatureCacheRoundTripsAndChecksItsKey) {
  FeatureSet set;
  set.stats.count = 3, set.stats.dim = 2;
  set.stats.mean = {0.5, -1.25};
  set.stats.covariance = {2.0, 0.25, 0.25, 1.0};
  set.features = {1, 2, 3, 4}, set.rows = 2;
  const std::string path = ::testing::TempDir() + "fid_features.safetensors";
  save_feature_set(path, set, "key A");
  FeatureSet back;
  EXPECT_FALSE(load_feature_set(path, "key B", &back));
  ASSERT_TRUE(load_feature_set(path, "key A", &back));
  EXPECT_EQ(back.stats.count, 3);
  EXPECT_EQ(back.stats.mean, set.stats.mean);
  EXPECT_EQ(back.stats.covariance, set.stats.covariance);
  EXPECT_EQ(back.features, set.features);
  EXPECT_EQ(back.rows, 2);
  std::remove(path.c_str());
  EXPECT_FALSE(load_feature_set(path, "key A", &back));
}

// `fpa fid --real A --fake B` on two safetensors image files; a file without 'images' and an
// unknown flag are refused with what to give instead.
TEST(ImageQuality, FidCommandComparesTwoImageFiles) {
  if (!std::getenv("FPA_BIN")) GTEST_SKIP() << "FPA_BIN not set (make test sets it)";
  REQUIRE_FID_WEIGHTS();
  const std::string dir = temp_dir("fid_cli");
  Philox gen(5);
  nn::save_safetensors(dir + "/a.safetensors", {{"images", rand({3, 1, 16, 16}, DType::f32, Device::cpu, &gen)}});
  nn::save_safetensors(dir + "/b.safetensors", {{"images", rand({3, 3, 16, 16}, DType::f32, Device::cpu, &gen)}});
  nn::save_safetensors(dir + "/c.safetensors", {{"x", zeros({3, 1, 16, 16})}});
  auto [rc, out] = fpa_cli("fid --real " + dir + "/a.safetensors --fake " + dir + "/b.safetensors");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("FID "), std::string::npos) << out;
  EXPECT_NE(out.find("real 3 images, fake 3 images"), std::string::npos) << out;
  auto refused = fpa_cli("fid --real " + dir + "/a.safetensors --fake " + dir + "/c.safetensors");
  EXPECT_NE(refused.first, 0);
  EXPECT_NE(refused.second.find("needs a tensor 'images' (N, 1 or 3, H, W) in [0, 1]"), std::string::npos)
      << refused.second;
  auto unknown = fpa_cli("fid --real a --fake b --fakes c");
  EXPECT_NE(unknown.first, 0);
  EXPECT_NE(unknown.second.find("--fakes"), std::string::npos) << unknown.second;
}

}  // namespace
}  // namespace fpa::test
