// test_fixtures_discriminator.cpp: the discriminator and the GAN losses on the CPU against the
// PyTorch reference fixtures (tools/reference/make_fixtures.py; each test skipped when its file
// is absent), in float64 and float32. For tests/fixtures/disc*.safetensors: the logits, the aux
// loss, their gradients, the gradient penalty and its second-order parameter gradients; for
// tests/fixtures/losses.safetensors: every hinge variant, the generator losses and their input
// gradients. The checks and their tolerances are in tests/fixture_checks.cpp, shared with the
// CUDA suite (tests/cuda/test_cuda_fixtures.cpp).
#include <gtest/gtest.h>

#include "tests/fixture_checks.h"

namespace fpa::test {
namespace {

const Device kCpu = Device::cpu;

TEST(FixturesDiscriminator, Grey32Float64) { check_discriminator_fixture("disc32_grey", kCpu, DType::f64); }
TEST(FixturesDiscriminator, Grey32Float32) { check_discriminator_fixture("disc32_grey", kCpu, DType::f32); }
TEST(FixturesDiscriminator, Rgb64Float64) { check_discriminator_fixture("disc64_rgb", kCpu, DType::f64); }
TEST(FixturesDiscriminator, Rgb64Float32) { check_discriminator_fixture("disc64_rgb", kCpu, DType::f32); }
TEST(FixturesDiscriminator, Out5Float64) { check_discriminator_fixture("disc32_out5", kCpu, DType::f64); }
TEST(FixturesDiscriminator, Out5Float32) { check_discriminator_fixture("disc32_out5", kCpu, DType::f32); }

TEST(FixturesGanLosses, Float64) { check_gan_losses_fixture(kCpu, DType::f64); }
TEST(FixturesGanLosses, Float32) { check_gan_losses_fixture(kCpu, DType::f32); }

}  // namespace
}  // namespace fpa::test
