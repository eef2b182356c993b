// test_cuda_fixtures.cpp: the whole models on CUDA against the PyTorch reference fixtures
// (tests/fixtures), with the CPU tests' checks and tolerances (tests/fixture_checks.cpp): the
// FastWeightPainter generators, the U-Net generator, the three discriminators with their
// gradient penalty, and the GAN losses, in float64 and float32, TF32 off as in the whole
// suite (the references are exact float32 / float64 arithmetic). Each test skips without a
// GPU or without its fixture.
#include "tests/cuda/cuda_test_util.h"
#include "tests/fixture_checks.h"

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

}  // namespace
}  // namespace fpa::test::cuda
