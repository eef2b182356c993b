// test_cuda_fixtures.cpp: the whole models on CUDA against the PyTorch reference fixtures
// (tests/fixtures), with the CPU tests' checks and tolerances (tests/fixture_checks.cpp): the
// FastWeightPainter generators, the U-Net generator, the three discriminators with their
// gradient penalty, and the GAN losses, in float64 and float32, TF32 off as in the whole
// suite (the references are exact float32 / float64 arithmetic); the FID Inception's features
// against the TorchScript network's (tests/fixtures/inception_features.safetensors). Each test
// skips without a GPU or without its fixture (or the Inception weights).
#include <algorithm>
#include <cmath>

#include "fpa/inception.h"
#include "nn/safetensors.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/fixture_checks.h"
#include "tests/test_util.h"

namespace fpa::test::cuda {
namespace {

const Device kGpu = Device::cuda;

TEST(CudaFixtures, GeneratorsFloat64) {
  REQUIRE_CUDA();
  check_generator_fixtures(kGpu, DType::f64);
}

TEST(CudaFixtures, GeneratorsFloat32) {
  REQUIRE_CUDA();
  check_generator_fixtures(kGpu, DType::f32);
}

TEST(CudaFixtures, UNetFloat64) {
  REQUIRE_CUDA();
  check_unet_fixture(kGpu, DType::f64);
}

TEST(CudaFixtures, UNetFloat32) {
  REQUIRE_CUDA();
  check_unet_fixture(kGpu, DType::f32);
}

TEST(CudaFixtures, DiscriminatorGrey32Float64) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc32_grey", kGpu, DType::f64);
}

TEST(CudaFixtures, DiscriminatorGrey32Float32) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc32_grey", kGpu, DType::f32);
}

TEST(CudaFixtures, DiscriminatorRgb64Float64) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc64_rgb", kGpu, DType::f64);
}

TEST(CudaFixtures, DiscriminatorRgb64Float32) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc64_rgb", kGpu, DType::f32);
}

TEST(CudaFixtures, DiscriminatorOut5Float64) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc32_out5", kGpu, DType::f64);
}

TEST(CudaFixtures, DiscriminatorOut5Float32) {
  REQUIRE_CUDA();
  check_discriminator_fixture("disc32_out5", kGpu, DType::f32);
}

TEST(CudaFixtures, GanLossesFloat64) {
  REQUIRE_CUDA();
  check_gan_losses_fixture(kGpu, DType::f64);
}

TEST(CudaFixtures, GanLossesFloat32) {
  REQUIRE_CUDA();
  check_gan_losses_fixture(kGpu, DType::f32);
}

// The features of every fixture set on the GPU, to 1e-4 of the largest (the CPU's tolerance).
TEST(CudaFixtures, FidInceptionFloat32) {
  REQUIRE_CUDA();
  REQUIRE_FID_WEIGHTS();
  const FidInception net = FidInception::load(default_inception_weights_path(), DType::f32, kGpu);
  const nn::NamedTensors file = nn::load_safetensors("tests/fixtures/inception_features.safetensors");
  for (const std::string set : {"fashion", "emoji", "noise"}) {
    SCOPED_TRACE(set);
    const std::vector<double> got = net.features(*file.find("in." + set)).to_vector();
    const std::vector<double> want = file.find("out." + set)->to_vector();
    ASSERT_EQ(got.size(), want.size());
    double diff = 0, scale = 0;
    for (size_t i = 0; i < got.size(); ++i)
      diff = std::max(diff, std::abs(got[i] - want[i])), scale = std::max(scale, std::abs(want[i]));
    EXPECT_LT(diff, 1e-4 * scale);
  }
}

}  // namespace
}  // namespace fpa::test::cuda
